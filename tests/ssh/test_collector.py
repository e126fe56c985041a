"""Collector against the simulator over real SSH on 127.0.0.1: no mocks, small timeouts."""

from __future__ import annotations

import asyncio
import logging
import time
import traceback
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncssh
import pytest

from bot.ssh.collector import Collector
from bot.core.errors import AuthFailed, CollectError, Dropped, HostKeyChanged, InvalidOutput, Timeout, Unreachable
from bot.core.models import Device, HostKey, KnownConfig
from bot.ssh.simulator import SimDevice, Simulator

FIXED = datetime(2024, 1, 2, 12, 34, 56, tzinfo=UTC)
PASSWORD = "Pa55-never-shown!"


def fast(backoff: float = 0.05, idle_timeout: float = 5.0) -> Collector:
    return Collector(connect_timeout=2.0, retries=2, backoff=backoff, idle_timeout=idle_timeout)


async def serve(sim: Simulator, name: str = "r1", **kw: object) -> SimDevice:
    device = sim.add(SimDevice(name, password=PASSWORD, clock=lambda: FIXED, **kw))  # type: ignore[arg-type]
    await sim.start()
    return device


def target(sim_device: SimDevice, **changes: Any) -> Device:
    """The inventory entry for a simulated device (5 s deadline unless changed)."""
    device = Device(site="lab", name=sim_device.name, host=sim_device.host, port=sim_device.port,
                    username=sim_device.username, password=sim_device.password, timeout=5.0)
    return replace(device, **changes)


async def failure(coro: object) -> CollectError:
    """Await the collection, expecting a CollectError; check no password leaks through it."""
    with pytest.raises(CollectError) as info:
        await coro  # type: ignore[misc]
    err = info.value
    assert PASSWORD not in "".join(traceback.format_exception(err)) + repr(err) + err.reason
    return err


def retries_logged(caplog: pytest.LogCaptureFixture) -> int:
    return sum(1 for r in caplog.records if r.name == "bot.ssh.collector" and "retry" in r.getMessage())


async def test_new_v7_device_gets_one_show_sensitive_export_with_secrets(simulator: Simulator) -> None:
    """v7 hides secrets in a plain /export; a router never seen before is asked for show-sensitive
    straight away, without a version question: one command on one connection."""
    dev = await serve(simulator, ros_version="7.20.1")
    export = await fast().collect(target(dev), None)
    assert export.command == "/export show-sensitive"
    assert export.ros_major == 7
    assert export.raw == dev.export_text("/export show-sensitive")
    assert b"passphrase=" in export.raw and b"password=" in export.raw
    assert dev.commands == ["/export show-sensitive"]
    assert dev.connections == 1


async def test_new_v6_device_falls_back_from_the_refused_flag_to_plain_export(simulator: Simulator) -> None:
    """v6 answers show-sensitive with a CLI error (never stored, oxidized#2427); its plain /export,
    run next on the same connection, has the secrets."""
    dev = await serve(simulator, ros_version="6.49.7")
    export = await fast().collect(target(dev), None)
    assert export.command == "/export"
    assert export.ros_major == 6
    assert export.raw == dev.export_text("/export")
    assert b"wpa2-pre-shared-key=" in export.raw and b"password=" in export.raw
    assert dev.commands == ["/export show-sensitive", "/export"]
    assert dev.connections == 1


@pytest.mark.parametrize(("version", "command"), [("7.20.1", "/export show-sensitive"), ("6.49.7", "/export")])
async def test_known_version_costs_exactly_one_command(simulator: Simulator, version: str, command: str) -> None:
    """With the major version of the last stored export, the daily backup is one command, no question."""
    dev = await serve(simulator, ros_version=version)
    export = await fast().collect(target(dev), None, ros_major=int(version[0]))
    assert (export.command, export.raw) == (command, dev.export_text(command))
    assert dev.commands == [command]


async def test_the_known_config_again_is_recognised_and_not_sent(simulator: Simulator) -> None:
    """Yesterday's config with today's date: recognised by its undated hash and header, confirmed
    without its bytes. A changed config, or a changed header, comes back whole and hashed anew."""
    clock = [FIXED]
    dev = simulator.add(SimDevice("r1", password=PASSWORD, clock=lambda: clock[0]))
    await simulator.start()
    first = await fast().collect(target(dev), None, ros_major=7)
    assert first.undated_hash is not None and not first.recognised
    known = KnownConfig(first.undated_hash, first.norm_hash, first.meta)

    clock[0] = datetime(2024, 1, 3, 2, 0, tzinfo=UTC)
    again = await fast().collect(target(dev), None, ros_major=7, known=known)
    assert again.recognised and again.raw == b""
    assert (again.norm_hash, again.undated_hash, again.meta) == (first.norm_hash, first.undated_hash, first.meta)

    dev.change()
    changed = await fast().collect(target(dev), None, ros_major=7, known=known)
    assert not changed.recognised and changed.raw == dev.export_text("/export show-sensitive")
    assert changed.norm_hash != first.norm_hash and changed.undated_hash != first.undated_hash

    moved = KnownConfig(changed.undated_hash, changed.norm_hash, replace(changed.meta, serial="OTHER"))
    swapped = await fast().collect(target(dev), None, ros_major=7, known=moved)
    assert not swapped.recognised and swapped.raw == changed.raw  # the header differs: the service decides


async def test_upgraded_from_v6_to_v7_is_exported_again_with_secrets(simulator: Simulator) -> None:
    """Known as v6 yesterday, v7 today: the plain /export's header says 7 (secrets hidden), so it is
    thrown away and show-sensitive is run; what is returned has the secrets."""
    dev = await serve(simulator, ros_version="6.49.7")
    dev.upgrade("7.20.1")
    export = await fast().collect(target(dev), None, ros_major=6)
    assert dev.commands == ["/export", "/export show-sensitive"]
    assert export.command == "/export show-sensitive" and export.ros_major == 7
    assert export.raw == dev.export_text("/export show-sensitive")
    assert b"passphrase=" in export.raw and b"password=" in export.raw


async def test_downgraded_from_v7_to_v6_falls_back_to_plain_export(simulator: Simulator) -> None:
    """Known as v7, v6 today: show-sensitive is refused with an error that is not kept; /export is."""
    dev = await serve(simulator, ros_version="7.20.1")
    dev.upgrade("6.49.7")
    export = await fast().collect(target(dev), None, ros_major=7)
    assert dev.commands == ["/export show-sensitive", "/export"]
    assert export.command == "/export" and export.ros_major == 6
    assert export.raw == dev.export_text("/export")
    assert b"wpa2-pre-shared-key=" in export.raw and b"password=" in export.raw


async def test_explicit_show_sensitive_on_v6_fails_instead_of_storing_empty_backup(
        simulator: Simulator) -> None:
    """Oxidized #2427: a literal `/export show-sensitive` on 6.x must be an error naming RouterOS's answer."""
    dev = await serve(simulator, ros_version="6.49.7")
    err = await failure(fast().collect(target(dev, export="/export show-sensitive"), None))
    assert isinstance(err, InvalidOutput)
    assert "expected end of command (line 1 column 9)" in err.reason
    assert dev.sessions == 1  # final: not retried, no version probe for a literal command


async def test_refused_is_unreachable_after_all_retries(simulator: Simulator,
                                                        caplog: pytest.LogCaptureFixture) -> None:
    """A closed port is transient: retried `retries` times with backoff, then reported as refused."""
    dev = await serve(simulator, behaviour="refuse")
    caplog.set_level(logging.WARNING, "bot.ssh.collector")
    started = time.monotonic()
    err = await failure(fast().collect(target(dev), None))
    assert isinstance(err, Unreachable)
    assert err.reason == "unreachable: connection refused"
    assert retries_logged(caplog) == 2
    assert time.monotonic() - started >= 0.05 + 0.10  # backoff, then twice the backoff


async def test_retry_that_would_overrun_the_deadline_reports_the_real_error(simulator: Simulator) -> None:
    """When the next backoff cannot fit in the deadline, the last real reason is reported, not a timeout."""
    dev = await serve(simulator, behaviour="refuse")
    started = time.monotonic()
    err = await failure(fast(backoff=10.0).collect(target(dev, timeout=1.0), None))
    assert isinstance(err, Unreachable)
    assert time.monotonic() - started < 0.5


async def test_auth_failure_is_final(simulator: Simulator, caplog: pytest.LogCaptureFixture) -> None:
    """Bad credentials are not retried (retrying could lock the account) and run no command."""
    dev = await serve(simulator, behaviour="auth_fail")
    caplog.set_level(logging.WARNING, "bot.ssh.collector")
    err = await failure(fast().collect(target(dev), None))
    assert isinstance(err, AuthFailed)
    assert err.reason == "authentication failed"
    assert (dev.connections, dev.sessions, retries_logged(caplog)) == (1, 0, 0)


async def test_wrong_password_is_auth_failure_without_the_password(simulator: Simulator) -> None:
    """The password we tried never appears in the error, its repr or its traceback."""
    dev = await serve(simulator)
    wrong = target(dev, password=PASSWORD + "-typo")
    err = await failure(fast().collect(wrong, None))
    assert isinstance(err, AuthFailed)
    assert PASSWORD + "-typo" not in "".join(traceback.format_exception(err))


async def test_hang_times_out_at_the_device_deadline(simulator: Simulator) -> None:
    """A router that accepts the command and never finishes cannot hold the caller past device.timeout."""
    dev = await serve(simulator, behaviour="hang")
    started = time.monotonic()
    err = await failure(fast(idle_timeout=60.0).collect(target(dev, timeout=0.5), None))
    elapsed = time.monotonic() - started
    assert isinstance(err, Timeout)
    assert err.reason == "timed out after 0.5 s"
    assert 0.5 <= elapsed < 0.8  # the deadline, not the 60 s idle timeout or the retries


async def test_hang_once_is_given_up_when_silent_and_succeeds_on_retry(simulator: Simulator) -> None:
    """A channel silent for idle_timeout is dropped and retried on a new connection."""
    dev = await serve(simulator, behaviour="hang_once")
    export = await fast(idle_timeout=0.2).collect(target(dev, timeout=3.0), None)
    assert export.raw == dev.export_text("/export show-sensitive")
    assert dev.connections == 2


async def test_drop_is_dropped_after_all_retries(simulator: Simulator) -> None:
    """A connection cut mid-export is transient: 1 + retries attempts, then Dropped."""
    dev = await serve(simulator, behaviour="drop", size=40_000)
    err = await failure(fast().collect(target(dev), None))
    assert isinstance(err, Dropped)
    assert err.reason == "connection dropped mid-export"
    assert dev.connections == 3


async def test_drop_once_succeeds_on_retry(simulator: Simulator) -> None:
    """One cut connection costs a retry, not the backup; the retried export is whole."""
    dev = await serve(simulator, behaviour="drop_once", size=40_000)
    export = await fast().collect(target(dev), None)
    assert export.raw == dev.export_text("/export show-sensitive")
    assert dev.connections == 2


async def test_garbage_is_invalid_output(simulator: Simulator) -> None:
    """Bytes that are not an export are refused, not stored, and not retried."""
    dev = await serve(simulator, behaviour="garbage")
    err = await failure(fast().collect(target(dev), None))
    assert isinstance(err, InvalidOutput)
    assert err.reason == "not a RouterOS export"
    assert dev.connections == 1


async def test_routeros_error_is_invalid_output(simulator: Simulator) -> None:
    """A RouterOS CLI error printed on stdout (with exit status 0) is an error, named as RouterOS said it."""
    dev = await serve(simulator, behaviour="error")
    err = await failure(fast().collect(target(dev), None))
    assert isinstance(err, InvalidOutput)
    assert err.reason == "RouterOS error: bad command name export (line 1 column 2)"


async def test_first_use_accepts_and_reports_the_host_key(simulator: Simulator) -> None:
    """Trust on first use: an unknown host's key is accepted and returned so the caller can store it."""
    dev = await serve(simulator)
    export = await fast().collect(target(dev), None)
    assert export.host_key == dev.host_key_openssh
    assert export.host_key.startswith("ssh-ed25519 ")
    assert export.host_key_fingerprint == dev.host_key_fingerprint
    assert export.host_key_fingerprint.startswith("SHA256:")


async def test_trusted_key_is_accepted(simulator: Simulator) -> None:
    """The stored key, presented again, lets the backup through."""
    dev = await serve(simulator)
    trusted = HostKey(key=dev.host_key_openssh, fingerprint=dev.host_key_fingerprint)
    export = await fast().collect(target(dev), trusted)
    assert export.host_key_fingerprint == trusted.fingerprint


async def test_rotated_key_is_refused_before_login(simulator: Simulator) -> None:
    """A different key (replaced or spoofed router) stops the collection before any credential is sent."""
    dev = await serve(simulator)
    trusted = HostKey(key=dev.host_key_openssh, fingerprint=dev.host_key_fingerprint)
    dev.rotate_host_key()
    await simulator.restart_device(dev.name)
    err = await failure(fast().collect(target(dev), trusted))
    assert isinstance(err, HostKeyChanged)
    assert (err.old_fingerprint, err.new_fingerprint) == (trusted.fingerprint, dev.host_key_fingerprint)
    assert trusted.fingerprint in str(err) and dev.host_key_fingerprint in str(err)
    assert err.new_key == dev.host_key_openssh
    assert (dev.connections, dev.auth_attempts, dev.sessions) == (1, 0, 0)  # not retried, nothing run


async def test_key_file_authentication_uses_only_that_key(simulator: Simulator, tmp_path: Path) -> None:
    """key_file is the only client key offered (no ~/.ssh keys, no agent); it logs in without a password."""
    key = asyncssh.generate_private_key("ssh-ed25519")
    key.write_private_key(tmp_path / "id_ed25519")
    dev = await serve(simulator, authorized_key=key.export_public_key().decode())
    export = await fast().collect(target(dev, password=None, key_file=str(tmp_path / "id_ed25519")), None)
    assert export.raw == dev.export_text("/export show-sensitive")


async def test_operator_ssh_keys_are_never_used_implicitly(simulator: Simulator, tmp_path: Path,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    """A key in the operator's ~/.ssh that the router would accept is not offered unless configured."""
    key = asyncssh.generate_private_key("ssh-ed25519")
    (tmp_path / ".ssh").mkdir()
    key.write_private_key(tmp_path / ".ssh" / "id_ed25519")
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.delenv("SSH_AUTH_SOCK", raising=False)
    dev = await serve(simulator, authorized_key=key.export_public_key().decode())
    err = await failure(fast().collect(target(dev, password=None), None))
    assert isinstance(err, AuthFailed)


async def test_missing_key_file_is_auth_failure_naming_the_file(simulator: Simulator, tmp_path: Path) -> None:
    """An unreadable key file is reported as such, before connecting."""
    dev = await serve(simulator)
    missing = str(tmp_path / "nope")
    err = await failure(fast().collect(target(dev, key_file=missing), None))
    assert isinstance(err, AuthFailed)
    assert missing in err.reason
    assert dev.connections == 0


async def test_one_megabyte_export_arrives_byte_exact(simulator: Simulator) -> None:
    """Large exports (tens of thousands of lines) come through whole (oxidized #1966, #3867)."""
    dev = await serve(simulator, size=1_000_000)
    export = await fast().collect(target(dev), None)
    expected = dev.export_text("/export show-sensitive")
    assert len(expected) >= 1_000_000 and expected.count(b"\n") > 10_000
    assert export.raw == expected


async def test_twenty_devices_in_parallel(simulator: Simulator) -> None:
    """Concurrent collections on one event loop each get their own device's export."""
    devices = [simulator.add(SimDevice(f"r{i:02d}", password=PASSWORD, clock=lambda: FIXED, size=20_000,
                                       ros_version="6.49.7" if i % 4 == 0 else "7.20.1")) for i in range(20)]
    await simulator.start()
    collector = fast()
    exports = await asyncio.gather(*(collector.collect(target(d), None) for d in devices))
    for dev, export in zip(devices, exports, strict=True):
        assert export.raw == dev.export_text(export.command)
        assert export.host_key_fingerprint == dev.host_key_fingerprint
    assert len({e.host_key_fingerprint for e in exports}) == 20
