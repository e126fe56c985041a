"""How big does a year of backups get? Simulates devices x days through the real Store API.

Each device has a synthetic RouterOS-like export (10-40 KB, CRLF, the repetition real exports
have: many `add ...` lines per menu with the same keys). Each day one run visits every device:
about 5 % of devices changed a few lines (a new version), about 1 % fail, the rest are
confirmed unchanged. Then it prints the distinct configs, what they take compressed one by one
(zlib level 6, the store's codec), the database file after checkpoint, and their ratio: the
store's overhead over the configs themselves. It also times the per-device "latest" reads.

    python benchmarks/storage_size.py                     # 1,000 devices x 365 days (~5 min)
    python benchmarks/storage_size.py --devices 100 --days 30
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import random
import sqlite3
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
    "/interface vlan": lambda r: (f"add interface=sfp-sfpplus{r.randrange(1, 9)} name={_name(r)} "
                                  f"vlan-id={r.randrange(2, 4095)}"),
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


def compressed_size(raw: bytes) -> int:
    return len(zlib.compress(raw, 6))


async def simulate(store: Store, devices: list[SyntheticDevice], days: int, change: float, fail: float,
                   seed: int, concurrency: int) -> Totals:
    totals, latest = Totals(), {}
    rng = random.Random(seed)
    slots = asyncio.Semaphore(concurrency)

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
            totals.distinct += 1
            totals.raw_bytes += len(raw)
            totals.compressed_bytes += await asyncio.to_thread(compressed_size, raw)

    for day in range(days):
        at = START + timedelta(days=day)
        run_id = await store.start_run("schedule", at, SITE)
        await asyncio.gather(*(visit(run_id, d, at + timedelta(seconds=i), rng.random())
                               for i, d in enumerate(devices)))
        totals.attempts += len(devices)
        summary = OutboxMessage("C0BACKUPS", "summary", {"run": run_id, "devices": len(devices)})
        await store.finish_run(run_id, at + timedelta(minutes=20), [summary])
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


def space_by_object(path: Path) -> dict[str, int]:
    """Bytes per table/index, if this SQLite has the dbstat table (a measuring aid only)."""
    with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as db:
        try:
            rows = db.execute("SELECT name, SUM(pgsize) FROM dbstat GROUP BY name ORDER BY 2 DESC").fetchall()
        except sqlite3.OperationalError:
            return {}
    return dict(rows)


def mb(n: float) -> str:
    return f"{n / 1e6:,.1f} MB"


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--devices", type=int, default=1000)
    parser.add_argument("--days", type=int, default=365)
    parser.add_argument("--change", type=float, default=0.05, help="share of devices changed per day")
    parser.add_argument("--fail", type=float, default=0.01, help="share of devices failing per day")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--concurrency", type=int, default=50)
    parser.add_argument("--db", type=Path, help="database path (default: a temporary folder)")
    args = parser.parse_args()

    path = args.db or Path(tempfile.mkdtemp(prefix="backupbot-bench-")) / "store.sqlite"
    devices = [SyntheticDevice.make(i, args.seed) for i in range(args.devices)]
    print(f"{args.devices:,} devices x {args.days} days, {args.change:.0%} changed/day, {args.fail:.0%} failed/day")
    t0 = time.perf_counter()
    async with await Store.open(path) as store:
        totals = await simulate(store, devices, args.days, args.change, args.fail, args.seed, args.concurrency)
    elapsed = time.perf_counter() - t0  # closing the last connection checkpoints and removes the WAL

    db_size = path.stat().st_size + sum(p.stat().st_size for p in path.parent.glob(path.name + "-*"))
    print(f"elapsed:                       {elapsed:,.0f} s ({elapsed / totals.attempts * 1e6:,.0f} us per device-day)")
    print(f"attempts recorded:             {totals.attempts:,}")
    print(f"distinct configs:              {totals.distinct:,}")
    print(f"their raw size:                {mb(totals.raw_bytes)}")
    print(f"their zlib-6 size, one by one: {mb(totals.compressed_bytes)}")
    print(f"database file (checkpointed):  {mb(db_size)}")
    print(f"ratio database / compressed:   {db_size / totals.compressed_bytes:.2f}x")
    for name, size in space_by_object(path).items():
        print(f"  {name:<28} {mb(size):>10}")
    for name, ms in (await time_reads(path)).items():
        print(f"{name}({args.devices:,} devices): {ms:.1f} ms")
    print(f"database left at {path}")


if __name__ == "__main__":
    asyncio.run(main())
