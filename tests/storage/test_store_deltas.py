"""Delta storage through the real Store on real SQLite files: every version of long histories reads
back byte-identical across whole-copy boundaries, blobs shared by devices, damage in the middle of a
chain, and the schema's guarantees about chains."""

from __future__ import annotations

import hashlib
import sqlite3
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from bot.core.models import ExportMeta, Status, Version
from storage.codec import FULL_EVERY, compress
from bot.core.errors import CorruptBlob
from storage.store import Store
from tests.storage.files import check_whole
from tests.helpers import FIXTURES

T0 = datetime(2025, 3, 10, 2, 0, tzinfo=timezone.utc)
EXPORT = (FIXTURES / "seq-praze-1.rsc").read_bytes()


def export(day: int, body: bytes = EXPORT) -> bytes:
    """What a router prints on `day`: a new header date, and one more address-list entry a day."""
    header = b"# 2025-%02d-%02d 02:00:01 by RouterOS 7.18.2\r\n" % (1 + day // 28 % 12, 1 + day % 28)
    lines = b"".join(b"add address=198.51.100.%d comment=day-%d list=blocked\r\n" % (k % 250, k) for k in range(day))
    return header + body + b"/ip firewall address-list\r\n" + lines


def blobs(path: Path, query: str, params: tuple[object, ...] = ()) -> list[tuple]:
    with sqlite3.connect(path) as db:
        return db.execute(query, params).fetchall()


async def add(store: Store, device: str, raw: bytes, day: int) -> Version:
    run_id = await store.start_run("cli", T0 + timedelta(days=day), "hq")
    latest = await store.latest_version("hq", device)
    return await store.add_version(run_id, "hq", device, T0 + timedelta(days=day), raw, hashlib.sha256(raw).hexdigest(),
                                   ExportMeta("7.18.2"), Status.CHANGED if latest else Status.NEW, 1, 0, None)


async def test_a_long_history_reads_back_exactly_across_whole_copies(tmp_path: Path) -> None:
    """210 daily versions: whole at 1, 101 and 201, deltas between, each read back byte for byte."""
    path = tmp_path / "store.sqlite"
    raws = [export(day) for day in range(2 * FULL_EVERY + 10)]
    async with await Store.open(path) as store:
        versions = [await add(store, "r1", raw, day) for day, raw in enumerate(raws)]
        for version, raw in zip(versions, raws):
            assert await store.raw(version.id) == raw
            assert version.size == len(raw)
    depths = [d for (d,) in blobs(path, "SELECT b.depth FROM versions v JOIN blobs b ON b.id = v.blob_id ORDER BY v.id")]
    assert depths == [day % FULL_EVERY for day in range(len(raws))]
    stored = sum(n for (n,) in blobs(path, "SELECT length(data) FROM blobs"))
    assert stored < sum(map(len, raws)) / 50  # 2.2 MB of exports
    assert check_whole(path) == {"zstd": 3, "zstd-delta": len(raws) - 3}


async def test_a_blob_shared_by_two_devices_is_stored_once_and_is_a_base_for_both(tmp_path: Path) -> None:
    """Content addressing across devices: r2 receives exactly r1's export (one blob), then both
    devices change differently and both deltas sit on the shared blob."""
    path = tmp_path / "store.sqlite"
    shared, mine, theirs = export(1), export(2), export(1, EXPORT.replace(b"/interface", b"/interface ", 1))
    async with await Store.open(path) as store:
        first = await add(store, "r1", export(0), 0)
        one = await add(store, "r1", shared, 1)
        two = await add(store, "r2", shared, 1)
        after_one = await add(store, "r1", mine, 2)
        after_two = await add(store, "r2", theirs, 2)
        for version, raw in ((first, export(0)), (one, shared), (two, shared), (after_one, mine), (after_two, theirs)):
            assert await store.raw(version.id) == raw
    [(shared_blob,)] = blobs(path, "SELECT blob_id FROM versions WHERE id IN (?, ?) GROUP BY blob_id", (one.id, two.id))
    assert blobs(path, "SELECT v.id, b.base_id FROM versions v JOIN blobs b ON b.id = v.blob_id WHERE v.id IN (?, ?)"
                 " ORDER BY v.id", (after_one.id, after_two.id)) == [(after_one.id, shared_blob),
                                                                     (after_two.id, shared_blob)]
    assert blobs(path, "SELECT COUNT(*) FROM blobs") == [(4,)]


async def test_damage_mid_chain_is_reported_and_never_stops_the_next_backup(tmp_path: Path) -> None:
    """A blob in the middle of a chain is overwritten with other bytes: the versions on top of it
    raise CorruptBlob naming it, the ones below still read, and the next backup is stored whole."""
    path = tmp_path / "store.sqlite"
    raws = [export(day) for day in range(8)]
    async with await Store.open(path) as store:
        versions = [await add(store, "r1", raw, day) for day, raw in enumerate(raws)]
        [(blob_id, sha)] = blobs(path, "SELECT b.id, b.sha256 FROM versions v JOIN blobs b ON b.id = v.blob_id"
                                       " WHERE v.id = ?", (versions[4].id,))
        with sqlite3.connect(path) as db:  # a valid frame of other bytes, as a bad disk sector might leave
            db.execute("UPDATE blobs SET data = ? WHERE id = ?", (compress(bytes(reversed(raws[4]))), blob_id))
        for version, raw in zip(versions, raws):
            if version.id < versions[4].id:
                assert await store.raw(version.id) == raw
            else:
                with pytest.raises(CorruptBlob, match=sha.hex()):
                    await store.raw(version.id)
        after = await add(store, "r1", export(8), 8)
        assert await store.raw(after.id) == export(8)
    assert blobs(path, "SELECT codec, base_id, depth FROM blobs b JOIN versions v ON v.blob_id = b.id WHERE v.id = ?",
                 (after.id,)) == [("zstd", None, 0)]


async def test_the_schema_refuses_loops_and_inconsistent_chain_rows(tmp_path: Path) -> None:
    """base_id < id, depth 0 exactly for blobs without a base, deltas and only deltas have one."""
    path = tmp_path / "store.sqlite"
    async with await Store.open(path) as store:
        for day in range(3):
            await add(store, "r1", export(day), day)
    with sqlite3.connect(path) as db:
        db.execute("PRAGMA foreign_keys = ON")
        for update in ("UPDATE blobs SET base_id = 3 WHERE id = 1",  # a loop 1 -> 3 -> 2 -> 1
                       "UPDATE blobs SET depth = 0 WHERE id = 2",
                       "UPDATE blobs SET codec = 'zstd' WHERE id = 2",
                       "UPDATE blobs SET base_id = NULL WHERE id = 2"):
            with pytest.raises(sqlite3.IntegrityError, match="CHECK constraint failed"):
                db.execute(update)
        with pytest.raises(sqlite3.IntegrityError, match="FOREIGN KEY"):
            db.execute("DELETE FROM blobs WHERE id = 2")  # still the base of blob 3


async def test_a_chain_deeper_than_writers_make_is_refused(tmp_path: Path) -> None:
    """Reads are bounded: a whole blob turned by hand into a delta on the chain below it makes the
    chain above it deeper than FULL_EVERY - 1, and reading it raises instead of walking on."""
    path = tmp_path / "store.sqlite"
    raws = [export(day) for day in range(FULL_EVERY + 2)]
    async with await Store.open(path) as store:
        versions = [await add(store, "r1", raw, day) for day, raw in enumerate(raws)]
        with sqlite3.connect(path) as db:
            whole, below = FULL_EVERY + 1, FULL_EVERY  # blob ids of versions 101 and 100
            db.execute("UPDATE blobs SET codec = 'zstd-delta', base_id = ?, depth = ?, data = ? WHERE id = ?",
                       (below, FULL_EVERY, compress(raws[FULL_EVERY]), whole))
        with pytest.raises(CorruptBlob, match=f"deeper than {FULL_EVERY - 1} deltas"):
            await store.raw(versions[-1].id)
        assert await store.raw(versions[FULL_EVERY - 1].id) == raws[FULL_EVERY - 1]
