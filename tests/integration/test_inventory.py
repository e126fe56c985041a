"""The inventory from NetBox end to end: `serve` (the bot's real server, the fake Slack, simulated
routers over real SSH, a real SQLite file) with a local NetBox on 127.0.0.1; and `backupbot
inventory` / `backupbot list` as real processes.

A device NetBox stops listing is retired: not scheduled, not backed up from Slack, still browsable.
NetBox down: the devices stay, readiness says so (and turns 503 after 15 minutes)."""

from __future__ import annotations

import asyncio
import json
import re
import subprocess
import sys
from datetime import timedelta
from pathlib import Path
from typing import Any

import aiohttp
import yaml

from bot.config.load import load_settings, parse_settings
from bot.core.kinds import Trigger
from bot.core.models import Settings
from bot.serve.server import BACKEND, SCHEDULER, Options
from bot.slack import blocks
from bot.ssh.simulator import SimDevice, Simulator
from tests.helpers import Clock, until
from tests.integration.helpers import (
    ROUTER_PASSWORD,
    add_routers,
    answer,
    blocks_text,
    buttons,
    checkbox_values,
    fast_collector,
    free_port,
    is_error,
    run_bot,
    settle,
)
from tests.integration.slack_fake import FakeSlack
from tests.inventory.netbox_fake import TOKEN, FakeNetBox

ENV = {"ROUTER_PASSWORD": ROUTER_PASSWORD, "NETBOX_TOKEN": TOKEN}


def listed(netbox: FakeNetBox, d: SimDevice, site: str = "lab") -> None:
    """A simulated router as NetBox lists it: 127.0.0.1 with the SSH port in a custom field."""
    netbox.add(d.name, site, f"{d.host}/8", custom_fields={"ssh_port": d.port})


def config(netbox: FakeNetBox, core: SimDevice) -> dict[str, Any]:
    return {
        "storage": {"path": "backups.db"},
        "slack": {"channel": "C0GENERAL1", "admins": ["U0ADMIN001"]},
        "defaults": {"username": "backup", "password": "${ROUTER_PASSWORD}", "timeout": 5},
        "inventory": {"netbox": {"url": netbox.url, "token": "${NETBOX_TOKEN}", "filter": {"tag": "backup"},
                                 "port_field": "ssh_port", "timeout": 2}},
        "sites": {"lab": {"devices": [{"name": core.name, "host": core.host, "port": core.port}]}},
    }


async def test_serve_retires_what_netbox_drops_keeps_it_browsable_and_survives_an_outage(
        tmp_path: Path, simulator: Simulator, slack: FakeSlack, netbox: FakeNetBox) -> None:
    core, edge, old = await add_routers(simulator, SimDevice("core-1"), SimDevice("edge-1"), SimDevice("old-1"))
    netbox.add("core-1", "lab", "10.9.9.9/24")  # also in the file: the file wins
    listed(netbox, edge)
    listed(netbox, old)
    settings = parse_settings(config(netbox, core), ENV, tmp_path)
    clock = Clock(shift=timedelta(0))
    async with run_bot(settings, slack, options=Options(clock=clock, collector=fast_collector(),
                                                        drain_timeout=10.0)) as bot:
        backend = bot.app[BACKEND]
        assert [d.label for d in backend.settings.devices()] == ["lab/core-1", "lab/edge-1", "lab/old-1"]
        assert backend.settings.sites["lab"].device("core-1").host == "127.0.0.1"
        summary = await backend.service.run(backend.settings.devices(), Trigger.CLI)
        assert [r.status.value for r in summary.results] == ["new", "new", "new"]
        status, ready = await bot.admin_get("/healthz/ready")
        assert status == 200 and ready["inventory"]["state"] == "ok" and ready["inventory"]["overrides"] == 1

        netbox.remove("old-1")
        assert (await backend.refresher.refresh()).applied
        lab = backend.settings.sites["lab"]
        assert [d.name for d in lab.devices] == ["core-1", "edge-1"] and [d.name for d in lab.retired] == ["old-1"]
        _, metrics = await bot.admin_text("/metrics")  # no staleness alert waits on a retired device
        assert 'device="old-1"' not in metrics and 'backupbot_last_success_timestamp_seconds{device="edge-1"' in metrics

        # Slack: still browsable, shown as retired, never backed up again.
        msg = await answer(slack, await bot.command("lab old-1"))
        assert len(checkbox_values(msg)) == 1 and "retired" in blocks_text(msg)
        site = await answer(slack, await bot.command("lab"))
        assert "1 retired" in blocks_text(site) and (blocks.BACKUP_DEVICE, "lab old-1") not in buttons(site)
        refused = await bot.command("lab old-1 now")
        assert is_error(refused.json) and "lab/old-1 was retired on" in refused.text
        job = bot.app[SCHEDULER].aps.get_job("02:00 UTC")
        calls = old.connections
        await job.func(*job.args)
        assert old.connections == calls, "a retired device is not scheduled"
        assert edge.connections > 0

        # NetBox goes down: nothing dropped; readiness says so, and needs a person after 15 minutes.
        await netbox.outage()
        outcome = await backend.refresher.refresh()
        assert not outcome.applied and [d.name for d in backend.settings.devices()] == ["core-1", "edge-1"]
        status, ready = await bot.admin_get("/healthz/ready")
        inventory = ready["inventory"]
        assert status == 200 and inventory["ok"] is True
        assert (inventory["state"], inventory["using"], inventory["failures"]) == ("failing", "last good list", 1)
        assert inventory["error"].startswith("NetBox cannot be reached (ClientConnectorError")
        clock.shift = timedelta(minutes=16)
        status, ready = await bot.admin_get("/healthz/ready")
        assert status == 503 and ready["inventory"]["ok"] is False
        print("readiness while NetBox is down:", json.dumps(ready["inventory"], indent=2))


async def test_serve_starts_with_the_files_devices_when_netbox_is_down_and_nothing_is_stored(
        tmp_path: Path, simulator: Simulator, slack: FakeSlack, netbox: FakeNetBox) -> None:
    [core] = await add_routers(simulator, SimDevice("core-1"))
    await netbox.outage()
    settings = parse_settings(config(netbox, core), ENV, tmp_path)
    async with run_bot(settings, slack) as bot:
        assert [d.label for d in bot.app[BACKEND].settings.devices()] == ["lab/core-1"]
        _, ready = await bot.admin_get("/healthz/ready")
        assert ready["inventory"]["using"] == "config file only" and ready["inventory"]["state"] == "failing"
        assert ready["inventory"]["note"] == ("no list from the source yet: only the devices in the config file "
                                              "are backed up")
        assert ready["scheduler"]["running"] is True


async def backupbot(*args: str, cwd: Path) -> tuple[int, str, str]:
    """`python -m bot ARGS` as its own process (the fake NetBox keeps answering meanwhile)."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bot", *args, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        env={"PATH": "/usr/bin:/bin", **ENV}, cwd=cwd)
    out, err = await asyncio.wait_for(proc.communicate(), 120)
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


async def test_backupbot_inventory_shows_what_would_change_and_changes_nothing(
        tmp_path: Path, simulator: Simulator, netbox: FakeNetBox) -> None:
    core, edge, old = await add_routers(simulator, SimDevice("core-1"), SimDevice("edge-1"), SimDevice("old-1"))
    listed(netbox, edge)
    listed(netbox, old)
    (tmp_path / "backupbot.yml").write_text(yaml.safe_dump(config(netbox, core)))
    code, out, err = await backupbot("backup", cwd=tmp_path)  # reads NetBox: the last good list is saved
    assert code == 0, err
    assert [line.split()[:3] for line in out.splitlines()[2:5]] == [
        ["lab", "core-1", "new"], ["lab", "edge-1", "new"], ["lab", "old-1", "new"]]

    netbox.remove("old-1")
    netbox.add("core-1", "lab", "10.9.9.9/24", custom_fields={"ssh_port": 2222})  # conflicts with the file
    netbox.devices[0]["primary_ip"] = {"address": "127.0.0.2/8"}  # edge-1 moved
    netbox.add("new-1", "oslo", "10.2.0.1/24")
    netbox.add("Core Router 7", "oslo", "10.2.0.7/24")
    code, out, err = await backupbot("inventory", cwd=tmp_path)
    assert code == 0, err
    print(out)
    assert out.startswith(f"NetBox {netbox.url}/api/dcim/devices/?tag=backup: 3 devices, read ")
    rows = [line.split(None, 3) for line in out.split("CHANGE ")[1].splitlines()[2:7]]
    assert rows == [
        ["added", "oslo", "new-1", "10.2.0.1"],
        ["would", "retire", "lab", "old-1   no longer listed (was 127.0.0.1 port " + str(old.port) + ")"],
        ["changed", "lab", "edge-1", "host 127.0.0.1 → 127.0.0.2"],
        ["file", "wins", "lab", "core-1  host 127.0.0.1 from the config file, not 10.9.9.9 from the source"],
        ["file", "wins", "lab", f"core-1  port {core.port} from the config file, not 2222 from the source"],
    ]
    assert 'NetBox device 5 ("Core Router 7"): the name is not a simple name' in out
    assert out.rstrip().endswith("Nothing was changed (`serve` applies this at its next refresh; "
                                 "`backupbot inventory --apply` saves it now).")

    code, out, _ = await backupbot("inventory", "--json", cwd=tmp_path)
    doc = json.loads(out)
    assert [d["device"] for d in doc["retire"]] == ["old-1"] and doc["applied"] is False
    assert {(w["device"], w["field"]) for w in doc["file_wins"]} == {("core-1", "host"), ("core-1", "port")}
    assert doc["current"]["devices"] == 2

    code, out, _ = await backupbot("list", "lab", "--json", cwd=tmp_path)  # `list` reads NetBox too: old-1 retired
    devices = {d["device"]: d for d in json.loads(out)}
    assert devices["old-1"]["retired_at"] is not None and devices["old-1"]["latest"]["id"] > 0
    assert devices["edge-1"]["retired_at"] is None
    code, out, _ = await backupbot("list", "lab", cwd=tmp_path)
    assert "RETIRED" in next(line for line in out.splitlines() if line.startswith("old-1"))
    code, out, err = await backupbot("backup", "lab", "old-1", cwd=tmp_path)
    assert code == 1 and "lab/old-1 was retired on" in err

    await netbox.outage()
    code, out, err = await backupbot("inventory", cwd=tmp_path)
    assert code == 1 and "cannot be read: NetBox cannot be reached" in out and "Nothing was changed" in out
    code, out, err = await backupbot("sites", cwd=tmp_path)
    assert code == 0 and "NetBox cannot be reached" in err and "using the last good list, read" in err
    settings: Settings = load_settings(tmp_path / "backupbot.yml", ENV)
    assert settings.inventory is not None


# -- a refresh reaches everything that names devices: the pages, the links, the search, the mirror ----

async def refreshed_lab(tmp_path: Path, simulator: Simulator, slack: FakeSlack, netbox: FakeNetBox
                        ) -> tuple[dict[str, Any], dict[str, SimDevice], int]:
    """core-1 (in the file), edge-1 and old-1 (from NetBox), each backed up once by `serve`; then NetBox
    drops old-1 and lists new-1 in lab and gw-1 in a site the file does not have (oslo). Returns the
    config (with the browser pages and a git mirror), the routers, and the pages' port."""
    routers = await add_routers(simulator, *(SimDevice(n) for n in ("core-1", "edge-1", "old-1", "new-1", "gw-1")))
    by_name = {d.name: d for d in routers}
    listed(netbox, by_name["edge-1"])
    listed(netbox, by_name["old-1"])
    port = free_port()
    data = {**config(netbox, by_name["core-1"]), "web": {"base_url": f"http://127.0.0.1:{port}"},
            "git": {"path": "mirror"}}
    return data, by_name, port


async def refresh(bot: Any, netbox: FakeNetBox, routers: dict[str, SimDevice]) -> None:
    backend = bot.app[BACKEND]
    first = await backend.service.run(backend.settings.devices(), Trigger.CLI)
    assert [r.device.name for r in first.results] == ["core-1", "edge-1", "old-1"] and not first.failed
    netbox.remove("old-1")
    listed(netbox, routers["new-1"])
    listed(netbox, routers["gw-1"], site="oslo")
    assert (await backend.refresher.refresh()).applied


async def test_a_refresh_reaches_the_browser_pages_and_their_links(
        tmp_path: Path, simulator: Simulator, slack: FakeSlack, netbox: FakeNetBox) -> None:
    """After a refresh (no restart): the pages list the new site and the new device, mark the retired
    one and keep its history browsable; Slack's "Open in browser" links exist for the new site; and
    "Back up site now" backs up the devices as they are now, never the retired one."""
    data, routers, port = await refreshed_lab(tmp_path, simulator, slack, netbox)
    async with run_bot(parse_settings(data, ENV, tmp_path), slack, port=port) as bot:
        await refresh(bot, netbox, routers)
        [old_version] = await bot.app[BACKEND].catalog.versions("lab", "old-1")
        base = f"http://127.0.0.1:{port}"
        msg = await answer(slack, await bot.command("oslo"))  # a site only NetBox has: linked like any other
        assert f"{base}/ui/open?t=" in blocks_text(msg) and "gw-1" in blocks_text(msg)
        [url] = [u for u in re.findall(r'"url": "([^"]+)"', blocks_text(msg)) if "/ui/open?t=" in u]
        async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as browser:
            async with browser.get(url) as resp:
                assert resp.status == 200 and "gw-1" in await resp.text() and resp.url.path == "/ui/site/oslo"
            async with browser.get(f"{base}/ui/") as resp:
                home = await resp.text()
            assert 'href="/ui/site/oslo"' in home and "+ 1 retired" in home
            async with browser.get(f"{base}/ui/site/lab") as resp:
                site = await resp.text()
            assert "/ui/device/lab/new-1" in site and "never backed up" in site
            row = site[site.index("/ui/device/lab/old-1"):]
            assert row.index("retired 20") < row.index("</tr>") and f"#{old_version.id}" in row
            assert "1 retired device: no longer in the inventory source" in site and "Back up site now" in site
            async with browser.get(f"{base}/ui/device/lab/old-1") as resp:
                device = await resp.text()
            assert resp.status == 200 and "Retired 20" in device and f'name="v" value="{old_version.id}"' in device

            calls = routers["old-1"].connections
            csrf = re.search(r'name="csrf" value="([0-9a-f]+)"', site)[1]  # type: ignore[index]
            async with browser.post(f"{base}/ui/site/lab/backup", data={"csrf": csrf}) as resp:
                assert "Backing up lab: 3 devices…" in await resp.text()
        await settle(bot)
        await until(lambda: slack.posts("D0ALICE001"))
        (summary,) = slack.posts("D0ALICE001")
        assert "1 new" in summary["text"] and routers["old-1"].connections == calls
        assert await bot.app[BACKEND].catalog.count_versions("lab", "new-1") == 1


async def test_a_refresh_reaches_the_search_and_the_git_mirror(
        tmp_path: Path, simulator: Simulator, slack: FakeSlack, netbox: FakeNetBox) -> None:
    """The fleet search takes the devices as they are now: a device the source added is searched
    once it has a backup, a retired one is left out unless named; the mirror gets the new devices'
    files and keeps the retired one's."""
    data, routers, _ = await refreshed_lab(tmp_path, simulator, slack, netbox)
    async with run_bot(parse_settings(data, ENV, tmp_path), slack) as bot:
        await refresh(bot, netbox, routers)
        reply = await bot.command("grep winbox")
        assert "Searching the latest backup of 4 devices" in reply.json["text"]  # old-1 is not one of them
        found = blocks_text(await answer(slack, reply))
        assert "lab/core-1" in found and "lab/edge-1" in found and "old-1" not in found and "new-1" not in found

        backend = bot.app[BACKEND]
        await backend.service.run(backend.settings.devices(), Trigger.SCHEDULE)
        found = blocks_text(await answer(slack, await bot.command("grep winbox")))
        assert "lab/new-1" in found and "oslo/gw-1" in found and "old-1" not in found
        named = blocks_text(await answer(slack, await bot.command("grep winbox lab old-1")))
        assert "lab/old-1" in named  # named on its own, a retired device's last backup is searched

        def mirrored() -> set[str]:
            listing = subprocess.run(["git", "ls-tree", "-r", "--name-only", "main"], cwd=tmp_path / "mirror",
                                     capture_output=True, text=True)
            return set(listing.stdout.split())

        everything = {"lab/core-1.rsc", "lab/edge-1.rsc", "lab/old-1.rsc", "lab/new-1.rsc", "oslo/gw-1.rsc"}
        await until(lambda: mirrored() == everything)


async def test_backupbot_import_matches_files_to_the_sources_devices(
        tmp_path: Path, simulator: Simulator, netbox: FakeNetBox) -> None:
    """A team coming from Oxidized with its routers in NetBox imports before anything else ran: the
    import reads NetBox first, so a file named after a router only NetBox lists is that router's."""
    core, edge = await add_routers(simulator, SimDevice("core-1"), SimDevice("edge-1"))
    listed(netbox, edge)
    (tmp_path / "backupbot.yml").write_text(yaml.safe_dump(config(netbox, core)))
    folder = tmp_path / "oxidized"
    folder.mkdir()
    fixtures = Path(__file__).parents[1] / "fixtures" / "routeros"
    (folder / "edge-1_20240101-0300.rsc").write_bytes((fixtures / "seq-praze-1.rsc").read_bytes())
    (folder / "gone-9.rsc").write_bytes((fixtures / "seq-praze-2.rsc").read_bytes())
    code, out, err = await backupbot("import", "files", str(folder), "--site", "lab", cwd=tmp_path)
    assert code == 0, err
    assert "lab/edge-1" in out and 'skipped: no device named "gone-9" in site "lab"' in out
    code, out, _ = await backupbot("list", "lab", "edge-1", "--json", cwd=tmp_path)
    assert [v["origin"] for v in json.loads(out)] == ["import"]
