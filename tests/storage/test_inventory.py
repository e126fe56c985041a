"""The inventory source's last good list and retired devices (storage.inventory, schema step 0006)."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

from bot.core.models import SourceDevice, StoredInventory
from storage.migrate import load_migrations, split_statements
from storage.store import Store

T0 = datetime(2026, 5, 1, 9, 0, tzinfo=UTC)


def dev(name: str, host: str = "10.0.0.1", port: int | None = None, site: str = "riga") -> SourceDevice:
    return SourceDevice(site, name, host, port, f"NetBox device {name}")


async def test_saving_a_list_retires_what_it_no_longer_has_and_un_retires_what_returns(tmp_path: Path) -> None:
    async with await Store.open(tmp_path / "db.sqlite") as store:
        assert await store.stored_inventory() == StoredInventory()
        await store.save_inventory("NetBox a", [dev("core-1"), dev("edge-2", port=2222), dev("gw", site="oslo")], T0)
        first = await store.stored_inventory()
        assert (first.source, first.fetched_at, first.retired) == ("NetBox a", T0, ())
        assert first.listed == (dev("gw", site="oslo"), dev("core-1"), dev("edge-2", port=2222))

        t1 = T0 + timedelta(hours=1)
        await store.save_inventory("NetBox a", [dev("core-1", "10.0.0.9")], t1)
        second = await store.stored_inventory()
        assert second.listed == (dev("core-1", "10.0.0.9"),) and second.fetched_at == t1
        assert second.retired == ((dev("gw", site="oslo"), t1), (dev("edge-2", port=2222), t1))

        t2 = T0 + timedelta(hours=2)
        await store.save_inventory("NetBox a", [dev("core-1", "10.0.0.9"), dev("edge-2")], t2)
        third = await store.stored_inventory()
        assert [d.name for d in third.listed] == ["core-1", "edge-2"]
        assert third.retired == ((dev("gw", site="oslo"), t1),), "retired once, its date stays"


def test_step_0006_applies_on_top_of_0003_alone(tmp_path: Path) -> None:
    """Self-contained: it needs nothing from the steps between 0003 and itself (0004, 0005)."""
    steps = {m.version: m for m in load_migrations()}
    with sqlite3.connect(tmp_path / "db.sqlite") as db:
        for version in (1, 2, 3, 6):
            for statement in split_statements(steps[version].sql):
                db.execute(statement)
        tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    assert {"inventory_devices", "inventory_fetch"} <= tables
