"""Keeping the inventory current (bot.inventory.refresh) with a real SQLite store and the local
NetBox: the last good list survives outages, garbage and restarts; devices that disappear are
retired and come back; an empty answer is held back; nothing is ever dropped for a failed read."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from bot.config.load import parse_settings
from bot.core.live import LiveSettings
from bot.core.models import Settings
from bot.inventory import open_source
from bot.inventory.refresh import FROM_FILE, FROM_SOURCE, FROM_STORED, Refresher
from storage.store import Store
from tests.helpers import Clock
from tests.inventory.netbox_fake import TOKEN, FakeNetBox

T0 = datetime(2026, 5, 1, 9, 0, tzinfo=UTC)


@pytest.fixture
def netbox(netbox: FakeNetBox) -> FakeNetBox:
    """NetBox listing three routers at two sites."""
    netbox.add("core-1", "riga", "10.0.0.1/24")
    netbox.add("edge-2", "riga", "10.0.0.2/24")
    netbox.add("gw-1", "oslo", "10.2.0.1/24")
    return netbox


def config(tmp_path: Path, netbox: FakeNetBox, **inventory: object) -> Settings:
    return parse_settings({
        "storage": {"path": "backups.db"},
        "defaults": {"username": "backup", "password": "${ROUTER_PASSWORD}"},
        "inventory": {"netbox": {"url": netbox.url, "token": "${NETBOX_TOKEN}", "filter": {"tag": "backup"},
                                 "timeout": 2}, **inventory},
        "sites": {"riga": {"devices": [{"name": "lab-1", "host": "10.0.0.99"}]}},
    }, {"ROUTER_PASSWORD": "pw", "NETBOX_TOKEN": TOKEN}, tmp_path)


def refresher(settings: Settings, store: Store, clock: Clock) -> Refresher:
    assert settings.inventory is not None
    return Refresher(settings, LiveSettings(settings), store, open_source(settings.inventory), settings.inventory,
                     clock)


def names(r: Refresher) -> set[str]:
    return {d.label for d in r.live.settings.devices()}


async def test_an_outage_after_a_good_fetch_keeps_the_inventory_even_across_a_restart(
        tmp_path: Path, netbox: FakeNetBox, caplog: pytest.LogCaptureFixture) -> None:
    settings, clock = config(tmp_path, netbox), Clock(T0)
    async with await Store.open(settings.storage_path) as store:
        r = refresher(settings, store, clock)
        assert await r.start() is None
        assert names(r) == {"riga/lab-1", "riga/core-1", "riga/edge-2", "oslo/gw-1"}
        await netbox.outage()
        clock.now = T0 + timedelta(hours=1)
        caplog.set_level(logging.WARNING)
        outcome = await r.refresh()
        assert not outcome.applied and outcome.error is not None and "NetBox cannot be reached" in outcome.error
        assert names(r) == {"riga/lab-1", "riga/core-1", "riga/edge-2", "oslo/gw-1"}, "nothing dropped"
        assert (r.status.state, r.status.using, r.status.failures) == ("failing", FROM_STORED, 1)
        assert r.status.failing_since == T0 + timedelta(hours=1) and r.status.list_read_at == T0
        [line] = [rec for rec in caplog.records if "unreadable" in rec.getMessage()]
        assert line.fields["kept"] == "the last good list, read 2026-05-01 09:00 UTC"
        assert r.next_delay() == 60.0, "a failing source is tried again sooner"
        await r.refresh()
        assert r.next_delay() == 120.0
    async with await Store.open(settings.storage_path) as store:  # serve restarted while NetBox is still down
        again = refresher(settings, store, Clock(T0 + timedelta(hours=2)))
        note = await again.start()
        assert note is not None and note.startswith(f"inventory: NetBox {netbox.url}/api/dcim/devices/?tag=backup: "
                                                    "NetBox cannot be reached")
        assert note.endswith("; using the last good list, read 2026-05-01 09:00 UTC (3 devices)")
        assert names(again) == {"riga/lab-1", "riga/core-1", "riga/edge-2", "oslo/gw-1"}
        assert again.status.using == FROM_STORED
        await netbox.restore()
        assert (await again.refresh()).applied and again.status.state == "ok" and again.status.failures == 0
        assert again.status.using == FROM_SOURCE


async def test_garbage_json_is_a_clear_error_and_the_inventory_is_kept(tmp_path: Path, netbox: FakeNetBox) -> None:
    settings = config(tmp_path, netbox)
    async with await Store.open(settings.storage_path) as store:
        r = refresher(settings, store, Clock(T0))
        await r.start()
        netbox.mode = "html"
        outcome = await r.refresh()
        assert outcome.error == ("NetBox's answer for /api/dcim/devices/ is not JSON "
                                 "(text/html: '<html><body>502 Bad Gateway</body></html>')")
        assert r.status.error == outcome.error and len(names(r)) == 4
        stored = await store.stored_inventory()
        assert len(stored.listed) == 3 and stored.fetched_at == T0


async def test_a_device_that_disappears_is_retired_and_one_that_returns_is_not(
        tmp_path: Path, netbox: FakeNetBox) -> None:
    settings, clock = config(tmp_path, netbox, max_retire_percent=50), Clock(T0)
    async with await Store.open(settings.storage_path) as store:
        r = refresher(settings, store, clock)
        await r.start()
        netbox.remove("edge-2")
        clock.now = T0 + timedelta(hours=1)
        outcome = await r.refresh()
        assert outcome.applied and outcome.plan is not None and [d.name for d in outcome.plan.retired] == ["edge-2"]
        riga = r.live.settings.sites["riga"]
        assert [d.name for d in riga.devices] == ["lab-1", "core-1"]
        assert [(d.name, d.retired_at) for d in riga.retired] == [("edge-2", T0 + timedelta(hours=1))]
        stored = await store.stored_inventory()
        assert [(d.name, at) for d, at in stored.retired] == [("edge-2", T0 + timedelta(hours=1))]

        netbox.add("edge-2", "riga", "10.0.0.22/24")  # back, at a new address
        clock.now = T0 + timedelta(hours=2)
        outcome = await r.refresh()
        assert outcome.plan is not None and [d.name for d in outcome.plan.returned] == ["edge-2"]
        riga = r.live.settings.sites["riga"]
        assert riga.retired == () and riga.device("edge-2") is not None and riga.device("edge-2").host == "10.0.0.22"
        assert (await store.stored_inventory()).retired == ()


async def test_an_empty_answer_is_held_back_until_a_person_accepts_it(tmp_path: Path, netbox: FakeNetBox) -> None:
    settings = config(tmp_path, netbox)
    async with await Store.open(settings.storage_path) as store:
        r = refresher(settings, store, Clock(T0))
        await r.start()
        netbox.devices.clear()
        outcome = await r.refresh()
        assert not outcome.applied and r.status.state == "held back"
        assert r.status.held_back is not None and r.status.held_back.startswith("the source lists no devices")
        assert len(names(r)) == 4 and len((await store.stored_inventory()).listed) == 3
        accepted = await r.refresh(accept=True)
        assert accepted.applied and names(r) == {"riga/lab-1"}, "the file's device stays"
        assert {d.name for d, _ in (await store.stored_inventory()).retired} == {"core-1", "edge-2", "gw-1"}


async def test_start_up_with_the_source_down_and_nothing_stored_uses_the_file(
        tmp_path: Path, netbox: FakeNetBox) -> None:
    await netbox.outage()
    settings = config(tmp_path, netbox)
    async with await Store.open(settings.storage_path) as store:
        r = refresher(settings, store, Clock(T0))
        note = await r.start()
        assert note is not None and note.endswith("; no list from it yet, so only the devices in the config file "
                                                  "are used")
        assert names(r) == {"riga/lab-1"} and r.status.using == FROM_FILE and r.status.state == "failing"
