"""When scheduled backups run: daily slots shared by sites, jitter, one catch-up after downtime, no overlap.

A slot is one `times` entry in one zone ("02:00 Europe/Riga"); every site whose schedule has it
belongs to it. The "when" is pure functions over (times, zone, now); `Scheduler` hands one job per
slot to APScheduler 3.x and, when it fires, calls `run_sites(sites, trigger, not_started)` ONCE for
all of the slot's sites: one run, so one record and one transaction with its messages, and one
digest per channel (bot.slack.notify groups a run's results by channel). Decisions:

- A time that does not exist on a spring-forward day (03:30 in Europe/Riga on the last Sunday of
  March) runs as far past the gap as it was into it (04:30 EEST), as cron and APScheduler do; a time
  that repeats on a fall-back day runs at its first occurrence only. Either way: once a day.
- `last_scheduled` is written per site when a run ENDS (run_sites returned), holding the instant it
  STARTED: every slot up to that instant is covered. All sites of a run are written in one
  transaction. A crash or SIGTERM mid-run records nothing, so the next start-up catches up.
  A run whose devices failed still ended, so it counts.
- Catch-up: at start-up every site whose last covered instant is older than its latest slot is
  backed up once ("catch-up"), however many slots were missed, all such sites in ONE run (one
  digest per channel), started after a random delay of up to `jitter` seconds.
- First start (no `last_scheduled`, also a site newly added to the inventory): no catch-up; `now`
  is recorded as the baseline, so installing at 15:00 does not hammer every router at once.
- Never two runs of a site at once: a site whose run (scheduled or catch-up) is still in progress
  when another of its slots comes due is not started again; that slot counts as covered by the
  run in progress, and the slot's digest lists the site as not started, saying why. The other
  sites of the slot run as usual; if none can, the slot's run has no devices and its digest
  still names every site it could not start.
- A slot's run that fails as a whole (the database refused it) is logged, is not recorded as
  covered (the next start catches it up), and is reported as a run without devices whose digest
  names every site as not started with the error, if the database takes that.
- Jitter delays each slot's start (all its sites together) by up to `jitter` seconds; default 0.
- misfire_grace_time=None with coalesce=True: a slot missed while the process was alive but stalled
  (host suspended, event loop blocked) runs once, however late, the same rule as the start-up catch-up.
- A refreshed inventory (bot.core.live, bot.inventory) re-plans the slots at once: a slot no site
  has any more loses its job, a new one gets its job, and a slot's sites are read when it fires.
  A run in progress finishes with the devices it started with (run_sites takes them when it
  starts); new devices and sites join their slot's next run (a new site is not caught up);
  removed or retired devices are not in any later run.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from typing import Any, Protocol
from zoneinfo import ZoneInfo

from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.cron import CronTrigger

from bot.core.clock import Clock
from bot.core.kinds import Trigger
from bot.core.live import LiveSettings
from bot.core.logs import log_event
from bot.core.models import NotStarted, Settings

log = logging.getLogger(__name__)

Times = tuple[str, ...]
# run_sites(sites, trigger, not_started): back up every device of `sites` as ONE run whose
# messages also tell the `not_started` sites.
RunSites = Callable[[tuple[str, ...], Trigger, tuple[NotStarted, ...]], Awaitable[Any]]
CATCH_UP = "catch-up run"


class ScheduleStore(Protocol):
    async def last_scheduled(self, site: str) -> datetime | None: ...
    async def record_scheduled(self, covered: Mapping[str, datetime]) -> None: ...


@dataclass(frozen=True)
class Slot:
    """One daily time in one zone, and the sites whose schedule has it."""

    at: str  # "HH:MM"
    zone: ZoneInfo
    sites: tuple[str, ...]

    @property
    def id(self) -> str:
        """How the slot is named in logs, job ids and a not-started reason: "02:00 Europe/Riga"."""
        return f"{self.at} {self.zone.key}"


def site_schedule(settings: Settings, site: str) -> tuple[Times, ZoneInfo]:
    """The site's daily times and zone: its own overrides, else `schedule.times`/`timezone`."""
    s = settings.sites[site]
    return (s.times or settings.schedule.times), ZoneInfo(s.timezone or settings.schedule.timezone)


def schedule_slots(settings: Settings) -> list[Slot]:
    """The sites grouped by (time, zone): slots in order of first appearance, sites in inventory order."""
    grouped: dict[tuple[str, str], list[str]] = {}
    for site in settings.sites:
        times, tz = site_schedule(settings, site)
        for at in dict.fromkeys(times):  # a time listed twice is still one slot
            grouped.setdefault((at, tz.key), []).append(site)
    return [Slot(at, ZoneInfo(zone), tuple(sites)) for (at, zone), sites in grouped.items()]


def _fires_on(day: date, times: Iterable[str], tz: tzinfo) -> set[datetime]:
    """The instants (UTC) the slots of one local day fall on: fold=0 picks a repeated time's first
    pass, and the round trip through a timestamp moves a nonexistent time past the gap.

    UTC, not local: Python's == between zones is always False for an ambiguous local time.
    """
    return {datetime.fromtimestamp(datetime.combine(day, time.fromisoformat(hhmm), tzinfo=tz).timestamp(), UTC)
            for hhmm in times}


def _around(times: Iterable[str], tz: tzinfo, now: datetime, days: range) -> set[datetime]:
    if now.tzinfo is None:
        raise ValueError(f"naive datetime {now!r}: pass a timezone-aware time")
    today = now.astimezone(tz).date()
    return {at for d in days for at in _fires_on(today + timedelta(days=d), times, tz)}


def previous_fire(times: Iterable[str], tz: tzinfo, now: datetime) -> datetime | None:
    """The latest slot at or before `now`, in UTC (None if there are no times)."""
    return max((at for at in _around(times, tz, now, range(-2, 1)) if at <= now), default=None)


def next_fire(times: Iterable[str], tz: tzinfo, now: datetime) -> datetime | None:
    """The earliest slot strictly after `now`, in UTC (None if there are no times)."""
    return min((at for at in _around(times, tz, now, range(-1, 3)) if at > now), default=None)


def missed(last_scheduled: datetime | None, times: Iterable[str], tz: tzinfo, now: datetime) -> datetime | None:
    """The most recent slot not covered by `last_scheduled`, or None (also None on first start)."""
    latest = previous_fire(times, tz, now)
    if last_scheduled is None or latest is None or last_scheduled >= latest:
        return None
    return latest


def next_runs(settings: Settings, now: datetime) -> dict[str, datetime]:
    """Each site's next slot in UTC (before jitter: the run starts up to `jitter` seconds later)."""
    slots = {site: next_fire(*site_schedule(settings, site), now) for site in settings.sites}
    return {site: at for site, at in slots.items() if at is not None}


# APScheduler 3.x is untyped (CronTrigger is Any to mypy), and add_job wants a BaseTrigger subclass.
class DailyTrigger(CronTrigger):  # type: ignore[misc]
    """A CronTrigger at one "HH:MM" a day whose fire times come from `next_fire`.

    CronTrigger alone fires twice on a fall-back day (both 03:30s); this one keeps the cron
    fields, zone and jitter for inspection but never does. The jitter is ours (uniform in
    [0, jitter] seconds after the slot), not APScheduler's private helper. `previous_fire_time`
    arrives jittered; `previous_fire` recovers its slot (jitter is far below a day).
    """

    def __init__(self, at: str, tz: ZoneInfo, jitter: int | None = None) -> None:
        hhmm = time.fromisoformat(at)
        super().__init__(hour=hhmm.hour, minute=hhmm.minute, timezone=tz, jitter=jitter or None)
        self.at: Times = (at,)

    def get_next_fire_time(self, previous_fire_time: datetime | None, now: datetime) -> datetime | None:
        if previous_fire_time is None:
            slot = next_fire(self.at, self.timezone, now - timedelta(microseconds=1))  # at or after now
        else:
            slot = next_fire(self.at, self.timezone, previous_fire(self.at, self.timezone, previous_fire_time)
                             or previous_fire_time)
        if slot is None:
            return None
        delay = timedelta(seconds=random.uniform(0, self.jitter)) if self.jitter else timedelta(0)
        return (slot + delay).astimezone(self.timezone)


class Scheduler:
    """One run per daily slot for all its sites, one catch-up at start-up, never two runs of a site at once."""

    def __init__(
        self,
        settings: Settings | LiveSettings,
        run_sites: RunSites,
        store: ScheduleStore,
        clock: Clock,
        *,
        sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep,
    ) -> None:
        self.live, self.run_sites, self.store, self.clock = LiveSettings.of(settings), run_sites, store, clock
        self._sleep = sleep
        self.slots = {slot.id: slot for slot in schedule_slots(self.settings)}
        self.aps: AsyncIOScheduler | None = None
        self._stopping = False
        self._busy: dict[str, str] = {}  # site -> the run that holds it (waiting to start or running)
        self._coalesced: dict[str, datetime] = {}  # site -> when a slot came due during its run
        self._tasks: set[asyncio.Task[Any]] = set()
        self._unsubscribe = self.live.subscribe(lambda old, new: self.replan(new))

    @property
    def settings(self) -> Settings:
        return self.live.settings

    @property
    def running(self) -> bool:
        """Started and not stopped: scheduled runs will still start."""
        return self.aps is not None and not self._stopping

    @property
    def busy_sites(self) -> frozenset[str]:
        return frozenset(self._busy)

    def next_runs(self) -> dict[str, datetime]:
        """Each site's next slot in UTC (before jitter: the run starts up to `jitter` seconds later)."""
        return next_runs(self.settings, self.clock())

    async def start(self) -> None:
        """Add one job per slot, start APScheduler, then launch the catch-up of missed slots."""
        if self.aps is not None:
            raise RuntimeError("scheduler already started")
        self.aps = AsyncIOScheduler(timezone=ZoneInfo("UTC"))
        jitter = self.settings.schedule.jitter
        for slot in self.slots.values():
            self._add_job(slot)
        await self._plan_catch_up(self.clock(), jitter)
        self.aps.start()
        log_event(log, logging.INFO, "scheduler started", sites=len(self.settings.sites),
                  jobs=len(self.aps.get_jobs()), jitter=jitter)

    def _add_job(self, slot: Slot) -> None:
        assert self.aps is not None
        self.aps.add_job(
            self._scheduled, DailyTrigger(slot.at, slot.zone, self.settings.schedule.jitter), args=(slot.id,),
            id=slot.id, name=f"backup at {slot.id}", coalesce=True, max_instances=1,
            misfire_grace_time=None, replace_existing=True)

    def replan(self, settings: Settings) -> None:
        """The inventory changed: one job per slot of `settings`, each slot with its sites as they are now.
        Runs in progress are left alone; sites are read from `self.slots` when a slot fires."""
        slots = {slot.id: slot for slot in schedule_slots(settings)}
        old, self.slots = self.slots, slots
        if self.aps is None or self._stopping:
            return
        for slot_id in old.keys() - slots.keys():
            self.aps.remove_job(slot_id)
        for slot_id in slots.keys() - old.keys():
            self._add_job(slots[slot_id])
        before = {site for slot in old.values() for site in slot.sites}
        after = {site for slot in slots.values() for site in slot.sites}
        log_event(log, logging.INFO, "schedule re-planned", slots=len(slots),
                  slots_added=",".join(sorted(slots.keys() - old.keys())),
                  slots_removed=",".join(sorted(old.keys() - slots.keys())),
                  sites_added=",".join(sorted(after - before)), sites_removed=",".join(sorted(before - after)),
                  devices=len(settings.devices()))

    async def stop(self, grace: float = 0.0) -> None:
        """Start no new work; give in-flight runs `grace` seconds, then cancel them and wait."""
        if self._stopping:
            return
        self._stopping = True
        self._unsubscribe()
        if self.aps is not None and self.aps.running:
            self.aps.shutdown(wait=False)
            await asyncio.sleep(0)  # AsyncIOScheduler shuts down in a loop callback
        pending = {t for t in self._tasks if not t.done()}
        if pending and grace > 0:
            _, pending = await asyncio.wait(pending, timeout=grace)
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)
        log_event(log, logging.INFO, "scheduler stopped", cancelled=len(pending))

    async def join(self) -> None:
        """Wait until no run started by this scheduler is in flight."""
        while pending := {t for t in self._tasks if not t.done()}:
            await asyncio.wait(pending)

    async def _plan_catch_up(self, now: datetime, jitter: int) -> None:
        """Record a baseline for sites never scheduled; start one catch-up run for every site that missed a slot."""
        baseline: dict[str, datetime] = {}
        due: list[str] = []
        for site in self.settings.sites:
            last = await self.store.last_scheduled(site)
            if last is None:
                baseline[site] = now
                log_event(log, logging.INFO, "schedule baseline recorded", site=site, at=now)
            elif (slot := missed(last, *site_schedule(self.settings, site), now)) is not None:
                due.append(site)
                log_event(log, logging.INFO, "catch-up planned", site=site, missed=slot, last=last)
        if baseline:
            await self.store.record_scheduled(baseline)
        claim = self._claim(due, Trigger.CATCH_UP, CATCH_UP) if due else None
        if claim is None:
            return
        delay = random.uniform(0, jitter) if jitter else 0.0
        log_event(log, logging.INFO, "catch-up run planned", sites=len(due), delay=round(delay, 1))
        task = asyncio.create_task(self._execute(*claim, trigger=Trigger.CATCH_UP, delay=delay), name="catch-up")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _scheduled(self, slot_id: str) -> None:
        """The APScheduler job: the daily slot `slot_id` is due for all its sites (as the inventory has them now)."""
        slot = self.slots.get(slot_id)
        if slot is None:  # re-planned away between APScheduler's decision and this call
            return
        claim = self._claim(slot.sites, Trigger.SCHEDULE, f"{slot.id} run")
        if claim is None:
            return
        try:
            await self._execute(*claim, trigger=Trigger.SCHEDULE, slot=slot.id)
        except asyncio.CancelledError:
            if not self._stopping:
                raise
            # APScheduler would log a cancelled job as a crash; at shutdown it is the plan.
            log_event(log, logging.INFO, "scheduled run cancelled by shutdown", slot=slot.id)

    def _claim(self, sites: Iterable[str], trigger: Trigger, run: str
               ) -> tuple[tuple[str, ...], tuple[NotStarted, ...]] | None:
        """Mark the sites that are free as held by `run`; the busy ones come back as not started,
        their slot folded into the run that holds them. None when stopping: nothing starts."""
        if self._stopping:
            log_event(log, logging.WARNING, "run skipped", sites=",".join(sites), trigger=trigger, reason="stopping")
            return None
        claimed: list[str] = []
        skipped: list[NotStarted] = []
        for site in sites:
            holder = self._busy.get(site)
            if holder is None:
                self._busy[site] = run
                claimed.append(site)
                continue
            self._coalesced[site] = self.clock()  # this slot is covered by the run in progress
            reason = f"its {holder} is still in progress; this slot is covered by that run"
            log_event(log, logging.WARNING, "run skipped", site=site, trigger=trigger, reason=reason)
            skipped.append(NotStarted(site, reason))
        return tuple(claimed), tuple(skipped)

    async def _execute(self, sites: tuple[str, ...], not_started: tuple[NotStarted, ...], *, trigger: Trigger,
                       slot: str | None = None, delay: float = 0.0) -> None:
        """Run the claimed sites as one run; once run_sites returns, record what each covered: the
        run's start instant, or a slot that came due (and was folded in) while it ran, if later."""
        task = asyncio.current_task()
        if task is not None:
            self._tasks.add(task)
        try:
            if delay:
                await self._sleep(delay)
            if self._stopping:
                return
            started = self.clock()
            log_event(log, logging.INFO, "scheduled run starting", slot=slot or trigger, trigger=trigger,
                      sites=len(sites), not_started=len(not_started))
            try:
                await self.run_sites(sites, trigger, not_started)
            except Exception as exc:
                log.exception("scheduled run crashed", extra={"fields": {"slot": slot or trigger, "trigger": trigger,
                                                                          "sites": ",".join(sites)}})
                await self._report_failed(sites, not_started, trigger, exc)
                return
            if sites:
                await self.store.record_scheduled({s: max(started, self._coalesced.get(s, started)) for s in sites})
        finally:
            for site in sites:
                self._busy.pop(site, None)
                self._coalesced.pop(site, None)
            if task is not None:
                self._tasks.discard(task)

    async def _report_failed(self, sites: tuple[str, ...], not_started: tuple[NotStarted, ...], trigger: Trigger,
                             exc: Exception) -> None:
        """A run that failed as a whole: a run without devices whose digest names its sites (best effort:
        the database that refused the run may refuse this too; the log has both)."""
        reason = f"the run failed ({type(exc).__name__}: {exc}); it is tried again at the next slot"
        try:
            await self.run_sites((), trigger, tuple(NotStarted(s, reason) for s in sites) + not_started)
        except Exception:
            log.exception("reporting the failed run failed too", extra={"fields": {"sites": ",".join(sites)}})
