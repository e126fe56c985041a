"""BackupService end to end where SSH is the point: the simulator over real SSH on 127.0.0.1 into a
real SQLite file (every failure kind, a changed host key and `trust`). What the service decides
without SSH is tests/backup/test_service.py, on an in-memory collector."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pytest

from bot.app import open_backend
from bot.ssh.collector import Collector
from bot.config.load import parse_settings
from bot.core.errors import UserError
from bot.core.models import DeviceResult, Settings, Status
from bot.ssh.simulator import SimDevice, Simulator
from tests.integration.helpers import ROUTER_PASSWORD, add_routers

ENV = {"ROUTER_PASSWORD": ROUTER_PASSWORD}


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
