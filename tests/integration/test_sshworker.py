"""The SSH worker process: collections cross the pipe intact, failures keep their meaning, and a
dead worker is reported and replaced."""

from __future__ import annotations

import asyncio
import os
import signal
from datetime import UTC, datetime

import pytest

from bot.ssh.collector import Collector
from bot.core.errors import CollectError, HostKeyChanged
from bot.core.models import Device, HostKey
from bot.ssh.simulator import SimDevice, Simulator
from bot.ssh.worker import SshWorker

FIXED = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)  # the export header must not tick between collect and compare
FAST = Collector(connect_timeout=2.0, retries=0, backoff=0.05, idle_timeout=30.0)


def inventory(dev: SimDevice, timeout: float = 5.0) -> Device:
    return Device("lab", dev.name, dev.host, dev.port, username=dev.username, password=dev.password, timeout=timeout)


async def test_an_export_crosses_the_worker_byte_exact(simulator: Simulator) -> None:
    """A 1 MB export collected in the child arrives in the bot exactly as the router printed it."""
    dev = simulator.add(SimDevice("big", size=1_000_000, clock=lambda: FIXED))
    await simulator.start()
    async with SshWorker(FAST) as worker:
        export = await worker.collect(inventory(dev), None)
    assert export.raw == dev.export_text("/export show-sensitive")
    assert export.host_key_fingerprint == dev.host_key_fingerprint


async def test_a_changed_host_key_keeps_both_fingerprints_across_the_pipe(simulator: Simulator) -> None:
    """The bot gets the same HostKeyChanged the collector raised, with old and new keys to store."""
    dev = simulator.add(SimDevice("r1"))
    await simulator.start()
    trusted = HostKey(dev.host_key_openssh, dev.host_key_fingerprint)
    dev.rotate_host_key()
    await simulator.restart_device("r1")
    async with SshWorker(FAST) as worker:
        with pytest.raises(HostKeyChanged) as info:
            await worker.collect(inventory(dev), trusted)
    err = info.value
    assert (err.old_fingerprint, err.new_fingerprint) == (trusted.fingerprint, dev.host_key_fingerprint)
    assert err.new_key == dev.host_key_openssh and err.kind == "host_key" and not err.transient
    assert str(err) == f"host key changed (was {trusted.fingerprint}, now {dev.host_key_fingerprint})"


async def test_a_dead_worker_fails_its_collections_clearly_and_is_replaced(simulator: Simulator) -> None:
    """Killing the child mid-collection fails that device with a reason; the next backup works."""
    slow = simulator.add(SimDevice("slow", behaviour="hang"))
    ok = simulator.add(SimDevice("ok", clock=lambda: FIXED))
    await simulator.start()
    async with SshWorker(FAST) as worker:
        pending = asyncio.create_task(worker.collect(inventory(slow, timeout=30), None))
        while slow.sessions == 0:  # the child is connected and waiting on the router
            await asyncio.sleep(0.02)
        os.kill(worker._proc.pid, signal.SIGKILL)
        with pytest.raises(CollectError) as info:
            await pending
        assert info.value.kind == "internal"
        assert info.value.reason == f"SSH worker process exited (code {-signal.SIGKILL})"
        export = await worker.collect(inventory(ok), None)
        assert export.raw == ok.export_text("/export show-sensitive")


async def test_cancelling_a_collection_stops_it_in_the_worker(simulator: Simulator) -> None:
    """A cancelled backup (shutdown) closes its SSH session in the child instead of leaving it hanging."""
    slow = simulator.add(SimDevice("slow", behaviour="hang"))
    await simulator.start()
    async with SshWorker(FAST) as worker:
        pending = asyncio.create_task(worker.collect(inventory(slow, timeout=30), None))
        while slow.sessions == 0:
            await asyncio.sleep(0.02)
        pending.cancel()
        with pytest.raises(asyncio.CancelledError):
            await pending
        for _ in range(100):  # the child aborts the connection; the simulator sees it go
            if not simulator.open_connections("slow"):
                break
            await asyncio.sleep(0.02)
        assert simulator.open_connections("slow") == 0


async def test_start_waits_until_the_worker_serves(simulator: Simulator) -> None:
    """start() brings the child up ahead of the first backup (the benchmark times start-up apart);
    calling it again, or collecting right after, just works."""
    dev = simulator.add(SimDevice("r1", clock=lambda: FIXED))
    await simulator.start()
    async with SshWorker(FAST) as worker:
        await worker.start()
        pid = worker._proc.pid
        await worker.start()
        export = await worker.collect(inventory(dev), None, 7)
        assert worker._proc.pid == pid  # the same child served it
    assert export.raw == dev.export_text("/export show-sensitive")
    assert dev.commands == ["/export show-sensitive"]
