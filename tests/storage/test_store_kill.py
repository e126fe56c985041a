"""Kill-at-any-instant consistency: SIGKILL a process that is writing to the store, many times, and
prove the file is always whole.

A writer subprocess opens the store and, in a tight loop, adds versions, confirms them, records
failures, finishes runs with their messages (as BackupService does) and delivers messages: every
write path. It is
SIGKILLed at random moments, so kills land inside transactions, between statements, while a blob
is being compressed and during commits. After each kill the next writer starts on the same file.
At the end the file must pass integrity_check and foreign_key_check, every version must have its
blob (decoding through its delta chain to bytes with the stored sha256) and exactly one creating
attempt, a finished run exactly its messages and an unfinished one none, and the store must take
new writes.

The one-time rewrite of a schema-2 database's zlib blobs into deltas is killed the same way, at
random moments of random batches, and must never lose or change a stored export.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import signal
import sqlite3
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

from bot.core.messages import OutboxMessage
from bot.core.models import ExportMeta, Status
from storage.store import RunStatus, Store
from tests.storage.files import SCHEMA2_EXPECTED, check_whole, copy_schema2_db, one, version_raw

KILLS = 8

# Each version's config embeds its loop counter, so every version has a distinct blob; sizes vary
# from tiny to ~300 KB so kills also land while a big blob is compressed or written.
WRITER = r"""
import asyncio, hashlib, os, random, sys
from datetime import datetime, timedelta, timezone
from bot.core.messages import OutboxMessage
from bot.core.models import ExportMeta, Status
from storage.store import Store

async def main(path: str) -> None:
    rng = random.Random(os.getpid())
    now = datetime.now(timezone.utc)
    store = await Store.open(path)
    for run in await store.unfinished_runs():
        await store.interrupt_run(run.id, now)
    print("ready", flush=True)
    serial = 0
    while True:
        run_id = await store.start_run("kill-test", now, "s")
        messages = [OutboxMessage("C1", "summary", {"run": run_id})]
        for _ in range(rng.randrange(5, 30)):
            serial += 1
            device = f"r{rng.randrange(8)}"
            now += timedelta(seconds=1)
            roll = rng.random()
            latest = await store.latest_version("s", device)
            if latest is None or roll < 0.5:
                raw = f"# {os.getpid()}-{serial}\r\n".encode() + os.urandom(8) + b"add x=1\r\n" * rng.choice((1, 300, 30000))
                norm = hashlib.sha256(raw).hexdigest()
                await store.add_version(
                    run_id, "s", device, now, raw, norm, ExportMeta("7.18"),
                    Status.NEW if latest is None else Status.CHANGED, 1, 1, None)
                messages.append(OutboxMessage("C1", "version", {"run": run_id, "serial": serial}))
                messages.append(OutboxMessage("C1", "detail", {"run": run_id}, parent=-len(messages)))
            elif roll < 0.8:
                await store.confirm_version(run_id, "s", device, now, latest.id)
            else:
                await store.record_failure(run_id, "s", device, now, "timeout", "slow")
                messages.append(OutboxMessage("C1", "failure", {"run": run_id, "serial": serial}))
        await store.finish_run(run_id, now, messages)
        for item in await store.outbox_heads():
            await store.mark_delivered(item.id, f"{item.id}.0")

asyncio.run(main(sys.argv[1]))
"""


# Opens a schema-2 file, migrates it, then rewrites its blobs one version per transaction, so a
# kill lands inside some batch: reading, compressing, writing or committing it.
REWRITER = r"""
import asyncio, sys
from pathlib import Path
from storage.blobs import rewrite_legacy_blobs
from storage.db import connect
from storage.migrate import migrate

async def main(path: Path) -> None:
    db = await connect(path, 10.0)
    await migrate(db, path)
    print("ready", flush=True)
    await rewrite_legacy_blobs(db, batch=1)
    await db.close()

asyncio.run(main(Path(sys.argv[1])))
"""


def start_writer(path: Path, script: str = WRITER) -> subprocess.Popen[str]:
    proc = subprocess.Popen([sys.executable, "-c", script, str(path)], stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    assert proc.stdout.readline().strip() == "ready", "writer did not start"
    return proc


def kill_writers(path: Path, rng: random.Random) -> list[int]:
    """Run a writer KILLS times, SIGKILLing each at a random moment; versions seen after each kill."""
    counts = []
    for _ in range(KILLS):
        proc = start_writer(path)
        time.sleep(rng.uniform(0.05, 0.6))
        os.kill(proc.pid, signal.SIGKILL)
        assert proc.wait(timeout=10) == -signal.SIGKILL, "the writer died on its own: it must have crashed"
        with sqlite3.connect(path) as db:
            counts.append(db.execute("SELECT COUNT(*) FROM versions").fetchone()[0])
    return counts


def check_file(path: Path) -> None:
    codecs = check_whole(path)  # integrity, foreign keys, every blob decodes to its sha256
    # Each device's first version is whole; its next ones are deltas: both write paths were killed.
    assert codecs["zstd-delta"] > 0 and codecs["zstd"] > 0, codecs
    with sqlite3.connect(path) as db:
        # Every version was committed with exactly one creating attempt, and its blob.
        assert one(db, """SELECT COUNT(*) FROM versions v WHERE 1 <> (SELECT COUNT(*) FROM attempts a
                          WHERE a.version_id = v.id AND a.status IN ('new', 'changed'))""") == 0
        assert one(db, "SELECT COUNT(*) FROM blobs") == one(db, "SELECT COUNT(*) FROM versions")
        # A finished run has exactly its messages (a summary; a version + detail pair per version it
        # created; a failure per failed attempt), a run that did not finish none at all.
        assert one(db, "SELECT COUNT(*) FROM outbox WHERE kind = 'summary'") == one(
            db, "SELECT COUNT(*) FROM runs WHERE status = 'finished'")
        for kind, statuses in (("version", "'new', 'changed'"), ("detail", "'new', 'changed'"), ("failure", "'failed'")):
            assert one(db, f"""SELECT COUNT(*) FROM runs r
                WHERE (SELECT COUNT(*) FROM outbox o WHERE o.kind = '{kind}' AND json_extract(o.payload, '$.run') = r.id)
                   <> CASE WHEN r.status = 'finished' THEN (SELECT COUNT(*) FROM attempts a
                           WHERE a.run_id = r.id AND a.status IN ({statuses})) ELSE 0 END""") == 0, kind


async def test_sigkill_at_random_moments_never_leaves_a_half_written_store(tmp_path: Path) -> None:
    """After 8 SIGKILLs of a busy writer the file is intact, every version whole, and writes go on."""
    path = tmp_path / "store.sqlite"
    seed = int.from_bytes(os.urandom(4), "big")
    counts = kill_writers(path, random.Random(seed))
    assert counts[-1] > counts[0] > 0, f"the writers made no progress (seed {seed}): {counts}"
    check_file(path)

    now = datetime.now(timezone.utc)
    async with await Store.open(path) as store:
        for run in await store.unfinished_runs():
            await store.interrupt_run(run.id, now)
        for device in (f"r{i}" for i in range(8)):
            for version in await store.versions("s", device, limit=10_000):
                assert len(await store.raw(version.id)) == version.size  # raw() also checks the sha256
        # The next writes work, and follow the writer's conventions so check_file still balances.
        run_id = await store.start_run("after", now, "s")
        raw = b"after the kills\r\n"
        version = await store.add_version(
            run_id, "s", "new", now, raw, hashlib.sha256(raw).hexdigest(), ExportMeta(), Status.NEW, 0, 0, None)
        await store.finish_run(run_id, now, [OutboxMessage("C1", "summary", {"run": run_id}),
                                             OutboxMessage("C1", "version", {"run": run_id}),
                                             OutboxMessage("C1", "detail", {"run": run_id}, parent=-2)])
        assert await store.raw(version.id) == raw
        runs = [await store.run(i) for i in range(1, run_id + 1)]
        assert all(r is not None and r.status is not RunStatus.RUNNING for r in runs)
    check_file(path)


def rewrite_progress(path: Path) -> int | None:
    """The next version the rewrite will visit; None once it has finished (0 before it starts)."""
    with sqlite3.connect(path) as db:
        try:
            row = db.execute("SELECT next_version FROM blob_rewrite").fetchone()
        except sqlite3.OperationalError:  # schema 2: the migration has not run yet
            return 0
    return None if row is None else row[0]


def check_rewritten_file(path: Path, expected: dict[int, str]) -> None:
    """Whole, every version's bytes as stored, and nothing re-encoded past the rewrite's cursor."""
    check_whole(path)
    with sqlite3.connect(path) as db:
        assert {int(v): hashlib.sha256(version_raw(db, int(v))).hexdigest() for v in expected} == {
            int(v): sha for v, sha in expected.items()}
        done = db.execute("SELECT done_blob FROM blob_rewrite").fetchone()
        if done is not None:
            assert one(db, "SELECT COUNT(*) FROM blobs WHERE codec <> 'zlib' AND id > ?", done) == 0


async def test_sigkill_during_the_rewrite_of_old_blobs_never_loses_an_export(tmp_path: Path) -> None:
    """The schema-2 fixture's rewrite, SIGKILLed 8 times mid-batch: after each kill every version
    reads back byte-identical; the next open finishes the job."""
    path = copy_schema2_db(tmp_path)
    expected = json.loads(SCHEMA2_EXPECTED.read_text())
    seed = int.from_bytes(os.urandom(4), "big")
    rng = random.Random(seed)
    targets = sorted(rng.sample(range(2, len(expected)), KILLS))
    interrupted = 0
    for target in targets:
        proc = start_writer(path, REWRITER)
        deadline = time.monotonic() + 30
        # Wait for the batch before `target` to commit, then kill somewhere in the next ones.
        while (progress := rewrite_progress(path)) is not None and progress < target and proc.poll() is None:
            assert time.monotonic() < deadline, f"the rewrite made no progress (seed {seed})"
            time.sleep(0.001)
        time.sleep(rng.uniform(0, 0.004))
        proc.kill()
        proc.wait(timeout=10)
        interrupted += rewrite_progress(path) is not None
        check_rewritten_file(path, expected)
    assert interrupted > 0, f"every kill came after the rewrite had finished (seed {seed})"

    async with await Store.open(path) as store:  # finishes what the kills left
        for version_id, sha in expected.items():
            assert hashlib.sha256(await store.raw(int(version_id))).hexdigest() == sha
    assert rewrite_progress(path) is None
    check_rewritten_file(path, expected)
