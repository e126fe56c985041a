"""The browser pages' sessions (bot.web) and when each user last logged out (migration 0005).

A session id is a random token only the browser's cookie holds; the database keeps its sha256, so
a copy of the file (a backup of the database, say) signs nobody in. Logging out deletes every
session of that user and records the time, which also voids the signed links issued before it.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime

from storage.codec import from_db_time, from_db_time_or_none, to_db_time
from storage.db import Database


def _hash(session_id: str) -> bytes:
    return hashlib.sha256(session_id.encode("utf-8")).digest()


@dataclass(frozen=True)
class WebSession:
    user: str
    created_at: datetime
    expires_at: datetime


class SessionStore(Database):
    """Web sessions and logouts, as part of storage.store.Store."""

    async def create_session(self, session_id: str, user: str, now: datetime, expires_at: datetime) -> None:
        """Remember a new session for `user` (and forget sessions that have expired by `now`)."""
        async with self._write() as db:
            await db.execute("DELETE FROM web_sessions WHERE expires_at <= ?", (to_db_time(now),))
            await db.execute("INSERT INTO web_sessions (id_hash, user, created_at, expires_at) VALUES (?, ?, ?, ?)",
                             (_hash(session_id), user, to_db_time(now), to_db_time(expires_at)))

    async def session(self, session_id: str, now: datetime) -> WebSession | None:
        """The session with this id if it exists and has not expired by `now`."""
        row = await self._row(
            "SELECT user, created_at, expires_at FROM web_sessions WHERE id_hash = ? AND expires_at > ?",
            (_hash(session_id), to_db_time(now)))
        if row is None:
            return None
        return WebSession(row["user"], from_db_time(row["created_at"]), from_db_time(row["expires_at"]))

    async def log_out(self, user: str, at: datetime) -> int:
        """End every session of `user` and record `at` as their last logout; how many sessions ended."""
        async with self._write() as db:
            cursor = await db.execute("DELETE FROM web_sessions WHERE user = ?", (user,))
            await db.execute("INSERT INTO web_logouts (user, at) VALUES (?, ?)"
                             " ON CONFLICT (user) DO UPDATE SET at = max(at, excluded.at)", (user, to_db_time(at)))
            return cursor.rowcount

    async def last_logout(self, user: str) -> datetime | None:
        row = await self._row("SELECT at FROM web_logouts WHERE user = ?", (user,))
        return from_db_time_or_none(row["at"] if row else None)
