"""Which devices a search reads (bot.backup.grep.targets): pure, on an inventory with a retired device."""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

from bot.backup.grep import Reading, targets
from bot.core.models import Device, Settings, Site

GONE = datetime(2026, 5, 1, 9, 0, tzinfo=timezone.utc)


def inventory() -> Settings:
    lab = Site("lab", (Device("lab", "core-1", "10.0.0.1", username="b"), Device("lab", "edge-1", "10.0.0.2", username="b")),
               retired=(Device("lab", "old-1", "10.0.0.3", username="b", retired_at=GONE),))
    vault = Site("vault", (Device("vault", "gw", "10.9.0.1", username="b"),))
    return Settings(Path("db"), {"lab": lab, "vault": vault})


def test_a_fleet_or_site_search_leaves_retired_devices_out_and_a_named_one_is_searched() -> None:
    """"Which routers still allow X" must not name a router taken out; its history is still searchable
    when asked for by name."""
    settings = inventory()
    both = {"lab": Reading.REDACTED, "vault": Reading.REAL}
    assert [(d.label, r) for d, r in targets(settings, both)] == [
        ("lab/core-1", Reading.REDACTED), ("lab/edge-1", Reading.REDACTED), ("vault/gw", Reading.REAL)]
    assert [d.label for d, _ in targets(settings, both, "lab")] == ["lab/core-1", "lab/edge-1"]
    [(old, reading)] = targets(settings, both, "lab", "old-1")
    assert (old.label, old.retired_at, reading) == ("lab/old-1", GONE, Reading.REDACTED)
    assert targets(settings, {"vault": Reading.REAL}, "lab", "old-1") == []  # a site not visible: nothing
    assert targets(settings, both, "lab", "nope") == []
