"""How fast is a fleet search? `backupbot grep` (the Grep use case) against `grep -rn` over the same
normalized configs written out as files, in one run.

The fleet is the simulator's (bot.ssh.simulator.fleet, as benchmarks/backup_throughput.py runs it):
10,000 routers, exports of 3 KB, 40 KB and 1 MB mixed 70/25/5, every 5th on RouterOS 6. Each
router's export is rendered by its SimDevice (no SSH: collecting is what backup_throughput.py
measures) and stored as a version through the real Store API in a real SQLite file, exactly as a
backup stores it. The normalized text of each latest version (what backupbot searches and
`backupbot show` prints) is also written to one file per router, for grep.

Each pattern is searched by both, in the same run: GNU grep as a subprocess (`grep -rnF` for plain
text, `-rnE` for a regex, `-i` added for ignoring case, LC_ALL=C, output read from a pipe: grep
stops early when it sees /dev/null), and ours as the CLI runs it (Grep.search: the latest version
of each device from the database, the cache files checked, the child processes (kept between
searches, as the bot keeps them), every matching line with its section and 2 lines either side, up
to 100,000 listed and the rest counted). Best of --repeat runs each, wall clock (the target) and
CPU time (this process and its children, running or done: grep's, the search's; steadier on a
shared machine, and it shows that ours splits a search over as many processes as there are cores,
up to 4, while grep uses one). The cache is filled by the first search (timed on its own, "cold");
a last row for a Slack user without download rights fills and searches the redacted files.

The last line: the slowest of ours/grep over all the rows (the target is at most 3x).

    python benchmarks/grep_speed.py                          # 10,000 routers (~5 min to build the fleet)
    python benchmarks/grep_speed.py --dir /tmp/grep-bench    # keep the fleet there; later runs reuse it
    python benchmarks/grep_speed.py --dir /tmp/grep-bench --warm  # ... and the text files its searches made
    python benchmarks/grep_speed.py --devices 1000 --repeat 5
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from collections import deque
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import TypeVar

from bot.backup.grep import CLI_LINES, SLACK_LINES, Grep, Reading
from bot.backup.textcache import TextCache, cache_dir
from bot.core.models import Device, Status
from bot.routeros import export as routeros
from bot.routeros.grep import Query
from bot.ssh.simulator import fleet
from storage.store import Store

T = TypeVar("T")
SITE = "bench"
AT = datetime(2026, 3, 1, 2, 0, tzinfo=UTC)

# (label, query): plain and regex, few and many matching lines, with and without -i.
PATTERNS = [  # the matching lines in the default fleet in brackets
    ("plain, no match", Query("no-such-text-anywhere")),
    ("plain, few (500)", Query("cust-12345 ")),
    ("plain, one per device (10k)", Query("winbox")),
    ("plain -i, one per device (10k)", Query("WINBOX", ignore_case=True)),
    ("plain, very many (1.6M)", Query("list=blocklist")),
    ("regex, few (5k)", Query(r"address=10\.1[0-9]{2}\.4[0-9]\.77 ", regex=True)),
    ("regex, one per device (10k)", Query(r"dst-port=[0-9]+,8291", regex=True)),
    ("regex, many (400k)", Query(r'comment="cust-[0-9]+ 1[0-9] ', regex=True)),
    ("regex, no literal in it (15k)", Query(r"(cust-0{4}[1-5]) ", regex=True)),
]


def gnu_args(query: Query) -> list[str]:
    flags = "-rn" + ("E" if query.regex else "F") + ("i" if query.ignore_case else "")
    return ["grep", flags, "-e", query.pattern]


def ms(seconds: float) -> str:
    return f"{seconds * 1000:,.0f}ms"


def run_grep(query: Query, folder: Path) -> int:
    """GNU grep's matching lines (its output read from a pipe)."""
    done = subprocess.run([*gnu_args(query), str(folder)], stdout=subprocess.PIPE, env={**os.environ, "LC_ALL": "C"},
                          check=False)
    if done.returncode > 1:
        sys.exit(f"grep failed with code {done.returncode}")
    return done.stdout.count(b"\n")


async def build(folder: Path, count: int, sizes: list[int], mix: list[int]) -> None:
    """The fleet's exports stored as versions in folder/backups.db, their normalized texts in folder/files."""
    files = folder / "files" / SITE
    files.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    async with await Store.open(folder / "backups.db") as store:
        run = await store.start_run("cli", AT, SITE)
        devices = deque(fleet(count, "127.0.1.1", 22, sizes, mix, 0.0, "unused"))
        i = 0
        while devices:
            dev = devices.popleft()  # dropped after use: 10,000 generated configs would fill the memory
            i += 1
            raw = dev.export_text(routeros.export_command(dev.major))
            refusal, normalized = routeros.check_and_normalize(raw)
            assert refusal is None, (dev.name, refusal)
            await store.add_version(run, SITE, dev.name, AT, raw, hashlib.sha256(normalized.encode()).hexdigest(),
                                    routeros.parse_header(raw.decode()), Status.NEW, 0, 0, None)
            (files / f"{dev.name}.rsc").write_text(normalized)
            if i % 1000 == 0:
                print(f"  built {i:,} routers ({time.monotonic() - started:.0f} s)", flush=True)
        await store.finish_run(run, AT)
    (folder / "built").write_text(f"{count} {sizes} {mix}\n")


def cpu_now() -> float:
    """CPU seconds of this process and of its children: those that have finished (grep, a search's
    child that was stopped) and those still running (the search's children kept for the next one)."""
    me, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime + running_children_cpu()


def running_children_cpu() -> float:
    """CPU seconds of this process's children still running, from /proc (getrusage counts a child
    only once it has been waited for)."""
    me, tick, total = os.getpid(), os.sysconf("SC_CLK_TCK"), 0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()  # after the command name, which may hold spaces
        except OSError:
            continue  # it ended meanwhile
        if int(fields[1]) == me:
            total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / tick


async def best(fn: Callable[[], Awaitable[T]], repeat: int) -> tuple[float, float, T]:
    """(best wall time, best CPU time, the last result)."""
    walls, cpus = [], []
    for _ in range(repeat):
        t0, c0 = time.perf_counter(), cpu_now()
        out = await fn()
        walls.append(time.perf_counter() - t0)
        cpus.append(cpu_now() - c0)
    return min(walls), min(cpus), out


async def best_sync(fn: Callable[[], T], repeat: int) -> tuple[float, float, T]:
    async def call() -> T:
        return fn()
    return await best(call, repeat)


async def measure(folder: Path, count: int, repeat: int, warm: bool) -> float:
    files = folder / "files"
    db = folder / "backups.db"
    names = sorted(p.stem for p in (files / SITE).iterdir())
    devices = [Device(SITE, name, "127.0.1.1", username="bench") for name in names]
    size = sum(p.stat().st_size for p in (files / SITE).iterdir())
    lines = sum(p.read_bytes().count(b"\n") for p in (files / SITE).iterdir())
    print(f"{len(devices):,} routers, {size / 1e6:,.0f} MB of normalized config, {lines:,} lines")
    async with await Store.open(db) as store:
        cache = TextCache(cache_dir(db), store)
        grep = Grep(store, cache)
        try:
            return await table(grep, cache, devices, files, repeat, warm)
        finally:
            await grep.close()


async def table(grep: Grep, cache: TextCache, devices: list[Device], files: Path, repeat: int, warm: bool) -> float:
    """Print the rows; return the slowest ratio."""
    real = [(d, Reading.REAL) for d in devices]
    redacted = [(d, Reading.REDACTED) for d in devices]
    if not warm:
        shutil.rmtree(cache.root, ignore_errors=True)
    t0 = time.perf_counter()
    await grep.search(Query("winbox"), real, show_secrets=True, limit=CLI_LINES)
    cold = time.perf_counter() - t0
    t0 = time.perf_counter()
    await grep.search(Query("winbox"), redacted, limit=SLACK_LINES)
    cold_redacted = time.perf_counter() - t0
    if warm:
        print(f"first searches, with the text files of the previous run (--warm): {cold:.1f} s, and as a Slack "
              f"user without download rights {cold_redacted:.1f} s")
    else:
        print(f"cold: the first search made the text files of {len(devices):,} versions in {cold:.1f} s; "
              f"the first as a Slack user without download rights made the redacted ones in {cold_redacted:.1f} s")
    print(f"{'':<31} {'wall: grep -rn':>14} {'ours':>7} {'ratio':>6}   {'CPU: grep':>9} {'ours':>7} {'ratio':>6}"
          "   lines (grep / ours: matching, listed)")
    ratios = []
    for label, query in PATTERNS:
        gnu_wall, gnu_cpu, gnu_lines = await best_sync(lambda q=query: run_grep(q, files), repeat)
        ours_wall, ours_cpu, result = await best(
            lambda q=query: grep.search(q, real, show_secrets=True, limit=CLI_LINES), repeat)
        assert result.lines == gnu_lines, (label, result.lines, gnu_lines)
        ratios.append((ours_wall / gnu_wall, label))
        print(f"{label:<31} {ms(gnu_wall):>14} {ms(ours_wall):>7} {ours_wall / gnu_wall:>5.1f}x   "
              f"{ms(gnu_cpu):>9} {ms(ours_cpu):>7} {ours_cpu / gnu_cpu:>5.1f}x   "
              f"{gnu_lines:,} / {result.lines:,}, {result.listed:,}")
    slack_wall, slack_cpu, slack = await best(
        lambda: grep.search(Query("winbox"), redacted, limit=SLACK_LINES), repeat)
    gnu_wall, gnu_cpu, _ = await best_sync(lambda: run_grep(Query("winbox"), files), repeat)
    ratios.append((slack_wall / gnu_wall, "Slack user, redacted"))
    print(f"{'Slack user, redacted: winbox':<31} {ms(gnu_wall):>14} {ms(slack_wall):>7} "
          f"{slack_wall / gnu_wall:>5.1f}x   {ms(gnu_cpu):>9} {ms(slack_cpu):>7} {slack_cpu / gnu_cpu:>5.1f}x   "
          f"{slack.lines:,} lines")
    worst, label = max(ratios)
    print(f"\nslowest wall-clock ratio: ours {worst:.1f}x grep -rn ({label}); target <= 3x")
    return worst


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--devices", type=int, default=10_000)
    parser.add_argument("--sizes", default="3000,40000,1000000", help="export sizes in bytes")
    parser.add_argument("--mix", default="70,25,5", help="how many of each size in every 100 routers")
    parser.add_argument("--repeat", type=int, default=3, help="runs per row (best is reported)")
    parser.add_argument("--dir", type=Path, help="keep the fleet here and reuse it on the next run")
    parser.add_argument("--warm", action="store_true", help="with --dir: keep the search's text files of the "
                        "previous run (its first search then makes none)")
    args = parser.parse_args()
    if shutil.which("grep") is None:
        sys.exit("GNU grep is not installed: it is the reference")
    print(subprocess.run(["grep", "--version"], stdout=subprocess.PIPE, text=True, check=True).stdout.splitlines()[0])
    print(f"Python {sys.version.split()[0]}; fleet: {args.devices:,} simulated routers, exports {args.sizes} bytes "
          f"mixed {args.mix}; best of {args.repeat}; results are indicative on a shared machine")
    sizes, mix = [int(x) for x in args.sizes.split(",")], [int(x) for x in args.mix.split(",")]
    folder = args.dir or Path(tempfile.mkdtemp(prefix="backupbot-grep-"))
    try:
        marker = folder / "built"
        if not marker.exists() or marker.read_text() != f"{args.devices} {sizes} {mix}\n":
            shutil.rmtree(folder, ignore_errors=True)
            folder.mkdir(parents=True)
            print(f"building the fleet in {folder} …", flush=True)
            asyncio.run(build(folder, args.devices, sizes, mix))
        asyncio.run(measure(folder, args.devices, args.repeat, args.warm))
    finally:
        if args.dir is None:
            shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
