"""Backup throughput: backupbot against a bare asyncssh loop, on N simulated routers on loopback.

    python benchmarks/backup_throughput.py [--devices 600] [--concurrency 100] [--delay 0.2]
    python benchmarks/backup_throughput.py --devices 1000      # the fleet-size run: stalls, peak RSS

The simulator runs in its own process: mixed 3 KB / 40 KB / 1 MB exports (70/25/5), every 5th
router on RouterOS 6, `--delay` seconds for every command to answer (round trips to a distant
router); every export is rendered before anything is measured. Each phase runs in a fresh child
process:

  loop       the reference: connect + one exec of the export the router's version needs + save it
             to a file, `--concurrency` at once; host keys accepted blindly, and the same key
             exchange, host key and cipher algorithms as backupbot (so the ratio is backupbot's own
             overhead, not a different cipher). Run before and after backupbot; the faster of the
             two is the reference (the conservative choice on a noisy machine).
  backupbot  BackupService.run over every device into a fresh SQLite file, twice: the first run
             (all new: never seen, no stored version) and the daily run (all known; every 20th
             router's config changed in between, the rest only have a new timestamp).

Reported per phase: wall and CPU seconds - backupbot's CPU is the total of ALL its processes (the
bot, the SSH worker, the CPU worker) read from /proc around each run - the simulator's CPU in the
same interval, the longest event-loop stall of the measuring process (a 10 ms ticker: how late it
wakes), and the peak RSS of every process. Start-up (imports, starting
the worker processes) is measured apart and not in the runs. The last line has the ratios.
Only 127.0.0.0/8 addresses are used.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import resource
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

PASSWORD_VAR = "BACKUPBOT_SIM_PASSWORD"
PASSWORD = "bench-secret"
TICK = os.sysconf("SC_CLK_TCK")
TARGETS = {"first": 1.3, "daily": 1.15, "cpu": 1.5}


def _stat(pid: int) -> list[str]:
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()


def cpu_seconds(pid: int) -> float:
    """User + system CPU of one live process, all its threads (from /proc, 1/CLK_TCK resolution)."""
    fields = _stat(pid)
    return (int(fields[11]) + int(fields[12])) / TICK


def descendants(root: int) -> list[int]:
    """Every live process below `root` (the kernel's own child lists: no scan of /proc)."""
    found, frontier = [], [root]
    while frontier:
        pid = frontier.pop()
        for children in Path(f"/proc/{pid}/task").glob("*/children"):
            with contextlib.suppress(OSError):
                kids = [int(k) for k in children.read_text().split()]
                found += kids
                frontier += kids
    return found


def role(pid: int) -> str:
    cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    roles = {"bot.ssh.worker": "SSH worker", "multiprocessing.spawn": "CPU worker",
             "resource_tracker": "multiprocessing resource tracker"}
    return next((name for marker, name in roles.items() if marker in cmdline), "main")


def tree_cpu() -> dict[str, float]:
    """CPU seconds of this process and of every live process it started, by role."""
    out: dict[str, float] = {}
    for pid in [os.getpid(), *descendants(os.getpid())]:
        with contextlib.suppress(OSError, IndexError, ValueError):
            name = "main" if pid == os.getpid() else role(pid)
            out[name] = out.get(name, 0.0) + cpu_seconds(pid)
    return out


def peak_rss() -> list[tuple[str, float]]:
    """Peak RSS (VmHWM, MB) of this process and every live process it started: read once, at
    the end of a phase (a high-water mark needs no polling)."""
    peaks = []
    for pid in [os.getpid(), *descendants(os.getpid())]:
        with contextlib.suppress(OSError, StopIteration):
            status = Path(f"/proc/{pid}/status").read_text().splitlines()
            hwm = next(int(line.split()[1]) / 1024 for line in status if line.startswith("VmHWM"))
            peaks.append(("main" if pid == os.getpid() else role(pid), hwm))
    return sorted(peaks, key=lambda p: -p[1])


async def stall_monitor(stop: asyncio.Event, interval: float = 0.01) -> tuple[float, float]:
    """(longest wake-up delay of a 10 ms ticker, longest CPU the loop's thread spent between two
    ticks). The first includes time the process waited for a CPU (other processes, other load)
    or for the GIL; the second is the longest stretch of work the loop itself did in one go."""
    late = busy = 0.0
    while not stop.is_set():
        t, c = time.monotonic(), time.thread_time()
        await asyncio.sleep(interval)
        late = max(late, time.monotonic() - t - interval)
        busy = max(busy, time.thread_time() - c)
    return late, busy


async def loop_phase(devices: list[dict[str, Any]], concurrency: int, out_dir: Path) -> int:
    """The reference: as little as a backup can be."""
    import asyncssh

    from bot.ssh.collector import ENCRYPTION_ALGS, HOST_KEY_ALGS

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
                    known_hosts=([], [], []), client_keys=None, agent_path=None, config=None, gss_host=None,
                    server_host_key_algs=list(HOST_KEY_ALGS), encryption_algs=ENCRYPTION_ALGS)
                async with conn:
                    result = await conn.run(command, encoding=None)
                (out_dir / f"{d['name']}.rsc").write_bytes(result.stdout)
            except (OSError, asyncssh.Error):
                failures += 1

    await asyncio.gather(*(one(d) for d in devices))
    return failures


def settings_for(devices: list[dict[str, Any]], concurrency: int, work: Path) -> Any:
    from bot.config.load import parse_settings

    sites: dict[str, Any] = {}
    for i, d in enumerate(devices):
        site = sites.setdefault(f"site-{i // 100:02d}", {"devices": []})
        site["devices"].append({"name": d["name"], "host": d["host"], "port": d["port"]})
    return parse_settings({
        "storage": {"path": "bench.db"}, "concurrency": concurrency,
        "defaults": {"username": "backup", "password": f"${{{PASSWORD_VAR}}}", "timeout": 120},
        "sites": sites,
    }, {PASSWORD_VAR: PASSWORD}, work)


async def backupbot_phase(devices: list[dict[str, Any]], concurrency: int, work: Path, sim_pid: int,
                          result: dict[str, Any]) -> None:
    from bot.backup import service as backup
    from bot.app import open_backend
    from bot.core.models import Status
    from bot.backup.offload import cpu

    settings = settings_for(devices, concurrency, work)
    runs = result["runs"] = []
    t0 = time.perf_counter()
    async with open_backend(settings) as backend:
        result["startup"]["database"] = time.perf_counter() - t0
        t = time.perf_counter()
        await backend.service.collector.start()  # type: ignore[attr-defined]
        result["startup"]["SSH worker"] = time.perf_counter() - t
        t = time.perf_counter()
        await cpu(backup._changes, b"", b"")  # the CPU worker imports what the runs need
        result["startup"]["CPU worker"] = time.perf_counter() - t
        for label in ("first", "daily"):
            if label == "daily":
                os.kill(sim_pid, signal.SIGUSR1)  # a day passes: every 20th router changes
                await asyncio.sleep(0.5)
            sim0, c0, t0 = cpu_seconds(sim_pid), tree_cpu(), time.monotonic()
            summary = await backend.service.run(settings.devices(), "benchmark")
            wall, c1 = time.monotonic() - t0, tree_cpu()
            by_role = {name: c1[name] - c0.get(name, 0.0) for name in c1}
            runs.append({"label": label, "wall": wall, "cpu": sum(by_role.values()), "by_role": by_role,
                         "sim_cpu": cpu_seconds(sim_pid) - sim0,
                         "statuses": {s.value: summary.count(s) for s in Status if summary.count(s)},
                         "failed": [r.reason for r in summary.failed][:5]})
        result["peaks"] = peak_rss()  # before the workers exit


def child(args: argparse.Namespace) -> None:
    devices = json.loads(Path(args.devices_file).read_text())
    work = Path(args.work)
    result: dict[str, Any] = {"startup": {}}
    # Imports are start-up, timed apart: module loading is not the event loop's work.
    t = time.perf_counter()
    import asyncssh  # noqa: F401

    import bot.ssh.collector  # the loop takes its algorithms from here
    if args.phase == "backupbot":
        import bot.app  # noqa: F401
    result["startup"]["imports"] = time.perf_counter() - t

    async def main() -> dict[str, Any]:
        stop = asyncio.Event()
        monitor = asyncio.create_task(stall_monitor(stop))
        if args.phase == "loop":
            sim0, c0, t0 = cpu_seconds(args.sim_pid), time.process_time(), time.monotonic()
            failures = await loop_phase(devices, args.concurrency, work)
            result["runs"] = [{"label": "loop", "wall": time.monotonic() - t0, "cpu": time.process_time() - c0,
                               "sim_cpu": cpu_seconds(args.sim_pid) - sim0, "statuses": {},
                               "failed": failures}]
            result["peaks"] = peak_rss()
        else:
            await backupbot_phase(devices, args.concurrency, work, args.sim_pid, result)
        stop.set()
        result["stall_ms"], result["busy_ms"] = (x * 1000 for x in await monitor)
        return result

    print(json.dumps(asyncio.run(main())))


def run_phase(phase: str, devices_file: Path, args: argparse.Namespace, sim: subprocess.Popen[str]) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix=f"bench-{phase}-") as work:
        proc = subprocess.run(
            [sys.executable, __file__, "--child", phase, "--devices-file", str(devices_file), "--work", work,
             "--concurrency", str(args.concurrency), "--sim-pid", str(sim.pid)],
            capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        sys.exit(f"{phase} failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--devices", type=int, default=600)
    p.add_argument("--concurrency", type=int, default=100)
    p.add_argument("--delay", type=float, default=0.2, help="seconds every command takes to answer")
    p.add_argument("--sizes", default="3000,40000,1000000")
    p.add_argument("--mix", default="70,25,5")
    p.add_argument("--child", choices=["loop", "backupbot"], dest="phase")
    p.add_argument("--devices-file")
    p.add_argument("--work")
    p.add_argument("--sim-pid", type=int)
    args = p.parse_args()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, min(hard, 65536)), hard))
    if args.phase:
        return child(args)

    sim = subprocess.Popen(
        [sys.executable, "-m", "bot.ssh.simulator", "--count", str(args.devices), "--base-host", "127.0.1.1",
         "--port", "2222", "--sizes", args.sizes, "--mix", args.mix, "--delay", str(args.delay),
         "--password-var", PASSWORD_VAR],
        stdout=subprocess.PIPE, text=True, env={**os.environ, PASSWORD_VAR: PASSWORD})
    try:
        assert sim.stdout is not None
        devices = json.loads(sim.stdout.readline())["devices"]
        sizes = sorted({d["size"] for d in devices})
        v6 = sum(1 for d in devices if d["ros_version"].startswith("6"))
        print(f"{len(devices)} simulated routers ({v6} on RouterOS 6) on 127.0.1.x+, export sizes {sizes} "
              f"(mix {args.mix}), {args.delay} s per command, concurrency {args.concurrency}, "
              f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f} at start\n")
        with tempfile.NamedTemporaryFile("w", suffix=".json") as f:
            json.dump(devices, f)
            f.flush()
            first_loop = run_phase("loop", Path(f.name), args, sim)
            bot = run_phase("backupbot", Path(f.name), args, sim)
            second_loop = run_phase("loop", Path(f.name), args, sim)
    finally:
        sim.terminate()
        sim.wait(10)

    loops = [first_loop["runs"][0], second_loop["runs"][0]]
    ref_wall = min(r["wall"] for r in loops)
    ref_cpu = min(r["cpu"] for r in loops)
    print(f"{'phase':<30}{'wall s':>8}{'ratio':>7}{'cpu s':>8}{'ratio':>7}{'sim cpu':>9}  outcome")
    for label, run in (("loop before (reference)", loops[0]), ("loop after (reference)", loops[1])):
        print(f"{label:<30}{run['wall']:>8.2f}{run['wall'] / ref_wall:>7.2f}{run['cpu']:>8.2f}"
              f"{run['cpu'] / ref_cpu:>7.2f}{run['sim_cpu']:>9.2f}  failed={run['failed']}")
    names = {"first": "backupbot first run (all new)", "daily": "backupbot daily run (known)"}
    for run in bot["runs"]:
        print(f"{names[run['label']]:<30}{run['wall']:>8.2f}{run['wall'] / ref_wall:>7.2f}{run['cpu']:>8.2f}"
              f"{run['cpu'] / ref_cpu:>7.2f}{run['sim_cpu']:>9.2f}  {run['statuses']}"
              + (f" e.g. {run['failed']}" if run["failed"] else ""))
    print("(backupbot cpu: bot + SSH worker + CPU worker; sim cpu: the simulator in the same interval)")
    for run in bot["runs"]:
        print(f"  {run['label']} run cpu by process: "
              + ", ".join(f"{name} {sec:.2f} s" for name, sec in sorted(run["by_role"].items(), key=lambda x: -x[1])))
    startup = ", ".join(f"{k} {v * 1000:.0f} ms" for k, v in bot["startup"].items())
    print(f"\nstart-up, not in the runs: loop imports {first_loop['startup']['imports'] * 1000:.0f} ms; "
          f"backupbot {startup}")
    for label, phase in (("loop", first_loop), ("backupbot", bot)):
        total = sum(mb for _, mb in phase["peaks"])
        parts = ", ".join(f"{mb:.0f} MB {name}" for name, mb in phase["peaks"])
        print(f"peak RSS {label}: {total:.0f} MB in all ({parts})")
    print(f"event loop: longest wake-up delay loop {first_loop['stall_ms']:.0f} ms, backupbot {bot['stall_ms']:.0f} ms"
          f" (incl. waiting for a CPU); longest run of its own work loop {first_loop['busy_ms']:.0f} ms, "
          f"backupbot {bot['busy_ms']:.0f} ms (target <= 50 ms)")
    first, daily = bot["runs"]
    print(f"vs bare asyncssh loop: first run wall {first['wall'] / ref_wall:.2f}x (target <= {TARGETS['first']}), "
          f"daily run wall {daily['wall'] / ref_wall:.2f}x (<= {TARGETS['daily']}), "
          f"CPU first {first['cpu'] / ref_cpu:.2f}x / daily {daily['cpu'] / ref_cpu:.2f}x (<= {TARGETS['cpu']})")


if __name__ == "__main__":
    main()
