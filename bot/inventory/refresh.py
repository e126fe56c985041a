"""Keeping the inventory current: read the source, persist the good list, swap the merged Settings in.

`Refresher` owns the file's Settings (`base`, never changed) and the LiveSettings holder everyone
else reads (bot.core.live). Each refresh:

1. reads the source (bot.inventory.netbox or .csvfile). Unreadable or garbage → InventoryError:
   nothing changes, the devices in use stay scheduled, the log and readiness say so, and the next
   try comes sooner (1, 2, 4 … minutes, never later than `inventory.refresh`);
2. compares the list with the last good one in the database (bot.inventory.merge.plan). A fetch
   that would retire too many devices at once is held back the same way, until a person accepts
   it (`backupbot inventory --apply`);
3. saves it as the new last good list in one transaction (storage.inventory: devices it no longer
   lists are retired, returning ones un-retired), then merges it with the file and replaces the
   holder's Settings: the scheduler re-plans, and every reader sees the new inventory at its next use.

At start-up (`start`, for `serve` and the CLI alike) a source that cannot be read leaves the last
good list from the database in use, or, if there is none yet, the devices of the config file only;
`start` returns a sentence saying which, for the CLI to print. Overrides (the file winning over the
source) are logged when they first appear, not at every refresh.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol

from bot.core.clock import Clock
from bot.core.errors import InventoryError
from bot.core.live import LiveSettings
from bot.core.logs import log_event
from bot.core.models import InventorySettings, Settings, SourceDevice, StoredInventory
from bot.core.text import when
from bot.inventory.merge import Fetched, Merged, Override, Plan, merge, plan

log = logging.getLogger(__name__)

FIRST_RETRY = timedelta(minutes=1)  # after a failed read; doubled each time, up to inventory.refresh
ACCEPT = "backupbot inventory --apply"

# What the inventory in use came from (Status.using): the source's answer to the last read, the last
# good list (the source's latest read failed or was held back; also after a restart until it answers),
# or the config file alone (no good read ever).
FROM_SOURCE, FROM_STORED, FROM_FILE = "source", "last good list", "config file only"


class Source(Protocol):
    @property
    def describe(self) -> str: ...
    async def fetch(self) -> Fetched: ...


class InventoryStorage(Protocol):
    async def stored_inventory(self) -> StoredInventory: ...
    async def save_inventory(self, source: str, devices: Sequence[SourceDevice], at: datetime) -> None: ...


@dataclass
class Status:
    """What readiness and `backupbot inventory` say about the source (bot.serve.health)."""

    source: str
    state: str = "starting"  # ok | failing | held back
    using: str = FROM_FILE
    devices: int = 0  # devices the list in use has from the source
    list_read_at: datetime | None = None  # when the list in use was read from the source
    last_attempt_at: datetime | None = None
    next_attempt_at: datetime | None = None  # while `serve` refreshes on schedule
    failing_since: datetime | None = None
    failures: int = 0  # reads in a row that failed or were held back
    error: str | None = None
    held_back: str | None = None
    overrides: int = 0


@dataclass(frozen=True)
class Outcome:
    applied: bool
    plan: Plan | None = None  # None: the source could not be read
    error: str | None = None


class Refresher:
    def __init__(self, base: Settings, live: LiveSettings, store: InventoryStorage, source: Source,
                 rules: InventorySettings, clock: Clock, *,
                 sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep) -> None:
        self.base, self.live, self.store, self.source, self.rules, self.clock = base, live, store, source, rules, clock
        self._sleep = sleep
        self.status = Status(source.describe)
        self._told: set[Override] = set()  # overrides and skipped entries already logged (not hourly again)
        self._skipped: set[str] = set()

    # -- reading -------------------------------------------------------------------------------

    async def start(self) -> str | None:
        """Read the source once and put the merged inventory in use; None if that worked, else the
        sentence saying what is used instead (the last good list, or the config file alone)."""
        stored = await self.use_stored()  # until the read succeeds
        outcome = await self.refresh()
        if outcome.applied:
            return None
        why = outcome.error or f"the list it gives is held back: {self.status.held_back}"
        if stored.fetched_at is None:
            return (f"inventory: {self.source.describe}: {why}; no list from it yet, so only the devices in the "
                    "config file are used")
        return (f"inventory: {self.source.describe}: {why}; using the last good list, read "
                f"{when(stored.fetched_at)} UTC ({len(stored.listed)} devices)")

    async def use_stored(self) -> StoredInventory:
        """Put the last good list from the database in use (no read of the source)."""
        stored = await self.store.stored_inventory()
        await self._use(stored, FROM_STORED if stored.fetched_at is not None else FROM_FILE)
        return stored

    async def preview(self) -> tuple[Plan, StoredInventory]:
        """What the source gives now against the last good list; changes nothing. InventoryError if unreadable."""
        fetched = await self.source.fetch()
        stored = await self.store.stored_inventory()
        return await asyncio.to_thread(plan, self.base, stored, _dated(fetched, self.clock()), self.rules), stored

    async def refresh(self, *, accept: bool = False) -> Outcome:
        """Read the source and, unless it fails or is held back (`accept` overrides that), save and use it."""
        now = self.clock()
        self.status.last_attempt_at = now
        try:
            fetched = _dated(await self.source.fetch(), now)
        except InventoryError as exc:
            self._failed(now, str(exc))
            return Outcome(False, error=str(exc))
        stored = await self.store.stored_inventory()
        change = await asyncio.to_thread(plan, self.base, stored, fetched, self.rules)
        if change.held_back is not None and not accept:
            self._failed(now, None, held_back=change.held_back)
            return Outcome(False, change)
        await self.store.save_inventory(self.source.describe, fetched.devices, now)
        await self._use(await self.store.stored_inventory(), FROM_SOURCE)
        self.status.state, self.status.error, self.status.held_back = "ok", None, None
        self.status.failing_since, self.status.failures = None, 0
        if not change.empty or accept:
            log_event(log, logging.INFO, "inventory changed", source=self.source.describe,
                      devices=len(fetched.devices), added=_names(change.added), retired=_names(change.retired),
                      back=_names(change.returned), changed=len(change.changed), accepted=accept)
        for skipped in set(fetched.skipped) - self._skipped:
            log_event(log, logging.WARNING, "inventory entry skipped", source=self.source.describe, why=skipped)
        self._skipped = set(fetched.skipped)
        return Outcome(True, change)

    def _merge(self, stored: StoredInventory) -> tuple[Merged, bool]:
        """The merged inventory, and whether it differs from the one in use (run in a thread: for
        thousands of devices both take tenths of a second of pure Python)."""
        merged = merge(self.base, stored.listed, stored.retired)
        return merged, merged.settings != self.live.settings

    async def _use(self, stored: StoredInventory, using: str) -> None:
        merged, changed = await asyncio.to_thread(self._merge, stored)
        for o in merged.overrides:
            if o not in self._told:
                log_event(log, logging.WARNING, "the config file wins over the inventory source",
                          device=f"{o.site}/{o.name}", field=o.field, file=o.file, source_says=o.source)
        self._told = set(merged.overrides)
        self.status.using, self.status.devices = using, len(stored.listed)
        self.status.list_read_at, self.status.overrides = stored.fetched_at, len(merged.overrides)
        if changed:
            self.live.replace(merged.settings)

    def _failed(self, now: datetime, error: str | None, held_back: str | None = None) -> None:
        s = self.status
        if s.using == FROM_SOURCE:  # the same list, now the last good one
            s.using = FROM_STORED
        s.state = "held back" if held_back else "failing"
        s.error, s.held_back = error, held_back
        s.failures += 1
        s.failing_since = s.failing_since or now
        kept = (f"the last good list, read {when(s.list_read_at)} UTC" if s.using == FROM_STORED
                else "the config file's devices only")
        if held_back:
            log_event(log, logging.WARNING, "inventory held back: the devices in use are kept",
                      source=self.source.describe, why=held_back, kept=kept, accept_with=ACCEPT)
        else:
            log_event(log, logging.WARNING, "inventory source unreadable: the devices in use are kept",
                      source=self.source.describe, error=error, kept=kept, failures=s.failures,
                      retry_in_s=round(self.next_delay()))

    # -- on a schedule ---------------------------------------------------------------------------

    def next_delay(self) -> float:
        """Seconds until the next read: `inventory.refresh`, or sooner while the source is failing."""
        every = self.rules.refresh.total_seconds()
        if self.status.failures == 0:
            return every
        backoff: float = FIRST_RETRY.total_seconds() * 2 ** min(self.status.failures - 1, 20)
        return min(every, backoff)

    async def run(self) -> None:
        """Refresh forever (serve's background task); a crash of one refresh is logged, not fatal."""
        while True:
            delay = self.next_delay()
            self.status.next_attempt_at = self.clock() + timedelta(seconds=delay)
            await self._sleep(delay)
            try:
                await self.refresh()
            except Exception as exc:
                log.exception("inventory refresh crashed; the devices in use are kept")
                self._failed(self.clock(), f"internal error: {type(exc).__name__}")


def _dated(fetched: Fetched, at: datetime) -> Fetched:
    return Fetched(fetched.source, fetched.devices, fetched.skipped, at)


def _names(devices: Sequence[SourceDevice], limit: int = 20) -> str:
    names = [f"{d.site}/{d.name}" for d in devices[:limit]]
    return ",".join(names) + (f",… ({len(devices) - limit} more)" if len(devices) > limit else "")
