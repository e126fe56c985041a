"""A RouterOS-like SSH server for the demo, the tests and the benchmarks.

Each `SimDevice` answers exec requests the way a MikroTik router does: `/export` with its header and
wrapped lines, v6/v7 differences in sensitive values and flags, `/system resource print`, and RouterOS
CLI errors printed on stdout with exit status 0. `behaviour` makes it misbehave in the ways real
routers do (hang, drop mid-export, refuse, junk, CLI error, bad credentials), optionally only once.

`Simulator` runs one asyncssh listener per device, only ever on 127.0.0.0/8.
`python -m bot.ssh.simulator --count N ...` serves many devices from a separate process (benchmarks);
each export is rendered before it listens, and SIGUSR1 changes the config of every 20th device.
"""

from __future__ import annotations

import argparse
import asyncio
import ipaddress
import json
import logging
import os
import random
import re
import resource
import signal
import socket
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

import asyncssh

Behaviour = Literal[
    "ok", "hang", "drop", "refuse", "garbage", "error", "auth_fail", "hang_once", "drop_once"
]
BEHAVIOURS: frozenset[str] = frozenset(Behaviour.__args__)  # type: ignore[attr-defined]
LOOPBACK = ipaddress.ip_network("127.0.0.0/8")
SENSITIVE = frozenset({"password", "secret", "passphrase", "wpa-pre-shared-key", "wpa2-pre-shared-key"})
WIDTH = 79  # longest line of a wrapped export, continuation backslash included
MONTHS = ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")
# Key exchanges a RouterOS SSH server offers: no post-quantum hybrid (asyncssh's own default,
# mlkem768x25519, costs both ends a little more than any router would make a client pay).
KEX_ALGS = ("curve25519-sha256", "curve25519-sha256@libssh.org", "diffie-hellman-group-exchange-sha256",
            "diffie-hellman-group14-sha256", "diffie-hellman-group14-sha1")
GARBAGE = b"\x1b[?1049h\xff\xfb\x01\xff\xfb\x03MikroTik \x00\x9c\x80 not an export \xfe\xfe\r\n"

_SPECIAL = re.compile(r'[\s"$;\\\[\]{}=#]')
_PROP = re.compile(r'([\w.-]+)=("(?:\\.|[^"\\])*"|\S*)')
_ENTRY = re.compile(r"(/[a-z0-9 -]+?) (add|set(?: \[ find default=yes \])?)(?: (.*))?")
Entry = tuple[str, list[tuple[str, str]]]  # ("add", [("comment", '"a b"'), ...]): values as exported

# The generated config, in terse form: one "section verb props" line per entry, values as exported.
CONFIG = """\
/interface bridge add admin-mac={mac} auto-mac=no comment=defconf name=bridge vlan-filtering=yes
/interface vlan add interface=bridge name=vlan10-mgmt vlan-id=10
/interface vlan add interface=bridge name=vlan20-users vlan-id=20
/interface vlan add interface=bridge name=vlan30-guest vlan-id=30
/interface list add comment=defconf name=WAN
/interface list add comment=defconf name=LAN
{wireless}
/ip pool add name=pool-users ranges=10.20.0.100-10.20.0.254
/ip address add address=192.168.88.1/24 comment=defconf interface=bridge network=192.168.88.0
/ip address add address=10.10.0.1/24 comment="mgmt gateway" interface=vlan10-mgmt network=10.10.0.0
/ip address add address=10.20.0.1/24 comment="users gateway" interface=vlan20-users network=10.20.0.0
/ip address add address=10.30.0.1/24 comment="guest gateway" interface=vlan30-guest network=10.30.0.0
/ip dns set allow-remote-requests=yes servers=1.1.1.1,9.9.9.9
/ip firewall address-list add address=10.10.0.0/24 comment="management hosts" list=mgmt
/ip firewall address-list add address=203.0.113.0/24 comment="monitoring provider" list=mgmt
/ip firewall filter add action=accept chain=input comment="defconf: accept established,related,untracked" \
connection-state=established,related,untracked
/ip firewall filter add action=drop chain=input comment="defconf: drop invalid" connection-state=invalid
/ip firewall filter add action=accept chain=input comment="defconf: accept ICMP" protocol=icmp
/ip firewall filter add action=accept chain=input comment="allow ssh and winbox from mgmt" dst-port=22,8291 \
protocol=tcp src-address-list=mgmt
/ip firewall filter add action=drop chain=input comment="defconf: drop all not coming from LAN" \
in-interface-list=!LAN
/ip firewall filter add action=fasttrack-connection chain=forward comment="defconf: fasttrack" \
connection-state=established,related hw-offload=yes
/ip firewall filter add action=drop chain=forward comment="defconf: drop all from WAN not DSTNATed" \
connection-nat-state=!dstnat connection-state=new in-interface-list=WAN
/ip firewall nat add action=masquerade chain=srcnat comment="defconf: masquerade" out-interface-list=WAN
/ppp secret add local-address=10.99.0.1 name=branch-office password={ppp} profile=default-encryption \
remote-address=10.99.0.2 service=l2tp
/system clock set time-zone-name=Europe/Berlin
/system identity set name={name}
/system script add dont-require-permissions=no name=nightly-backup owner=admin \
policy=ftp,read,write,policy,test
"""
WIRELESS = {
    6: "/interface wireless security-profiles set [ find default=yes ] authentication-types=wpa-psk,wpa2-psk "
       "mode=dynamic-keys supplicant-identity=MikroTik wpa-pre-shared-key={psk} wpa2-pre-shared-key={psk}",
    7: "/interface wifi security add authentication-types=wpa2-psk,wpa3-psk name=sec-home passphrase={psk}",
}
SCRIPT = [":local name [/system identity get name]", "/system backup save name=$name dont-encrypt=yes",
          ':log info "nightly backup of $name saved"']
RESOURCE = [  # /system resource print rows after uptime and version: (name, v7 value, v6 value)
    ("build-time", "2025-09-18 11:53:37", "Aug/09/2022 10:28:51"), ("factory-software", "7.14.3", "6.44.6"),
    ("free-memory", "812.4MiB", "28.6MiB"), ("total-memory", "1024.0MiB", "64.0MiB"),
    ("cpu", "ARM64", "MIPS 24Kc V7.4"), ("cpu-count", "4", "1"), ("cpu-frequency", "1400MHz", "650MHz"),
    ("cpu-load", "1%", "3%"), ("free-hdd-space", "867.4MiB", "3.9MiB"),
    ("total-hdd-space", "1024.0MiB", "16.0MiB"), ("write-sect-since-reboot", "2051", "1092"),
    ("write-sect-total", "21451", "90134"), ("bad-blocks", "0%", "0%"),
    ("architecture-name", "arm64", "mipsbe"),
]


def _utcnow() -> datetime:
    return datetime.now(UTC)


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("$", "\\$")


def _quote(value: str) -> str:
    return value if value and not _SPECIAL.search(value) else f'"{_escape(value)}"'


def _script_source(lines: list[str]) -> str:
    """A script source as RouterOS exports it: `\\n` escapes, one source line per export line."""
    return '"\\\n' + "".join(f"    \\n{_escape(ln)}\\r\\\n" for ln in lines) + '    \\n"'


def _render(verb: str, props: list[tuple[str, str]], *, prefix: str, wrap: bool) -> str:
    """One entry, wrapped at 79 columns (`\\` + 4-space continuation) or terse (one line)."""
    tokens = [f"{k}={v}" for k, v in props]
    head = f"{prefix} {verb}" if prefix else verb
    line = " ".join([head, *tokens])
    if not wrap or (len(line) <= WIDTH and "\n" not in line):
        return line
    out, col = [head], len(head)
    for i, tok in enumerate(tokens):
        room = WIDTH - (0 if i == len(tokens) - 1 else 2)  # keep room for a trailing " \\"
        if col + 1 + len(tok.split("\n", 1)[0]) <= room:
            out.append(" " + tok)
        elif "\n" not in tok and col + 1 + tok.index("=") + 2 <= WIDTH:
            key, value = tok.split("=", 1)
            out.append(f" {key}=\\\n    {value}")  # RouterOS also wraps right after "="
        else:
            out.append(f" \\\n    {tok}")
        col = len(out[-1].rsplit("\n", 1)[-1]) if "\n" in out[-1] else col + len(out[-1])
    return "".join(out)


def _base_config(name: str, major: int, rng: random.Random) -> dict[str, list[Entry]]:
    mac = ":".join(f"{rng.randrange(256):02X}" for _ in range(6))
    psk = f"{rng.choice(['Olive', 'Maple', 'Cedar'])}-{rng.randrange(10**6):06d}"
    text = CONFIG.format(wireless=WIRELESS[6 if major < 7 else 7].format(psk=psk), mac=mac, psk=psk,
                         ppp=f"l2tp-{rng.randrange(16**8):08x}", name=_quote(name))
    cfg: dict[str, list[Entry]] = {}
    for line in text.splitlines():
        m = _ENTRY.fullmatch(line)
        assert m, line
        cfg.setdefault(m[1], []).append((m[2], _PROP.findall(m[3] or "")))
    cfg["/system script"][0][1].append(("source", _script_source(SCRIPT)))
    return cfg


@dataclass(eq=False)
class SimDevice:
    """One simulated router. Mutate fields freely; call `Simulator.restart_device` after changing
    `behaviour` to or from "refuse", or after `rotate_host_key()`.

    behaviour: "ok"; "hang" (accepts every command, never answers); "drop" (answers other
    commands, cuts the TCP connection halfway through an export); "refuse" (no listener); "garbage"
    (junk bytes); "error" (exports answer `bad command name export (line 1 column 2)`);
    "auth_fail" (no credentials work); "hang_once"/"drop_once" (misbehave once, then "ok").
    """

    name: str
    host: str = "127.0.0.1"
    port: int = 0  # 0: a free port is picked at start and written back here
    ros_version: str = "7.20.1"
    model: str = "RB5009UPr+S+"
    serial: str = ""  # "" derives one from the name
    software_id: str = ""
    username: str = "backup"
    password: str = field(default="backup-secret", repr=False)
    authorized_key: str | None = None  # OpenSSH public key text accepted for public-key auth
    size: int = 3_000  # approximate export size in bytes, padded with address-list entries
    # Seconds every command takes to answer: the round trips to a distant router plus its CLI
    # starting the command. Per command, not per export: asking anything costs a round trip.
    delay: float = 0.0
    behaviour: Behaviour = "ok"
    body: str | None = None  # the export without header ("\n" line ends); None generates one
    crlf: bool = True  # RouterOS ends exec output lines with CRLF
    clock: Callable[[], datetime] = field(default=_utcnow, repr=False)
    sessions: int = 0  # exec sessions opened (one per command)
    commands: list[str] = field(default_factory=list)  # every exec command received, in order
    connections: int = 0  # TCP connections accepted
    auth_attempts: int = 0
    host_key: asyncssh.SSHKey = field(default_factory=lambda: asyncssh.generate_private_key("ssh-ed25519"),
                                      repr=False)
    _config: dict[str, list[Entry]] | None = field(default=None, init=False, repr=False)
    _cache: dict[tuple[bool, bool], str] = field(default_factory=dict, init=False, repr=False)
    _changes: int = field(default=0, init=False, repr=False)
    _tripped: bool = field(default=False, init=False, repr=False)
    _booted: datetime | None = field(default=None, init=False, repr=False)

    def __post_init__(self) -> None:
        crc = zlib.crc32(self.name.encode())
        self.serial = self.serial or f"HE{crc:08X}"[:11]
        self.software_id = self.software_id or f"{crc >> 16:04X}-{crc & 0xFFFF:04X}"

    @property
    def major(self) -> int:
        return int(self.ros_version.split(".")[0])

    @property
    def host_key_openssh(self) -> str:
        return self.host_key.export_public_key("openssh").decode().strip()

    @property
    def host_key_fingerprint(self) -> str:
        return self.host_key.get_fingerprint("sha256")

    # -- mutations ------------------------------------------------------------------------------

    def change(self, n: int = 1) -> None:
        """Deterministically change the config n times (firewall rules, address-list entries)."""
        for _ in range(n):
            self._changes += 1
            k = self._changes
            ip = f"198.51.100.{k % 250 + 1}"
            if self.body is not None:
                self.body += f"/ip firewall address-list\nadd address={ip} comment=change-{k} list=changed\n"
                continue
            cfg = self._configured()
            if k % 3 == 1:  # a new firewall rule just before the final forward drop
                rule = ("add", [("action", "drop"), ("chain", "forward"),
                                ("comment", _quote(f"block scanner {k}")), ("dst-port", str(1000 + k)),
                                ("protocol", "tcp"), ("src-address", ip)])
                cfg["/ip firewall filter"].insert(-1, rule)
            elif k % 3 == 2:
                cfg["/ip firewall address-list"].append(
                    ("add", [("address", ip), ("comment", f"added-{k}"), ("list", "blocklist")]))
            else:  # edit an existing entry's comment
                cfg["/ip firewall address-list"][0][1][1] = ("comment", _quote(f"management hosts rev {k}"))
        self._cache.clear()

    def rotate_host_key(self) -> None:
        """A new host key: the router was replaced, reset, or someone is impersonating it."""
        self.host_key = asyncssh.generate_private_key("ssh-ed25519")

    def upgrade(self, version: str) -> None:
        self.ros_version = version
        self._cache.clear()

    def warm(self) -> None:
        """Generate the config and render its full export now, so that the first collection
        costs the simulator no more than any later one (benchmarks measure the client)."""
        self._body(hide=False, terse=False)

    # -- what the device prints -------------------------------------------------------------------

    def export_text(self, command: str = "/export") -> bytes:
        """Exactly what the device prints for `command` (any command, export or not). Pure but for
        the injected clock: two calls differ only in the header timestamp unless `change()` ran."""
        text = self._respond(command)
        return (text.replace("\n", "\r\n") if self.crlf else text).encode()

    def _respond(self, command: str) -> str:
        line = command.rstrip()  # "/export" == " export"; v7 also takes "/system/resource/print"
        line = line.replace("/", " ") if self.major >= 7 else re.sub(r"^(\s*)/", r"\1 ", line)
        words = [(m.start(), m[0]) for m in re.finditer(r"\S+", line)]
        path = tuple(w for _, w in words)
        if not path:
            return ""
        if path[0] == "export":
            flags = {"compact", "verbose", "terse", "hide-sensitive"}
            flags |= {"show-sensitive"} if self.major >= 7 else set()  # v6: "expected end of command"
            for pos, word in words[1:]:
                if word not in flags:
                    return f"expected end of command (line 1 column {pos + 1})\n"
            show = "show-sensitive" in path if self.major >= 7 else "hide-sensitive" not in path
            return self._header() + self._body(hide=not show, terse="terse" in path)
        known = {("system", "resource", "print"): self._resource,
                 ("system", "identity", "print"): self._identity}
        for i, (pos, word) in enumerate(words):
            if not any(k[: i + 1] == path[: i + 1] for k in known):
                return f"bad command name {word} (line 1 column {pos + 1})\n"
        return known[path]() if path in known else ""

    def _identity(self) -> str:
        return f"  name: {self.name}\n"

    def _header(self) -> str:
        now = self.clock()
        if self.major >= 7:
            stamp = now.strftime("%Y-%m-%d %H:%M:%S")
        else:
            stamp = f"{MONTHS[now.month - 1]}/{now:%d/%Y %H:%M:%S}"
        return (f"# {stamp} by RouterOS {self.ros_version}\n# software id = {self.software_id}\n#\n"
                f"# model = {self.model}\n# serial number = {self.serial}\n")

    def _resource(self) -> str:
        now = self.clock()
        self._booted = self._booted or now
        up = int((now - self._booted).total_seconds()) + 3 * 86400 + 4 * 3600 + 17
        rows = [("uptime", f"{up // 86400}d{up % 86400 // 3600}h{up % 3600 // 60}m{up % 60}s"),
                ("version", f"{self.ros_version} (stable)"),
                *[(k, v7 if self.major >= 7 else v6) for k, v7, v6 in RESOURCE],
                ("board-name", self.model), ("platform", "MikroTik")]
        return "".join(f"{k:>25}: {v}\n" for k, v in rows) + "\n"

    def _body(self, *, hide: bool, terse: bool) -> str:
        if self.body is not None:
            return self.body
        key = (hide, terse)
        if key not in self._cache:
            parts = []
            for section, entries in self._configured().items():
                if not terse:
                    parts.append(section)
                for verb, props in entries:
                    kept = [(k, v) for k, v in props if not (hide and k in SENSITIVE)]
                    parts.append(_render(verb, kept, prefix=section if terse else "", wrap=not terse))
            self._cache[key] = "\n".join(parts) + "\n"
        return self._cache[key]

    def _configured(self) -> dict[str, list[Entry]]:
        """The structured config, generated once (deterministic from the name) and padded to `size`."""
        if self._config is None:
            rng = random.Random(self.name)
            cfg = _base_config(self.name, self.major, rng)
            total = 160 + sum(len(s) + 1 + sum(len(_render(v, p, prefix="", wrap=True)) + 1 for v, p in e)
                              for s, e in cfg.items())
            pad = cfg["/ip firewall address-list"]
            streets = ["Main St", "Harbour Rd", "Mill Lane", "Station Sq", "Elm Ave", "Kings Way"]
            lists = ["customers", "customers", "customers", "vpn-peers", "blocklist"]
            i = 0
            while total < self.size:
                i += 1
                comment = f"cust-{i:05d} {rng.randrange(1, 200)} {rng.choice(streets)}"
                entry = ("add", [("address", f"10.{100 + i // 65536}.{i // 256 % 256}.{i % 256}"),
                                 ("comment", _quote(comment)), ("list", rng.choice(lists))])
                pad.append(entry)
                total += len(_render(*entry, prefix="", wrap=True)) + 1
            self._config = cfg
        return self._config


class _Session(asyncssh.SSHServer):
    """One accepted connection to one device: counts it and checks credentials."""

    def __init__(self, sim: Simulator, device: SimDevice):
        self.sim, self.device = sim, device

    def connection_made(self, conn: asyncssh.SSHServerConnection) -> None:
        self.conn = conn
        self.device.connections += 1
        self.sim._conns.setdefault(self.device.name, set()).add(conn)

    def connection_lost(self, exc: Exception | None) -> None:
        self.sim._conns.get(self.device.name, set()).discard(self.conn)

    def begin_auth(self, username: str) -> bool:
        return True

    def password_auth_supported(self) -> bool:
        return True

    def validate_password(self, username: str, password: str) -> bool:
        d = self.device
        d.auth_attempts += 1
        return d.behaviour != "auth_fail" and (username, password) == (d.username, d.password)

    def public_key_auth_supported(self) -> bool:
        return self.device.authorized_key is not None

    def validate_public_key(self, username: str, key: asyncssh.SSHKey) -> bool:
        d = self.device
        d.auth_attempts += 1
        trusted = asyncssh.import_public_key(d.authorized_key or "")
        return d.behaviour != "auth_fail" and username == d.username and key == trusted


async def _serve(device: SimDevice, process: asyncssh.SSHServerProcess[bytes]) -> None:
    """One exec request. RouterOS prints its errors on stdout and exits 0."""
    device.sessions += 1
    command = process.command
    if command is None:  # shell request: exec only
        process.exit(0)
        return
    device.commands.append(command)
    is_export = command.strip().lstrip("/").startswith("export")
    if device.delay:
        await asyncio.sleep(device.delay)
    behaviour = device.behaviour
    if behaviour.endswith("_once"):
        behaviour = "ok" if device._tripped else behaviour.removesuffix("_once")  # type: ignore[assignment]
    try:
        if behaviour == "hang":
            device._tripped = True
            await process.wait_closed()  # never answers; ends when the client gives up
            return
        if behaviour == "garbage":
            data = GARBAGE
        elif behaviour == "error" and is_export:
            data = b"bad command name export (line 1 column 2)" + (b"\r\n" if device.crlf else b"\n")
        else:
            data = device.export_text(command)
        if behaviour == "drop" and is_export:
            device._tripped = True
            process.stdout.write(data[: len(data) // 2])
            await process.stdout.drain()
            process.channel.get_connection().abort()
            return
        process.stdout.write(data)
        await process.stdout.drain()
        process.exit(0)
    except (OSError, asyncssh.Error):  # the client went away first
        pass


class Simulator:
    """Serves `devices`, one asyncssh listener per device host:port ("refuse" = no listener)."""

    def __init__(self) -> None:
        self.devices: dict[str, SimDevice] = {}
        self._listeners: dict[str, asyncssh.SSHAcceptor] = {}
        self._held: dict[str, socket.socket] = {}  # ports of "refuse" devices
        self._conns: dict[str, set[asyncssh.SSHServerConnection]] = {}
        self._started: set[str] = set()  # listening, or refusing on a fixed port

    def add(self, device: SimDevice) -> SimDevice:
        _check(device)
        if device.name in self.devices:
            raise ValueError(f"{device.name}: already added")
        self.devices[device.name] = device
        return device

    async def start(self) -> None:
        """Start every device not yet listening (call again after adding more)."""
        pending = [d for n, d in self.devices.items() if n not in self._started]
        await asyncio.gather(*(self._listen(d) for d in pending))

    async def stop(self) -> None:
        await asyncio.gather(*(self._close(name) for name in list(self.devices)))
        self._started.clear()

    async def restart_device(self, name: str) -> None:
        """Drop the device's listener and connections, then listen again unless it now refuses."""
        device = self.devices[name]
        await self._close(name)
        await self._listen(device)

    def open_connections(self, name: str) -> int:
        """SSH connections to this device that are open right now."""
        return len(self._conns.get(name, ()))

    async def __aenter__(self) -> Simulator:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    async def _listen(self, device: SimDevice) -> None:
        _check(device)  # fields may have changed since add()
        if device.port == 0:
            device.port = _free_port(device.host)
        self._started.add(device.name)
        if device.behaviour == "refuse":
            # Bound but not listening: connections are refused, and no other device can be given
            # this port meanwhile (a free port found now could otherwise be handed out again).
            holder = socket.socket()
            holder.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            holder.bind((device.host, device.port))
            self._held[device.name] = holder
            return
        self._listeners[device.name] = await asyncssh.listen(
            device.host, device.port, reuse_address=True,
            server_factory=lambda: _Session(self, device), server_host_keys=[device.host_key], kex_algs=KEX_ALGS,
            process_factory=lambda process: _serve(device, process), encoding=None,
            allow_pty=False, line_editor=False, agent_forwarding=False, x11_forwarding=False,
            allow_scp=False, keepalive_interval=0, login_timeout=30,
        )

    async def _close(self, name: str) -> None:
        if (holder := self._held.pop(name, None)) is not None:
            holder.close()
        listener = self._listeners.pop(name, None)
        if listener is not None:
            listener.close()
            await listener.wait_closed()
        for conn in list(self._conns.pop(name, ())):
            conn.abort()


def _check(device: SimDevice) -> None:
    if ipaddress.ip_address(device.host) not in LOOPBACK:
        raise ValueError(f"{device.name}: simulator only binds to 127.0.0.0/8, not {device.host}")
    if device.behaviour not in BEHAVIOURS:
        raise ValueError(f"{device.name}: unknown behaviour {device.behaviour!r}")


def write_client_key(path: Path) -> str:
    """Create an ed25519 client key at `path` (mode 0600) for key login; return its public key text."""
    key = asyncssh.generate_private_key("ssh-ed25519")
    path.write_bytes(key.export_private_key("openssh"))
    path.chmod(0o600)
    return key.export_public_key("openssh").decode().strip()


def _free_port(host: str) -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def fleet(count: int, base_host: str, port: int, sizes: list[int], mix: list[int], delay: float,
          password: str) -> list[SimDevice]:
    """`count` devices on consecutive loopback addresses; sizes by `mix` weights, every 5th on v6."""
    base = ipaddress.ip_address(base_host)
    slots = [size for size, weight in zip(sizes, mix, strict=True) for _ in range(weight)]
    models = ["RB5009UPr+S+", "C53UiG+5HPaxD2HPaxD", "CCR2004-1G-12S+2XS", "RB4011iGS+", "hAP lite"]
    return [SimDevice(name=f"sim{i + 1:04d}", host=str(base + i), port=port, password=password,
                      ros_version="6.49.7" if i % 5 == 4 else "7.20.1", model=models[i % len(models)],
                      size=slots[i % len(slots)], delay=delay) for i in range(count)]


async def _main(args: argparse.Namespace) -> None:
    password = os.environ.get(args.password_var, "backup-secret")
    sim = Simulator()
    for device in fleet(args.count, args.base_host, args.port, [int(x) for x in args.sizes.split(",")],
                        [int(x) for x in args.mix.split(",")], args.delay, password):
        sim.add(device)
    for device in sim.devices.values():
        device.warm()

    def next_day() -> None:  # SIGUSR1: every 20th device's config changes
        for device in list(sim.devices.values())[::20]:
            device.change()
            device.warm()

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    loop.add_signal_handler(signal.SIGUSR1, next_day)
    async with sim:
        devices = [{"name": d.name, "host": d.host, "port": d.port, "username": d.username,
                    "password_var": args.password_var, "size": d.size, "ros_version": d.ros_version}
                   for d in sim.devices.values()]
        print(json.dumps({"devices": devices}), flush=True)
        await stop.wait()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bot.ssh.simulator", description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=10)
    parser.add_argument("--base-host", default="127.0.1.1")
    parser.add_argument("--port", type=int, default=2222)
    parser.add_argument("--sizes", default="3000,40000,1000000")
    parser.add_argument("--mix", default="70,25,5")
    parser.add_argument("--delay", type=float, default=0.0, help="seconds every command takes to answer")
    parser.add_argument("--password-var", default="BACKUPBOT_SIM_PASSWORD",
                        help="environment variable holding the devices' password (default: backup-secret)")
    logging.getLogger("asyncssh").setLevel(logging.WARNING)
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)  # two sockets per device, at least
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, min(hard, 65536)), hard))
    asyncio.run(_main(parser.parse_args(argv)))


if __name__ == "__main__":
    main()
