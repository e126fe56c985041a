"""BackupService on a real SQLite file with an in-memory collector (tests.helpers.FakeCollector):
what the service decides and records, without SSH. tests/integration/test_backup_service.py runs
the SSH-specific cases (failure kinds, changed host keys) against the simulator over real SSH."""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import AsyncIterator, Sequence
from datetime import UTC, datetime
from pathlib import Path

import pytest

from bot.backup.service import BackupService
from bot.config.load import parse_settings
from bot.core.errors import CorruptBlob, Unreachable
from bot.core.kinds import Trigger
from bot.core.models import Device, DeviceResult, ExportMeta, Settings, Status
from bot.routeros import export as routeros
from bot.ssh.simulator import SimDevice
from storage.codec import compress
from storage.store import Store
from tests.helpers import FakeCollector

COMMAND = "/export show-sensitive"


def settings_for(tmp_path: Path, names: Sequence[str], *, concurrency: int = 10) -> Settings:
    """A real config (parsed by bot.config) with the named devices in site "lab"."""
    data = {
        "storage": {"path": "backups.db"},
        "concurrency": concurrency,
        "defaults": {"username": "backup", "password": "${ROUTER_PASSWORD}"},
        "sites": {"lab": {"devices": [{"name": n, "host": "127.0.0.1"} for n in names]}},
    }
    return parse_settings(data, {"ROUTER_PASSWORD": "pw"}, tmp_path)


def serving(*routers: SimDevice, delay: float = 0.0) -> FakeCollector:
    """A collector answering each device with its simulated router's export, made with the command
    `export: auto` picks for its RouterOS version (after `delay` s)."""
    by_name = {r.name: r for r in routers}

    async def export(device: Device) -> bytes:
        if delay:
            await asyncio.sleep(delay)
        router = by_name[device.name]
        return router.export_text(routeros.export_command(int(router.ros_version.split(".")[0])))

    return FakeCollector(export)


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Store]:
    async with await Store.open(tmp_path / "backups.db") as s:
        yield s


def by_name(results: Sequence[DeviceResult]) -> dict[str, DeviceResult]:
    return {r.device.name: r for r in results}


async def test_new_then_unchanged_despite_new_timestamp_then_changed(tmp_path: Path, store: Store) -> None:
    """A timestamp is not a change: the second run confirms the version; a real edit makes a new one."""
    clock = [datetime(2026, 1, 1, 2, 0, tzinfo=UTC)]
    dev = SimDevice("r1", clock=lambda: clock[0])
    settings = settings_for(tmp_path, ["r1"])
    service = BackupService(settings, serving(dev), store)
    first = (await service.run(settings.devices(), Trigger.CLI)).results[0]
    assert first.status is Status.NEW
    assert await store.raw(first.version.id) == dev.export_text(COMMAND)

    clock[0] = datetime(2026, 1, 2, 2, 0, tzinfo=UTC)
    second = (await service.run(settings.devices(), Trigger.CLI)).results[0]
    assert second.status is Status.UNCHANGED
    assert second.version.id == first.version.id
    assert second.version.last_verified > first.version.last_verified
    assert await store.count_versions("lab", "r1") == 1

    dev.change(2)
    third = (await service.run(settings.devices(), Trigger.CLI)).results[0]
    assert third.status is Status.CHANGED
    assert third.previous.id == first.version.id
    assert (third.added, third.removed) != (0, 0)
    assert await store.count_versions("lab", "r1") == 2
    # the raw bytes of each version are kept exactly as received (download/restore use them)
    assert await store.raw(third.version.id) == dev.export_text(COMMAND)


async def test_a_failed_device_never_stops_the_others(tmp_path: Path, store: Store) -> None:
    """A device whose collection fails is recorded with its kind and reason; the rest are backed up."""
    ok = SimDevice("ok")

    def export(device: Device) -> bytes:
        if device.name == "down":
            raise Unreachable("unreachable: connection refused")
        return ok.export_text(COMMAND)

    settings = settings_for(tmp_path, ["ok", "down"])
    summary = await BackupService(settings, FakeCollector(export), store).run(settings.devices(), Trigger.CLI)
    results = by_name(summary.results)
    assert results["ok"].status is Status.NEW
    assert (results["down"].status, results["down"].error_kind, results["down"].reason) == (
        Status.FAILED, "unreachable", "unreachable: connection refused")
    assert await store.latest_version("lab", "down") is None


async def test_routeros_upgrade_alone_is_reported_as_an_upgrade(tmp_path: Path, store: Store) -> None:
    """Same config after an upgrade: a new version noted as the upgrade, with no changed lines."""
    dev = SimDevice("r1", ros_version="7.19.3")
    settings = settings_for(tmp_path, ["r1"])
    service = BackupService(settings, serving(dev), store)
    await service.run(settings.devices(), Trigger.CLI)
    dev.upgrade("7.20.1")
    result = (await service.run(settings.devices(), Trigger.CLI)).results[0]
    assert result.status is Status.CHANGED
    assert (result.added, result.removed) == (0, 0)
    assert result.note == "RouterOS 7.19.3 → 7.20.1, config unchanged"
    assert result.version.meta.ros_version == "7.20.1"


async def test_a_new_noise_rule_does_not_turn_into_a_false_change(tmp_path: Path, store: Store) -> None:
    """A version stored under older normalization rules (different hash, same lines) is confirmed."""
    dev = SimDevice("r1")
    settings = settings_for(tmp_path, ["r1"])
    raw = dev.export_text(COMMAND)
    run_id = await store.start_run("old", datetime(2025, 1, 1, tzinfo=UTC), "lab")
    meta = routeros.parse_header(raw.decode())
    old = await store.add_version(run_id, "lab", "r1", datetime(2025, 1, 1, tzinfo=UTC), raw,
                                  "0" * 64, meta, Status.NEW, 0, 0, None)
    await store.finish_run(run_id, datetime(2025, 1, 1, tzinfo=UTC))
    result = (await BackupService(settings, serving(dev), store).run(settings.devices(), Trigger.CLI)).results[0]
    assert result.status is Status.UNCHANGED and result.version.id == old.id


async def test_concurrency_is_bounded_across_the_run(tmp_path: Path, store: Store) -> None:
    """With concurrency 2, six devices that each take ~0.3 s need at least three rounds."""
    routers = [SimDevice(f"r{i}") for i in range(6)]
    settings = settings_for(tmp_path, [r.name for r in routers], concurrency=2)
    service = BackupService(settings, serving(*routers, delay=0.3), store)
    t0 = time.monotonic()
    summary = await service.run(settings.devices(), Trigger.CLI)
    elapsed = time.monotonic() - t0
    assert summary.count(Status.NEW) == 6
    assert elapsed >= 3 * 0.3  # the export takes 0.3 s; 3 rounds


async def test_a_second_request_joins_the_running_backup(tmp_path: Path, store: Store) -> None:
    """Asking again while a device is being backed up waits for that backup instead of connecting again."""
    collector = serving(SimDevice("r1"), SimDevice("r2"), delay=0.3)
    settings = settings_for(tmp_path, ["r1", "r2"])
    service = BackupService(settings, collector, store)
    first = asyncio.create_task(service.run(settings.devices(), Trigger.SCHEDULE))
    await asyncio.sleep(0.1)
    assert service.busy(settings.devices("lab", "r1"))
    joined = await service.run(settings.devices("lab", "r1"), Trigger.SLACK)
    whole = await first
    assert collector.calls["r1"] == 1  # one collection for both requests
    assert joined.results[0].version == by_name(whole.results)["r1"].version
    assert not service.busy(settings.devices())


async def test_meta_is_kept_from_the_header(tmp_path: Path, store: Store) -> None:
    """Version, model and serial come from the export header and are stored with the version."""
    dev = SimDevice("r1", ros_version="6.49.7", model="RB750Gr3")
    settings = settings_for(tmp_path, ["r1"])
    result = (await BackupService(settings, serving(dev), store).run(settings.devices(), Trigger.CLI)).results[0]
    assert result.version.meta == ExportMeta("6.49.7", "RB750Gr3", dev.serial, dev.software_id)


async def test_a_damaged_previous_version_still_lets_the_change_be_stored(tmp_path: Path, store: Store) -> None:
    """The stored config a change is counted against no longer decodes (a bad sector): the new
    config is still stored, whole, and reported as a change whose lines could not be counted -
    not an "internal error" every day. The next change is counted as usual."""
    dev = SimDevice("r1")
    settings = settings_for(tmp_path, ["r1"])
    service = BackupService(settings, serving(dev), store)
    first = (await service.run(settings.devices(), Trigger.CLI)).results[0].version
    with sqlite3.connect(settings.storage_path) as db:  # a valid frame of other bytes
        db.execute("UPDATE blobs SET data = ? WHERE id = (SELECT blob_id FROM versions WHERE id = ?)",
                   (compress(b"something else entirely\n"), first.id))
    with pytest.raises(CorruptBlob):
        await store.raw(first.id)

    dev.change()
    result = (await service.run(settings.devices(), Trigger.CLI)).results[0]
    assert (result.status, result.added, result.removed) == (Status.CHANGED, 0, 0)
    assert result.note == f"previous version #{first.id} is damaged, changed lines not counted"
    assert await store.raw(result.version.id) == dev.export_text(COMMAND)
    [attempt] = [a for a in await store.run_attempts(result.run_id) if a.device == "r1"]
    assert (attempt.status, attempt.note) == (Status.CHANGED, result.note)

    dev.change()
    after = (await service.run(settings.devices(), Trigger.CLI)).results[0]
    assert after.status is Status.CHANGED and (after.added, after.removed) != (0, 0) and after.note is None
    assert await store.raw(after.version.id) == dev.export_text(COMMAND)
