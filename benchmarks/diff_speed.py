"""How fast is a big diff? bot.routeros.diff against GNU `diff -u` on the same files, in one run.

Builds two RouterOS-like exports per size (seeded, no network): a big `/ip firewall address-list`
(about half the lines, one section header above all of them), DHCP leases, firewall filter and
NAT rules, simple queues, routes and a few scripts, printed as RouterOS prints them (header
comments, CRLF, long lines wrapped at 80 columns with `\\` and a 4-space continuation). Between old
and new about 14 % of the lines change, scattered in short runs (edited, deleted and inserted
lines), a few firewall rules move, one small section disappears and a new one appears.

Both tools get the same input: the normalized text (`routeros.normalize`, as the product stores
and diffs it), written to a temporary folder. GNU diff runs as a subprocess with its output read
from a pipe; ours is `diffing.diff(old, new)` plus its `.text` (the product shows a Diff's hunks
and text). Best of several repetitions each. Extra rows time the other per-export work on the
same exports: `count_changes` (the backup run's +/- counts), `normalize` of the raw export and
`redact` of the normalized one, beside the whole-text substitution of redact's property pattern
(what redact did before it tried the pattern only near secret names; same output). The last line
prints our diff's time over GNU diff's, wall clock (the target) and, in brackets, CPU time
(steadier on a shared machine).

    python benchmarks/diff_speed.py                 # 20,000 and 100,000 lines
    python benchmarks/diff_speed.py --sizes 20000 --repeat 3
"""

from __future__ import annotations

import argparse
import random
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from bot.routeros import diff as diffing
from bot.routeros import export as routeros
from bot.core.secrets import SECRET_PROPERTY
from bot.routeros import redact as redaction

WIDTH = 80  # RouterOS wraps an exported line at the terminal width
WORDS = ("office", "uplink", "guest", "voip", "camera", "printer", "server", "backup", "mgmt", "wifi",
         "branch", "core", "edge", "lab", "dmz", "vpn", "iot", "hotspot", "customer", "transit")
LISTS = ("blocklist", "bogons", "customers", "monitoring", "admins", "spamhaus-drop", "scanners")


def _ip(r: random.Random, first: int = 10) -> str:
    return f"{first}.{r.randrange(256)}.{r.randrange(256)}.{r.randrange(1, 255)}"


def _mac(r: random.Random) -> str:
    return ":".join(f"{r.randrange(256):02X}" for _ in range(6))


def _name(r: random.Random) -> str:
    return f"{r.choice(WORDS)}-{r.choice(WORDS)}{r.randrange(1000)}"


def _address(r: random.Random) -> str:
    comment = f' comment="{_name(r)} {r.randrange(10_000)}"' if r.random() < 0.4 else ""
    return f"add address={_ip(r, r.randrange(1, 224))}{comment} list={r.choice(LISTS)}"


def _lease(r: random.Random) -> str:
    mac = _mac(r)
    return (f"add address={_ip(r)} client-id=1:{mac.lower()} comment=\"{_name(r)}\" mac-address={mac} "
            f"server=dhcp{r.randrange(1, 9)}")


def _filter(r: random.Random) -> str:
    return (f"add action={r.choice(('accept', 'drop', 'jump', 'reject'))} chain={r.choice(('input', 'forward'))} "
            f"comment=\"{_name(r)} {_name(r)}\" connection-state=new dst-port={r.randrange(1, 65535)} "
            f"in-interface-list={r.choice(('WAN', 'LAN'))} protocol={r.choice(('tcp', 'udp'))} "
            f"src-address-list={r.choice(LISTS)}")


def _nat(r: random.Random) -> str:
    return (f"add action=dst-nat chain=dstnat comment=\"{_name(r)}\" dst-address={_ip(r, 203)} "
            f"dst-port={r.randrange(1, 65535)} protocol=tcp to-addresses={_ip(r)} to-ports={r.randrange(1, 65535)}")


def _queue(r: random.Random) -> str:
    return f"add max-limit={r.randrange(1, 200)}M/{r.randrange(1, 200)}M name=\"{_name(r)}\" target={_ip(r)}/32"


def _route(r: random.Random) -> str:
    return f"add comment={_name(r)} distance={r.randrange(1, 5)} dst-address={_ip(r)}/24 gateway={_ip(r)}"


def _script(r: random.Random) -> str:
    body = "\\r\\n".join(f":local v{k} [/ip firewall address-list find list={r.choice(LISTS)}]" for k in range(6))
    return f"add dont-require-permissions=no name={_name(r)} owner=admin policy=read,write source=\"{body}\""


def _vlan(r: random.Random) -> str:
    return f"add interface=sfp-sfpplus{r.randrange(1, 9)} name={_name(r)} vlan-id={r.randrange(2, 4095)}"


def _static(r: random.Random) -> str:
    return f"add address={_ip(r)} name={_name(r)}.example.net type=A"


def _peer(r: random.Random) -> str:
    return f"add as={r.randrange(64512, 65535)} local.role=ebgp name={_name(r)} remote.address={_ip(r, 198)}"


# Share of the lines per menu, and what an entry looks like. The address-list dominates, as on
# an ISP edge router with block lists; /ip dns static goes away in the new export and
# /routing bgp connection appears.
MENUS: dict[str, tuple[float, Callable[[random.Random], str]]] = {
    "/interface vlan": (0.01, _vlan),
    "/ip dns static": (0.005, _static),
    "/ip firewall address-list": (0.50, _address),
    "/ip firewall filter": (0.10, _filter),
    "/ip firewall nat": (0.05, _nat),
    "/ip dhcp-server lease": (0.20, _lease),
    "/queue simple": (0.08, _queue),
    "/ip route": (0.045, _route),
    "/system script": (0.01, _script),
}
GONE, NEW = "/ip dns static", ("/routing bgp connection", _peer)


def wrap(line: str) -> list[str]:
    """Print one line as RouterOS does: break before WIDTH at a space (kept before the `\\`) or
    after a `=`, continue on a line indented by 4 spaces."""
    out, indent = [], ""
    while len(indent) + len(line) > WIDTH - 1:
        room = WIDTH - 2 - len(indent)
        cut = max(line.rfind(" ", 0, room), line.rfind("=", 0, room))
        if cut <= 0:
            break
        out.append(indent + line[:cut + 1] + "\\")
        line, indent = line[cut + 1:], "    "
    out.append(indent + line)
    return out


def build(lines: int, seed: int) -> tuple[bytes, bytes]:
    """Old and new raw exports whose normalized texts have about `lines` lines each."""
    r = random.Random(seed)
    old = {menu: [make(r) for _ in range(max(2, round(share * lines)))] for menu, (share, make) in MENUS.items()}
    new: dict[str, list[str]] = {}
    for menu, entries in old.items():
        if menu == GONE:
            continue
        make = MENUS[menu][1]
        kept: list[str] = []
        k = 0
        while k < len(entries):
            roll = r.random()
            run = r.choice((1, 1, 1, 2, 3, 5))  # changes come alone or in short runs
            if roll < 0.08:
                kept.extend(make(r) for _ in range(run))  # edited entries
            elif roll < 0.13:
                pass  # deleted entries
            elif roll < 0.18:
                kept.extend(make(r) for _ in range(run))  # inserted entries...
                kept.extend(entries[k:k + run])  # ...before unchanged ones
            else:
                kept.extend(entries[k:k + run])
            k += run
        new[menu] = kept
    rules = new["/ip firewall filter"]
    for _ in range(max(1, len(rules) // 500)):  # a few rules moved (`move`) to another place
        rules.insert(r.randrange(len(rules)), rules.pop(r.randrange(len(rules))))
    menu, make = NEW
    new[menu] = [make(r) for _ in range(max(2, lines // 200))]
    return export(old, "2025-01-01 02:00:00"), export(new, "2025-01-02 02:00:00")


def export(menus: dict[str, list[str]], at: str) -> bytes:
    out = [f"# {at} by RouterOS 7.18.2", "# software id = ABCD-1234", "#", "# model = CCR2116-12G-4S+",
           "# serial number = HF30A1B2C3D"]
    for menu, entries in menus.items():
        out.append(menu)
        for entry in entries:
            out.extend(wrap(entry))
    return ("\r\n".join(out) + "\r\n").encode()


def cpu_seconds() -> float:
    """CPU time of this process and of its finished children (GNU diff runs as one)."""
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return time.process_time() + children.ru_utime + children.ru_stime


def best(rows: dict[str, Callable[[], object]], repeat: int) -> dict[str, tuple[float, float]]:
    """(wall, CPU) seconds of each row, each the least of `repeat` runs. The rows take turns, so a
    burst of other load on the machine slows one round of all of them rather than all runs of one.
    CPU time is shown too: on a shared machine it moves less than wall time."""
    wall: dict[str, float] = dict.fromkeys(rows, float("inf"))
    cpu: dict[str, float] = dict.fromkeys(rows, float("inf"))
    for _ in range(repeat):
        for label, fn in rows.items():
            c0, t0 = cpu_seconds(), time.perf_counter()
            fn()
            wall[label] = min(wall[label], time.perf_counter() - t0)
            cpu[label] = min(cpu[label], cpu_seconds() - c0)
    return {label: (wall[label], cpu[label]) for label in rows}


def gnu_diff(old: Path, new: Path) -> bytes:
    done = subprocess.run(["diff", "-u", str(old), str(new)], stdout=subprocess.PIPE, check=False)
    if done.returncode > 1:
        raise SystemExit(f"diff failed with exit code {done.returncode}")
    return done.stdout


GNU, OURS = "GNU diff -u (reference)", "bot.routeros.diff.diff + .text"


def ms(seconds: float) -> str:
    return f"{seconds * 1000:,.1f} ms"


def measure(lines: int, seed: int, repeat: int, folder: Path) -> tuple[float, float]:
    """Prints the rows for one size; returns our diff time over GNU diff's, wall and CPU."""
    old_raw, new_raw = build(lines, seed)
    old, new = routeros.normalize(old_raw), routeros.normalize(new_raw)
    old_path, new_path = folder / f"old-{lines}.rsc", folder / f"new-{lines}.rsc"
    old_path.write_text(old, encoding="utf-8")
    new_path.write_text(new, encoding="utf-8")

    gnu_out = gnu_diff(old_path, new_path).decode()
    gnu_added = sum(ln.startswith("+") for ln in gnu_out.splitlines()[2:])
    gnu_removed = sum(ln.startswith("-") for ln in gnu_out.splitlines()[2:])
    ours = diffing.diff(old, new)
    print(f"\n{lines:,} lines: export {len(old_raw.splitlines()):,} raw lines ({len(old_raw) / 1e6:.1f} MB), "
          f"normalized old {old.count(chr(10)):,} / new {new.count(chr(10)):,} lines")
    changed = (gnu_added + gnu_removed) / (old.count("\n") + new.count("\n"))
    print(f"  GNU diff -u: +{gnu_added:,} -{gnu_removed:,} ({gnu_out.count(chr(10) + '@@'):,} hunks, "
          f"{changed:.0%} of lines changed);  "
          f"bot.routeros.diff: +{ours.added:,} -{ours.removed:,} ({len(ours.hunks):,} hunks)")

    key = routeros_key()
    times = best({
        GNU: lambda: gnu_diff(old_path, new_path),
        OURS: lambda: diffing.diff(old, new).text,
        "bot.routeros.diff.count_changes": lambda: diffing.count_changes(old, new),
        "routeros.normalize (raw old)": lambda: routeros.normalize(old_raw),
        "routeros.redact (normalized old)": lambda: redaction.redact(old, key),
        "  its pattern over every character": lambda: SECRET_PROPERTY.sub(lambda m: m[0], old),
    }, repeat)
    print(f"  {'':<34} {'wall':>12} {'CPU':>12}")
    for label, (wall, cpu) in times.items():
        print(f"  {label:<34} {ms(wall):>12} {ms(cpu):>12}")
    return times[OURS][0] / times[GNU][0], times[OURS][1] / max(times[GNU][1], 1e-6)


def routeros_key() -> bytes:
    return b"k" * 32  # the instance key's size; the value does not change the work


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[20_000, 100_000], help="normalized lines")
    parser.add_argument("--repeat", type=int, default=5, help="runs per row (best is reported)")
    parser.add_argument("--seed", type=int, default=9)
    args = parser.parse_args()
    if shutil.which("diff") is None:
        sys.exit("GNU diff (diffutils) is not installed: it is the reference")
    print(subprocess.run(["diff", "--version"], stdout=subprocess.PIPE, text=True, check=True).stdout.splitlines()[0])
    print(f"Python {sys.version.split()[0]}, best of {args.repeat}")
    ratios = []
    with tempfile.TemporaryDirectory(prefix="backupbot-diff-") as tmp:
        for lines in args.sizes:
            ratios.append((lines, measure(lines, args.seed, args.repeat, Path(tmp))))
    print()
    print("  ".join(f"ratio {lines // 1000}k: {wall:.1f}x GNU diff (CPU {cpu:.1f}x)" for lines, (wall, cpu) in ratios))


if __name__ == "__main__":
    main()
