"""The simulator behaves like RouterOS where backupbot depends on it (pure parts, plus the CLI)."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
from datetime import UTC, datetime, timedelta

import pytest

from bot.routeros import export as routeros
from bot.ssh.simulator import SimDevice, Simulator

T0 = datetime(2024, 1, 2, 12, 34, 56, tzinfo=UTC)


def device(**kw: object) -> SimDevice:
    return SimDevice("r1", clock=lambda: T0, **kw)  # type: ignore[arg-type]


def test_header_formats_follow_the_major_version() -> None:
    """v7 prints an ISO date, v6 a lowercase month name; then software id, model and serial lines."""
    v7 = device(ros_version="7.20.1", model="RB5009UPr+S+").export_text("/export").decode()
    v6 = device(ros_version="6.49.7").export_text("/export").decode()
    assert v7.startswith("# 2024-01-02 12:34:56 by RouterOS 7.20.1\r\n# software id = ")
    assert "\r\n#\r\n# model = RB5009UPr+S+\r\n# serial number = " in v7
    assert v6.startswith("# jan/02/2024 12:34:56 by RouterOS 6.49.7\r\n")


def test_sensitive_flags_behave_per_version() -> None:
    """v7 /export hides secrets and show-sensitive shows them; v6 shows them, hide-sensitive hides,
    and v6 answers show-sensitive with its real CLI error."""
    v7, v6 = device(ros_version="7.20.1"), device(ros_version="6.49.7")
    assert b"passphrase=" not in v7.export_text("/export")
    assert b"passphrase=" in v7.export_text("/export show-sensitive")
    assert b"password=" in v6.export_text("/export")
    assert b"password=" not in v6.export_text("/export hide-sensitive")
    assert v6.export_text("/export show-sensitive") == b"expected end of command (line 1 column 9)\r\n"


def test_unknown_commands_answer_like_the_routeros_cli() -> None:
    """Errors name the word and its column and are printed as output."""
    dev = device()
    assert dev.export_text("/foo bar") == b"bad command name foo (line 1 column 2)\r\n"
    assert dev.export_text("/system frobnicate") == b"bad command name frobnicate (line 1 column 9)\r\n"


def test_resource_print_reports_version_and_board() -> None:
    """`/system resource print` reports the version and board as RouterOS does."""
    text = device(ros_version="6.49.7", model="hAP lite").export_text("/system resource print").decode()
    assert "version: 6.49.7 (stable)" in text and "board-name: hAP lite" in text
    assert routeros.major_version(text) == 6


@pytest.mark.parametrize("version", ["7.20.1", "6.49.7"])
@pytest.mark.parametrize("size", [3_000, 40_000, 1_000_000])
def test_exports_are_valid_wrapped_and_sized(version: str, size: int) -> None:
    """Every generated export passes routeros.check_export, wraps at 79 columns like RouterOS, joins
    back to the terse form, and is within 5% of the requested size."""
    dev = device(ros_version=version, size=size)
    command = routeros.export_command(dev.major)
    raw = dev.export_text(command)
    assert routeros.check_export(raw) is None
    assert abs(len(raw) - size) < size * 0.05
    text = raw.decode()
    assert max(len(line) for line in text.split("\r\n")) <= 79
    join = re.compile(r"\\\r\n    ")
    terse = join.sub("", dev.export_text(command + " terse").decode()).split("\r\n")
    section, from_wrapped = "", []
    for line in join.sub("", text).split("\r\n"):
        if line.startswith("/"):
            section = line
        elif line and not line.startswith("#"):
            from_wrapped.append(f"{section} {line}")
    assert from_wrapped == [line for line in terse if line and not line.startswith("#")]


def test_exports_differ_only_by_timestamp_until_changed() -> None:
    """Successive exports differ only in the date line; change() adds firewall/address-list diffs."""
    now = [T0]
    dev = SimDevice("r1", clock=lambda: now[0])
    first = dev.export_text("/export").decode().split("\r\n")
    now[0] += timedelta(days=1)
    second = dev.export_text("/export").decode().split("\r\n")
    assert [i for i, (a, b) in enumerate(zip(first, second, strict=True)) if a != b] == [0]
    dev.change()
    dev.change(2)
    third = dev.export_text("/export").decode().split("\r\n")
    added = set(third) - set(second)
    assert any("block scanner" in line for line in added)
    assert any("list=blocklist" in line for line in added)
    assert SimDevice("r1", clock=lambda: now[0]).export_text("/export") == "\r\n".join(second).encode()


def test_upgrade_changes_header_and_flags() -> None:
    """upgrade() moves the device to another version (header, resource print, sensitive flags)."""
    dev = device(ros_version="6.49.7")
    dev.upgrade("7.20.1")
    assert dev.export_text("/export show-sensitive").startswith(b"# 2024-01-02 12:34:56 by RouterOS 7.20.1")


async def test_add_refuses_non_loopback_hosts() -> None:
    """The simulator never binds outside 127.0.0.0/8."""
    with pytest.raises(ValueError, match=r"127\.0\.0\.0/8"):
        Simulator().add(SimDevice("r1", host="10.0.0.1"))


async def test_refuse_and_back(simulator: Simulator) -> None:
    """"refuse" closes the listener (connection refused); restart_device brings it back on the same port."""
    import asyncio

    dev = simulator.add(SimDevice("r1", behaviour="refuse"))
    await simulator.start()
    with pytest.raises(ConnectionRefusedError):
        await asyncio.open_connection(dev.host, dev.port)
    dev.behaviour = "ok"
    await simulator.restart_device("r1")
    _, writer = await asyncio.open_connection(dev.host, dev.port)
    writer.close()
    await writer.wait_closed()


def test_command_line_serves_many_loopback_addresses() -> None:
    """`python -m bot.ssh.simulator` prints its devices as one JSON line once listening, and stops on SIGTERM."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "bot.ssh.simulator", "--count", "3", "--base-host", "127.0.3.254", "--port", "0",
         "--sizes", "3000,40000", "--mix", "2,1"],
        stdout=subprocess.PIPE, text=True, env={**os.environ, "BACKUPBOT_SIM_PASSWORD": "x"},
    )
    try:
        assert proc.stdout is not None
        devices = json.loads(proc.stdout.readline())["devices"]
        assert [d["host"] for d in devices] == ["127.0.3.254", "127.0.3.255", "127.0.4.0"]
        assert [d["size"] for d in devices] == [3000, 3000, 40000]
        assert all(d["port"] > 0 and d["password_var"] == "BACKUPBOT_SIM_PASSWORD" for d in devices)
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=10) == 0
