"""bot.web.texts with a real store and the real CPU workers: the blobs of versions the worker does
not hold are read once, and a question asked twice at once is answered once."""

from __future__ import annotations

import asyncio
import hashlib
import sqlite3
from collections.abc import AsyncIterator, Sequence
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from bot.backup.catalog import redacted_text
from bot.core.errors import CorruptBlob
from bot.core.models import ExportMeta, Status, Version
from bot.routeros import diff as diffing
from bot.routeros import export as routeros
from bot.web.texts import Texts
from storage.codec import StoredBlob
from storage.store import Store
from tests.helpers import FIXTURES

T0 = datetime(2025, 3, 10, 2, 0, tzinfo=timezone.utc)
EXPORTS = [(FIXTURES / f"seq-ccr1036-isp-{k}.rsc").read_bytes() for k in (1, 2, 3)]


class Reads:
    """The real store, counting how often blobs are read."""

    def __init__(self, store: Store) -> None:
        self.store, self.count = store, 0

    async def chains(self, version_ids: Sequence[int]) -> list[list[StoredBlob]]:
        self.count += 1
        return await self.store.chains(version_ids)

    async def instance_key(self) -> bytes:
        return await self.store.instance_key()


@pytest.fixture
async def stored(tmp_path: Path) -> AsyncIterator[tuple[Store, list[Version]]]:
    async with await Store.open(tmp_path / "backupbot.sqlite") as store:
        run = await store.start_run("cli", T0, "isp")
        versions = []
        for k, raw in enumerate(EXPORTS):
            normalized = hashlib.sha256(routeros.normalize(raw).encode()).hexdigest()
            versions.append(await store.add_version(run, "isp", "edge", T0 + timedelta(days=k), raw, normalized,
                                                    ExportMeta(None, None, None, None), Status.CHANGED, 0, 0, None))
        yield store, versions


async def test_versions_are_read_once_and_a_question_asked_twice_at_once_is_answered_once(
        stored: tuple[Store, list[Version]]) -> None:
    store, versions = stored
    reads = Reads(store)
    texts = Texts(reads)
    first, again = await asyncio.gather(texts.compare(versions), texts.compare(list(reversed(versions))))
    assert first == again and len(first.pairs) == 2 and reads.count == 1
    key = await store.instance_key()
    lines = diffing.display_lines(redacted_text(EXPORTS[2], key))
    assert await texts.lines(versions[2].id, 3, 4) == tuple(lines[3:7]) and reads.count == 1  # kept
    window = await texts.window(versions[1].id, 0)
    assert window.total == len(diffing.display_lines(redacted_text(EXPORTS[1], key))) and reads.count == 1
    assert await Texts(reads).lines(versions[2].id, 3, 4) == tuple(lines[3:7]) and reads.count == 2  # its own


async def test_a_question_whose_asker_went_away_is_answered_for_the_next(stored: tuple[Store, list[Version]]) -> None:
    store, versions = stored
    texts = Texts(store)
    gone = asyncio.ensure_future(texts.compare(versions[:2]))
    waiting = asyncio.ensure_future(texts.compare(versions[:2]))
    await asyncio.sleep(0)  # both asked
    gone.cancel()
    compared = await waiting
    assert gone.cancelled() and len(compared.pairs) == 1 and compared.items[0]


async def test_a_damaged_blob_is_reported_whichever_worker_meets_it(stored: tuple[Store, list[Version]],
                                                                    tmp_path: Path) -> None:
    """The second worker only saves time; a damaged version still fails the page, naming the blob."""
    store, versions = stored
    with sqlite3.connect(tmp_path / "backupbot.sqlite") as db:
        db.execute("UPDATE blobs SET data = zeroblob(length(data)) WHERE id = (SELECT blob_id FROM versions"
                   " WHERE id = ?)", (versions[2].id,))
    with pytest.raises(CorruptBlob):
        await Texts(store).compare(versions)
    with pytest.raises(CorruptBlob):
        await Texts(store).lines(versions[2].id, 0, 5)
    assert len((await Texts(store).compare(versions[:2])).pairs) == 1  # the others still compare
