"""PURE. The plain phrases the terminal and Slack both print, so the two never word a fact differently:
times, counts, +/- line counts, ages, and the text of diffs."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

from bot.core.models import Device, Diff


def plural(n: int, word: str, many: str | None = None) -> str:
    return f"{n:,} {word if n == 1 else many or word + 's'}"


def when(at: datetime | None) -> str:
    return at.strftime("%Y-%m-%d %H:%M") if at else "-"


def changes(added: int, removed: int) -> str:
    return f"+{added} -{removed}"


def span(delta: timedelta) -> str:
    minutes = max(int(delta.total_seconds() // 60), 0)
    if minutes < 60:
        return plural(minutes, "minute")
    if minutes < 48 * 60:
        return plural(minutes // 60, "hour")
    return plural(minutes // (24 * 60), "day")


def ago(at: datetime, now: datetime) -> str:
    return "just now" if now - at < timedelta(minutes=1) else f"{span(now - at)} ago"


def diffs_text(diffs: Sequence[Diff]) -> str:
    """Unified text of each diff in turn; an empty one says "(no differences)"."""
    out = []
    for d in diffs:
        out.append(d.text if not d.empty else f"--- {d.old_label}\n+++ {d.new_label}\n(no differences)\n")
    return "".join(out)


def retired_phrase(device: Device) -> str:
    """"site-a/core-9 was retired on 2026-05-01 (the inventory source no longer lists it)"; "" if active."""
    at = device.retired_at
    return f"{device.label} was retired on {at:%Y-%m-%d} (the inventory source no longer lists it)" if at else ""
