"""THE definition of a stale device, used by the digest, the App Home, `/backup SITE` and the
answer to a backup from Slack alike.

A device is stale when it has been tried and its last good backup is older than the threshold
(`stale_after_hours` in backupbot.yml, 24 by default: Settings.stale_after), or it never had one.
A device never tried is not stale: it is "never backed up", told on its own. Pure.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from bot.core.text import span


def is_stale(tried: bool, last_success: datetime | None, now: datetime, after: timedelta) -> bool:
    return tried and (last_success is None or now - last_success > after)


def stale_phrase(last_success: datetime | None, now: datetime) -> str:
    """How a stale device is described: "no good backup for 3 days", or "never backed up"."""
    return "never backed up" if last_success is None else f"no good backup for {span(now - last_success)}"
