"""The inventory source's last good list and its retired devices (schema step 0006).

`save_inventory` replaces the list in one transaction: every device of the new list is stored as
listed (its retired_at cleared: a device that comes back is un-retired), every device of the old
list missing from the new one is retired with the fetch's time, never deleted. What to save is
decided before (bot.inventory.refresh): a failed or suspicious fetch never gets here.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime

import aiosqlite

from bot.core.models import SourceDevice, StoredInventory
from storage.codec import from_db_time, to_db_time
from storage.db import Database

_UPSERT = """
INSERT INTO inventory_devices (site, name, host, port, origin, seen_at, retired_at)
VALUES (:site, :name, :host, :port, :origin, :at, NULL)
ON CONFLICT (site, name) DO UPDATE SET host = excluded.host, port = excluded.port, origin = excluded.origin,
                                       seen_at = excluded.seen_at, retired_at = NULL
"""

_RETIRE = """
UPDATE inventory_devices SET retired_at = ?
WHERE retired_at IS NULL
  AND (site, name) NOT IN (SELECT json_extract(value, '$[0]'), json_extract(value, '$[1]') FROM json_each(?))
"""


def _device(row: aiosqlite.Row) -> SourceDevice:
    return SourceDevice(row["site"], row["name"], row["host"], row["port"], row["origin"])


class InventoryStore(Database):
    """The inventory source's last good list, as part of storage.store.Store."""

    async def stored_inventory(self) -> StoredInventory:
        fetch = await self._row("SELECT source, fetched_at FROM inventory_fetch WHERE id = 1")
        rows = await self._rows("SELECT site, name, host, port, origin, retired_at FROM inventory_devices"
                                " ORDER BY site, name")
        return StoredInventory(
            source=fetch["source"] if fetch else None,
            fetched_at=from_db_time(fetch["fetched_at"]) if fetch else None,
            listed=tuple(_device(r) for r in rows if r["retired_at"] is None),
            retired=tuple((_device(r), from_db_time(r["retired_at"])) for r in rows if r["retired_at"] is not None),
        )

    async def save_inventory(self, source: str, devices: Sequence[SourceDevice], at: datetime) -> None:
        """Make `devices` the last good list read from `source` at `at`: the ones it no longer
        lists are retired as of `at`, the ones it lists again are un-retired."""
        when = to_db_time(at)
        async with self._write() as db:
            await db.execute(_RETIRE, (when, json.dumps([[d.site, d.name] for d in devices])))
            await db.executemany(_UPSERT, [{"site": d.site, "name": d.name, "host": d.host, "port": d.port,
                                            "origin": d.origin, "at": when} for d in devices])
            await db.execute(
                "INSERT INTO inventory_fetch (id, source, fetched_at, devices) VALUES (1, ?, ?, ?)"
                " ON CONFLICT (id) DO UPDATE SET source = excluded.source, fetched_at = excluded.fetched_at,"
                " devices = excluded.devices", (source, when, len(devices)))
