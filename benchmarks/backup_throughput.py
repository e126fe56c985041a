"""Backup throughput: backupbot against a bare asyncssh loop, on N simulated routers on loopback.

    python benchmarks/backup_throughput.py [--devices 1000] [--concurrency 100] [--delay 0.2]

The simulator runs in its own process (mixed 3 KB / 40 KB / 1 MB exports, `--delay` seconds to
generate each export). Each measured phase runs in a fresh child process so its peak RSS is its own:

  reference  connect + run the export + save it to a file, nothing else (host keys accepted blindly;
             same cipher preference as backupbot, so the ratio is backupbot's own overhead)
  backupbot  BackupService.run over every device into a fresh SQLite file, twice: the first run
             stores everything as new; the second is the daily steady state (same configs, new
             timestamps, so every device is confirmed "unchanged")

Printed per phase: wall seconds, CPU seconds (backupbot's worker processes separately), the peak
RSS of every process of the phase and their sum (an upper bound of what ran at once), the longest
event-loop stall (a 10 ms ticker measures how late it wakes), and backupbot's wall time as a ratio
of the reference.
Only 127.0.0.0/8 addresses are used.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

PASSWORD_VAR = "BACKUPBOT_SIM_PASSWORD"
PASSWORD = "bench-secret"


def _descendants(root: int) -> list[int]:
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError, IndexError, ValueError):  # gone meanwhile, or not readable
                parents[int(entry.name)] = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
    found, frontier = [], [root]
    while frontier:
        pid = frontier.pop()
        kids = [p for p, parent in parents.items() if parent == pid]
        found += kids
        frontier += kids
    return found


async def rss_monitor(stop: asyncio.Event, peaks: dict[int, tuple[str, float]]) -> None:
    """Peak RSS (VmHWM) of this process and every process it starts (SSH worker, CPU worker)."""
    while not stop.is_set():
        for pid in [os.getpid(), *_descendants(os.getpid())]:
            try:
                status = Path(f"/proc/{pid}/status").read_text()
                cmd = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()[:120]
            except OSError:
                continue
            hwm = next(int(line.split()[1]) / 1024 for line in status.splitlines() if line.startswith("VmHWM"))
            peaks[pid] = (cmd, max(hwm, peaks.get(pid, ("", 0.0))[1]))
        await asyncio.sleep(0.25)


async def stall_monitor(stop: asyncio.Event, interval: float = 0.01) -> float:
    worst = 0.0
    while not stop.is_set():
        t = time.monotonic()
        await asyncio.sleep(interval)
        worst = max(worst, time.monotonic() - t - interval)
    return worst


async def reference(devices: list[dict[str, Any]], concurrency: int, out_dir: Path) -> int:
    import asyncssh

    from bot.ssh.collector import ENCRYPTION_ALGS

    class AcceptAny(asyncssh.SSHClient):
        def validate_host_public_key(self, host: str, addr: str, port: int, key: asyncssh.SSHKey) -> bool:
            return True

    slots = asyncio.Semaphore(concurrency)
    failures = 0

    async def one(d: dict[str, Any]) -> None:
        nonlocal failures
        command = "/export show-sensitive" if d["ros_version"].startswith("7") else "/export"
        async with slots:
            try:
                conn, _ = await asyncssh.create_connection(
                    AcceptAny, d["host"], d["port"], username=d["username"], password=PASSWORD,
                    known_hosts=([], [], []), client_keys=None, agent_path=None, config=None,
                    encryption_algs=ENCRYPTION_ALGS)
                async with conn:
                    result = await conn.run(command, encoding=None)
                (out_dir / f"{d['name']}.rsc").write_bytes(result.stdout)
            except (OSError, asyncssh.Error):
                failures += 1

    await asyncio.gather(*(one(d) for d in devices))
    return failures


async def backupbot(devices: list[dict[str, Any]], concurrency: int, work: Path, runs: int) -> list[dict[str, Any]]:
    from bot.app import open_backend
    from bot.config.load import parse_settings
    from bot.core.models import Status

    sites: dict[str, Any] = {}
    for i, d in enumerate(devices):
        site = sites.setdefault(f"site-{i // 100:02d}", {"devices": []})
        site["devices"].append({"name": d["name"], "host": d["host"], "port": d["port"]})
    settings = parse_settings({
        "storage": {"path": "bench.db"}, "concurrency": concurrency,
        "defaults": {"username": "backup", "password": f"${{{PASSWORD_VAR}}}", "timeout": 120},
        "sites": sites,
    }, {PASSWORD_VAR: PASSWORD}, work)
    out = []
    async with open_backend(settings) as backend:
        for _ in range(runs):
            t0, c0 = time.monotonic(), time.process_time()
            summary = await backend.service.run(settings.devices(), "benchmark")
            out.append({"wall": time.monotonic() - t0, "cpu": time.process_time() - c0,
                        "statuses": {s.value: summary.count(s) for s in Status},
                        "failed": [r.reason for r in summary.failed][:5]})
    return out


def child(args: argparse.Namespace) -> None:
    devices = json.loads(Path(args.devices_file).read_text())
    work = Path(args.work)

    # Import before the stall monitor starts: module loading is not event-loop work.
    import asyncssh  # noqa: F401

    import bot.app  # noqa: F401

    async def main() -> dict[str, Any]:
        if os.environ.get("BENCH_DEBUG"):
            loop = asyncio.get_running_loop()
            loop.set_debug(True)
            loop.slow_callback_duration = 0.05
        stop = asyncio.Event()
        monitor = asyncio.create_task(stall_monitor(stop))
        peaks: dict[int, tuple[str, float]] = {}
        rss = asyncio.create_task(rss_monitor(stop, peaks))
        t0, c0 = time.monotonic(), time.process_time()
        if args.phase == "reference":
            failures = await reference(devices, args.concurrency, work)
            result: dict[str, Any] = {"runs": [{"wall": time.monotonic() - t0, "cpu": time.process_time() - c0,
                                                "failed": failures}]}
        else:
            result = {"runs": await backupbot(devices, args.concurrency, work, runs=2)}
        stop.set()
        result["stall_ms"] = await monitor * 1000
        await rss
        children = resource.getrusage(resource.RUSAGE_CHILDREN)  # workers, exited and reaped by now
        result["peaks"] = sorted(peaks.values(), key=lambda p: -p[1])
        result["worker_cpu"] = children.ru_utime + children.ru_stime
        return result

    print(json.dumps(asyncio.run(main())))


def _role(cmdline: str) -> str:
    roles = {"bot.ssh.worker": "SSH worker", "multiprocessing.spawn": "CPU worker",
             "resource_tracker": "multiprocessing resource tracker"}
    return next((role for marker, role in roles.items() if marker in cmdline), "main")


def run_phase(phase: str, devices_file: Path, concurrency: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix=f"bench-{phase}-") as work:
        proc = subprocess.run(
            [sys.executable, __file__, "--child", phase, "--devices-file", str(devices_file), "--work", work,
             "--concurrency", str(concurrency)], capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        sys.exit(f"{phase} failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--devices", type=int, default=1000)
    p.add_argument("--concurrency", type=int, default=100)
    p.add_argument("--delay", type=float, default=0.2)
    p.add_argument("--child", choices=["reference", "backupbot"], dest="phase")
    p.add_argument("--devices-file")
    p.add_argument("--work")
    args = p.parse_args()
    resource.setrlimit(resource.RLIMIT_NOFILE, (65536, 65536)) if resource.getrlimit(
        resource.RLIMIT_NOFILE)[1] >= 65536 else None
    if args.phase:
        return child(args)

    sim = subprocess.Popen(
        [sys.executable, "-m", "bot.ssh.simulator", "--count", str(args.devices), "--base-host", "127.0.1.1",
         "--port", "2222", "--sizes", "3000,40000,1000000", "--mix", "70,25,5", "--delay", str(args.delay),
         "--password-var", PASSWORD_VAR],
        stdout=subprocess.PIPE, text=True, env={**os.environ, PASSWORD_VAR: PASSWORD})
    try:
        devices = json.loads(sim.stdout.readline())["devices"]
        sizes = sorted({d["size"] for d in devices})
        print(f"{len(devices)} simulated devices on 127.0.1.x-127.0.4.x, export sizes {sizes} "
              f"(mix 70/25/5), {args.delay} s per export, concurrency {args.concurrency}, "
              f"{os.cpu_count()} CPUs\n")
        with tempfile.NamedTemporaryFile("w", suffix=".json") as f:
            json.dump(devices, f)
            f.flush()
            ref = run_phase("reference", Path(f.name), args.concurrency)
            bot = run_phase("backupbot", Path(f.name), args.concurrency)
    finally:
        sim.terminate()
        sim.wait(10)

    base = ref["runs"][0]["wall"]
    print(f"{'phase':<34}{'wall s':>8}{'cpu s':>8}{'ratio':>7}  notes")
    r = ref["runs"][0]
    print(f"{'reference (connect+run+save)':<34}{r['wall']:>8.1f}{r['cpu']:>8.1f}{1:>7.2f}  failed={r['failed']}")
    for label, run in zip(("backupbot run 1 (all new)", "backupbot run 2 (unchanged)"), bot["runs"]):
        print(f"{label:<34}{run['wall']:>8.1f}{run['cpu']:>8.1f}{run['wall'] / base:>7.2f}  {run['statuses']}"
              + (f" e.g. {run['failed']}" if run["failed"] else ""))
    print(f"\nbackupbot's worker processes (SSH, CPU): {bot['worker_cpu']:.1f} CPU s over both runs "
          "(not in the cpu column)")
    for label, phase in (("reference", ref), ("backupbot", bot)):
        total = sum(mb for _, mb in phase["peaks"])
        parts = ", ".join(f"{mb:.0f} MB {_role(cmd)}" for cmd, mb in phase["peaks"])
        print(f"peak RSS {label}: {total:.0f} MB in all ({parts})")
    print(f"longest event-loop stall: reference {ref['stall_ms']:.0f} ms, backupbot {bot['stall_ms']:.0f} ms")


if __name__ == "__main__":
    main()
