"""When scheduled backups run: daily times per site, jitter, one catch-up after downtime, no overlap.

The "when" is pure functions over (times, zone, now); `Scheduler` only hands them to APScheduler
3.x and calls `run_site(site, trigger)`. Decisions:

- A time that does not exist on a spring-forward day (03:30 in Europe/Riga on the last Sunday of
  March) runs as far past the gap as it was into it (04:30 EEST), as cron and APScheduler do; a time
  that repeats on a fall-back day runs at its first occurrence only. Either way: once a day.
- `last_scheduled` is written when a run ENDS (run_site returned), holding the instant it STARTED:
  every slot up to that instant is covered. A crash or SIGTERM mid-run records nothing, so the next
  start-up catches up. A run whose devices failed still ended, so it counts.
- Catch-up: at start-up a site whose last covered instant is older than its latest slot runs once
  ("catch-up"), however many slots were missed; catch-ups are spread over `jitter` seconds.
- First start (no `last_scheduled`, also a site newly added to the inventory): no catch-up; `now`
  is recorded as the baseline, so installing at 15:00 does not hammer every router at once.
- Never two runs of a site at once: a slot that comes due while the site's run (scheduled or
  catch-up) is in progress is skipped, logged, and counted as covered by that run.
- misfire_grace_time=None with coalesce=True: a slot missed while the process was alive but stalled
  (host suspended, event loop blocked) runs once, however late, the same rule as the start-up catch-up.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable, Iterable
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from typing import Any, Protocol
from zoneinfo import ZoneInfo

from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.cron import CronTrigger

from bot.logs import log_event
from bot.models import Settings

log = logging.getLogger(__name__)

Times = tuple[str, ...]
RunSite = Callable[[str, str], Awaitable[Any]]


class ScheduleStore(Protocol):
    async def last_scheduled(self, site: str) -> datetime | None: ...
    async def set_last_scheduled(self, site: str, at: datetime) -> None: ...


def site_schedule(settings: Settings, site: str) -> tuple[Times, ZoneInfo]:
    """The site's daily times and zone: its own overrides, else `schedule.times`/`timezone`."""
    s = settings.sites[site]
    return (s.times or settings.schedule.times), ZoneInfo(s.timezone or settings.schedule.timezone)


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


class DailyTrigger(CronTrigger):
    """A CronTrigger at one "HH:MM" a day whose fire times come from `next_fire`.

    CronTrigger alone fires twice on a fall-back day (both 03:30s); this one keeps the cron
    fields, zone and jitter for inspection but never does. `previous_fire_time` arrives jittered;
    `previous_fire` recovers its slot (jitter is far below a day).
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
        return self._apply_jitter(slot.astimezone(self.timezone) if slot else None, self.jitter, now)


def _apscheduler() -> AsyncIOScheduler:
    return AsyncIOScheduler(timezone=ZoneInfo("UTC"))


class Scheduler:
    """Daily runs per site on APScheduler, a catch-up at start-up, never two runs of a site at once."""

    def __init__(
        self,
        settings: Settings,
        run_site: RunSite,
        store: ScheduleStore,
        clock: Callable[[], datetime],
        *,
        scheduler_factory: Callable[[], AsyncIOScheduler] = _apscheduler,
        sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep,
    ) -> None:
        self.settings, self.run_site, self.store, self.clock = settings, run_site, store, clock
        self._factory, self._sleep = scheduler_factory, sleep
        self.aps: AsyncIOScheduler | None = None
        self._stopping = False
        self._busy: set[str] = set()  # sites with a run claimed (waiting to start or running)
        self._coalesced: dict[str, datetime] = {}  # site -> when a slot came due during its run
        self._tasks: set[asyncio.Task[Any]] = set()

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
        """Add one job per (site, time), start APScheduler, then launch catch-ups for missed slots."""
        if self.aps is not None:
            raise RuntimeError("scheduler already started")
        self.aps = self._factory()
        jitter = self.settings.schedule.jitter
        for site in self.settings.sites:
            times, tz = site_schedule(self.settings, site)
            for at in times:
                self.aps.add_job(
                    self._scheduled, DailyTrigger(at, tz, jitter), args=(site,), id=f"{site}@{at}",
                    name=f"backup {site} at {at} {tz.key}", coalesce=True, max_instances=1,
                    misfire_grace_time=None, replace_existing=True)
        now = self.clock()
        for site in self.settings.sites:
            await self._plan_catch_up(site, now, jitter)
        self.aps.start()
        log_event(log, logging.INFO, "scheduler started", sites=len(self.settings.sites),
                  jobs=len(self.aps.get_jobs()), jitter=jitter)

    async def stop(self, grace: float = 0.0) -> None:
        """Start no new work; give in-flight runs `grace` seconds, then cancel them and wait."""
        if self._stopping:
            return
        self._stopping = True
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

    async def _plan_catch_up(self, site: str, now: datetime, jitter: int) -> None:
        times, tz = site_schedule(self.settings, site)
        last = await self.store.last_scheduled(site)
        if last is None:
            await self.store.set_last_scheduled(site, now)
            log_event(log, logging.INFO, "schedule baseline recorded", site=site, at=now)
            return
        slot = missed(last, times, tz, now)
        if slot is None or not self._claim(site, "catch-up"):
            return
        delay = random.uniform(0, jitter) if jitter else 0.0
        log_event(log, logging.INFO, "catch-up planned", site=site, missed=slot, last=last, delay=round(delay, 1))
        task = asyncio.create_task(self._execute(site, "catch-up", delay), name=f"catch-up {site}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _scheduled(self, site: str) -> None:
        """The APScheduler job: one daily slot of `site` is due."""
        if not self._claim(site, "schedule"):
            return
        try:
            await self._execute(site, "schedule")
        except asyncio.CancelledError:
            if not self._stopping:
                raise
            # APScheduler would log a cancelled job as a crash; at shutdown it is the plan.
            log_event(log, logging.INFO, "scheduled run cancelled by shutdown", site=site)

    def _claim(self, site: str, trigger: str) -> bool:
        if self._stopping or site in self._busy:
            reason = "stopping" if self._stopping else "a run of this site is in progress"
            if not self._stopping:
                self._coalesced[site] = self.clock()  # this slot is folded into the running run
            log_event(log, logging.WARNING, "run skipped", site=site, trigger=trigger, reason=reason)
            return False
        self._busy.add(site)
        return True

    async def _execute(self, site: str, trigger: str, delay: float = 0.0) -> None:
        """Run a claimed site; once run_site returns, record what it covered: its start instant,
        or a slot that came due (and was skipped) while it ran, whichever is later."""
        task = asyncio.current_task()
        if task is not None:
            self._tasks.add(task)
        try:
            if delay:
                await self._sleep(delay)
            if self._stopping:
                return
            started = self.clock()
            log_event(log, logging.INFO, "scheduled run starting", site=site, trigger=trigger)
            try:
                await self.run_site(site, trigger)
            except Exception:
                log.exception("scheduled run crashed", extra={"fields": {"site": site, "trigger": trigger}})
                return
            await self.store.set_last_scheduled(site, max(started, self._coalesced.get(site, started)))
        finally:
            self._busy.discard(site)
            self._coalesced.pop(site, None)
            if task is not None:
                self._tasks.discard(task)
