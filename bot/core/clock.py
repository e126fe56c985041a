"""Time, injected: every component that needs "now" takes a `Clock`, so tests never sleep or patch.

Datetimes are timezone-aware UTC throughout (bot.core.models); the store refuses naive ones.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timezone

Clock = Callable[[], datetime]


def utcnow() -> datetime:
    return datetime.now(timezone.utc)
