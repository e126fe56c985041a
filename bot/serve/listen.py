"""Where `backupbot serve` listens, and the defaults its command-line options show (bot.cli).

Kept apart from bot.serve.server so the CLI can read the defaults without importing aiohttp and
Slack's libraries for every command.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Listen:
    """The public listener (HTTP mode only) and the admin listener (liveness, readiness, /metrics)."""

    host: str = "0.0.0.0"
    port: int = 3000
    admin_host: str = "127.0.0.1"  # keep it off the internet
    admin_port: int = 9090
