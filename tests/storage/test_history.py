"""storage.history against a real SQLite file: runs in order, versions by date a page at a time (ties
kept in id order across pages), and which run recorded each version."""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from bot.core.kinds import Trigger
from bot.core.models import ExportMeta, Status
from storage.store import Store

T0 = datetime(2025, 3, 10, 2, 0, tzinfo=timezone.utc)


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Store]:
    async with await Store.open(tmp_path / "backups.db") as s:
        yield s


async def add(store: Store, run_id: int, device: str, text: str, hours: float) -> int:
    raw = f"/system identity\nset name={text}\n".encode()
    version = await store.add_version(run_id, "hq", device, T0 + timedelta(hours=hours), raw,
                                      hashlib.sha256(raw).hexdigest(), ExportMeta(), Status.NEW, 0, 0, None)
    return version.id


async def test_versions_by_date_page_through_ties_in_id_order(store: Store) -> None:
    live = await store.start_run(Trigger.SCHEDULE, T0, "hq")
    a = await add(store, live, "a", "a1", 5)
    b = await add(store, live, "b", "b1", 5)
    imported = await store.start_run(Trigger.IMPORT, T0, "hq")
    c = await add(store, imported, "c", "c1", 1)  # a later id, an earlier date
    d = await add(store, imported, "d", "d1", 5)

    pages, last = [], None
    while page := await store.versions_by_date(last, limit=2):
        pages.append([v.id for v in page])
        last = page[-1]
    assert pages == [[c, a], [b, d]]

    assert [r.id for r in await store.runs_after(0)] == [live, imported]
    assert [r.trigger for r in await store.runs_after(live)] == ["import"]
    assert await store.version_origins("hq", "c", [c, a]) == {c: "import"}  # a is not c's
    assert await store.version_origins("hq", "a", [a]) == {a: "schedule"}
