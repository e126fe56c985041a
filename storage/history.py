"""Reading the history as a whole, for what copies it elsewhere (bot.interop: the git mirror and
`backupbot export git`) and for telling where each version came from (`backupbot list`).

Runs are read by id and a device's attempts through attempts_ok_by_device. Versions in date order sort
the versions table for each page (first_seen has no index: only `export git`, a one-off, asks).
"""

from __future__ import annotations

from collections.abc import Sequence

from bot.core.models import Version
from storage.codec import to_db_time
from storage.db import Database
from storage.records import DEVICE_ID, RUN_SELECT, VERSION_SELECT, RunInfo, run_from_row, version_from_row

# The run that recorded each version: its new/changed attempt (one per version, written with it).
# `status <> 'failed'` is attempts_ok_by_device's WHERE: it lets the query seek that index.
_ORIGINS = f"""
SELECT a.version_id, r.trigger FROM attempts a JOIN runs r ON r.id = a.run_id
WHERE a.device_id = {DEVICE_ID} AND a.status <> 'failed' AND a.status IN ('new', 'changed')
  AND a.version_id IN (SELECT value FROM json_each(:ids))
"""

# Keyset pagination in (first_seen, id) order: each page starts after the last row of the previous one.
_BY_DATE = VERSION_SELECT + """
WHERE :after_at IS NULL OR v.first_seen > :after_at OR (v.first_seen = :after_at AND v.id > :after_id)
ORDER BY v.first_seen, v.id LIMIT :limit
"""


class HistoryStore(Database):
    """Runs in order and versions in date order, as part of storage.store.Store."""

    async def runs_after(self, run_id: int, limit: int = 100) -> list[RunInfo]:
        """Runs with an id above `run_id`, oldest first (any status)."""
        rows = await self._rows(RUN_SELECT + " WHERE r.id > ? ORDER BY r.id LIMIT ?", (run_id, limit))
        return [run_from_row(r) for r in rows]

    async def versions_by_date(self, after: Version | None = None, limit: int = 500) -> list[Version]:
        """Every version of every device in (first_seen, id) order, a page at a time: pass the last
        version of a page as `after` for the next."""
        rows = await self._rows(_BY_DATE, {
            "after_at": to_db_time(after.first_seen) if after else None, "after_id": after.id if after else 0,
            "limit": limit})
        return [version_from_row(r) for r in rows]

    async def version_origins(self, site: str, device: str, ids: Sequence[int]) -> dict[int, str]:
        """The trigger of the run that recorded each of these versions of one device (schedule, slack,
        cli, import, …); one pass over that device's attempts."""
        rows = await self._rows(_ORIGINS, {"site": site, "device": device, "ids": str([int(i) for i in ids])})
        return {int(r["version_id"]): str(r["trigger"]) for r in rows}

