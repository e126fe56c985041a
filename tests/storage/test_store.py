"""Behaviour of storage.store.Store against real SQLite files: schema, recording, reading, host
keys, outbox and the transaction guarantees. No mocks; every time comes from a fixed clock."""

from __future__ import annotations

import asyncio
import hashlib
import sqlite3
import threading
import time
import zlib
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from bot.core.models import ExportMeta, HostKey, KnownConfig, Status
from storage.codec import unpack_chains
from storage.migrate import load_migrations, split_statements
from bot.core.messages import OutboxMessage
from bot.core.errors import CorruptBlob, SchemaTooNew
from storage.store import RunStatus, Store
from tests.helpers import due_outbox, interrupt_unfinished

T0 = datetime(2025, 3, 10, 2, 0, 0, 123456, tzinfo=timezone.utc)
META = ExportMeta("7.18.2", "RB5009UPr+S+", "HEX123", "QMLS-64F2")


def at(minutes: float) -> datetime:
    return T0 + timedelta(minutes=minutes)


def norm(raw: bytes) -> str:
    return hashlib.sha256(raw).hexdigest()


def sql(path: Path, query: str, params: tuple[object, ...] = ()) -> list[tuple]:
    """Look at the file the way an operator would, beside the store."""
    with sqlite3.connect(path) as db:
        return db.execute(query, params).fetchall()


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return tmp_path / "data" / "nested" / "backupbot.sqlite"


@pytest.fixture
async def store(path: Path) -> AsyncIterator[Store]:
    async with await Store.open(path) as s:
        yield s


async def add(store: Store, run_id: int, device: str, raw: bytes, minutes: float = 0, site: str = "hq",
              status: Status = Status.NEW):
    return await store.add_version(run_id, site, device, at(minutes), raw, norm(raw), META, status, 0, 0, None)


# -- schema -----------------------------------------------------------------------------------


async def test_fresh_file_gets_every_migration_and_reopens_without_reapplying(path: Path) -> None:
    """A new file (and its folders) is created in WAL mode at the newest schema; reopening keeps the data."""
    async with await Store.open(path) as store:
        run_id = await store.start_run("cli", T0, "hq")
    assert sql(path, "PRAGMA user_version") == [(len(load_migrations()),)]
    assert sql(path, "PRAGMA journal_mode") == [("wal",)]
    async with await Store.open(path) as store:
        assert (await store.run(run_id)) is not None
        assert await store.start_run("cli", T0, "hq") == run_id + 1


async def test_refuses_a_database_from_a_newer_backupbot(path: Path) -> None:
    """user_version above the last known step is refused with a message naming both versions."""
    async with await Store.open(path):
        pass
    sql(path, "PRAGMA user_version = 99")
    with pytest.raises(SchemaTooNew, match=f"schema version 99.*only up to {len(load_migrations())}"):
        await Store.open(path)


def test_statement_splitter_keeps_semicolons_inside_strings_comments_and_triggers() -> None:
    """Migrations are split with SQLite's tokenizer, so only real statement ends cut."""
    script = ("CREATE TABLE t (a TEXT DEFAULT ';'); -- note; here\n"
              "CREATE TRIGGER x AFTER INSERT ON t BEGIN SELECT 1; SELECT 2; END;\n-- trailing; comment\n")
    statements = split_statements(script)
    assert statements[0] == "CREATE TABLE t (a TEXT DEFAULT ';');"
    assert statements[1].startswith("-- note; here\nCREATE TRIGGER") and statements[1].endswith("END;")
    assert statements[2] == "-- trailing; comment"


# -- recording ----------------------------------------------------------------------------------


async def test_add_version_records_version_and_attempt(store: Store) -> None:
    """add_version stores a version with its metadata and an attempt pointing at it."""
    run_id = await store.start_run("cli", T0, "hq")
    raw = b"/system identity\r\nset name=r1\r\n"
    version = await add(store, run_id, "r1", raw)
    assert (version.site, version.device, version.size, version.hash, version.meta) == ("hq", "r1", len(raw),
                                                                                       norm(raw), META)
    assert version.first_seen == version.last_verified == T0
    assert await store.latest_version("hq", "r1") == version
    assert await store.version(version.id) == version
    [attempt] = await store.run_attempts(run_id)
    assert (attempt.status, attempt.version_id, attempt.at) == (Status.NEW, version.id, T0)
    assert await store.count_versions("hq", "r1") == 1


async def test_add_version_refuses_unchanged_and_failed_statuses(store: Store) -> None:
    """Only new or changed configs become versions; the other statuses have their own calls."""
    run_id = await store.start_run("cli", T0, "hq")
    with pytest.raises(ValueError):
        await add(store, run_id, "r1", b"x", status=Status.UNCHANGED)
    assert await store.latest_version("hq", "r1") is None


async def test_confirm_version_moves_only_last_verified(store: Store) -> None:
    """Confirming keeps the version as it was except last_verified, and records an unchanged attempt."""
    run_id = await store.start_run("cli", T0, "hq")
    first = await add(store, run_id, "r1", b"a\n")
    confirmed = await store.confirm_version(run_id, "hq", "r1", at(60), first.id, note="RouterOS 7.18 -> 7.19")
    assert confirmed == replace(first, last_verified=at(60))
    # A clock stepping back never moves last_verified backwards.
    assert (await store.confirm_version(run_id, "hq", "r1", at(30), first.id)).last_verified == at(60)
    attempts = await store.run_attempts(run_id)
    assert [a.status for a in attempts] == [Status.NEW, Status.UNCHANGED, Status.UNCHANGED]
    assert attempts[1].note == "RouterOS 7.18 -> 7.19" and attempts[1].version_id == first.id


async def test_confirm_version_of_another_device_is_refused_and_records_nothing(store: Store) -> None:
    """A version id that belongs to a different device raises LookupError and leaves no attempt."""
    run_id = await store.start_run("cli", T0, "hq")
    version = await add(store, run_id, "r1", b"a\n")
    await add(store, run_id, "r2", b"b\n")
    with pytest.raises(LookupError):
        await store.confirm_version(run_id, "hq", "r2", at(1), version.id)
    assert len(await store.run_attempts(run_id)) == 2


async def test_device_state_is_the_trusted_key_the_latest_version_and_its_undated_hash(store: Store) -> None:
    """What a backup starts from, in one read; the undated hash is the new version's, then that of
    the export that last confirmed it."""
    assert await store.device_state("hq", "r1") == (None, None, None)
    run_id = await store.start_run("cli", T0, "hq")
    await store.trust_host_key("hq", "r1", "ssh-ed25519 KEY", "SHA256:k")
    raw = b"/system identity\r\nset name=r1\r\n"
    version = await store.add_version(run_id, "hq", "r1", T0, raw, norm(raw), META, Status.NEW, 0, 0, None,
                                      undated_hash="ab" * 32)
    assert await store.device_state("hq", "r1") == (
        HostKey("ssh-ed25519 KEY", "SHA256:k"), version, KnownConfig("ab" * 32, version.hash, META))
    await store.confirm_version(run_id, "hq", "r1", at(1), version.id, undated_hash="cd" * 32)
    _, latest, known = await store.device_state("hq", "r1")
    assert known == KnownConfig("cd" * 32, version.hash, META) and latest == replace(version, last_verified=at(1))
    await store.confirm_version(run_id, "hq", "r1", at(2), version.id)  # none given: the one kept stays
    assert (await store.device_state("hq", "r1")).known == known
    other = await add(store, run_id, "r1", b"a\n", 3, status=Status.CHANGED)  # stored without one
    assert await store.device_state("hq", "r1") == (HostKey("ssh-ed25519 KEY", "SHA256:k"), other, None)


async def test_an_empty_export_is_never_a_version(store: Store) -> None:
    run_id = await store.start_run("cli", T0, "hq")
    with pytest.raises(ValueError, match="empty"):
        await add(store, run_id, "r1", b"")
    assert await store.latest_version("hq", "r1") is None


async def test_previous_raw_saves_decoding_only_when_it_is_the_base(store: Store, path: Path) -> None:
    """The raw bytes the caller already read make the same delta as decoding the chain; other
    bytes passed as `previous_raw` are ignored, never used as a base."""
    run_id = await store.start_run("cli", T0, "hq")
    base = b"".join(b"add address=10.0.0.%d list=x\r\n" % i for i in range(200))
    await add(store, run_id, "r1", base)
    for name, previous in (("right", base), ("wrong", base.replace(b"list=x", b"list=y"))):
        raw = base + name.encode() + b"\r\n"
        version = await store.add_version(run_id, "hq", "r1", at(1), raw, norm(raw), META, Status.CHANGED, 1, 0,
                                          None, previous_raw=previous)
        assert await store.raw(version.id) == raw
    assert sql(path, "SELECT codec, depth FROM blobs ORDER BY id") == [("zstd", 0), ("zstd-delta", 1),
                                                                        ("zstd-delta", 2)]


async def test_record_failure_keeps_kind_and_reason_and_no_version(store: Store) -> None:
    """A failure is an attempt with a kind and a reason; the device's versions are untouched."""
    run_id = await store.start_run("cli", T0, "hq")
    version = await add(store, run_id, "r1", b"a\n")
    failure = await store.record_failure(run_id, "hq", "r1", at(5), "timeout", "no answer in 120 s")
    assert (failure.status, failure.error_kind, failure.reason, failure.version_id) == (
        Status.FAILED, "timeout", "no answer in 120 s", None)
    assert (await store.last_attempts("hq"))[("hq", "r1")] == failure
    assert await store.latest_version("hq", "r1") == version


async def test_raw_bytes_round_trip_exactly(store: Store) -> None:
    """CRLF, NUL, bytes that are not UTF-8 and a large export all come back byte for byte."""
    run_id = await store.start_run("cli", T0, "hq")
    odd = b"# 2025-03-10 by RouterOS\r\n/ip address\r\nadd comment=\xe9t\xe9\xff\xfe address=1.2.3.4\x00\r\n\n\r"
    big = b"".join(b"add address=10.0.%d.%d/32 list=blocked\r\n" % (i // 256, i % 256) for i in range(40_000))
    for name, raw in (("odd", odd), ("big", big), ("empty-ish", b"\r\n")):
        version = await add(store, run_id, name, raw)
        assert await store.raw(version.id) == raw


async def test_chains_are_the_blobs_a_version_decodes_from_each_read_once(store: Store) -> None:
    """What the CPU worker decodes instead of the bytes: each version's blob and its bases; a blob in
    two chains is one object, so it is passed once."""
    run_id = await store.start_run("cli", T0, "hq")
    raws = [b"".join(b"add address=10.0.%d.%d list=x\r\n" % (k, i) for i in range(300)) for k in range(3)]
    versions = [await add(store, run_id, "r1", raw) for raw in raws]
    old, new = await store.chains([versions[0].id, versions[2].id])
    assert [len(old), len(new)] == [1, 3] and new[-1] is old[0]
    assert unpack_chains([old, new]) == [raws[0], raws[2]]
    with pytest.raises(LookupError):
        await store.chains([versions[0].id, 999])


async def test_same_raw_bytes_are_stored_once(store: Store, path: Path) -> None:
    """Blobs are addressed by the sha256 of the raw bytes: two versions of one export share a blob."""
    run_id = await store.start_run("cli", T0, "hq")
    raw = b"/system identity\r\nset name=same\r\n"
    one, two = await add(store, run_id, "r1", raw), await add(store, run_id, "r2", raw)
    assert one.id != two.id
    assert sql(path, "SELECT COUNT(*) FROM blobs") == [(1,)]
    assert await store.raw(two.id) == raw


async def test_raw_detects_a_damaged_blob(store: Store, path: Path) -> None:
    """A blob that no longer matches its sha256 raises CorruptBlob instead of returning wrong bytes."""
    run_id = await store.start_run("cli", T0, "hq")
    version = await add(store, run_id, "r1", b"x" * 1000)
    sql(path, "UPDATE blobs SET data = ?", (zlib.compress(b"y" * 1000),))
    with pytest.raises(CorruptBlob):
        await store.raw(version.id)


async def test_a_failed_write_leaves_nothing_behind(store: Store, path: Path) -> None:
    """A write that fails half-way (the run is marked finished, then its outbox message names a
    missing parent) rolls back whole."""
    run_id = await store.start_run("cli", T0, "hq")
    bad = OutboxMessage("C1", "alert", {}, parent=12345)  # no such outbox item: the FK fails last
    with pytest.raises(sqlite3.IntegrityError):
        await store.finish_run(run_id, at(1), (bad,))
    assert sql(path, "SELECT status, finished_at FROM runs") == [("running", None)]
    assert sql(path, "SELECT COUNT(*) FROM outbox") == [(0,)]
    assert (await add(store, run_id, "r1", b"config\n")).id == 1  # the connection is usable again


async def test_naive_datetimes_are_refused(store: Store) -> None:
    """Times must be timezone-aware; a naive one is a bug upstream and never stored."""
    with pytest.raises(ValueError, match="naive"):
        await store.start_run("cli", datetime(2025, 1, 1), "hq")


async def test_times_come_back_as_utc(store: Store) -> None:
    """A time given in another zone is stored and returned as the same instant in UTC."""
    cet = timezone(timedelta(hours=1))
    run_id = await store.start_run("cli", datetime(2025, 1, 1, 3, 0, tzinfo=cet), "hq")
    run = await store.run(run_id)
    assert run is not None and run.started_at == datetime(2025, 1, 1, 2, 0, tzinfo=timezone.utc)
    assert run.started_at.tzinfo == timezone.utc


# -- reading ------------------------------------------------------------------------------------


async def test_versions_page_newest_first_without_gaps_or_overlap(store: Store) -> None:
    """Paging with before_id walks every version of one device exactly once, newest first."""
    run_id = await store.start_run("cli", T0, "hq")
    ids = [(await add(store, run_id, "r1", b"v%d\n" % i, i)).id for i in range(45)]
    await add(store, run_id, "other", b"elsewhere\n")
    pages, before = [], None
    while page := await store.versions("hq", "r1", limit=20, before_id=before):
        pages.append([v.id for v in page])
        before = page[-1].id
    assert [len(p) for p in pages] == [20, 20, 5]
    assert [v for page in pages for v in page] == ids[::-1]
    assert await store.count_versions("hq", "r1") == 45


async def test_versions_by_ids_keeps_the_order_asked_and_skips_unknown(store: Store) -> None:
    """versions_by_ids returns existing versions in request order; unknown ids are left out."""
    run_id = await store.start_run("cli", T0, "hq")
    a, b = await add(store, run_id, "r1", b"a\n"), await add(store, run_id, "r2", b"b\n")
    assert [v.id for v in await store.versions_by_ids([b.id, 999, a.id, b.id])] == [b.id, a.id]
    assert await store.versions_by_ids([]) == []
    assert await store.version(999) is None
    with pytest.raises(LookupError):
        await store.raw(999)


async def test_last_success_is_remembered_through_many_failures(store: Store) -> None:
    """After a success and a long run of failures, last_successes still answers with the success."""
    run_id = await store.start_run("cli", T0, "hq")
    version = await add(store, run_id, "r1", b"a\n")
    await store.confirm_version(run_id, "hq", "r1", at(10), version.id)
    for i in range(60):
        await store.record_failure(run_id, "hq", "r1", at(20 + i), "unreachable", "no route to host")
    await store.record_failure(run_id, "hq", "never", at(1), "auth", "bad password")
    await add(store, run_id, "b1", b"b\n", 2, site="branch")
    assert await store.last_successes("hq") == {("hq", "r1"): at(10)}
    assert await store.last_successes() == {("hq", "r1"): at(10), ("branch", "b1"): at(2)}
    last = await store.last_attempts("hq")
    assert set(last) == {("hq", "r1"), ("hq", "never")}
    assert last[("hq", "r1")].at == at(79) and last[("hq", "r1")].status is Status.FAILED


async def test_unchanged_attempts_repeating_the_one_before_share_its_row(store: Store, path: Path) -> None:
    """A daily unchanged backup costs no row of its own: it is counted on the row of the attempt it
    repeats. The device's last attempt, its last success and its latest run's attempts are exactly
    what one row per attempt gave; the new and changed attempts keep rows, ids and counts of their own."""
    runs = [await store.start_run("schedule", at(day * 1440), "hq") for day in range(5)]
    first = await add(store, runs[0], "r1", b"a\n")
    for day in (1, 2, 3):
        await store.confirm_version(runs[day], "hq", "r1", at(day * 1440 + 1), first.id)
    assert sql(path, "SELECT COUNT(*), SUM(repeats) FROM attempts") == [(1, 3)]
    last = (await store.last_attempts())[("hq", "r1")]
    assert (last.status, last.run_id, last.at, last.version_id) == (Status.UNCHANGED, runs[3], at(3 * 1440 + 1), first.id)
    assert await store.last_successes() == {("hq", "r1"): at(3 * 1440 + 1)}
    [(unchanged)] = await store.run_attempts(runs[3])
    assert (unchanged.device, unchanged.status, unchanged.at) == ("r1", Status.UNCHANGED, at(3 * 1440 + 1))
    # The run that recorded the version still lists it; a repeat that a later run repeated is gone.
    assert [(a.status, a.at) for a in await store.run_attempts(runs[0])] == [(Status.NEW, at(0))]
    assert await store.run_attempts(runs[2]) == []

    second = await store.add_version(runs[4], "hq", "r1", at(4 * 1440), b"b\n", norm(b"b\n"), META, Status.CHANGED,
                                     1, 1, None)
    await store.confirm_version(runs[4], "hq", "r1", at(4 * 1440 + 5), second.id)
    assert [(a.status, a.version_id, a.added, a.at) for a in await store.run_attempts(runs[4])] == [
        (Status.CHANGED, second.id, 1, at(4 * 1440)), (Status.UNCHANGED, second.id, 0, at(4 * 1440 + 5))]
    recorded = await store.recording_attempts("hq", "r1", [first.id, second.id])
    assert {v: (a.status, a.run_id, a.at) for v, a in recorded.items()} == {
        first.id: (Status.NEW, runs[0], at(0)), second.id: (Status.CHANGED, runs[4], at(4 * 1440))}
    assert sql(path, "SELECT COUNT(*), SUM(repeats) FROM attempts") == [(2, 4)]


async def test_a_failure_or_a_note_starts_a_new_row(store: Store, path: Path) -> None:
    """Only an unchanged attempt with nothing to say that follows a success of the same version is a
    repeat: after a failure, or with a note of its own, an unchanged attempt keeps its own row, and
    every failure keeps its own row with its reason."""
    run_id = await store.start_run("schedule", T0, "hq")
    version = await add(store, run_id, "r1", b"a\n")
    await store.confirm_version(run_id, "hq", "r1", at(1), version.id)
    await store.record_failure(run_id, "hq", "r1", at(2), "timeout", "slow")
    await store.record_failure(run_id, "hq", "r1", at(3), "timeout", "slow")
    assert (await store.last_successes())[("hq", "r1")] == at(1)
    await store.confirm_version(run_id, "hq", "r1", at(4), version.id)
    await store.confirm_version(run_id, "hq", "r1", at(5), version.id, "RouterOS 7.18 -> 7.19")
    await store.confirm_version(run_id, "hq", "r1", at(6), version.id)
    attempts = await store.run_attempts(run_id)
    assert [(a.status, a.at, a.reason, a.note) for a in attempts] == [
        (Status.NEW, at(0), None, None), (Status.UNCHANGED, at(1), None, None),
        (Status.FAILED, at(2), "slow", None), (Status.FAILED, at(3), "slow", None),
        (Status.UNCHANGED, at(4), None, None),
        (Status.UNCHANGED, at(5), None, "RouterOS 7.18 -> 7.19"), (Status.UNCHANGED, at(6), None, None)]
    assert sql(path, "SELECT status, repeats FROM attempts ORDER BY id") == [
        ("new", 1), ("failed", 0), ("failed", 0), ("unchanged", 0), ("unchanged", 1)]
    assert (await store.last_successes())[("hq", "r1")] == at(6)


async def test_latest_versions_gives_each_devices_newest_version(store: Store) -> None:
    """latest_versions answers for a whole site at once, agreeing with latest_version per device."""
    run_id = await store.start_run("cli", T0, "hq")
    for i in range(3):
        await add(store, run_id, "r1", b"r1 v%d\n" % i, i)
    await add(store, run_id, "r2", b"r2\n")
    await add(store, run_id, "b1", b"b1\n", site="branch")
    await store.record_failure(run_id, "hq", "never", T0, "auth", "denied")
    latest = await store.latest_versions("hq")
    assert set(latest) == {("hq", "r1"), ("hq", "r2")}
    assert latest[("hq", "r1")] == await store.latest_version("hq", "r1")
    assert len(await store.latest_versions()) == 3


async def test_latest_reads_for_a_thousand_devices(store: Store) -> None:
    """last_attempts and last_successes over 1,000 devices with history give each device's newest
    attempt (speed: benchmarks/backup_throughput.py reads them every run)."""
    for day in range(3):
        run_id = await store.start_run("schedule", at(day * 1440), "hq")
        for i in range(1000):
            await store.record_failure(run_id, "hq", f"r{i:04d}", at(day * 1440 + 1), "timeout", "slow")
    attempts, successes = await store.last_attempts(), await store.last_successes()
    assert len(attempts) == 1000 and successes == {}
    assert {a.at for a in attempts.values()} == {at(2 * 1440 + 1)}


async def test_runs_finish_interrupt_and_last_run_per_site(store: Store) -> None:
    """A finished run stays finished; runs left running by a dead process become interrupted."""
    done = await store.start_run("cli", T0, "hq")
    await store.record_failure(done, "hq", "r1", at(1), "timeout", "slow")
    await store.finish_run(done, at(2))
    dead = await store.start_run("schedule", at(10), "branch,lab")
    assert await interrupt_unfinished(store, at(60)) == 1
    assert await interrupt_unfinished(store, at(61)) == 0
    finished, interrupted = await store.run(done), await store.run(dead)
    assert finished is not None and (finished.status, finished.finished_at) == (RunStatus.FINISHED, at(2))
    assert interrupted is not None and (interrupted.status, interrupted.finished_at) == (RunStatus.INTERRUPTED, at(60))
    assert (await store.last_run("hq")) == finished
    assert (await store.last_run("lab")) == interrupted  # by scope: it died before any attempt
    assert (await store.last_run()) == interrupted
    assert await store.last_run("nowhere") is None
    with pytest.raises(ValueError):
        await store.finish_run(done, at(70))


async def test_a_run_wrongly_marked_interrupted_can_still_finish(store: Store) -> None:
    """Another process's cleanup cannot tell a live run from a dead one; the live run's finish wins."""
    live = await store.start_run("schedule", T0, "hq")
    await interrupt_unfinished(store, at(1))  # e.g. the CLI starting while the bot runs
    await store.finish_run(live, at(5), [OutboxMessage("C1", "summary", {})])
    run = await store.run(live)
    assert run is not None and (run.status, run.finished_at) == (RunStatus.FINISHED, at(5))
    assert await store.outbox_depth() == 1


# -- host keys, instance key, schedule ------------------------------------------------------------


async def test_host_key_trust_on_first_use_then_pending_then_accept(store: Store) -> None:
    """First key is trusted; a different key waits as pending (trusted stays) until accepted."""
    assert await store.host_key("hq", "r1") is None
    await store.trust_host_key("hq", "r1", "ssh-ed25519 OLD", "SHA256:old")
    assert await store.host_key("hq", "r1") == HostKey("ssh-ed25519 OLD", "SHA256:old")
    assert await store.accept_pending_host_key("hq", "r1") is None  # nothing pending
    await store.set_pending_host_key("hq", "r1", "ssh-ed25519 NEW", "SHA256:new")
    pending = await store.host_key("hq", "r1")
    assert pending is not None and (pending.key, pending.pending_key, pending.pending_fingerprint) == (
        "ssh-ed25519 OLD", "ssh-ed25519 NEW", "SHA256:new")
    accepted = await store.accept_pending_host_key("hq", "r1")
    assert accepted is not None and (accepted.key, accepted.fingerprint, accepted.pending_key) == (
        "ssh-ed25519 NEW", "SHA256:new", None)
    assert await store.host_key("hq", "r1") == accepted


async def test_trusting_a_key_clears_pending_and_pending_needs_a_trusted_key(store: Store) -> None:
    """trust_host_key replaces the key and drops any pending one; pending without trust is refused."""
    with pytest.raises(LookupError):
        await store.set_pending_host_key("hq", "r1", "ssh-ed25519 X", "SHA256:x")
    await store.trust_host_key("hq", "r1", "ssh-ed25519 A", "SHA256:a")
    await store.set_pending_host_key("hq", "r1", "ssh-ed25519 B", "SHA256:b")
    await store.trust_host_key("hq", "r1", "ssh-ed25519 C", "SHA256:c")
    key = await store.host_key("hq", "r1")
    assert key is not None and (key.key, key.pending_key, key.pending_fingerprint) == ("ssh-ed25519 C", None, None)


async def test_instance_key_is_made_once_and_survives_reopen(path: Path) -> None:
    """instance_key is 32 random bytes, the same on every call and after reopening."""
    async with await Store.open(path) as store:
        key = await store.instance_key()
        assert len(key) == 32 and await store.instance_key() == key
    async with await Store.open(path) as store:
        assert await store.instance_key() == key


async def test_last_scheduled_is_kept_per_site(store: Store) -> None:
    """record_scheduled overwrites the site's mark; other sites are independent."""
    assert await store.last_scheduled("hq") is None
    await store.record_scheduled({"hq": at(0)})
    await store.record_scheduled({"hq": at(1440)})
    await store.record_scheduled({"branch": at(5)})
    assert (await store.last_scheduled("hq"), await store.last_scheduled("branch")) == (at(1440), at(5))


# -- outbox -------------------------------------------------------------------------------------------


async def test_finish_run_enqueues_its_messages_once(store: Store) -> None:
    """The run's summary is enqueued with its end; finishing again is refused and enqueues nothing."""
    run_id = await store.start_run("cli", T0, "hq")
    summary = OutboxMessage("C1", "summary", {"run": run_id, "text": "3 ok, 1 failed ✓"})
    await store.finish_run(run_id, at(5), [summary])
    with pytest.raises(ValueError):
        await store.finish_run(run_id, at(6), [summary])
    [item] = await due_outbox(store, at(5))
    assert (item.channel, item.kind, item.payload, item.created_at, item.attempts) == (
        "C1", "summary", summary.payload, at(5), 0)


async def test_outbox_is_oldest_first_and_replies_wait_for_their_parent(store: Store) -> None:
    """Replies (negative parent = earlier message of the batch) are due only after the parent is delivered."""
    run_id = await store.start_run("cli", T0, "hq")
    batch = [OutboxMessage("C1", "summary", {"n": 0}),
             OutboxMessage("C1", "failure", {"n": 1}, parent=-1),
             OutboxMessage("C1", "failure", {"n": 2}, parent=-1)]
    await store.finish_run(run_id, T0, batch)
    [later_id] = await store.enqueue([OutboxMessage("C2", "alert", {"n": 3})], at(1))
    due = await due_outbox(store, at(1))
    assert [i.payload["n"] for i in due] == [0, 3]
    await store.mark_delivered(due[0].id, "1741572000.000100")
    replies = await due_outbox(store, at(1))
    assert [i.payload["n"] for i in replies] == [1, 2, 3]
    assert {i.parent_id for i in replies[:2]} == {due[0].id}
    assert {i.parent_ts for i in replies[:2]} == {"1741572000.000100"}
    assert replies[2].id == later_id and replies[2].parent_ts is None
    # A positive parent names an existing item: a follow-up in the same thread, later on.
    [follow_up] = await store.enqueue([OutboxMessage("C1", "note", {"n": 4}, parent=due[0].id)], at(2))
    assert [i.id for i in await due_outbox(store, at(2), limit=10)][-1] == follow_up
    assert [i.payload["n"] for i in await due_outbox(store, at(2), limit=2)] == [1, 2]


async def test_outbox_refuses_a_parent_that_is_not_earlier_in_the_batch(store: Store) -> None:
    """parent=-1 on the first message, or 0, cannot name an earlier message: refused, nothing written."""
    for bad in ([OutboxMessage("C1", "x", {}, parent=-1)],
                [OutboxMessage("C1", "x", {}), OutboxMessage("C1", "y", {}, parent=-2)],
                [OutboxMessage("C1", "x", {}, parent=0)]):
        with pytest.raises(ValueError):
            await store.enqueue(bad, T0)
    with pytest.raises(TypeError):  # not JSON-serialisable
        await store.enqueue([OutboxMessage("C1", "x", {"when": T0})], T0)
    assert await store.outbox_depth() == 0


async def test_mark_delivered_is_idempotent_and_delivered_items_never_return(store: Store) -> None:
    """A second mark_delivered keeps the first ts; a late failure report cannot revive the item."""
    [item_id] = await store.enqueue([OutboxMessage("C1", "summary", {})], T0)
    await store.mark_delivered(item_id, "1.1")
    await store.mark_delivered(item_id, "2.2")
    await store.mark_failed(item_id, "timeout", T0)
    assert await due_outbox(store, at(60)) == []
    assert await store.outbox_depth() == 0
    [_reply] = await store.enqueue([OutboxMessage("C1", "reply", {}, parent=item_id)], T0)
    assert (await due_outbox(store, T0))[0].parent_ts == "1.1"
    with pytest.raises(LookupError):
        await store.mark_delivered(9999, "3.3")


async def test_a_failed_delivery_is_due_again_later(store: Store) -> None:
    """mark_failed counts the attempt, keeps the error and hides the item until next_attempt_at."""
    [item_id] = await store.enqueue([OutboxMessage("C1", "summary", {})], T0)
    await store.mark_failed(item_id, "ratelimited", at(5))
    assert await due_outbox(store, at(4)) == []
    assert await store.outbox_depth() == 1
    [item] = await due_outbox(store, at(5))
    assert (item.attempts, item.last_error, item.next_attempt_at) == (1, "ratelimited", at(5))


# -- concurrency ----------------------------------------------------------------------------------


async def test_concurrent_tasks_never_share_a_transaction(store: Store) -> None:
    """Many tasks writing at once each commit their own whole version (one connection, one lock)."""
    run_id = await store.start_run("cli", T0, "hq")
    versions = await asyncio.gather(*(add(store, run_id, f"r{i}", b"config %d\n" % i, i) for i in range(50)))
    assert len({v.id for v in versions}) == 50
    attempts = await store.run_attempts(run_id)
    assert sorted(a.version_id for a in attempts) == sorted(v.id for v in versions)
    for v in versions[::10]:
        assert await store.raw(v.id) == b"config %d\n" % int(v.device[1:])


async def test_a_write_cancelled_while_waiting_for_the_lock_leaves_no_open_transaction(
    store: Store, path: Path
) -> None:
    """Cancelled while its BEGIN waits on another process's lock, a write is rolled back once the
    BEGIN goes through, so the connection is not left inside a transaction."""
    run_id = await store.start_run("cli", T0, "hq")
    other = sqlite3.connect(path, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")
    task = asyncio.create_task(add(store, run_id, "cancelled", b"x\n"))
    while not store._lock.locked():  # white-box: the task now waits on BEGIN in aiosqlite's thread
        await asyncio.sleep(0)
    task.cancel()
    other.execute("COMMIT")
    other.close()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert await store.latest_version("hq", "cancelled") is None
    assert (await add(store, run_id, "after", b"y\n")).device == "after"


async def test_a_failing_write_among_concurrent_ones_fails_alone(store: Store) -> None:
    """Writes that meet on the database thread still succeed or fail each on its own."""
    run_id = await store.start_run("cli", T0, "hq")
    versions = [await add(store, run_id, f"r{i}", b"config %d\n" % i) for i in range(20)]
    # odd ones name another device's version: refused, and only they
    outcomes = await asyncio.gather(*(store.confirm_version(run_id, "hq", f"r{i}", at(1),
                                                            versions[i if i % 2 == 0 else i - 1].id)
                                      for i in range(20)), return_exceptions=True)
    assert [isinstance(o, LookupError) for o in outcomes] == [i % 2 == 1 for i in range(20)]
    attempts = await store.run_attempts(run_id)
    assert sorted(a.device for a in attempts if a.status is Status.UNCHANGED) == sorted(f"r{i}" for i in range(0, 20, 2))


async def test_a_write_cancelled_while_queued_writes_nothing(store: Store, path: Path) -> None:
    """Queued behind a write that waits for another process's lock, a cancelled write never runs."""
    run_id = await store.start_run("cli", T0, "hq")
    other = sqlite3.connect(path, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")
    first = asyncio.create_task(add(store, run_id, "first", b"x\n"))
    while not store._lock.locked():  # white-box: the first write now waits on BEGIN in the database thread
        await asyncio.sleep(0)
    queued = asyncio.create_task(store.record_failure(run_id, "hq", "queued", T0, "timeout", "slow"))
    await asyncio.sleep(0.05)
    queued.cancel()
    other.execute("COMMIT")
    other.close()
    assert (await first).device == "first"
    with pytest.raises(asyncio.CancelledError):
        await queued
    assert [a.device for a in await store.run_attempts(run_id)] == ["first"]


async def test_waits_for_another_process_that_briefly_holds_the_lock(store: Store, path: Path) -> None:
    """A second connection holding the write lock makes the store wait (busy timeout), not fail."""
    other = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    other.execute("BEGIN IMMEDIATE")
    other.execute("INSERT INTO schedule (site, last_scheduled) VALUES ('other', 0)")
    release = threading.Timer(0.3, lambda: other.execute("COMMIT"))
    release.start()
    started = time.monotonic()
    try:
        run_id = await store.start_run("cli", T0, "hq")
    finally:
        release.join()
        other.close()
    assert time.monotonic() - started >= 0.25  # it really waited for the other writer
    assert (await store.run(run_id)) is not None
    assert await store.last_scheduled("other") is not None
