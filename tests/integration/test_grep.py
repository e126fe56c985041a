"""Searching the fleet end to end: routers backed up over real SSH from the simulator into a real
SQLite file, then searched through the Grep use case (its cache files and its child process), with
the access rules Slack applies (bot.core.access)."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Sequence
from pathlib import Path

import pytest

from bot.app import Backend, open_backend
from bot.backup.grep import Grep, Reading, targets
from bot.backup.grep import readings as readings_for
from bot.backup.textcache import cache_dir
from bot.core.errors import UserError
from bot.core.kinds import Trigger
from bot.core.models import Settings
from bot.routeros.grep import Query
from bot.ssh.simulator import SimDevice, Simulator
from tests.helpers import FIXTURES, secrets_in, walk_back_section
from tests.integration.helpers import ADMIN, ALICE, GENERAL, add_routers, config_for, fast_collector

BOB = "U0BOB00001"
NOTE = "/system note\nset note=\"" + "a" * 40 + "b\" show-at-login=no\n"  # (a+)+$ backtracks 2^40 times here


def readings(settings: Settings, user: str) -> dict[str, Reading]:
    """What Slack's /backup grep searches for `user` in #general."""
    return readings_for(settings, user, GENERAL)


async def backed_up(tmp_path: Path, simulator: Simulator, sites: dict[str, Sequence[SimDevice]],
                    **options: object) -> Settings:
    await add_routers(simulator, *(d for devices in sites.values() for d in devices))
    settings = config_for(tmp_path, sites, **options)  # type: ignore[arg-type]
    async with open_backend(settings, collector=fast_collector()) as b:
        summary = await b.service.run(settings.devices(), Trigger.CLI)
    assert all(r.version is not None for r in summary.results), summary
    return settings


async def lines_of(b: Backend, site: str, device: str) -> list[str]:
    """The normalized config `backupbot show ID` prints for the device's latest version."""
    latest = await b.store.latest_version(site, device)
    assert latest is not None
    return (await b.catalog.config(latest.id)).splitlines()


async def test_plain_regex_and_ignore_case_hits_with_their_sections_and_context(
        tmp_path: Path, simulator: Simulator) -> None:
    settings = await backed_up(tmp_path, simulator, {"lab": [SimDevice("r1"), SimDevice("r2", size=40_000)]})
    async with open_backend(settings) as b:
        every = targets(settings, {"lab": Reading.REAL})
        for query in (Query("winbox"), Query(r"dst-port=\d+,8291", regex=True), Query("WinBox", ignore_case=True)):
            result = await b.grep.search(query, every, show_secrets=True)
            assert [d.label for d in result.devices] == ["lab/r1", "lab/r2"] and result.lines == 2
            for found in result.devices:
                lines = await lines_of(b, "lab", found.version.device)
                (hit,) = found.hits
                i = hit.number - 1
                assert "winbox" in lines[i] and hit.line == lines[i]
                assert hit.section == walk_back_section(lines, i) == "/ip firewall filter"
                assert hit.before == tuple(lines[i - 2:i]) and hit.after == tuple(lines[i + 1:i + 3])
        assert (await b.grep.search(Query("WinBox"), every)).devices == ()  # case matters without -i


async def test_a_match_across_a_wrapped_line(tmp_path: Path, simulator: Simulator) -> None:
    """The router wraps `… from mgmt" \\` / `    dst-port=22,8291 …`; the search sees the joined line."""
    r1 = SimDevice("r1")
    settings = await backed_up(tmp_path, simulator, {"lab": [r1]})
    assert b'from mgmt" \\\r\n    dst-port=22,8291' in r1.export_text("/export show-sensitive")
    async with open_backend(settings) as b:
        result = await b.grep.search(Query('from mgmt" dst-port=22,8291'), targets(settings, {"lab": Reading.REAL}))
        (hit,) = result.devices[0].hits
        assert hit.line.endswith("dst-port=22,8291 protocol=tcp src-address-list=mgmt")


async def test_a_device_the_requester_may_not_see_is_never_read_nor_counted(
        tmp_path: Path, simulator: Simulator) -> None:
    hidden = SimDevice("vault-gw", body="/ip firewall filter\nadd chain=input comment=\"only-in-the-vault winbox\"\n")
    settings = await backed_up(tmp_path, simulator, {"lab": [SimDevice("r1")], "vault": [hidden]},
                               site_options={"vault": {"allowed_users": [BOB]}})
    async with open_backend(settings) as b:
        alice = targets(settings, readings(settings, ALICE))
        assert {d.site for d, _ in alice} == {"lab"}
        result = await b.grep.search(Query("winbox"), alice)
        assert [d.label for d in result.devices] == ["lab/r1"]
        assert (result.searched, result.unbacked, result.lines) == (1, 0, 1)
        nothing = await b.grep.search(Query("only-in-the-vault"), alice)
        assert (nothing.devices, nothing.searched, nothing.lines) == ((), 1, 0)
        bob = await b.grep.search(Query("only-in-the-vault"), targets(settings, readings(settings, BOB)))
        assert [d.label for d in bob.devices] == ["vault/vault-gw"]


async def test_secrets_are_never_shown_nor_found_by_guessing_them(tmp_path: Path, simulator: Simulator) -> None:
    """Every secret value of the routers: not found by someone without download rights (the
    redacted text is searched), found by a download user but shown redacted and marked, found and
    shown by the CLI (show_secrets)."""
    r1, r2 = SimDevice("r1"), SimDevice("r2", ros_version="6.49.7")
    settings = await backed_up(tmp_path, simulator, {"lab": [r1, r2]},
                               site_options={"lab": {"download_users": [BOB]}})
    async with open_backend(settings) as b:
        values = sorted({v for name in ("r1", "r2") for v in secrets_in("\n".join(await lines_of(b, "lab", name)))[0]})
        assert len(values) >= 4  # PPP secrets and Wi-Fi keys of both routers
        assert readings(settings, ALICE) == {"lab": Reading.REDACTED}
        assert readings(settings, BOB) == readings(settings, ADMIN) == {"lab": Reading.REAL}
        alice, bob = targets(settings, readings(settings, ALICE)), targets(settings, readings(settings, BOB))
        for value in values:
            for query in (Query(value), Query(value[:6], ignore_case=True), Query(f"={value[:5]}.*", regex=True)):
                assert (await b.grep.search(query, alice)).devices == (), query
            found = await b.grep.search(Query(value), bob)
            assert found.devices and found.secret
            shown = [line for d in found.devices for h in d.hits for line in (h.line, *h.before, *h.after)]
            assert all(value not in line for line in shown) and any("<redacted:" in line for line in shown)
            cli = await b.grep.search(Query(value), targets(settings, {"lab": Reading.REAL}), show_secrets=True)
            assert any(value in h.line for d in cli.devices for h in d.hits)
        # What may be shown is still found by everyone.
        assert [d.label for d in (await b.grep.search(Query("password=<redacted:"), alice)).devices] == [
            "lab/r1", "lab/r2"]


async def test_a_pathological_regex_is_stopped_with_a_clear_message(tmp_path: Path, simulator: Simulator) -> None:
    """`(a+)+$` against a long line of a's would run for years; the search is killed at its time
    limit and says why, and the next search works."""
    settings = await backed_up(tmp_path, simulator, {"lab": [SimDevice("r1", body=NOTE)]})
    async with open_backend(settings) as b:
        every = targets(settings, {"lab": Reading.REAL})
        grep = Grep(b.store, b.grep.cache, time_limit=1.0)
        try:
            started = time.monotonic()
            with pytest.raises(UserError, match=r"stopped after 1 s .* nested repeats such as \(a\+\)\+"):
                await grep.search(Query("(a+)+$", regex=True), every)
            assert time.monotonic() - started < 10
            with pytest.raises(UserError, match="stopped after"):  # a required literal does not help it
                await grep.search(Query('note="(a+)+$', regex=True), every)
            found = await grep.search(Query("(a+)+b", regex=True), every)  # matches at once: fine
            assert found.lines == 1
        finally:
            await grep.close()


def search_processes() -> set[int]:
    """This test process's children running bot.backup.grepworker (from /proc)."""
    found = set()
    for proc in Path("/proc").iterdir():
        try:
            ppid = int((proc / "stat").read_text().rsplit(")", 1)[1].split()[1])
            command = (proc / "cmdline").read_bytes()
        except (OSError, ValueError, IndexError):
            continue  # not a process, or it ended meanwhile
        if ppid == os.getpid() and b"bot.backup.grepworker" in command:
            found.add(int(proc.name))
    return found


async def test_the_search_processes_wait_for_the_next_search_and_end_with_the_backend(
        tmp_path: Path, simulator: Simulator) -> None:
    """The processes a search ran in are kept for the next one; one killed while it waited is
    replaced and the search answers all the same; none is left once the backend is closed."""
    settings = await backed_up(tmp_path, simulator, {"lab": [SimDevice("r1"), SimDevice("r2")]})
    every = targets(settings, {"lab": Reading.REAL})
    async with open_backend(settings) as b:
        first = await b.grep.search(Query("winbox"), every)
        kept = search_processes()
        assert kept
        assert await b.grep.search(Query("winbox"), every) == first
        assert search_processes() == kept
        for pid in kept:
            os.kill(pid, signal.SIGKILL)
        assert await b.grep.search(Query("winbox"), every) == first
        assert search_processes() and search_processes().isdisjoint(kept)
    assert search_processes() == set()


async def test_the_cache_is_never_stale_and_never_needed(tmp_path: Path, simulator: Simulator) -> None:
    """A new version is searched at once (its file is made; the old one is removed); a cache
    removed or damaged by hand changes no answer."""
    r1 = SimDevice("r1")
    settings = await backed_up(tmp_path, simulator, {"lab": [r1]})
    every = targets(settings, {"lab": Reading.REAL})
    query = Query("block scanner", ignore_case=True)
    async with open_backend(settings, collector=fast_collector()) as b:
        assert (await b.grep.search(query, every)).devices == ()
        root = cache_dir(settings.storage_path)
        before = sorted(p.name for p in root.rglob("*") if p.is_file())
        r1.change(1)  # adds a "block scanner 1" firewall rule
        await b.service.run(settings.devices(), Trigger.CLI)
        result = await b.grep.search(query, every)
        assert [h.line.split(" comment=")[1][:17] for h in result.devices[0].hits] == ['"block scanner 1"']
        after = sorted(p.name for p in root.rglob("*") if p.is_file())
        assert len(after) == len(before) and set(after).isdisjoint(before)  # the old version's files went
        assert (root.stat().st_mode & 0o777) == 0o700
        for path in root.rglob("*"):
            if path.is_file():
                path.unlink()
        assert await b.grep.search(query, every) == result
        (root / ("0" * 12) / "text").mkdir(parents=True)  # a stamp of other rules: removed when files are made
        for path in root.rglob("*"):
            if path.is_file():
                path.unlink()
        assert await b.grep.search(query, every) == result
        assert not (root / ("0" * 12)).exists()


def fixture_body(name: str) -> str:
    """A fixture export without its header, as a SimDevice prints it after its own."""
    lines = (FIXTURES / name).read_bytes().decode().replace("\r\n", "\n").split("\n")
    while lines and lines[0].startswith("#"):
        lines.pop(0)
    return "\n".join(lines)


async def test_history_names_the_versions_a_line_appeared_and_went_in(tmp_path: Path, simulator: Simulator) -> None:
    """seq-rb5009-vlan-1, -2 and -3 backed up in turn over SSH: `ether7-Access list=TRUSTED` came in
    the 2nd version and went in the 3rd, the `list=Admin` entries came in the 2nd and stayed, the
    old pool range was in the 1st and went in the 2nd."""
    r1 = SimDevice("vlan-gw", body=fixture_body("seq-rb5009-vlan-1.rsc"))
    settings = await backed_up(tmp_path, simulator, {"lab": [r1, SimDevice("other")]})
    async with open_backend(settings, collector=fast_collector()) as b:
        for n in (2, 3):
            r1.body = fixture_body(f"seq-rb5009-vlan-{n}.rsc")
            await b.service.run(settings.devices("lab", "vlan-gw"), Trigger.CLI)
        v1, v2, v3 = (v.id for v in reversed(await b.store.versions("lab", "vlan-gw")))
        query = Query(r"ether7-Access list=TRUSTED|list=Admin|ranges=192\.168\.200\.", regex=True)
        result = await b.grep.history(query, targets(settings, {"lab": Reading.REAL}), show_secrets=True)
    assert (result.searched, [d.label for d in result.devices]) == (2, ["lab/vlan-gw"])
    (device,) = result.devices
    assert (device.versions, device.first.id, device.last.id) == (3, v1, v3)
    spans = {x.line: [(s.since.id, s.until.id if s.until else None) for s in x.spans] for x in device.lines}
    assert spans == {
        "add name=dhcp_pool-server ranges=192.168.200.20-192.168.200.254": [(v1, v2)],
        "add name=dhcp_pool-server ranges=192.168.200.200-192.168.200.249": [(v2, None)],
        "add interface=ether7-Access list=TRUSTED": [(v2, v3)],
        "add address=192.168.99.20 list=Admin": [(v2, None)],
        "add address=192.168.99.21 list=Admin": [(v2, None)],
    }
