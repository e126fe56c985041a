"""The file's inventory merged with a source's (bot.inventory.merge, pure): the file wins and says so,
sites only in the source get the global defaults, retired devices, and when a fetch is held back."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from bot.config.load import parse_settings
from bot.core.models import CsvSource, InventorySettings, Settings, SourceDevice, StoredInventory
from bot.inventory.merge import Change, Fetched, Override, merge, plan, retire_limit

T0 = datetime(2026, 5, 1, 9, 0, tzinfo=UTC)
RULES = InventorySettings(CsvSource(Path("/dev/null")), max_retire_percent=10)


def base(tmp_path: Path) -> Settings:
    """A config with an inventory source: one site with devices of its own and a site-level username,
    one site that only sets a channel and access for the source's devices."""
    (tmp_path / "routers.csv").write_text("site,name,host\n")
    return parse_settings({
        "slack": {"channel": "C0GENERAL1"},
        "defaults": {"username": "backup", "password": "${ROUTER_PASSWORD}", "port": 22},
        "inventory": {"csv": "routers.csv"},
        "sites": {
            "riga": {"username": "riga-backup", "port": 2200,
                     "devices": [{"name": "core-1", "host": "10.0.0.1"}, {"name": "ap-1", "host": "10.0.0.2"}]},
            "vip": {"channel": "C0VIPCHAN1", "allowed_users": ["U0ALICE001"]},
        },
    }, {"ROUTER_PASSWORD": "pw-from-env"}, tmp_path)


def dev(site: str, name: str, host: str, port: int | None = None) -> SourceDevice:
    return SourceDevice(site, name, host, port, f"test {name}")


def test_the_file_wins_on_conflicts_and_says_so(tmp_path: Path) -> None:
    """riga/core-1 is in both (the source spells it CORE-1, with another host and port): the file's
    device is used as written, and each disagreement is an Override."""
    merged = merge(base(tmp_path), [dev("riga", "CORE-1", "10.9.9.9", 2222), dev("riga", "ap-1", "10.0.0.2")])
    core = merged.settings.sites["riga"].device("core-1")
    assert core is not None and (core.host, core.port) == ("10.0.0.1", 2200)
    assert [d.name for d in merged.settings.sites["riga"].devices] == ["core-1", "ap-1"]
    assert merged.overrides == (
        Override("riga", "core-1", "name", "CORE-1", "core-1"),
        Override("riga", "core-1", "host", "10.9.9.9", "10.0.0.1"),
        Override("riga", "core-1", "port", "2222", "2200"),
    )
    assert merged.overrides[1].describe() == ("riga/core-1: host 10.0.0.1 from the config file, "
                                             "not 10.9.9.9 from the source")


def test_source_devices_inherit_their_sites_settings_or_the_global_defaults(tmp_path: Path) -> None:
    """A source device in a file site takes that site's keys (username, port); one in the file site
    without devices gets its channel and access; one in a site the file lacks gets the global
    defaults: slack.channel, the global schedule, no access list, defaults' credentials."""
    settings = merge(base(tmp_path), [dev("riga", "edge-1", "10.0.0.5"), dev("vip", "gw", "10.1.0.1", 2022),
                                      dev("oslo", "core-9", "10.2.0.1")]).settings
    edge = settings.sites["riga"].device("edge-1")
    assert edge is not None and (edge.username, edge.port, edge.password) == ("riga-backup", 2200, "pw-from-env")
    gw = settings.sites["vip"].device("gw")
    assert gw is not None and (gw.username, gw.port) == ("backup", 2022)
    assert settings.sites["vip"].channel == "C0VIPCHAN1" and settings.sites["vip"].allowed_users == {"U0ALICE001"}
    oslo = settings.sites["oslo"]
    core = oslo.device("core-9")
    assert core is not None and (core.username, core.port, core.password) == ("backup", 22, "pw-from-env")
    assert (oslo.channel, oslo.times, oslo.timezone, oslo.allowed_users) == (None, None, None, frozenset())
    assert list(settings.sites) == ["riga", "vip", "oslo"]


def test_retired_devices_are_kept_apart_and_a_file_device_is_never_retired(tmp_path: Path) -> None:
    gone = datetime(2026, 4, 30, tzinfo=UTC)
    settings = merge(base(tmp_path), [dev("riga", "edge-1", "10.0.0.5")],
                     [(dev("riga", "old-2", "10.0.0.9"), gone), (dev("riga", "core-1", "10.0.0.1"), gone),
                      (dev("oslo", "core-9", "10.2.0.1"), gone)]).settings
    riga = settings.sites["riga"]
    assert [d.name for d in riga.devices] == ["core-1", "ap-1", "edge-1"]
    assert [(d.name, d.retired_at) for d in riga.retired] == [("old-2", gone)]
    assert riga.device("old-2") is None and riga.known("old-2") is riga.retired[0]
    assert settings.sites["oslo"].devices == () and [d.name for d in settings.sites["oslo"].retired] == ["core-9"]
    assert "old-2" not in {d.name for d in settings.devices()}


def stored(*devices: SourceDevice, retired: tuple[SourceDevice, ...] = ()) -> StoredInventory:
    return StoredInventory("CSV routers.csv", T0, devices, tuple((d, T0) for d in retired))


def test_a_plan_lists_what_applying_the_fetch_changes(tmp_path: Path) -> None:
    before = stored(*(dev("oslo", f"r{i}", f"10.2.0.{i}") for i in range(20)), dev("riga", "core-1", "10.0.0.1"),
                    retired=(dev("oslo", "back-1", "10.2.1.1"),))
    now = [dev("oslo", f"r{i}", f"10.2.0.{i}") for i in range(1, 20)]
    now[0] = dev("oslo", "r1", "10.2.0.101", 2222)
    now += [dev("oslo", "new-1", "10.2.2.1"), dev("oslo", "back-1", "10.2.1.1")]
    change = plan(base(tmp_path), before, Fetched("CSV routers.csv", tuple(now)), RULES)
    assert [d.name for d in change.added] == ["new-1", "back-1"] and [d.name for d in change.returned] == ["back-1"]
    assert [d.name for d in change.retired] == ["r0"]
    assert [d.name for d in change.kept_by_file] == ["core-1"], "gone from the source, but the file has it"
    assert change.changed == (Change("oslo", "r1", "host", "10.2.0.1", "10.2.0.101"),
                              Change("oslo", "r1", "port", "-", "2222"))
    assert change.held_back is None


def test_a_fetch_that_retires_too_many_at_once_is_held_back(tmp_path: Path) -> None:
    """10 % of 21 listed devices is 2: a third retirement holds the fetch back; an empty answer always does."""
    before = stored(*(dev("oslo", f"r{i}", f"10.2.0.{i}") for i in range(21)))
    three_gone = Fetched("CSV", before.listed[3:])
    assert plan(base(tmp_path), before, Fetched("CSV", before.listed[2:]), RULES).held_back is None
    assert plan(base(tmp_path), before, three_gone, RULES).held_back == (
        "it would retire 3 of 21 devices at once, more than max_retire_percent (10 %) allows (2)")
    assert plan(base(tmp_path), before, Fetched("CSV", ()), RULES).held_back.startswith(
        "the source lists no devices, where it listed 21")
    assert plan(base(tmp_path), StoredInventory(), Fetched("CSV", ()), RULES).held_back is None, "nothing to lose"


def test_the_retire_limit() -> None:
    assert [retire_limit(n, 10) for n in (0, 1, 5, 19, 20, 200)] == [1, 1, 1, 1, 2, 20]
    assert retire_limit(200, 0) == 0, "0 %: every retirement needs a person"
