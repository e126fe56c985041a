"""The scheduler: pure "when" functions (fixed datetimes, DST days), sites grouped into slots (one
run per slot), job registration, one grouped catch-up against a real SQLite store, no overlapping
runs of a site (a busy site is reported as not started), and a clean stop. Nothing sleeps."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from apscheduler.triggers.cron import CronTrigger

from bot.core.live import LiveSettings
from bot.core.models import Device, NotStarted, ScheduleSettings, Settings, Site
from bot.backup.scheduler import DailyTrigger, Scheduler, Slot, missed, next_fire, previous_fire, schedule_slots, site_schedule
from storage.store import Store
from tests.helpers import Clock

RIGA = ZoneInfo("Europe/Riga")
NOW = datetime(2024, 6, 10, 12, 0, tzinfo=UTC)  # 15:00 in Riga (EEST, +03:00)


def riga(*args: int) -> datetime:
    return datetime(*args, tzinfo=RIGA)


def make_settings(tmp_path: Path, jitter: int = 0, **sites: Site) -> Settings:
    sites = sites or {"riga": Site("riga", ()), "tallinn": Site("tallinn", ())}
    return Settings(tmp_path / "db.sqlite", dict(sites),
                    schedule=ScheduleSettings(times=("02:00",), timezone="Europe/Riga", jitter=jitter))


class Recorder:
    """A real run_sites: records each call; a run with sites blocks on `gate` when one is set and
    raises when `fail` is set (a run without sites only reports, so it never waits or fails)."""

    def __init__(self, gate: asyncio.Event | None = None, fail: bool = False) -> None:
        self.calls: list[tuple[tuple[str, ...], str]] = []
        self.not_started: list[tuple[NotStarted, ...]] = []
        self.cancelled: list[tuple[str, ...]] = []
        self.gate, self.fail = gate, fail

    async def __call__(self, sites: tuple[str, ...], trigger: str, not_started: tuple[NotStarted, ...]) -> None:
        self.calls.append((sites, trigger))
        self.not_started.append(not_started)
        if not sites:
            return
        try:
            if self.gate is not None:
                await self.gate.wait()
        except asyncio.CancelledError:
            self.cancelled.append(sites)
            raise
        if self.fail:
            raise RuntimeError("store went away")


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Store]:
    async with await Store.open(tmp_path / "db.sqlite") as s:
        yield s


async def yield_loop(times: int = 5) -> None:
    for _ in range(times):
        await asyncio.sleep(0)


# -- pure functions ---------------------------------------------------------------------------


def test_site_schedule_uses_site_overrides_else_defaults(tmp_path: Path) -> None:
    """A site's own times/timezone win; otherwise schedule.times and schedule.timezone apply."""
    settings = make_settings(tmp_path, plain=Site("plain", ()),
                             ny=Site("ny", (), times=("01:15", "13:15"), timezone="America/New_York"))
    assert site_schedule(settings, "plain") == (("02:00",), RIGA)
    assert site_schedule(settings, "ny") == (("01:15", "13:15"), ZoneInfo("America/New_York"))


def test_sites_with_the_same_time_and_zone_share_a_slot(tmp_path: Path) -> None:
    """A slot is one `times` entry in one zone: sites on the global schedule share it; a site's
    own time or zone is a slot of its own (02:00 in another zone is another slot, even if it
    fell on the same instant); a site with two times is in two slots; a repeated time is one."""
    settings = make_settings(
        tmp_path, a=Site("a", ()), b=Site("b", ()), twice=Site("twice", (), times=("02:00", "14:00", "02:00")),
        ny=Site("ny", (), times=("02:00",), timezone="America/New_York"),
        noon=Site("noon", (), times=("14:00",), timezone="Europe/Riga"))
    assert schedule_slots(settings) == [
        Slot("02:00", RIGA, ("a", "b", "twice")), Slot("14:00", RIGA, ("twice", "noon")),
        Slot("02:00", ZoneInfo("America/New_York"), ("ny",))]
    assert [s.id for s in schedule_slots(settings)] == ["02:00 Europe/Riga", "14:00 Europe/Riga", "02:00 America/New_York"]


def test_previous_fire_is_today_after_the_time_and_yesterday_before_it() -> None:
    """The latest slot <= now: today's 02:00 Riga after it, yesterday's before it, exact is inclusive."""
    assert previous_fire(("02:00",), RIGA, riga(2024, 6, 10, 15, 0)) == riga(2024, 6, 10, 2, 0)
    assert previous_fire(("02:00",), RIGA, riga(2024, 6, 10, 1, 59)) == riga(2024, 6, 9, 2, 0)
    assert previous_fire(("02:00",), RIGA, riga(2024, 6, 10, 2, 0)) == riga(2024, 6, 10, 2, 0)
    assert previous_fire(("02:00", "14:00"), RIGA, riga(2024, 6, 10, 15, 0)) == riga(2024, 6, 10, 14, 0)
    assert previous_fire((), RIGA, NOW) is None


def test_previous_fire_works_from_any_zone_of_now() -> None:
    """`now` in UTC gives the same instant as `now` in Riga: zones are compared as instants."""
    now_utc = datetime(2024, 6, 9, 23, 30, tzinfo=UTC)  # already 02:30 on the 10th in Riga
    assert previous_fire(("02:00",), RIGA, now_utc) == riga(2024, 6, 10, 2, 0)


def test_next_fire_is_strictly_after_now() -> None:
    """The earliest slot > now: later today, else tomorrow; a slot equal to now is not next."""
    assert next_fire(("02:00", "14:00"), RIGA, riga(2024, 6, 10, 12, 0)) == riga(2024, 6, 10, 14, 0)
    assert next_fire(("02:00",), RIGA, riga(2024, 6, 10, 15, 0)) == riga(2024, 6, 11, 2, 0)
    assert next_fire(("02:00",), RIGA, riga(2024, 6, 10, 2, 0)) == riga(2024, 6, 11, 2, 0)


def test_missed_returns_one_slot_however_many_days_were_missed() -> None:
    """Down for a week: missed() is the most recent slot only, so there is one catch-up."""
    now = riga(2024, 6, 10, 15, 0)
    assert missed(riga(2024, 6, 3, 2, 1), ("02:00",), RIGA, now) == riga(2024, 6, 10, 2, 0)


def test_missed_is_none_when_up_to_date_or_never_scheduled() -> None:
    """Covered slot -> None; no last_scheduled (first start) -> None, the caller records a baseline."""
    now = riga(2024, 6, 10, 15, 0)
    assert missed(riga(2024, 6, 10, 2, 3), ("02:00",), RIGA, now) is None
    assert missed(riga(2024, 6, 10, 2, 0), ("02:00",), RIGA, now) is None
    assert missed(riga(2024, 6, 9, 2, 3), ("02:00",), RIGA, riga(2024, 6, 10, 1, 0)) is None
    assert missed(None, ("02:00",), RIGA, now) is None


def test_naive_now_is_refused() -> None:
    """A naive datetime is a bug upstream; it is refused rather than guessed."""
    with pytest.raises(ValueError):
        previous_fire(("02:00",), RIGA, datetime(2024, 6, 10, 12, 0))


def slots(times: tuple[str, ...], start: datetime, n: int) -> list[datetime]:
    out, at = [], start
    for _ in range(n):
        at = next_fire(times, RIGA, at)
        assert at is not None
        out.append(at)
    return out


def test_spring_forward_nonexistent_time_runs_once_after_the_gap() -> None:
    """2024-03-31 Riga skips 03:00-04:00: 03:30 runs once that day, at 04:30 EEST (01:30 UTC)."""
    got = slots(("03:30",), riga(2024, 3, 30, 12, 0), 3)
    assert [g.astimezone(UTC) for g in got] == [
        datetime(2024, 3, 31, 1, 30, tzinfo=UTC), datetime(2024, 4, 1, 0, 30, tzinfo=UTC),
        datetime(2024, 4, 2, 0, 30, tzinfo=UTC)]
    assert [g.astimezone(RIGA).day for g in got] == [31, 1, 2]


def test_fall_back_repeated_time_runs_once_at_its_first_occurrence() -> None:
    """2024-10-27 Riga repeats 03:00-04:00: 03:30 runs once, at the first (EEST) occurrence."""
    got = slots(("03:30",), riga(2024, 10, 26, 12, 0), 3)
    assert [g.astimezone(UTC) for g in got] == [
        datetime(2024, 10, 27, 0, 30, tzinfo=UTC), datetime(2024, 10, 28, 1, 30, tzinfo=UTC),
        datetime(2024, 10, 29, 1, 30, tzinfo=UTC)]
    later = datetime(2024, 10, 27, 1, 45, tzinfo=UTC)  # after the second 03:30 has passed
    assert previous_fire(("03:30",), RIGA, later) == datetime(2024, 10, 27, 0, 30, tzinfo=UTC)


def trigger_fires(trigger: CronTrigger, start: datetime, n: int) -> list[datetime]:
    out, prev = [], None
    for _ in range(n):
        prev = trigger.get_next_fire_time(prev, prev or start)
        out.append(prev.astimezone(UTC))
    return out


def test_daily_trigger_fires_once_on_fall_back_where_plain_cron_fires_twice() -> None:
    """APScheduler's CronTrigger fires both 03:30s on 2024-10-27; DailyTrigger fires once a day."""
    start = riga(2024, 10, 26, 12, 0)
    plain = trigger_fires(CronTrigger(hour=3, minute=30, timezone=RIGA), start, 3)
    assert plain[:2] == [datetime(2024, 10, 27, 0, 30, tzinfo=UTC), datetime(2024, 10, 27, 1, 30, tzinfo=UTC)]
    assert trigger_fires(DailyTrigger("03:30", RIGA), start, 3) == slots(("03:30",), start, 3)
    spring = riga(2024, 3, 30, 12, 0)
    assert trigger_fires(DailyTrigger("03:30", RIGA), spring, 3) == slots(("03:30",), spring, 3)


def test_daily_trigger_jitter_stays_within_bounds_and_never_skips_a_day() -> None:
    """With jitter the fire time is slot + [0, jitter]; a jittered previous fire still leads to the next day."""
    trigger = DailyTrigger("02:00", RIGA, jitter=300)
    prev = None
    for day in range(10, 20):
        prev = trigger.get_next_fire_time(prev, prev or riga(2024, 6, 9, 12, 0))
        slot = riga(2024, 6, day, 2, 0)
        assert slot <= prev <= slot + timedelta(seconds=300)


# -- the Scheduler ------------------------------------------------------------------------------


async def test_start_registers_one_cron_job_per_slot(tmp_path: Path, store: Store) -> None:
    """Each slot (time, zone) is one job, however many sites share it: cron fields, zone, jitter,
    coalesce, max_instances, no misfire limit."""
    settings = make_settings(tmp_path, jitter=120, riga=Site("riga", ()), tallinn=Site("tallinn", ()),
                             ny=Site("ny", (), times=("01:15", "13:45"), timezone="America/New_York"))
    sched = Scheduler(settings, Recorder(), store, Clock(NOW))
    await sched.start()
    try:
        assert sched.aps is not None and sched.running
        jobs = {job.id: job for job in sched.aps.get_jobs()}
        assert set(jobs) == {"02:00 Europe/Riga", "01:15 America/New_York", "13:45 America/New_York"}
        assert sched.slots["02:00 Europe/Riga"].sites == ("riga", "tallinn")
        job = jobs["13:45 America/New_York"]
        trigger = job.trigger
        fields = {f.name: str(f) for f in trigger.fields}
        assert (fields["hour"], fields["minute"]) == ("13", "45")
        assert trigger.timezone == ZoneInfo("America/New_York") and trigger.jitter == 120
        assert (job.coalesce, job.max_instances, job.misfire_grace_time, job.args) == (
            True, 1, None, ("13:45 America/New_York",))
        fixed_now = datetime(2024, 6, 10, 12, 0, tzinfo=UTC)  # 08:00 in New York
        fire = trigger.get_next_fire_time(None, fixed_now)
        slot = datetime(2024, 6, 10, 13, 45, tzinfo=ZoneInfo("America/New_York"))
        assert slot <= fire <= slot + timedelta(seconds=120)
        assert sched.next_runs() == {"riga": riga(2024, 6, 11, 2, 0), "tallinn": riga(2024, 6, 11, 2, 0), "ny": slot}
    finally:
        await sched.stop()
    assert not sched.running and not sched.aps.running


async def test_catch_up_runs_once_after_several_missed_days(tmp_path: Path, store: Store) -> None:
    """Down for days: start-up runs "catch-up" once for that site only, then records the run's start."""
    settings = make_settings(tmp_path)
    await store.record_scheduled({"riga": NOW - timedelta(days=5)})
    await store.record_scheduled({"tallinn": riga(2024, 6, 10, 2, 4)})  # today's slot done
    run = Recorder()
    sched = Scheduler(settings, run, store, Clock(NOW))
    await sched.start()
    await sched.join()
    await sched.stop()
    assert run.calls == [(("riga",), "catch-up")]
    assert await store.last_scheduled("riga") == NOW
    assert await store.last_scheduled("tallinn") == riga(2024, 6, 10, 2, 4)

    again = Recorder()
    second = Scheduler(settings, again, store, Clock(NOW + timedelta(hours=1)))
    await second.start()
    await second.join()
    await second.stop()
    assert again.calls == [], "a second start with last_scheduled up to date must not catch up"


async def test_first_start_records_a_baseline_and_runs_nothing(tmp_path: Path, store: Store) -> None:
    """No last_scheduled (new install or new site): no catch-up, `now` becomes the baseline."""
    run = Recorder()
    sched = Scheduler(make_settings(tmp_path), run, store, Clock(NOW))
    await sched.start()
    await sched.join()
    await sched.stop()
    assert run.calls == []
    assert await store.last_scheduled("riga") == NOW


async def test_a_run_that_crashes_is_not_recorded_so_the_next_start_catches_up(tmp_path: Path, store: Store) -> None:
    """last_scheduled is written only when run_sites returns: a crashed run is caught up next start.
    The crash is not silent: a run without devices names the site as not started, with the error."""
    settings = make_settings(tmp_path, riga=Site("riga", ()))
    old = NOW - timedelta(days=2)
    await store.record_scheduled({"riga": old})
    crashing = Recorder(fail=True)
    sched = Scheduler(settings, crashing, store, Clock(NOW))
    await sched.start()
    await sched.join()
    await sched.stop()
    assert await store.last_scheduled("riga") == old
    assert crashing.calls == [(("riga",), "catch-up"), ((), "catch-up")]
    [(reported,)] = crashing.not_started[1:]
    assert reported == NotStarted("riga", "the run failed (RuntimeError: store went away); "
                                          "it is tried again at the next slot")
    run = Recorder()
    restarted = Scheduler(settings, run, store, Clock(NOW + timedelta(minutes=5)))
    await restarted.start()
    await restarted.join()
    await restarted.stop()
    assert run.calls == [(("riga",), "catch-up")]


async def test_every_site_that_missed_a_slot_is_caught_up_in_one_run_after_the_jitter(
        tmp_path: Path, store: Store) -> None:
    """Twenty sites missed their slot: one catch-up run covers all of them (one digest per channel,
    not twenty), started after one random delay in [0, jitter]; each site's coverage is recorded."""
    sites = {f"s{i}": Site(f"s{i}", ()) for i in range(20)}
    for name in sites:
        await store.record_scheduled({name: NOW - timedelta(days=1, hours=12)})
    delays: list[float] = []

    async def fake_sleep(seconds: float) -> None:
        delays.append(seconds)

    run = Recorder()
    sched = Scheduler(make_settings(tmp_path, jitter=300, **sites), run, store, Clock(NOW), sleep=fake_sleep)
    await sched.start()
    await sched.join()
    await sched.stop()
    assert run.calls == [(tuple(sites), "catch-up")] and run.not_started == [()]
    assert len(delays) == 1 and 0 <= delays[0] <= 300
    assert [await store.last_scheduled(name) for name in sites] == [NOW] * 20


async def test_a_slot_runs_all_its_sites_as_one_run(tmp_path: Path, store: Store) -> None:
    """The slot 02:00 Riga fires: riga and tallinn run together (one run_sites call), both are
    recorded as covered; a site with its own time is not part of it."""
    settings = make_settings(tmp_path, riga=Site("riga", ()), tallinn=Site("tallinn", ()),
                             late=Site("late", (), times=("05:00",)))
    run = Recorder()
    clock = Clock(NOW)
    sched = Scheduler(settings, run, store, clock)
    await sched.start()  # first start: baseline NOW for every site
    clock.now = NOW + timedelta(days=1)
    job = sched.aps.get_job("02:00 Europe/Riga")
    await job.func(*job.args)
    await sched.stop()
    assert run.calls == [(("riga", "tallinn"), "schedule")] and run.not_started == [()]
    assert [await store.last_scheduled(s) for s in ("riga", "tallinn", "late")] == [clock.now, clock.now, NOW]


async def test_a_busy_site_is_reported_not_started_while_the_rest_of_its_slot_runs(
        tmp_path: Path, store: Store) -> None:
    """riga runs at 02:00 and 02:30, tallinn at 02:30. riga's 02:00 run is still going when 02:30
    comes: 02:30 runs tallinn alone and reports riga as not started, saying which run covers it;
    riga's 02:00 run, when it ends, records the 02:30 slot as covered."""
    settings = make_settings(tmp_path, riga=Site("riga", (), times=("02:00", "02:30")),
                             tallinn=Site("tallinn", (), times=("02:30",)))
    gate = asyncio.Event()
    run = Recorder(gate)
    clock = Clock(riga(2024, 6, 10, 2, 0))
    sched = Scheduler(settings, run, store, clock)
    await sched.start()
    early, late = sched.aps.get_job("02:00 Europe/Riga"), sched.aps.get_job("02:30 Europe/Riga")
    first = asyncio.create_task(early.func(*early.args))
    await yield_loop()
    clock.now = riga(2024, 6, 10, 2, 30)
    second = asyncio.create_task(late.func(*late.args))
    await yield_loop()
    assert run.calls == [(("riga",), "schedule"), (("tallinn",), "schedule")]
    assert run.not_started[1] == (NotStarted(
        "riga", "its 02:00 Europe/Riga run is still in progress; this slot is covered by that run"),)
    gate.set()
    await asyncio.gather(first, second)
    assert await store.last_scheduled("riga") == riga(2024, 6, 10, 2, 30)
    assert await store.last_scheduled("tallinn") == riga(2024, 6, 10, 2, 30)
    await sched.stop()


async def test_no_second_run_of_a_site_while_one_is_running(tmp_path: Path, store: Store) -> None:
    """The job fired twice while the first run is still going: the site is backed up once, the second
    fire is coalesced into it (its instant counts as covered) and only reports the site as not
    started, in a run without devices; a later fire runs normally."""
    gate = asyncio.Event()
    run = Recorder(gate)
    clock = Clock(NOW)
    sched = Scheduler(make_settings(tmp_path, riga=Site("riga", ())), run, store, clock)
    await sched.start()
    job = sched.aps.get_job("02:00 Europe/Riga")
    first = asyncio.create_task(job.func(*job.args))
    await yield_loop()
    clock.now = NOW + timedelta(minutes=10)
    second = asyncio.create_task(job.func(*job.args))
    await yield_loop()
    assert second.done() and run.calls == [(("riga",), "schedule"), ((), "schedule")]
    assert [n.site for n in run.not_started[1]] == ["riga"]
    assert sched.busy_sites == {"riga"}
    gate.set()
    await first
    assert await store.last_scheduled("riga") == NOW + timedelta(minutes=10), "the skipped fire is coalesced"
    clock.now = NOW + timedelta(days=1)
    await job.func(*job.args)
    assert run.calls == [(("riga",), "schedule"), ((), "schedule"), (("riga",), "schedule")]
    await sched.stop()


async def test_a_catch_up_in_progress_blocks_a_scheduled_run(tmp_path: Path, store: Store) -> None:
    """A catch-up and a scheduled slot of the same site never overlap: the slot reports the site as
    covered by the catch-up in progress."""
    await store.record_scheduled({"riga": NOW - timedelta(days=3)})
    gate = asyncio.Event()
    run = Recorder(gate)
    sched = Scheduler(make_settings(tmp_path, riga=Site("riga", ())), run, store, Clock(NOW))
    await sched.start()
    await yield_loop()
    job = sched.aps.get_job("02:00 Europe/Riga")
    await job.func(*job.args)
    assert run.calls == [(("riga",), "catch-up"), ((), "schedule")]
    assert run.not_started[1] == (NotStarted(
        "riga", "its catch-up run is still in progress; this slot is covered by that run"),)
    gate.set()
    await sched.join()
    await sched.stop()


async def test_stop_cancels_in_flight_runs_and_starts_no_new_work(tmp_path: Path, store: Store) -> None:
    """stop(): APScheduler shut down, the running run cancelled (so not recorded), later fires ignored."""
    await store.record_scheduled({"riga": NOW - timedelta(days=1, hours=12)})
    run = Recorder(asyncio.Event())  # never released
    sched = Scheduler(make_settings(tmp_path, riga=Site("riga", ())), run, store, Clock(NOW))
    await sched.start()
    await yield_loop()
    job = sched.aps.get_job("02:00 Europe/Riga")
    assert run.calls == [(("riga",), "catch-up")]
    await sched.stop()
    assert run.cancelled == [("riga",)]
    assert not sched.running and not sched.aps.running and sched.busy_sites == frozenset()
    assert await store.last_scheduled("riga") == NOW - timedelta(days=1, hours=12)
    await job.func(*job.args)
    assert run.calls == [(("riga",), "catch-up")], "no new work after stop()"


async def test_stop_with_grace_lets_a_short_run_finish(tmp_path: Path, store: Store) -> None:
    """Given a grace period, a run that ends within it completes and is recorded instead of cancelled."""
    gate = asyncio.Event()
    run = Recorder(gate)
    clock = Clock(NOW)
    sched = Scheduler(make_settings(tmp_path, riga=Site("riga", ())), run, store, clock)
    await sched.start()  # first start: baseline NOW
    clock.now = NOW + timedelta(hours=1)
    job = sched.aps.get_job("02:00 Europe/Riga")
    task = asyncio.create_task(job.func(*job.args))
    await yield_loop()
    asyncio.get_running_loop().call_soon(gate.set)
    await sched.stop(grace=5)
    await task
    assert run.cancelled == [] and await store.last_scheduled("riga") == NOW + timedelta(hours=1)


async def test_apscheduler_runs_the_due_job_on_the_loop_and_plans_the_next_day(tmp_path: Path, store: Store) -> None:
    """End to end through APScheduler: a due job runs run_sites("schedule") and moves to the next slot."""
    run = Recorder()
    clock = Clock(NOW)
    sched = Scheduler(make_settings(tmp_path, riga=Site("riga", ())), run, store, clock)
    await sched.start()
    clock.now = NOW + timedelta(hours=1)
    due = datetime.now(UTC) - timedelta(seconds=1)
    sched.aps.modify_job("02:00 Europe/Riga", next_run_time=due)  # as if 02:00 had just come
    sched.aps.wakeup()
    for _ in range(50):
        if run.calls and "riga" not in sched.busy_sites:
            break
        await asyncio.sleep(0)
    assert run.calls == [(("riga",), "schedule")]
    nxt = sched.aps.get_job("02:00 Europe/Riga").next_run_time
    assert nxt == next_fire(("02:00",), RIGA, due)
    await sched.join()
    assert await store.last_scheduled("riga") == NOW + timedelta(hours=1)
    await sched.stop()


async def test_shutdown_during_an_apscheduler_run_is_quiet_and_records_nothing(
        tmp_path: Path, store: Store, caplog: pytest.LogCaptureFixture) -> None:
    """SIGTERM mid-run: the job APScheduler started is cancelled, nothing recorded, no error logged."""
    run = Recorder(asyncio.Event())  # never released
    sched = Scheduler(make_settings(tmp_path, riga=Site("riga", ())), run, store, Clock(NOW))
    await sched.start()  # baseline NOW
    sched.aps.modify_job("02:00 Europe/Riga", next_run_time=datetime.now(UTC))
    sched.aps.wakeup()
    await yield_loop()
    assert run.calls == [(("riga",), "schedule")]
    await sched.stop()
    await yield_loop()
    assert run.cancelled == [("riga",)] and await store.last_scheduled("riga") == NOW
    assert [r for r in caplog.records if r.levelno >= logging.ERROR] == []


# -- a refreshed inventory ----------------------------------------------------------------------


async def test_a_refreshed_inventory_re_plans_the_slots(tmp_path: Path, store: Store) -> None:
    """The inventory changes while riga's 02:00 run is in progress: that run finishes with the devices
    it started with; a new site with its own time gets a job at once; at the next 02:00 the retired
    device is not backed up and the new one is; a slot no site has any more loses its job."""
    def device(site: str, name: str) -> Device:
        return Device(site, name, "10.0.0.1", username="backup")

    live = LiveSettings(make_settings(tmp_path, riga=Site("riga", (device("riga", "r1"), device("riga", "r2")))))
    gate = asyncio.Event()
    started: list[list[str]] = []

    async def run_sites(sites: tuple[str, ...], trigger: str, not_started: tuple[NotStarted, ...]) -> None:
        settings = live.settings  # as bot.serve.server's run_sites: the devices as they are when the run starts
        started.append([d.label for s in sites if s in settings.sites for d in settings.devices(s)])
        await gate.wait()

    clock = Clock(NOW)
    sched = Scheduler(live, run_sites, store, clock)
    await sched.start()
    job = sched.aps.get_job("02:00 Europe/Riga")
    first = asyncio.create_task(job.func(*job.args))
    await yield_loop()
    live.replace(make_settings(tmp_path, riga=Site("riga", (device("riga", "r2"), device("riga", "r3")),
                                                  retired=(replace(device("riga", "r1"), retired_at=NOW),)),
                               late=Site("late", (device("late", "l1"),), times=("05:00",))))
    assert {j.id for j in sched.aps.get_jobs()} == {"02:00 Europe/Riga", "05:00 Europe/Riga"}
    assert sched.next_runs()["late"] == riga(2024, 6, 11, 5, 0)
    gate.set()
    await first
    assert started == [["riga/r1", "riga/r2"]], "the run in progress kept the devices it started with"

    clock.now = NOW + timedelta(days=1)
    await job.func(*job.args)
    assert started[-1] == ["riga/r2", "riga/r3"], "r1 is retired: not backed up again; r3 joined"
    late = sched.aps.get_job("05:00 Europe/Riga")
    await late.func(*late.args)
    assert started[-1] == ["late/l1"]

    live.replace(make_settings(tmp_path, riga=Site("riga", (device("riga", "r2"),))))
    assert {j.id for j in sched.aps.get_jobs()} == {"02:00 Europe/Riga"}
    await late.func(*late.args)  # a fire APScheduler had already decided on: nothing runs
    assert started[-1] == ["late/l1"] and len(started) == 3
    await sched.stop()
    live.replace(make_settings(tmp_path, riga=Site("riga", ())))  # after stop: nothing is re-planned
    assert sched.slots["02:00 Europe/Riga"].sites == ("riga",)
