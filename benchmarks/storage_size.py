"""How big does a year of backups get, next to git? Simulates devices x days through the real
Store API and commits the very same exports to a git repository in the same run.

Each device has a synthetic RouterOS-like export (10-40 KB, CRLF, the repetition real exports
have: many `add ...` lines per menu with the same keys, random addresses, MACs and names). Each day
one run visits every device: about 10 % of devices changed a few lines (a new version), about 1 %
fail, the rest are confirmed unchanged. Every new version is also written to its router's file in a
local git repository (one file per router, one commit per day, `git` as a subprocess, no remote),
which is then packed by `git gc` (and `git gc --aggressive`, for the record).

Printed: the distinct configs and their size raw and zlib-6 compressed one by one (what backupbot
stored before delta storage); git's objects after `git gc`; the database file after the last
connection closed (a checkpoint: the WAL folded in and removed; the figures compared are this file)
and after VACUUM. The file is broken down by SQLite's dbstat table: the blobs (the exports), the
versions (with export_meta: per version what a commit records), the attempt log (every backup
attempt: git has no counterpart for it), the indexes, and the rest (runs, outbox, schema, empty
tables, free pages); then each table and index of 10 KB or more. Then how long reading a version
back takes (every version once, and the deepest delta chain). The last two lines: the config history
(blobs and versions with their indexes: what git holds too), then the whole file, against `git gc`'s
objects: issue 9's target is the whole file within 1.5x.

    python benchmarks/storage_size.py                          # 100 devices x 365 days (~2 min)
    python benchmarks/storage_size.py --devices 1000           # the 1,000-router fleet (~15 min)
    python benchmarks/storage_size.py --devices 100 --days 30  # quick look
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import os
import random
import shutil
import sqlite3
import statistics
import subprocess
import tempfile
import time
import zlib
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path

from bot.core.models import ExportMeta, Status
from bot.core.messages import OutboxMessage
from storage.store import Store

SITE = "bench"
START = datetime(2025, 1, 1, 2, 0, tzinfo=timezone.utc)
WORDS = ("office", "uplink", "guest", "voip", "camera", "printer", "server", "backup", "mgmt", "wifi",
         "branch", "core", "edge", "lab", "dmz", "vpn", "iot", "hotspot", "customer", "transit")
LISTS = ("trusted", "blocked", "bogons", "customers", "monitoring", "admins")


def _ip(rng: random.Random) -> str:
    return f"10.{rng.randrange(256)}.{rng.randrange(256)}.{rng.randrange(1, 255)}"


def _mac(rng: random.Random) -> str:
    return ":".join(f"{rng.randrange(256):02X}" for _ in range(6))


def _name(rng: random.Random) -> str:
    return f"{rng.choice(WORDS)}-{rng.choice(WORDS)}{rng.randrange(100)}"


# One generator per menu: what an `add` line under it typically looks like.
MENUS = {
    "/interface vlan": lambda r: (
        f"add interface=sfp-sfpplus{r.randrange(1, 9)} name={_name(r)} vlan-id={r.randrange(2, 4095)}"),
    "/ip address": lambda r: f"add address={_ip(r)}/{r.choice((24, 29, 30))} interface={_name(r)} network={_ip(r)}",
    "/ip firewall address-list": lambda r: f"add address={_ip(r)} comment={_name(r)} list={r.choice(LISTS)}",
    "/ip firewall filter": lambda r: (
        f"add action={r.choice(('accept', 'drop', 'jump'))} chain={r.choice(('input', 'forward'))} "
        f"comment=\"{_name(r)} {_name(r)}\" dst-port={r.randrange(1, 65535)} protocol={r.choice(('tcp', 'udp'))} "
        f"src-address-list={r.choice(LISTS)}"),
    "/ip dhcp-server lease": lambda r: (
        f"add address={_ip(r)} client-id=1:{_mac(r).lower()} mac-address={_mac(r)} server=dhcp{r.randrange(1, 5)}"),
    "/queue simple": lambda r: (
        f"add max-limit={r.randrange(1, 200)}M/{r.randrange(1, 200)}M name=\"{_name(r)}\" target={_ip(r)}/32"),
    "/ip route": lambda r: f"add distance={r.randrange(1, 5)} dst-address={_ip(r)}/24 gateway={_ip(r)}",
}


@dataclass
class SyntheticDevice:
    name: str
    rng: random.Random
    serial: str
    menus: dict[str, list[str]] = field(default_factory=dict)

    @classmethod
    def make(cls, index: int, seed: int) -> SyntheticDevice:
        rng = random.Random(seed * 1_000_003 + index)
        device = cls(f"router-{index:04d}", rng, f"{rng.getrandbits(44):011X}")
        target, size = rng.randrange(10_000, 40_000), 0
        device.menus = {menu: [] for menu in MENUS}
        while size < target:
            menu = rng.choice(tuple(MENUS))
            line = MENUS[menu](rng)
            device.menus[menu].append(line)
            size += len(line) + 2
        return device

    def change(self) -> None:
        """Edit a few lines: change one, add one, or drop one."""
        for _ in range(self.rng.randrange(1, 5)):
            menu = self.rng.choice(tuple(MENUS))
            lines = self.menus[menu]
            edit = self.rng.random()
            if edit < 0.5 and lines:
                lines[self.rng.randrange(len(lines))] = MENUS[menu](self.rng)
            elif edit < 0.8 or len(lines) < 2:
                lines.insert(self.rng.randrange(len(lines) + 1), MENUS[menu](self.rng))
            else:
                del lines[self.rng.randrange(len(lines))]

    def export(self, at: datetime) -> tuple[bytes, str]:
        """Raw bytes as the device prints them, and the sha256 of the normalized (header-less) text."""
        body = "".join(menu + "\r\n" + "".join(line + "\r\n" for line in lines) for menu, lines in self.menus.items())
        header = (f"# {at:%Y-%m-%d %H:%M:%S} by RouterOS 7.18.2\r\n# software id = ABCD-1234\r\n#\r\n"
                  f"# model = RB5009UPr+S+\r\n# serial number = {self.serial}\r\n")
        return (header + body).encode(), hashlib.sha256(body.encode()).hexdigest()


@dataclass
class Totals:
    distinct: int = 0
    raw_bytes: int = 0
    compressed_bytes: int = 0
    attempts: int = 0
    store_seconds: float = 0.0
    git_seconds: float = 0.0


def compressed_size(raw: bytes) -> int:
    return len(zlib.compress(raw, 6))


class GitHistory:
    """The reference: the same exports as files in a local git repository, one commit per day.

    Global and system git configuration are ignored and every date is the simulated one, so the
    repository (and its size) depends only on the exports.
    """

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.env = {**os.environ, "GIT_CONFIG_GLOBAL": os.devnull, "GIT_CONFIG_NOSYSTEM": "1",
                    "GIT_AUTHOR_NAME": "backupbot", "GIT_AUTHOR_EMAIL": "backupbot@localhost",
                    "GIT_COMMITTER_NAME": "backupbot", "GIT_COMMITTER_EMAIL": "backupbot@localhost"}
        folder.mkdir(parents=True)
        self.git("init", "-q", "-b", "main")

    def git(self, *args: str, at: datetime | None = None) -> None:
        env = self.env if at is None else {**self.env, "GIT_AUTHOR_DATE": at.isoformat(),
                                           "GIT_COMMITTER_DATE": at.isoformat()}
        # gc.auto=0: packing happens once, when measured, not whenever git feels like it.
        subprocess.run(["git", "-c", "gc.auto=0", *args], cwd=self.folder, env=env, check=True,
                       stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL)

    def commit_day(self, at: datetime, exports: dict[str, bytes]) -> None:
        for name, raw in exports.items():
            (self.folder / f"{name}.rsc").write_bytes(raw)
        self.git("add", "-A")
        self.git("commit", "-q", "--allow-empty", "-m", f"backups of {at:%Y-%m-%d}", at=at)

    def objects_size(self) -> int:
        return folder_size(self.folder / ".git" / "objects")

    def size(self) -> int:
        return folder_size(self.folder / ".git")


def folder_size(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


async def simulate(store: Store, git: GitHistory, devices: list[SyntheticDevice], days: int, change: float,
                   fail: float, seed: int, concurrency: int) -> Totals:
    totals, latest = Totals(), {}
    rng = random.Random(seed)
    slots = asyncio.Semaphore(concurrency)
    new_today: dict[str, bytes] = {}

    async def visit(run_id: int, device: SyntheticDevice, at: datetime, roll: float) -> None:
        async with slots:
            if device.name in latest and roll < fail:
                await store.record_failure(run_id, SITE, device.name, at, "timeout", "no answer in 120 s")
                return
            if device.name in latest and roll > fail + change:
                await store.confirm_version(run_id, SITE, device.name, at, latest[device.name])
                return
            status = Status.CHANGED if device.name in latest else Status.NEW
            if status is Status.CHANGED:
                device.change()
            raw, norm_hash = device.export(at)
            version = await store.add_version(run_id, SITE, device.name, at, raw, norm_hash,
                                              ExportMeta("7.18.2", "RB5009UPr+S+", device.serial, "ABCD-1234"),
                                              status, 3, 2, None)
            latest[device.name] = version.id
            new_today[device.name] = raw
            # Awaited first: `totals.x += await ...` would read x before the await and lose updates
            # made by the other visits meanwhile.
            compressed = await asyncio.to_thread(compressed_size, raw)
            totals.distinct += 1
            totals.raw_bytes += len(raw)
            totals.compressed_bytes += compressed

    for day in range(days):
        at = START + timedelta(days=day)
        t0 = time.perf_counter()
        run_id = await store.start_run("schedule", at, SITE)
        await asyncio.gather(*(visit(run_id, d, at + timedelta(seconds=i), rng.random())
                               for i, d in enumerate(devices)))
        totals.attempts += len(devices)
        summary = OutboxMessage("C0BACKUPS", "summary", {"run": run_id, "devices": len(devices)})
        await store.finish_run(run_id, at + timedelta(minutes=20), [summary])
        t1 = time.perf_counter()
        git.commit_day(at, new_today)
        new_today.clear()
        totals.store_seconds += t1 - t0
        totals.git_seconds += time.perf_counter() - t1
        if day % 30 == 29:
            print(f"  day {day + 1}: {totals.distinct:,} distinct configs", flush=True)
    return totals


async def time_reads(path: Path) -> dict[str, float]:
    """Milliseconds for the per-device "latest" reads over the whole fleet (best of 5)."""
    async with await Store.open(path) as store:
        timings = {}
        for name, read in (("last_attempts", store.last_attempts), ("last_successes", store.last_successes)):
            best = float("inf")
            for _ in range(5):
                t0 = time.perf_counter()
                await read(SITE)
                best = min(best, time.perf_counter() - t0)
            timings[name] = best * 1000
        return timings


@dataclass
class RawReads:
    count: int
    median_ms: float
    p99_ms: float
    max_ms: float
    deepest: int  # deltas in the longest chain
    deepest_median_ms: float
    deepest_max_ms: float


async def time_raw_reads(path: Path) -> RawReads:
    """Store.raw of every version once, then 50 times the version with the deepest delta chain."""
    with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as db:
        ids = [r[0] for r in db.execute("SELECT id FROM versions ORDER BY id")]
        deepest_id, depth = db.execute(
            "SELECT v.id, b.depth FROM versions v JOIN blobs b ON b.id = v.blob_id ORDER BY b.depth DESC, v.id"
            " LIMIT 1").fetchone()

    async def timed(version_id: int) -> float:
        t0 = time.perf_counter()
        await store.raw(version_id)  # decodes the chain and checks the sha256
        return (time.perf_counter() - t0) * 1000

    async with await Store.open(path) as store:
        every = [await timed(i) for i in ids]
        deepest = [await timed(deepest_id) for _ in range(50)]
    p99 = statistics.quantiles(every, n=100)[98]
    return RawReads(len(every), statistics.median(every), p99, max(every), depth, statistics.median(deepest),
                    max(deepest))


@dataclass
class Space:
    """Bytes of the file per table and index (SQLite's dbstat), and which are indexes of what table."""

    objects: dict[str, int]
    index_of: dict[str, str]  # index name -> its table

    def tables(self, *names: str) -> int:
        return sum(self.objects.get(n, 0) for n in names)

    def indexes(self, *tables: str) -> int:
        return sum(size for n, size in self.objects.items() if self.index_of.get(n) in tables)

    def all_indexes(self) -> int:
        return sum(size for n, size in self.objects.items() if n in self.index_of)


def space_by_object(path: Path) -> Space | None:
    """Where the file's bytes are, if this SQLite has the dbstat table (a measuring aid only)."""
    with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as db:
        try:
            rows = db.execute("SELECT name, SUM(pgsize) FROM dbstat GROUP BY name ORDER BY 2 DESC").fetchall()
        except sqlite3.OperationalError:
            return None
        indexes = db.execute("SELECT name, tbl_name FROM sqlite_schema WHERE type = 'index'").fetchall()
    return Space(dict(rows), dict(indexes))


# What git holds too: the configs and, per version, what a commit records. The rest of the file is
# the attempt log (every backup attempt, ok or failed with its reason), runs and the outbox.
HISTORY_TABLES = ("blobs", "versions", "export_meta")


def vacuumed_size(path: Path) -> int:
    copy = path.with_name("vacuumed.sqlite")
    with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as db:
        db.execute("VACUUM INTO ?", (str(copy),))
    size = copy.stat().st_size
    copy.unlink()
    return size


def mb(n: float) -> str:
    return f"{n / 1e6:,.2f} MB"


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--devices", type=int, default=100)
    parser.add_argument("--days", type=int, default=365)
    parser.add_argument("--change", type=float, default=0.10, help="share of devices changed per day")
    parser.add_argument("--fail", type=float, default=0.01, help="share of devices failing per day")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--concurrency", type=int, default=50)
    parser.add_argument("--dir", type=Path, help="where the database and the git repository go (default: temporary)")
    args = parser.parse_args()
    if shutil.which("git") is None:
        parser.error("git is needed: it builds the reference this benchmark compares against")

    folder = args.dir or Path(tempfile.mkdtemp(prefix="backupbot-bench-"))
    path = folder / "store.sqlite"
    git = GitHistory(folder / "git")
    devices = [SyntheticDevice.make(i, args.seed) for i in range(args.devices)]
    print(f"{args.devices:,} devices x {args.days} days, {args.change:.0%} changed/day, {args.fail:.0%} failed/day")
    async with await Store.open(path) as store:
        totals = await simulate(store, git, devices, args.days, args.change, args.fail, args.seed,
                                args.concurrency)
    # Closing the last connection checkpointed the WAL into the file and removed it.
    db_size = path.stat().st_size + sum(p.stat().st_size for p in folder.glob(path.name + "-*"))
    t0 = time.perf_counter()
    git.git("gc", "-q")
    gc_seconds = time.perf_counter() - t0
    git_objects, git_total = git.objects_size(), git.size()
    git.git("gc", "-q", "--aggressive")
    git_aggressive = git.objects_size()

    print(f"store:                           {totals.store_seconds:,.0f} s "
          f"({totals.store_seconds / totals.attempts * 1e6:,.0f} us per device-day)")
    print(f"git add + commit, day by day:    {totals.git_seconds:,.0f} s; git gc {gc_seconds:.1f} s")
    print(f"attempts recorded:               {totals.attempts:,}")
    print(f"distinct configs:                {totals.distinct:,}")
    print(f"their raw size:                  {mb(totals.raw_bytes)}")
    print(f"their zlib-6 size, one by one:   {mb(totals.compressed_bytes)}")
    print(f"git gc: .git/objects             {mb(git_objects)} (.git with hooks, index, logs: {mb(git_total)})")
    print(f"git gc --aggressive: objects     {mb(git_aggressive)}")
    space = space_by_object(path)
    history = space.tables(*HISTORY_TABLES) + space.indexes(*HISTORY_TABLES) if space else 0
    print(f"database file (checkpointed):    {mb(db_size)}")
    if space:
        parts = {"blobs": space.tables("blobs"), "versions, export_meta": space.tables("versions", "export_meta"),
                 "attempts": space.tables("attempts"), "indexes": space.all_indexes()}
        with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as db:
            rows = db.execute("SELECT COUNT(*) FROM attempts").fetchone()[0]
        for name, size in parts.items():
            print(f"  {name + ':':<30} {mb(size):>10} ({size / db_size:.0%})")
        print(f"    of which on attempts:        {mb(space.indexes('attempts')):>10} "
              f"({totals.attempts:,} attempts in {rows:,} rows)")
        print(f"  {'other (runs, outbox, free…):':<30} {mb(db_size - sum(parts.values())):>10}")
        for name, size in space.objects.items():
            if size >= 10_000:
                print(f"    {name:<30} {mb(size):>10}")
    print(f"database file after VACUUM:      {mb(vacuumed_size(path))}")
    for name, ms in (await time_reads(path)).items():
        print(f"{name}({args.devices:,} devices): {ms:.1f} ms")
    reads = await time_raw_reads(path)
    print(f"read a version back (Store.raw, {reads.count:,} versions once each): median {reads.median_ms:.2f} ms, "
          f"p99 {reads.p99_ms:.2f} ms, max {reads.max_ms:.2f} ms")
    print(f"read the deepest chain ({reads.deepest} deltas), 50 times: median {reads.deepest_median_ms:.2f} ms, "
          f"max {reads.deepest_max_ms:.2f} ms (target <= 20 ms)")
    print(f"left in {folder}")
    if space:
        print(f"config history (blobs, versions, export_meta and their indexes) {mb(history)} / git gc objects "
              f"{mb(git_objects)}: {history / git_objects:.2f}x")
    print(f"whole database file (checkpointed) {mb(db_size)} / git gc objects {mb(git_objects)}: "
          f"{db_size / git_objects:.2f}x (target <= 1.5x)")

if __name__ == "__main__":
    asyncio.run(main())
