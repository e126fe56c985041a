"""Schema 3 on a database written by backupbot before delta storage (tests/fixtures/storage: made by
commit 197417d's own Store API): migrated in place, every version byte-identical and sha256-checked,
old zlib blobs readable forever, the rewrite into deltas safe to interrupt and to race."""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import sqlite3
from collections.abc import AsyncIterator
from datetime import datetime, timezone
from pathlib import Path

import pytest

from bot.core.models import ExportMeta, Status
from storage.blobs import VERSION_CHAIN, rewrite_legacy_blobs
from storage.db import connect
from storage.migrate import load_migrations, migrate
from bot.core.errors import CorruptBlob
from storage.store import Store
from tests.storage.files import SCHEMA2_DB, SCHEMA2_EXPECTED, check_whole, copy_schema2_db, one
from tests.helpers import FIXTURES

EXPECTED: dict[int, str] = {int(k): v for k, v in json.loads(SCHEMA2_EXPECTED.read_text()).items()}
NOW = datetime(2025, 2, 1, 2, 0, tzinfo=timezone.utc)
UNTOUCHED = ("devices", "runs", "outbox", "host_keys", "settings", "schedule")
# Schema 7 keeps the export header's fields in export_meta and counts unchanged attempts that only
# repeated the one before on its row (tests/storage/test_store_migration7.py tests that on its own).
VERSIONS = ("SELECT id, device_id, blob_id, norm_hash, first_seen, last_verified, ros_version, model, serial,"
            " software_id FROM versions ORDER BY id")
VERSIONS_NOW = ("SELECT v.id, device_id, blob_id, norm_hash, first_seen, last_verified, m.ros_version, m.model,"
                " m.serial, m.software_id FROM versions v JOIN export_meta m ON m.id = v.meta_id ORDER BY v.id")
RECORDED = ("SELECT id, run_id, device_id, at, status, version_id, error_kind, reason, added, removed, note"
            " FROM attempts WHERE status <> 'unchanged' ORDER BY id")


def sql(path: Path, query: str, params: tuple[object, ...] = ()) -> list[tuple]:
    with sqlite3.connect(path) as db:
        return db.execute(query, params).fetchall()


def snapshot(path: Path, like: dict[str, list[tuple]] | None = None) -> dict[str, list[tuple]]:
    """Every row of the tables the migration must not touch; with `like`, only the columns those
    tables had then (later steps may add columns, whose values are not what this test is about)."""
    def columns(table: str) -> str:
        if like is None:
            return "*"
        return ", ".join(row[1] for row in sql(SCHEMA2_DB, f"PRAGMA table_info({table})"))
    return {table: sql(path, f"SELECT {columns(table)} FROM {table} ORDER BY 1") for table in UNTOUCHED}


async def read_all(store: Store) -> dict[int, str]:
    return {v: hashlib.sha256(await store.raw(v)).hexdigest() for v in EXPECTED}


def chain_codecs(path: Path, version_id: int) -> list[str]:
    with sqlite3.connect(path) as db:
        return [row[1] for row in sorted(db.execute(VERSION_CHAIN, {"version": version_id}), key=lambda r: r[-1])]


async def add(store: Store, device: str, raw: bytes) -> int:
    run_id = await store.start_run("cli", NOW, "fixture")
    version = await store.add_version(run_id, "fixture", device, NOW, raw, hashlib.sha256(raw).hexdigest(),
                                      ExportMeta("7.18"), Status.CHANGED, 1, 0, None)
    return version.id


def latest_version(path: Path, device: str) -> int:
    return sql(path, "SELECT MAX(v.id) FROM versions v JOIN devices d ON d.id = v.device_id WHERE d.name = ?",
               (device,))[0][0]


async def rewrite_in_another_connection(path: Path, batch: int = 200) -> int:
    db = await connect(path, 10.0)
    try:
        return await rewrite_legacy_blobs(db, batch)
    finally:
        await db.close()


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return copy_schema2_db(tmp_path)


@pytest.fixture
async def migrated_only(path: Path) -> AsyncIterator[Store]:
    """Schema 3 applied, the rewrite not yet run: as a second process sees the file while the first
    one is still rewriting."""
    db = await connect(path, 10.0)
    await migrate(db, path)
    async with Store(db) as store:
        yield store


def test_the_fixture_is_what_schema_2_wrote() -> None:
    """The committed file is still a schema-2 database with whole zlib blobs only."""
    assert sql(SCHEMA2_DB, "PRAGMA user_version") == [(2,)]
    assert sql(SCHEMA2_DB, "SELECT codec, COUNT(*) FROM blobs GROUP BY codec") == [("zlib", 60)]
    assert len(EXPECTED) == 62


async def test_a_schema2_database_migrates_in_place_and_every_version_reads_back(path: Path) -> None:
    """Open with this backupbot: the newest schema (3 re-encodes the blobs; later steps add tables of
    their own, 7 makes attempts and versions compact), every version byte-identical, most blobs
    re-encoded as deltas, nothing else in the file changed, and a second open does nothing more."""
    before = snapshot(path)
    versions, recorded, attempts = sql(path, VERSIONS), sql(path, RECORDED), sql(path, "SELECT COUNT(*) FROM attempts")
    size_before = sql(path, "SELECT SUM(length(data)) FROM blobs")[0][0]
    async with await Store.open(path) as store:
        assert await read_all(store) == EXPECTED
    assert sql(path, "PRAGMA user_version") == [(len(load_migrations()),)]
    assert sql(path, "SELECT COUNT(*) FROM blob_rewrite") == [(0,)]
    assert snapshot(path, like=before) == before
    assert sql(path, VERSIONS_NOW) == versions and sql(path, RECORDED) == recorded
    assert sql(path, "SELECT COUNT(*) + SUM(repeats) FROM attempts") == attempts
    codecs = check_whole(path)
    # Each device's first version stays whole zlib; the twin's two blobs are tvroom's.
    assert codecs == {"zlib": 5, "zstd-delta": 55}
    assert sql(path, "SELECT SUM(length(data)) FROM blobs")[0][0] < size_before / 5
    blobs = sql(path, "SELECT * FROM blobs ORDER BY id")
    async with await Store.open(path) as store:
        assert await read_all(store) == EXPECTED
    assert sql(path, "SELECT * FROM blobs ORDER BY id") == blobs


async def test_new_versions_are_deltas_on_chains_that_end_in_old_zlib_blobs(path: Path) -> None:
    """After the migration a new version goes on its device's chain, whose whole blob is the
    device's first version as schema 2 stored it; the shared blobs of the twin work as bases too."""
    lab_raw = (FIXTURES / "seq-ccr2004-lab-3.rsc").read_bytes() + b"# new\r\n"
    async with await Store.open(path) as store:
        twin_raw = (await store.raw(latest_version(path, "twin"))) + b"# twin\r\n"
        lab, twin = await add(store, "lab", lab_raw), await add(store, "twin", twin_raw)
        assert (await store.raw(lab), await store.raw(twin)) == (lab_raw, twin_raw)
        assert await read_all(store) == EXPECTED
    assert chain_codecs(path, lab) == ["zstd-delta"] * 12 + ["zlib"]
    assert chain_codecs(path, twin)[0] == "zstd-delta" and chain_codecs(path, twin)[-1] == "zlib"


async def test_while_the_rewrite_is_unfinished_no_new_blob_is_based_on_a_blob_it_may_change(
        path: Path, migrated_only: Store) -> None:
    """Halfway through (as the rewrite leaves the file between batches), a device whose latest blob
    is final gets a delta on it; one whose latest blob is still to be visited gets a whole copy;
    then the rewrite finishes around them and everything reads back."""
    store = migrated_only
    tvroom, home = latest_version(path, "tvroom"), latest_version(path, "home")
    [(last, tvroom_blob)] = sql(path, "SELECT (SELECT MAX(id) FROM versions), blob_id FROM versions WHERE id = ?",
                                (tvroom,))
    with sqlite3.connect(path) as db:  # the rewrite, stopped after the batch that ended at tvroom's version
        db.execute("UPDATE blob_rewrite SET last_version = ?", (tvroom,))
    await rewrite_in_another_connection(path, batch=7)
    with sqlite3.connect(path) as db:
        db.execute("INSERT INTO blob_rewrite VALUES (?, ?, ?)", (tvroom + 1, last, tvroom_blob))
    assert tvroom < home <= last

    new_tv = await add(store, "tvroom", await store.raw(tvroom) + b"# more\r\n")
    new_home = await add(store, "home", await store.raw(home) + b"# more\r\n")
    rows = {v: sql(path, "SELECT b.codec, b.base_id FROM versions v JOIN blobs b ON b.id = v.blob_id WHERE v.id = ?",
                   (v,))[0] for v in (new_tv, new_home)}
    assert rows == {new_tv: ("zstd-delta", tvroom_blob), new_home: ("zstd", None)}
    new_blobs = sql(path, "SELECT * FROM blobs WHERE id > 60 ORDER BY id")

    assert await rewrite_in_another_connection(path) > 0
    assert sql(path, "SELECT * FROM blobs WHERE id > 60 ORDER BY id") == new_blobs
    assert await read_all(store) == EXPECTED
    assert check_whole(path)["zlib"] == 5


async def test_two_processes_rewriting_at_once_share_the_work(path: Path, tmp_path: Path) -> None:
    """Two connections run the rewrite concurrently, a few versions per batch: between them every
    blob is rewritten exactly once, as one alone would have."""
    alone = tmp_path / "alone.sqlite"
    alone.write_bytes(path.read_bytes())
    async with await Store.open(alone):
        pass
    first, second = await connect(path, 10.0), await connect(path, 10.0)
    try:
        await migrate(first, path)
        counts = await asyncio.gather(rewrite_legacy_blobs(first, batch=3), rewrite_legacy_blobs(second, batch=3))
    finally:
        await first.close()
        await second.close()
    assert sum(counts) == 55
    assert sql(path, "SELECT * FROM blobs ORDER BY id") == sql(alone, "SELECT * FROM blobs ORDER BY id")


async def test_a_damaged_old_blob_is_left_as_it_is_and_reported_when_read(
        path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """The rewrite never builds on damage: the damaged blob stays as it was (its version raises
    CorruptBlob), the device's next blob stays whole, every other version reads back."""
    damaged_version = 28
    [(blob_id,)] = sql(path, "SELECT blob_id FROM versions WHERE id = ?", (damaged_version,))
    with sqlite3.connect(path) as db:
        db.execute("UPDATE blobs SET data = zeroblob(length(data)) WHERE id = ?", (blob_id,))
    caplog.set_level(logging.WARNING, logger="storage.blobs")
    async with await Store.open(path) as store:
        with pytest.raises(CorruptBlob, match="does not decompress"):
            await store.raw(damaged_version)
        for version_id, sha in EXPECTED.items():
            if version_id != damaged_version:
                assert hashlib.sha256(await store.raw(version_id)).hexdigest() == sha
    assert sql(path, "SELECT codec FROM blobs WHERE id = ?", (blob_id,)) == [("zlib",)]
    assert f"left blob {blob_id} as it is" in caplog.text
    with sqlite3.connect(path) as db:
        assert one(db, "SELECT COUNT(*) FROM blobs WHERE base_id = ?", (blob_id,)) == 0
