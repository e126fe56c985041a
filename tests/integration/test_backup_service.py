"""BackupService end to end where SSH is the point: the simulator over real SSH on 127.0.0.1 into a
real SQLite file (every failure kind, a changed host key and `trust`, which commands a router is
asked). What the service decides
without SSH is tests/backup/test_service.py, on an in-memory collector."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

import pytest

from bot.app import open_backend
from bot.ssh.collector import Collector
from bot.config.load import parse_settings
from bot.core.errors import UserError
from bot.core.models import DeviceResult, ExportMeta, Settings, Status
from bot.routeros import export as routeros
from bot.ssh.simulator import SimDevice, Simulator
from tests.integration.helpers import ROUTER_PASSWORD, add_routers

ENV = {"ROUTER_PASSWORD": ROUTER_PASSWORD}
FIXED = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)  # export headers that do not tick between runs


def settings_for(tmp_path: Path, devices: Sequence[SimDevice], *, concurrency: int = 10,
                 timeout: float = 5.0, overrides: dict[str, dict[str, object]] | None = None) -> Settings:
    """A real config (parsed by bot.config) pointing at simulated devices, all in site "lab"."""
    entries = [{"name": d.name, "host": d.host, "port": d.port, **(overrides or {}).get(d.name, {})}
               for d in devices]
    data = {
        "storage": {"path": "backups.db"},
        "concurrency": concurrency,
        "defaults": {"username": "backup", "password": "${ROUTER_PASSWORD}", "timeout": timeout},
        "sites": {"lab": {"devices": entries}},
    }
    return parse_settings(data, ENV, tmp_path)


@pytest.fixture
def collector() -> Collector:
    return Collector(connect_timeout=2.0, retries=1, backoff=0.05, idle_timeout=3.0)


def by_name(results: Sequence[DeviceResult]) -> dict[str, DeviceResult]:
    return {r.device.name: r for r in results}


async def test_every_failure_kind_is_recorded_and_never_stops_the_others(
        tmp_path: Path, simulator: Simulator, collector: Collector) -> None:
    """Each broken router fails with its own reason; the healthy ones are still backed up."""
    devices = await add_routers(
        simulator,
        SimDevice("ok"),
        SimDevice("auth", behaviour="auth_fail"),
        SimDevice("refused", behaviour="refuse"),
        SimDevice("hangs", behaviour="hang"),
        SimDevice("drops", behaviour="drop"),
        SimDevice("junk", behaviour="garbage"),
        SimDevice("v6", ros_version="6.49.7"),
    )
    settings = settings_for(tmp_path, devices, timeout=1.5,
                            overrides={"v6": {"export": "/export show-sensitive"}})
    async with open_backend(settings, collector=collector) as b:
        summary = await b.service.run(settings.devices(), "test")
        results = by_name(summary.results)
        kinds = {name: r.error_kind for name, r in results.items()}
        assert kinds == {"ok": None, "auth": "auth", "refused": "unreachable", "hangs": "timeout",
                         "drops": "dropped", "junk": "invalid_output", "v6": "invalid_output"}
        assert results["ok"].status is Status.NEW
        assert "expected end of command" in results["v6"].reason  # the Oxidized #2427 trap
        assert summary.count(Status.FAILED) == 6
        attempts = await b.store.last_attempts("lab")
        assert {k[1]: a.reason for k, a in attempts.items() if a.status is Status.FAILED} == {
            name: r.reason for name, r in results.items() if r.status is Status.FAILED}
        # nothing was stored for a failed device
        for name in kinds.keys() - {"ok"}:
            assert await b.store.latest_version("lab", name) is None
        assert ("lab", "ok") in await b.store.last_successes("lab")


async def test_changed_host_key_stores_nothing_until_trusted(tmp_path: Path, simulator: Simulator,
                                                             collector: Collector) -> None:
    """A new host key fails the device with both fingerprints; `trust` accepts it and backups resume."""
    (dev,) = await add_routers(simulator, SimDevice("r1"))
    settings = settings_for(tmp_path, [dev])
    async with open_backend(settings, collector=collector) as b:
        await b.service.run(settings.devices(), "test")
        old_fp = dev.host_key_fingerprint
        dev.rotate_host_key()
        dev.change(1)
        await simulator.restart_device("r1")
        failed = (await b.service.run(settings.devices(), "test")).results[0]
        assert failed.status is Status.FAILED and failed.error_kind == "host_key"
        assert failed.reason == f"host key changed (was {old_fp}, now {dev.host_key_fingerprint})"
        assert await b.store.count_versions("lab", "r1") == 1
        assert (await b.store.host_key("lab", "r1")).fingerprint == old_fp
        # still refused on the next run: the operator has not accepted it yet
        again = (await b.service.run(settings.devices(), "test")).results[0]
        assert again.error_kind == "host_key"

        trusted = await b.catalog.trust("lab", "r1")
        assert trusted.fingerprint == dev.host_key_fingerprint
        resumed = (await b.service.run(settings.devices(), "test")).results[0]
        assert resumed.status is Status.CHANGED
        with pytest.raises(UserError):
            await b.catalog.trust("lab", "r1")  # nothing pending any more


async def test_the_daily_backup_of_a_known_router_is_one_command(tmp_path: Path, simulator: Simulator,
                                                                 collector: Collector) -> None:
    """The stored export's header names the RouterOS version, so the next run asks nothing first:
    exactly one command per router, the one its version needs for secrets."""
    devices = await add_routers(simulator, SimDevice("v7", ros_version="7.20.1"),
                                SimDevice("v6", ros_version="6.49.7"))
    settings = settings_for(tmp_path, devices)
    async with open_backend(settings, collector=collector) as b:
        await b.service.run(settings.devices(), "test")
        for dev in devices:
            dev.commands.clear()
        summary = await b.service.run(settings.devices(), "test")
    assert {r.device.name: r.status for r in summary.results} == {"v7": Status.UNCHANGED, "v6": Status.UNCHANGED}
    assert devices[0].commands == ["/export show-sensitive"]
    assert devices[1].commands == ["/export"]


@pytest.mark.parametrize(("before", "after"), [("6.49.7", "7.20.1"), ("7.20.1", "6.49.7")])
async def test_a_router_upgraded_or_downgraded_overnight_keeps_its_secrets(
        tmp_path: Path, simulator: Simulator, collector: Collector, before: str, after: str) -> None:
    """v6 yesterday, v7 today: the plain export (secrets hidden on v7) is not stored, show-sensitive
    is. v7 yesterday, v6 today: the refused show-sensitive is not stored, the plain export is."""
    (dev,) = await add_routers(simulator, SimDevice("r1", ros_version=before, clock=lambda: FIXED))
    settings = settings_for(tmp_path, [dev])
    async with open_backend(settings, collector=collector) as b:
        await b.service.run(settings.devices(), "test")
        dev.upgrade(after)
        result = (await b.service.run(settings.devices(), "test")).results[0]
        stored = await b.store.raw(result.version.id)
    assert result.status is Status.CHANGED and result.note.startswith(f"RouterOS {before} → {after}")
    assert stored == dev.export_text(routeros.export_command(int(after[0])))
    assert b"password=l2tp-" in stored  # the PPP secret
    assert b"passphrase=" in stored or b"wpa2-pre-shared-key=" in stored  # the Wi-Fi key
    assert stored.startswith(b"# ") and f"by RouterOS {after}".encode() in stored.split(b"\r\n", 1)[0]


@pytest.mark.parametrize("stored_version", [None, "garbled", "v7"])
async def test_a_stored_header_without_a_readable_version_falls_back_safely(
        tmp_path: Path, simulator: Simulator, collector: Collector, stored_version: str | None) -> None:
    """No usable version in the last stored header: treated as never seen (show-sensitive, then the
    plain export if refused); a v6 router is still backed up with its secrets."""
    (dev,) = await add_routers(simulator, SimDevice("r1", ros_version="6.49.7", clock=lambda: FIXED))
    settings = settings_for(tmp_path, [dev])
    at = datetime(2025, 1, 1, tzinfo=UTC)
    async with open_backend(settings, collector=collector) as b:
        raw = dev.export_text("/export")
        run_id = await b.store.start_run("old", at, "lab")
        meta = ExportMeta(ros_version=stored_version)
        await b.store.add_version(run_id, "lab", "r1", at, raw, "0" * 64, meta, Status.NEW, 0, 0, None)
        await b.store.finish_run(run_id, at)
        result = (await b.service.run(settings.devices(), "test")).results[0]
        stored = await b.store.raw(result.version.id)
    assert dev.commands == ["/export show-sensitive", "/export"]
    # the same config: confirmed, or (with a version to compare) noted as a RouterOS change
    assert result.status is (Status.UNCHANGED if stored_version is None else Status.CHANGED)
    assert stored == dev.export_text("/export") and b"password=l2tp-" in stored
