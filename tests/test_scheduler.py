"""The scheduler: pure "when" functions (fixed datetimes, DST days), job registration, catch-up
against a real SQLite store, no overlapping runs of a site, and a clean stop. Nothing sleeps."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from apscheduler.triggers.cron import CronTrigger

from bot.models import ScheduleSettings, Settings, Site
from bot.scheduler import DailyTrigger, Scheduler, missed, next_fire, previous_fire, site_schedule
from storage.store import Store

RIGA = ZoneInfo("Europe/Riga")
NOW = datetime(2024, 6, 10, 12, 0, tzinfo=UTC)  # 15:00 in Riga (EEST, +03:00)


def riga(*args: int) -> datetime:
    return datetime(*args, tzinfo=RIGA)


def make_settings(tmp_path: Path, jitter: int = 0, **sites: Site) -> Settings:
    sites = sites or {"riga": Site("riga", ()), "tallinn": Site("tallinn", ())}
    return Settings(tmp_path / "db.sqlite", dict(sites),
                    schedule=ScheduleSettings(times=("02:00",), timezone="Europe/Riga", jitter=jitter))


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


class Recorder:
    """A real run_site: records each call; blocks on `gate` when one is set."""

    def __init__(self, gate: asyncio.Event | None = None, fail: bool = False) -> None:
        self.calls: list[tuple[str, str]] = []
        self.cancelled: list[str] = []
        self.gate, self.fail = gate, fail

    async def __call__(self, site: str, trigger: str) -> None:
        self.calls.append((site, trigger))
        try:
            if self.gate is not None:
                await self.gate.wait()
        except asyncio.CancelledError:
            self.cancelled.append(site)
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


async def test_start_registers_one_cron_job_per_site_and_time(tmp_path: Path, store: Store) -> None:
    """Each (site, time) is a job: cron fields, zone, jitter, coalesce, max_instances, no misfire limit."""
    settings = make_settings(tmp_path, jitter=120, riga=Site("riga", ()),
                             ny=Site("ny", (), times=("01:15", "13:45"), timezone="America/New_York"))
    sched = Scheduler(settings, Recorder(), store, Clock(NOW))
    await sched.start()
    try:
        assert sched.aps is not None and sched.running
        jobs = {job.id: job for job in sched.aps.get_jobs()}
        assert set(jobs) == {"riga@02:00", "ny@01:15", "ny@13:45"}
        job = jobs["ny@13:45"]
        trigger = job.trigger
        fields = {f.name: str(f) for f in trigger.fields}
        assert (fields["hour"], fields["minute"]) == ("13", "45")
        assert trigger.timezone == ZoneInfo("America/New_York") and trigger.jitter == 120
        assert (job.coalesce, job.max_instances, job.misfire_grace_time, job.args) == (True, 1, None, ("ny",))
        fixed_now = datetime(2024, 6, 10, 12, 0, tzinfo=UTC)  # 08:00 in New York
        fire = trigger.get_next_fire_time(None, fixed_now)
        slot = datetime(2024, 6, 10, 13, 45, tzinfo=ZoneInfo("America/New_York"))
        assert slot <= fire <= slot + timedelta(seconds=120)
        assert sched.next_runs() == {"riga": riga(2024, 6, 11, 2, 0), "ny": slot}
    finally:
        await sched.stop()
    assert not sched.running and not sched.aps.running


async def test_catch_up_runs_once_after_several_missed_days(tmp_path: Path, store: Store) -> None:
    """Down for days: start-up runs "catch-up" once for that site only, then records the run's start."""
    settings = make_settings(tmp_path)
    await store.set_last_scheduled("riga", NOW - timedelta(days=5))
    await store.set_last_scheduled("tallinn", riga(2024, 6, 10, 2, 4))  # today's slot done
    run = Recorder()
    sched = Scheduler(settings, run, store, Clock(NOW))
    await sched.start()
    await sched.join()
    await sched.stop()
    assert run.calls == [("riga", "catch-up")]
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
    """last_scheduled is written only when run_site returns: a crashed run is caught up next start."""
    settings = make_settings(tmp_path, riga=Site("riga", ()))
    old = NOW - timedelta(days=2)
    await store.set_last_scheduled("riga", old)
    sched = Scheduler(settings, Recorder(fail=True), store, Clock(NOW))
    await sched.start()
    await sched.join()
    await sched.stop()
    assert await store.last_scheduled("riga") == old
    run = Recorder()
    restarted = Scheduler(settings, run, store, Clock(NOW + timedelta(minutes=5)))
    await restarted.start()
    await restarted.join()
    await restarted.stop()
    assert run.calls == [("riga", "catch-up")]


async def test_catch_ups_are_spread_over_the_jitter(tmp_path: Path, store: Store) -> None:
    """Many sites to catch up start after random delays in [0, jitter], not all at the same second."""
    sites = {f"s{i}": Site(f"s{i}", ()) for i in range(20)}
    for name in sites:
        await store.set_last_scheduled(name, NOW - timedelta(days=1, hours=12))
    delays: list[float] = []

    async def fake_sleep(seconds: float) -> None:
        delays.append(seconds)

    run = Recorder()
    sched = Scheduler(make_settings(tmp_path, jitter=300, **sites), run, store, Clock(NOW), sleep=fake_sleep)
    await sched.start()
    await sched.join()
    await sched.stop()
    assert sorted(run.calls) == sorted((name, "catch-up") for name in sites)
    assert len(delays) == 20 and all(0 <= d <= 300 for d in delays) and len(set(delays)) > 1


async def test_no_second_run_of_a_site_while_one_is_running(tmp_path: Path, store: Store) -> None:
    """The job fired twice while the first run is still going: one run_site call, the second fire is
    coalesced into it (its instant counts as covered); a later fire runs normally."""
    gate = asyncio.Event()
    run = Recorder(gate)
    clock = Clock(NOW)
    sched = Scheduler(make_settings(tmp_path, riga=Site("riga", ())), run, store, clock)
    await sched.start()
    job = sched.aps.get_job("riga@02:00")
    first = asyncio.create_task(job.func(*job.args))
    await yield_loop()
    clock.now = NOW + timedelta(minutes=10)
    second = asyncio.create_task(job.func(*job.args))
    await yield_loop()
    assert second.done() and run.calls == [("riga", "schedule")]
    assert sched.busy_sites == {"riga"}
    gate.set()
    await first
    assert await store.last_scheduled("riga") == NOW + timedelta(minutes=10), "the skipped fire is coalesced"
    clock.now = NOW + timedelta(days=1)
    await job.func(*job.args)
    assert run.calls == [("riga", "schedule")] * 2
    await sched.stop()


async def test_a_catch_up_in_progress_blocks_a_scheduled_run(tmp_path: Path, store: Store) -> None:
    """A catch-up and a scheduled slot of the same site never overlap."""
    await store.set_last_scheduled("riga", NOW - timedelta(days=3))
    gate = asyncio.Event()
    run = Recorder(gate)
    sched = Scheduler(make_settings(tmp_path, riga=Site("riga", ())), run, store, Clock(NOW))
    await sched.start()
    await yield_loop()
    job = sched.aps.get_job("riga@02:00")
    await job.func(*job.args)
    assert run.calls == [("riga", "catch-up")]
    gate.set()
    await sched.join()
    await sched.stop()


async def test_stop_cancels_in_flight_runs_and_starts_no_new_work(tmp_path: Path, store: Store) -> None:
    """stop(): APScheduler shut down, the running run cancelled (so not recorded), later fires ignored."""
    await store.set_last_scheduled("riga", NOW - timedelta(days=1, hours=12))
    run = Recorder(asyncio.Event())  # never released
    sched = Scheduler(make_settings(tmp_path, riga=Site("riga", ())), run, store, Clock(NOW))
    await sched.start()
    await yield_loop()
    job = sched.aps.get_job("riga@02:00")
    assert run.calls == [("riga", "catch-up")]
    await sched.stop()
    assert run.cancelled == ["riga"]
    assert not sched.running and not sched.aps.running and sched.busy_sites == frozenset()
    assert await store.last_scheduled("riga") == NOW - timedelta(days=1, hours=12)
    await job.func(*job.args)
    assert run.calls == [("riga", "catch-up")], "no new work after stop()"


async def test_stop_with_grace_lets_a_short_run_finish(tmp_path: Path, store: Store) -> None:
    """Given a grace period, a run that ends within it completes and is recorded instead of cancelled."""
    gate = asyncio.Event()
    run = Recorder(gate)
    clock = Clock(NOW)
    sched = Scheduler(make_settings(tmp_path, riga=Site("riga", ())), run, store, clock)
    await sched.start()  # first start: baseline NOW
    clock.now = NOW + timedelta(hours=1)
    job = sched.aps.get_job("riga@02:00")
    task = asyncio.create_task(job.func(*job.args))
    await yield_loop()
    asyncio.get_running_loop().call_soon(gate.set)
    await sched.stop(grace=5)
    await task
    assert run.cancelled == [] and await store.last_scheduled("riga") == NOW + timedelta(hours=1)


async def test_apscheduler_runs_the_due_job_on_the_loop_and_plans_the_next_day(tmp_path: Path, store: Store) -> None:
    """End to end through APScheduler: a due job runs run_site("schedule") and moves to the next slot."""
    run = Recorder()
    clock = Clock(NOW)
    sched = Scheduler(make_settings(tmp_path, riga=Site("riga", ())), run, store, clock)
    await sched.start()
    clock.now = NOW + timedelta(hours=1)
    due = datetime.now(UTC) - timedelta(seconds=1)
    sched.aps.modify_job("riga@02:00", next_run_time=due)  # as if 02:00 had just come
    sched.aps.wakeup()
    for _ in range(50):
        if run.calls and "riga" not in sched.busy_sites:
            break
        await asyncio.sleep(0)
    assert run.calls == [("riga", "schedule")]
    nxt = sched.aps.get_job("riga@02:00").next_run_time
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
    sched.aps.modify_job("riga@02:00", next_run_time=datetime.now(UTC))
    sched.aps.wakeup()
    await yield_loop()
    assert run.calls == [("riga", "schedule")]
    await sched.stop()
    await yield_loop()
    assert run.cancelled == ["riga"] and await store.last_scheduled("riga") == NOW
    assert [r for r in caplog.records if r.levelno >= logging.ERROR] == []
