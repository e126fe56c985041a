"""Schema 7 on a database written by the backupbot before it (tests/fixtures/storage/schema6.sqlite:
made by commit a6f8e5f's own Store API): converted in place in one transaction, every answer the
Store API gave about the file the same after it (but the ids of unchanged attempts, which nothing
shows, and the unchanged attempts that later ones repeated), the file smaller, and the queries that
read attempts and versions still seeks, never scans."""

from __future__ import annotations

import json
import sqlite3
from contextlib import closing
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from bot.core.errors import StorageError
from bot.core.models import ExportMeta, Status
from storage import history, records, store as store_module
from storage.blobs import BASE_CHAIN, VERSION_CHAIN
from storage.migrate import load_migrations
from storage.store import Store
from tests.storage.files import SCHEMA6_DB, SCHEMA6_EXPECTED, check_whole, copy_schema6_db, schema6_answers

EXPECTED: dict[str, Any] = json.loads(SCHEMA6_EXPECTED.read_text())
UNFINISHED_RUN = 47
TABLES = ("devices", "blobs", "versions", "attempts", "runs", "outbox", "host_keys", "settings", "schedule")


def sql(path: Path, query: str, params: tuple[object, ...] = ()) -> list[tuple]:
    with sqlite3.connect(path) as db:
        return db.execute(query, params).fetchall()


def everything(path: Path) -> dict[str, list[tuple]]:
    return {table: sql(path, f"SELECT * FROM {table} ORDER BY 1") for table in TABLES}


def without_id(attempt: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in attempt.items() if k != "id"}


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return copy_schema6_db(tmp_path)


def test_the_fixture_is_what_schema_6_wrote() -> None:
    """The committed file is still a schema-6 database: one attempts row per attempt, the header's
    fields on every version."""
    assert sql(SCHEMA6_DB, "PRAGMA user_version") == [(6,)]
    assert sql(SCHEMA6_DB, "SELECT status, COUNT(*) FROM attempts GROUP BY status ORDER BY 1") == [
        ("changed", 14), ("failed", 41), ("new", 7), ("unchanged", 189)]
    assert ("ros_version",) in sql(SCHEMA6_DB, "SELECT name FROM pragma_table_info('versions')")


async def test_a_schema6_database_migrates_in_place_and_answers_as_before(path: Path) -> None:
    """Every version (bytes, header fields, dates), the attempt that recorded it and its run, each
    device's last attempt, last success and backup state, the runs: as the old Store API gave them.
    Each run still lists its new, changed and failed attempts, and all of its unchanged ones that no
    later run repeated (all of the last run's: what announcing an interrupted run reads)."""
    [(sequence,)] = sql(path, "SELECT seq FROM sqlite_sequence WHERE name = 'versions'")
    async with await Store.open(path) as store:
        answers = await schema6_answers()(store)
    assert sql(path, "PRAGMA user_version") == [(len(load_migrations()),)] == [(7,)]
    for key in ("versions", "recording_attempts", "version_origins", "device_state", "last_successes", "last_run",
                "unfinished_runs", "runs"):
        assert answers[key] == EXPECTED[key], key
    assert {k: without_id(a) for k, a in answers["last_attempts"].items()} == {
        k: without_id(a) for k, a in EXPECTED["last_attempts"].items()}

    def in_order(attempts: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return sorted((without_id(a) for a in attempts), key=lambda a: (a["at"], a["device"]))

    for run, before in EXPECTED["run_attempts"].items():
        after = answers["run_attempts"][run]
        assert [a for a in after if a["status"] != "unchanged"] == [a for a in before if a["status"] != "unchanged"]
        unchanged_before = [without_id(a) for a in before if a["status"] == "unchanged"]
        assert all(without_id(a) in unchanged_before for a in after if a["status"] == "unchanged"), run
    # (A repeat comes in the order of its row, which its device's first attempt made.)
    assert in_order(answers["run_attempts"][str(UNFINISHED_RUN)]) == in_order(
        EXPECTED["run_attempts"][str(UNFINISHED_RUN)])

    # Every attempt is a row or counted on one. Rows: the 21 versions' new/changed attempts, the 41
    # failures, core's first unchanged attempt after its failures, edge's unchanged one with a note.
    assert sql(path, "SELECT COUNT(*) + SUM(repeats), COUNT(*) FROM attempts") == [(251, 21 + 41 + 1 + 1)]
    assert sql(path, "SELECT seq FROM sqlite_sequence WHERE name = 'versions'") == [(sequence,)]
    check_whole(path)  # integrity, foreign keys, every blob decodes to its sha256
    [(free,)], [(pages,)] = sql(path, "PRAGMA freelist_count"), sql(path, "PRAGMA page_count")
    assert free * 4 <= pages  # compacted after the upgrade if more than a quarter was free

    tables = everything(path)
    async with await Store.open(path):
        pass
    assert everything(path) == tables


async def test_backups_after_the_migration_go_on_where_it_left_off(path: Path) -> None:
    """An unchanged backup repeats onto the row the migration made; a change gets a row; a version
    whose header matches one stored shares its export_meta row, a new header adds one."""
    async with await Store.open(path) as store:
        latest = await store.latest_version("hq", "core")
        assert latest is not None and latest.meta.ros_version == "7.19.1"
        [(rows, repeats)] = sql(path, "SELECT COUNT(*), SUM(repeats) FROM attempts")
        metas = sql(path, "SELECT COUNT(*) FROM export_meta")[0][0]
        at = latest.last_verified + timedelta(days=1)
        run_id = await store.start_run("schedule", at, "hq")
        await store.confirm_version(run_id, "hq", "core", at, latest.id)
        assert sql(path, "SELECT COUNT(*), SUM(repeats) FROM attempts") == [(rows, repeats + 1)]
        assert (await store.last_attempts("hq"))[("hq", "core")].run_id == run_id

        raw = (await store.raw(latest.id)) + b"# one more line\r\n"
        changed = await store.add_version(run_id, "hq", "core", at, raw, "ab" * 32, latest.meta, Status.CHANGED, 1, 0,
                                          None)
        upgraded = await store.add_version(run_id, "hq", "core", at, raw + b"#\r\n", "cd" * 32,
                                           ExportMeta("7.20", latest.meta.model, latest.meta.serial, None),
                                           Status.CHANGED, 1, 0, None)
        assert sql(path, "SELECT COUNT(*) FROM attempts")[0][0] == rows + 2
        assert sql(path, "SELECT COUNT(*) FROM export_meta")[0][0] == metas + 1
        assert (await store.version(changed.id)) == changed and (await store.version(upgraded.id)) == upgraded
        assert upgraded.meta == ExportMeta("7.20", "CCR2004-1G-12S+2XS", "HE908ABC123", None)


async def test_a_step_that_fails_leaves_the_file_as_it_was(path: Path) -> None:
    """The step is one transaction: failing half-way (here a table in the way of its rebuild), it
    leaves the schema-6 file exactly as it was, and opens once the obstacle is gone."""
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE attempts_new (x)")
    before = everything(path)
    with pytest.raises(sqlite3.OperationalError, match="attempts_new already exists"):
        await Store.open(path)
    assert sql(path, "PRAGMA user_version") == [(6,)]
    assert everything(path) == before
    assert ("attempts_new",) in sql(path, "SELECT name FROM sqlite_schema WHERE type = 'table'")
    with sqlite3.connect(path) as db:
        db.execute("DROP TABLE attempts_new")
    async with await Store.open(path) as store:
        assert len(await store.last_attempts()) == 7


async def test_a_step_that_would_leave_a_dangling_reference_is_refused(path: Path) -> None:
    """Rebuilding tables runs with foreign keys unenforced, so they are all checked before the step
    commits: a file that would come out with a reference to nothing stays as it was, with a clear
    error instead of a store that half works."""
    with sqlite3.connect(path) as db:  # damage no backupbot makes: a run its attempts refer to, gone
        db.execute("DELETE FROM runs WHERE id = 3")
    before = everything(path)
    with pytest.raises(StorageError, match=r"schema version 7 stopped, as \d+ row\(s\) would refer to rows that do "
                                           r"not exist \(first: attempts row \d+ to runs\); the file is unchanged"):
        await Store.open(path)
    assert sql(path, "PRAGMA user_version") == [(6,)]
    assert everything(path) == before


# The statements in storage/ that read attempts or versions per device or per run, with parameters of
# the right kinds.
PARAMS = {"site": "hq", "device": "core", "before": None, "limit": 20, "ids": "[1, 2]", "version": 5, "run": 3,
          "at": 0, "version_id": 5, "undated": None, "serial": "x", "model": "m", "ros_version": "r",
          "software_id": None}
QUERIES = {
    "last attempts": store_module._LAST_ATTEMPTS,
    "a device's newest attempts row": store_module._LAST_ROW,
    "last successes": store_module._LAST_SUCCESSES,
    "last run": store_module._LAST_RUN,
    "latest versions": store_module._LATEST_VERSIONS,
    "a device's versions": store_module._VERSIONS_OF_DEVICE,
    "confirm": store_module._CONFIRM,
    "recording attempts": store_module._RECORDING_ATTEMPTS,
    "run attempts": store_module._RUN_ATTEMPTS,
    "version origins": history._ORIGINS,
    "export meta id": records._META_ID,
    "versions by ids": records.VERSION_SELECT + " WHERE v.id IN (SELECT value FROM json_each(:ids))",
    "base chain": BASE_CHAIN,
    "version chain": VERSION_CHAIN,
}


BIG_TABLES = ("a", "attempts", "v", "versions", "b", "blobs")


async def test_queries_on_attempts_and_versions_seek_and_never_scan_them(path: Path) -> None:
    """Per device or per run, each read is index seeks: none walks the attempts, versions or blobs
    tables (`export git`'s versions in date order, a one-off, is the one that sorts all versions)."""
    async with await Store.open(path):
        pass
    with sqlite3.connect(path) as db:
        for name, query in QUERIES.items():
            plan = [row[3].split() for row in db.execute("EXPLAIN QUERY PLAN " + query, PARAMS)]
            scans = [step for step in plan if step[0] == "SCAN" and step[1] in BIG_TABLES]
            assert not scans, (name, plan)


async def test_an_upgrade_that_leaves_much_of_the_file_free_compacts_it(path: Path) -> None:
    """More than a quarter of the file free after the steps (here pages an old table left behind):
    the file is compacted once, so an upgraded file is no bigger than its data needs."""
    with closing(sqlite3.connect(path, isolation_level=None)) as db:  # closed: the WAL is folded into the file
        db.execute("CREATE TABLE filler (x BLOB)")
        db.execute("INSERT INTO filler VALUES (randomblob(400000))")
        db.execute("DROP TABLE filler")
    size_before = path.stat().st_size
    async with await Store.open(path) as store:
        assert len(await store.last_attempts()) == 7
    assert sql(path, "PRAGMA freelist_count") == [(0,)]
    assert path.stat().st_size < size_before - 300_000
