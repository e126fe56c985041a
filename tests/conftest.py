"""Shared pytest fixtures."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from bot.ssh.simulator import Simulator
from tests.inventory.netbox_fake import FakeNetBox


@pytest.fixture
async def simulator() -> AsyncIterator[Simulator]:
    """A started RouterOS simulator on 127.0.0.1; add devices, then `await simulator.start()`."""
    sim = Simulator()
    await sim.start()
    try:
        yield sim
    finally:
        await sim.stop()


@pytest.fixture
async def netbox() -> AsyncIterator[FakeNetBox]:
    """A local stand-in for NetBox's /api/dcim/devices/ on 127.0.0.1, listing nothing yet."""
    fake = await FakeNetBox().start()
    try:
        yield fake
    finally:
        await fake.stop()
