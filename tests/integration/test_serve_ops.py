"""Operating `backupbot serve`: what the public port answers (only /slack/events and a bare /healthz),
liveness on the admin port (the process, never Slack or the database), readiness (fields, and 503
for each unhealthy state), /metrics after real runs, and the scheduler as serve wires it (a job per
slot, one catch-up run after a
restart with a fixed clock, never two runs of a site at once). The bot's real aiohttp app, real
SQLite, simulated routers over SSH, the fake Slack."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from bot.core.clock import utcnow
from bot.slack.deliver import Tuning
from bot.serve.server import BACKEND, DELIVERER, SCHEDULER, Options
from bot.ssh.simulator import SimDevice, Simulator
from bot.core.messages import OutboxMessage
from storage.store import Store
from tests.integration.helpers import GENERAL, add_routers, config_for, fast_collector, run_bot
from tests.integration.slack_fake import FakeSlack
from tests.helpers import until

MISSING = "C0MISSING1"


def options(clock: Callable[[], datetime] = utcnow, **kw: Any) -> Options:
    return Options(clock=clock, collector=fast_collector(), drain_timeout=5.0, run_grace=2.0,
                   delivery=Tuning(spacing=0.0, backoff=0.05, max_backoff=0.2, blocked_retry=0.2, poll=0.2), **kw)


async def test_the_public_port_answers_only_slack_and_a_bare_healthz(
        tmp_path: Path, simulator: Simulator, slack: FakeSlack) -> None:
    """The internet-facing port: GET /healthz is "ok" and nothing more; /metrics, readiness and
    liveness details are not served there (404), only on the admin port."""
    (r1,) = await add_routers(simulator, SimDevice("r1"))
    async with run_bot(config_for(tmp_path, {"lab": [r1]}), slack, options=options()) as bot:
        async with bot.session.get(bot.url + "/healthz") as resp:
            assert (resp.status, await resp.text(), resp.content_type) == (200, "ok", "text/plain")
        for path in ("/metrics", "/healthz/ready", "/healthz/live", "/healthz/", "/"):
            status, text = await bot.get_text(path)
            assert status == 404 and "backupbot" not in text and GENERAL not in text, path
        assert (await bot.admin_text("/metrics"))[0] == 200
        assert (await bot.admin_get("/healthz/ready"))[0] == 200
        assert (await bot.admin_get("/healthz/live"))[0] == 200
        for path in ("/slack/events", "/healthz"):  # and the admin port is no way in for Slack's requests
            assert (await bot.admin_text(path))[0] == 404


async def test_liveness_ignores_the_database_but_not_a_dead_deliverer(
        tmp_path: Path, simulator: Simulator, slack: FakeSlack) -> None:
    """The database gone: readiness 503, liveness (admin JSON and the public word) still ok, since
    a restart would not bring it back. The deliverer task stopped: liveness 503 and the public
    /healthz "unhealthy": a restart would fix that."""
    (r1,) = await add_routers(simulator, SimDevice("r1"))
    async with run_bot(config_for(tmp_path, {"lab": [r1]}), slack, options=options()) as bot:
        assert await bot.admin_get("/healthz/live") == (200, {"ok": True, "deliverer": True, "scheduler": True})
        await bot.app[BACKEND].store.close()
        assert (await bot.admin_get("/healthz/ready"))[0] == 503
        assert (await bot.admin_get("/healthz/live"))[0] == 200
        assert await bot.get_text("/healthz") == (200, "ok")
        await bot.app[DELIVERER].stop()
        assert await bot.admin_get("/healthz/live") == (503, {"ok": False, "deliverer": False, "scheduler": True})
        assert await bot.get_text("/healthz") == (503, "unhealthy")


async def test_healthz_reports_each_part_and_fails_for_each_problem(
        tmp_path: Path, simulator: Simulator, slack: FakeSlack) -> None:
    """Healthy: 200 with database (last run and its age), scheduler (running, jobs, next runs) and
    outbox (depth, oldest age). Then 503 for each problem in turn, naming it: a message undelivered
    for 20 min (stuck, with Slack's error), a site whose last scheduled run is 27 h old, the
    scheduler stopped, the database gone."""
    (r1,) = await add_routers(simulator, SimDevice("r1"))
    settings = config_for(tmp_path, {"lab": [r1]})
    async with run_bot(settings, slack, options=options()) as bot:
        store = bot.app[BACKEND].store
        await bot.app[BACKEND].service.run(settings.devices(), "slack")
        status, body = await bot.admin_get("/healthz/ready")
        assert status == 200 and body["ok"] is True
        assert body["database"]["ok"] and body["database"]["last_run_age_s"] < 60
        assert body["scheduler"]["running"] and body["scheduler"]["jobs"] == 1
        assert set(body["scheduler"]["next_runs"]) == {"lab"}
        outbox = body["outbox"]
        assert (outbox["depth"], outbox["deliverer_running"], outbox["stuck"]) == (0, True, False)

        slack.missing_channels.add(MISSING)
        await store.enqueue([OutboxMessage(MISSING, "summary", {"text": "x"})], utcnow() - timedelta(minutes=20))
        bot.app[DELIVERER].wake()
        await until(lambda: _failing(bot))
        status, body = await bot.admin_get("/healthz/ready")
        assert status == 503 and body["outbox"]["stuck"] is True and body["outbox"]["oldest_age_s"] > 1100
        assert body["outbox"]["failing"][0]["error"] == "channel_not_found"
        assert body["database"]["ok"] and body["scheduler"]["ok"]
        slack.missing_channels.clear()
        await until(lambda: _healthy(bot))

        await store.record_scheduled({"lab": utcnow() - timedelta(hours=27)})
        status, body = await bot.admin_get("/healthz/ready")
        assert status == 503 and body["scheduler"]["overdue"] == ["lab"]
        await store.record_scheduled({"lab": utcnow()})
        assert await _healthy(bot)

        await bot.app[SCHEDULER].stop()
        status, body = await bot.admin_get("/healthz/ready")
        assert status == 503 and body["scheduler"]["running"] is False

        await store.close()
        status, body = await bot.admin_get("/healthz/ready")
        assert status == 503 and body["database"]["ok"] is False


async def _failing(bot: Any) -> bool:
    return bool((await bot.admin_get("/healthz/ready"))[1]["outbox"]["failing"])


async def _healthy(bot: Any) -> bool:
    return (await bot.admin_get("/healthz/ready"))[0] == 200


async def test_metrics_after_runs(tmp_path: Path, simulator: Simulator, slack: FakeSlack) -> None:
    """/metrics in Prometheus format: backups by status, failures by kind, run duration by trigger,
    a last-success gauge per device (also after a restart, loaded from the database), the outbox
    depth and Slack delivery failures."""
    ok, chg, bad = await add_routers(simulator, SimDevice("r-ok"), SimDevice("r-chg"), SimDevice("r-bad"))
    settings = config_for(tmp_path, {"lab": [ok, chg, bad]})
    slack.fail("chat.postMessage", 429, retry_after=0)
    async with run_bot(settings, slack, options=options()) as bot:
        service = bot.app[BACKEND].service
        await service.run(settings.devices(), "schedule")
        chg.change(1)
        bad.behaviour = "auth_fail"
        await service.run(settings.devices(), "schedule")
        await until(lambda: len(slack.messages.get(GENERAL, [])) == 3)  # two digests and the change's diff
        status, text = await bot.admin_text("/metrics")
    assert status == 200
    for line in ('backupbot_backups_total{status="new"} 3.0', 'backupbot_backups_total{status="changed"} 1.0',
                 'backupbot_backups_total{status="unchanged"} 1.0', 'backupbot_backups_total{status="failed"} 1.0',
                 'backupbot_backup_failures_total{kind="auth"} 1.0',
                 'backupbot_run_duration_seconds_count{trigger="schedule"} 2.0',
                 'backupbot_outbox_depth 0.0',
                 'backupbot_slack_delivery_failures_total{reason="rate_limited"} 1.0'):
        assert line in text, line
    gauges = [ln for ln in text.splitlines() if ln.startswith("backupbot_last_success_timestamp_seconds{")]
    assert {g.split('device="')[1].split('"')[0] for g in gauges} == {"r-ok", "r-chg", "r-bad"}
    async with run_bot(settings, slack, options=options()) as bot:
        _, again = await bot.admin_text("/metrics")
    assert 'backupbot_last_success_timestamp_seconds{device="r-bad",site="lab"}' in again


async def test_serve_schedules_each_site_and_catches_up_once_after_downtime(
        tmp_path: Path, simulator: Simulator, slack: FakeSlack) -> None:
    """serve starts the scheduler with one job per slot (a site's own times and zone win). First
    start records a baseline; a start two days later (fixed clock) catches up ONCE: one "catch-up"
    run over both sites, one digest in the channel; starting again at that time runs nothing."""
    a, b = await add_routers(simulator, SimDevice("core-a"), SimDevice("edge-b"))
    settings = config_for(tmp_path, {"lab": [a], "branch": [b]},
                          site_options={"branch": {"times": ["06:30", "18:30"], "timezone": "Europe/Riga"}},
                          top={"schedule": {"times": ["02:00"], "timezone": "UTC", "jitter": 0}})
    day1, day3 = datetime(2026, 3, 1, 10, 0, tzinfo=UTC), datetime(2026, 3, 3, 10, 0, tzinfo=UTC)
    async with run_bot(settings, slack, options=options(lambda: day1)) as bot:
        jobs = bot.app[SCHEDULER].aps.get_jobs()
        assert {j.id for j in jobs} == {"02:00 UTC", "06:30 Europe/Riga", "18:30 Europe/Riga"}
        assert {str(j.trigger.timezone) for j in jobs if j.id.endswith("Riga")} == {"Europe/Riga"}
    async with run_bot(settings, slack, options=options(lambda: day3)) as bot:
        store: Store = bot.app[BACKEND].store
        await until(lambda: _scheduled_at(store, day3))
        await until(lambda: len(slack.posts(GENERAL)) == 1)
    async with run_bot(settings, slack, options=options(lambda: day3)) as bot:
        assert bot.app[SCHEDULER].busy_sites == frozenset()
        store = bot.app[BACKEND].store
        runs = [r for r in [await store.run(i) for i in range(1, 5)] if r is not None]
    assert [(r.trigger, r.scope) for r in runs] == [("catch-up", "branch,lab")]
    [digest] = slack.posts(GENERAL)
    assert "Catch-up run" in json.dumps(digest) and "*Sites (2)*" in json.dumps(digest)


async def _scheduled_at(store: Store, at: datetime) -> bool:
    return all([await store.last_scheduled(s) == at for s in ("lab", "branch")])


async def test_a_site_never_runs_twice_at_once(tmp_path: Path, simulator: Simulator, slack: FakeSlack) -> None:
    """The site's slot firing again while its run is in progress does not back it up again (one
    export per device); the second fire is a run without devices whose digest names the site as
    not started, covered by the run in progress."""
    (r1,) = await add_routers(simulator, SimDevice("r1", delay=0.5))
    settings = config_for(tmp_path, {"lab": [r1]}, top={"schedule": {"times": ["02:00"], "jitter": 0}})
    async with run_bot(settings, slack, options=options()) as bot:
        job = bot.app[SCHEDULER].aps.get_job("02:00 UTC")
        await asyncio.gather(job.func(*job.args), job.func(*job.args))
        store: Store = bot.app[BACKEND].store
        assert (await store.run(1)).scope == "lab" and (await store.run(2)).scope == ""
        assert await store.run_attempts(2) == [] and await store.run(3) is None
        await until(lambda: len(slack.posts(GENERAL)) == 2)
    assert r1.commands == ["/export show-sensitive"]  # one export, once
    busy, done = sorted(slack.posts(GENERAL), key=lambda m: "not started" not in m["text"])
    assert "`lab` not started — its 02:00 UTC run is still in progress" in json.dumps(busy, ensure_ascii=False)
    assert "Backup of lab/r1 — 1 new" in done["text"]


async def test_app_home_shows_each_sites_next_scheduled_run(
        tmp_path: Path, simulator: Simulator, slack: FakeSlack) -> None:
    """The Home tab's site lines carry the next scheduled run (site times and zone applied)."""
    a, b = await add_routers(simulator, SimDevice("core-a"), SimDevice("edge-b"))
    settings = config_for(tmp_path, {"lab": [a], "branch": [b]},
                          site_options={"branch": {"times": ["06:30"], "timezone": "Europe/Riga"}},
                          top={"schedule": {"times": ["02:00"], "timezone": "UTC", "jitter": 0}})
    day1 = datetime(2026, 3, 1, 10, 0, tzinfo=UTC)
    async with run_bot(settings, slack, options=options(lambda: day1)) as bot:
        await bot.event({"type": "app_home_opened", "user": "U0ADMIN001", "channel": "D0ADMIN001", "tab": "home"})
        (call,) = await slack.wait_for("views.publish")
    view = json.dumps(call.params["view"], ensure_ascii=False)
    assert "*lab* · 1 device · never run · next run 2026-03-02 02:00 UTC" in view
    assert "*branch* · 1 device · never run · next run 2026-03-02 04:30 UTC" in view  # 06:30 in Riga (EET)
