"""storage.sessions against a real SQLite file: the browser pages' sessions and logouts, and the
attempt that recorded each version (the device page's +/- counts)."""

from __future__ import annotations

import hashlib
import sqlite3
from collections.abc import AsyncIterator
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from bot.core.models import ExportMeta, Status
from storage.store import Store

T0 = datetime(2025, 3, 10, 2, 0, tzinfo=timezone.utc)
HOUR = timedelta(hours=1)


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Store]:
    async with await Store.open(tmp_path / "backups.db") as s:
        yield s


async def test_a_session_is_found_by_its_id_until_it_expires(store: Store) -> None:
    await store.create_session("sid-alice", "U0ALICE001", T0, T0 + 12 * HOUR)
    found = await store.session("sid-alice", T0 + HOUR)
    assert found is not None and (found.user, found.created_at, found.expires_at) == ("U0ALICE001", T0, T0 + 12 * HOUR)
    assert await store.session("sid-alice", T0 + 12 * HOUR) is None  # expired
    assert await store.session("sid-other", T0 + HOUR) is None


async def test_only_a_hash_of_the_session_id_is_stored(store: Store, tmp_path: Path) -> None:
    """A copy of the database signs nobody in: the cookie's value is nowhere in the file."""
    await store.create_session("very-secret-session-id", "U0ALICE001", T0, T0 + HOUR)
    with sqlite3.connect(tmp_path / "backups.db") as db:
        rows = db.execute("SELECT id_hash, user FROM web_sessions").fetchall()
    assert rows == [(hashlib.sha256(b"very-secret-session-id").digest(), "U0ALICE001")]
    assert b"very-secret-session-id" not in (tmp_path / "backups.db").read_bytes()


async def test_log_out_ends_every_session_of_that_user_and_records_when(store: Store) -> None:
    await store.create_session("desktop", "U0ALICE001", T0, T0 + 12 * HOUR)
    await store.create_session("phone", "U0ALICE001", T0, T0 + 12 * HOUR)
    await store.create_session("bobs", "U0BOB00001", T0, T0 + 12 * HOUR)
    assert await store.last_logout("U0ALICE001") is None
    assert await store.log_out("U0ALICE001", T0 + HOUR) == 2
    assert await store.session("desktop", T0 + HOUR) is None and await store.session("phone", T0 + HOUR) is None
    assert await store.session("bobs", T0 + HOUR) is not None
    assert await store.last_logout("U0ALICE001") == T0 + HOUR
    await store.log_out("U0ALICE001", T0)  # a clock stepping back never moves the logout earlier
    assert await store.last_logout("U0ALICE001") == T0 + HOUR


async def test_expired_sessions_are_forgotten_when_a_new_one_is_made(store: Store, tmp_path: Path) -> None:
    await store.create_session("old", "U0ALICE001", T0, T0 + HOUR)
    await store.create_session("new", "U0ALICE001", T0 + 2 * HOUR, T0 + 14 * HOUR)
    with sqlite3.connect(tmp_path / "backups.db") as db:
        assert db.execute("SELECT COUNT(*) FROM web_sessions").fetchone() == (1,)


async def test_recording_attempts_give_each_versions_counts(store: Store) -> None:
    async def record(raw: bytes, status: Status, added: int, removed: int, note: str | None = None) -> int:
        run = await store.start_run("cli", T0, "hq")
        version = await store.add_version(run, "hq", "core-1", T0, raw, hashlib.sha256(raw).hexdigest(),
                                          ExportMeta("7.18"), status, added, removed, note)
        return version.id

    first = await record(b"/a\n", Status.NEW, 0, 0)
    second = await record(b"/a\n/b\n", Status.CHANGED, 1, 0)
    third = await record(b"/b\n", Status.CHANGED, 0, 1, "RouterOS 7.18 → 7.19")
    found = await store.recording_attempts("hq", "core-1", [third, first, 999])
    assert sorted(found) == [first, third]
    assert (found[first].status, found[first].added, found[first].removed) == (Status.NEW, 0, 0)
    assert (found[third].added, found[third].removed, found[third].note) == (0, 1, "RouterOS 7.18 → 7.19")
    assert (await store.recording_attempts("hq", "core-1", [second]))[second].added == 1
    assert await store.recording_attempts("hq", "other", [first]) == {}
