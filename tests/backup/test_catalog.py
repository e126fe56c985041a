"""Catalog on the live inventory (bot.core.live): it follows a refresh, and a pinned one (a request's)
keeps the inventory it started with. A real SQLite store behind it."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timezone
from pathlib import Path

import pytest

from bot.backup.catalog import Catalog
from bot.core.errors import NotFound, UserError
from bot.core.live import LiveSettings
from bot.core.models import Device, Settings, Site
from storage.store import Store

GONE = datetime(2026, 5, 1, 9, 0, tzinfo=timezone.utc)


def device(name: str, **kw: object) -> Device:
    return Device("lab", name, "10.0.0.1", username="backup", **kw)  # type: ignore[arg-type]


async def test_a_refresh_reaches_the_catalog_but_not_a_pinned_one(tmp_path: Path) -> None:
    before = Settings(tmp_path / "db", {"lab": Site("lab", (device("core-1"), device("old-1")))})
    after = replace(before, sites={"lab": Site("lab", (device("core-1"), device("new-1")),
                                               retired=(device("old-1", retired_at=GONE),)),
                                   "oslo": Site("oslo", (replace(device("gw-1"), site="oslo"),))})
    live = LiveSettings(before)
    async with await Store.open(tmp_path / "db") as store:
        catalog = Catalog(live, store)
        request = catalog.pinned()  # a request that started before the refresh
        live.replace(after)
        assert catalog.site("oslo").name == "oslo" and catalog.device("lab", "new-1").name == "new-1"
        assert catalog.device("lab", "old-1").retired_at == GONE  # still browsable
        with pytest.raises(UserError, match="lab/old-1 was retired on 2026-05-01"):
            catalog.backup_targets("lab", "old-1")
        assert [d.name for d in catalog.backup_targets("lab")] == ["core-1", "new-1"]
        assert [s.device.name for s in await catalog.device_statuses("lab")] == ["core-1", "new-1", "old-1"]

        assert request.settings is before  # its checks and its answer see one inventory to its end
        with pytest.raises(NotFound):
            request.site("oslo")
        assert [d.name for d in request.backup_targets("lab")] == ["core-1", "old-1"]
        assert catalog.pinned().settings is after
