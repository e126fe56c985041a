"""PURE. What a site or device name may be, wherever it comes from (backupbot.yml, NetBox, a CSV
file): names are typed in Slack commands, separated by spaces, and carried in button values
(at most 2,000 characters)."""

from __future__ import annotations

import re

SIMPLE_NAME = re.compile(r"[A-Za-z0-9_.-]{1,64}")
RULE = 'use up to 64 letters, digits, "-", "_" and "."'


def is_simple_name(value: str) -> bool:
    return SIMPLE_NAME.fullmatch(value) is not None


def host_problem(host: str) -> str | None:
    """Why `host` cannot be a router's address (a name or an IP, without a port), or None."""
    if not host.strip():
        return "is empty"
    if any(ch.isspace() for ch in host):
        return f'"{host}" is not a host name or IP address'
    if host.count(":") == 1:
        return f'"{host}": put the port in "port", not in the host'
    return None
