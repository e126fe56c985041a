"""One digest per channel per scheduled slot, end to end: the scheduler as serve wires it fires a
slot, every site of the slot is backed up over real SSH (simulated routers) into real SQLite as one
run, and the bot's own deliverer posts to the local Slack stand-in: one message per channel however
many sites feed it, sent when the last of them has finished; a busy site is named as not started;
a kill between one site finishing and another loses and repeats nothing.

Times are injected (a settable clock); the slot's APScheduler job is called directly instead of
waiting for 02:00.
"""

from __future__ import annotations

import asyncio
import json
import signal
import sqlite3
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import yaml

from bot.app import open_backend
from bot.core.clock import utcnow
from bot.slack.blocks.ids import SHOW_DIFF, pair_value
from bot.config.load import load_settings
from bot.slack.deliver import Tuning
from bot.serve.server import BACKEND, SCHEDULER, Options
from bot.ssh.simulator import SimDevice, Simulator
from tests.integration.helpers import (
    GENERAL,
    ROUTER_PASSWORD,
    SIGNING_SECRET,
    add_routers,
    buttons,
    config_for,
    fast_collector,
    free_port,
    run_bot,
    serve_process,
)
from tests.integration.slack_fake import BOT_TOKEN, FakeSlack
from tests.helpers import Clock, until

BRANCH = "C0BRANCH01"
SCHEDULE = {"schedule": {"times": ["02:00"], "timezone": "UTC"}}  # jitter left at its default (0)


def options(clock: Callable[[], datetime] = utcnow) -> Options:
    return Options(clock=clock, collector=fast_collector(), drain_timeout=10.0, run_grace=2.0,
                   delivery=Tuning(spacing=0.0, backoff=0.05, max_backoff=0.2, poll=0.2))


def rendered(message: Mapping[str, Any]) -> str:
    """A message as a reader sees it: each block's text (buttons in brackets), for the closing note."""
    out = []
    for block in message.get("blocks", []):
        text = block.get("text", {}).get("text", "")
        button = block.get("accessory", {}).get("text", {}).get("text")
        out.append(text + (f"  [{button}]" if button else ""))
    return "\n".join(out)


async def test_two_sites_in_one_channel_get_one_digest_and_a_site_with_its_own_channel_its_own(
        tmp_path: Path, simulator: Simulator, slack: FakeSlack) -> None:
    """lab and depot post to the general channel and branch to its own, all at 02:00 UTC. The slot
    fires: depot's slow router finishes well after lab's; the general channel gets exactly ONE
    message naming both sites (totals, a line per site, the change with its Show diff, the failure
    with its reason, the stale router), the change's diff in its thread; branch's channel gets its
    own digest. Nothing is posted before the last router of the slot has finished."""
    clock = Clock(shift=-timedelta(days=3))
    lab1, lab2 = SimDevice("core-1"), SimDevice("ap-1")
    depot_ok, depot_bad, depot_slow = SimDevice("gw-1"), SimDevice("gw-2"), SimDevice("sw-1")
    branch1 = SimDevice("edge-1")
    await add_routers(simulator, lab1, lab2, depot_ok, depot_bad, depot_slow, branch1)
    settings = config_for(tmp_path, {"lab": [lab1, lab2], "depot": [depot_ok, depot_bad, depot_slow],
                                     "branch": [branch1]},
                          site_options={"branch": {"channel": BRANCH}}, top=SCHEDULE)
    async with run_bot(settings, slack, options=options(clock)) as bot:
        service, store = bot.app[BACKEND].service, bot.app[BACKEND].store
        await service.run(settings.devices(), "cli")  # three days ago: every router's first version
        clock.shift = timedelta(0)
        lab1.change(3)
        depot_bad.behaviour = "auth_fail"
        depot_slow.delay = 2.0
        scheduler = bot.app[SCHEDULER]
        assert set(scheduler.slots) == {"02:00 UTC"}
        job = scheduler.aps.get_job("02:00 UTC")
        slot = asyncio.create_task(job.func(*job.args))
        await until(lambda: depot_slow.sessions >= 1)  # the slow export is under way, lab is done
        await until(lambda: attempts_recorded(settings.storage_path) >= 6 + 5)
        await asyncio.sleep(0.5)  # the deliverer polls every 0.2 s: room to post anything queued
        assert slack.posts(GENERAL) == [] and slack.posts(BRANCH) == [], "posted before the slot finished"
        await slot
        await until(lambda: len(slack.calls_to("chat.postMessage")) >= 3)
        run = await store.run(2)
        assert run.scope == "branch,depot,lab" and run.finished_at - run.started_at >= timedelta(seconds=2)
        covered = {await store.last_scheduled(s) for s in settings.sites}  # one instant, just before the run
        assert len(covered) == 1 and timedelta(0) <= run.started_at - covered.pop() < timedelta(seconds=1)

    [digest] = slack.posts(GENERAL)
    [own] = slack.posts(BRANCH)
    body = json.dumps(digest, ensure_ascii=False)
    print(f"\n--- text ---\n{digest['text']}\n--- blocks ---\n{rendered(digest)}\n--- branch ---\n{own['text']}")
    assert digest["text"].startswith("Backup of 2 sites — 1 changed, 1 failed\n")
    assert "*5 devices* · 3 unchanged · 1 changed · 0 new · 1 failed · 1 stale" in body
    assert "*Sites (2)*\\n:x: `depot` 3 devices, 2 unchanged, 1 failed\\n`lab` 2 devices, 1 unchanged, 1 changed" in body
    assert "`depot/gw-2` — authentication failed" in body and "`depot/gw-2` — no good backup for 3 days" in body
    [r1] = [r for r in changes_recorded(settings.storage_path) if r[0] == "core-1"]
    assert (SHOW_DIFF, pair_value(r1[1], r1[2])) in buttons(digest)
    assert "branch" not in body and "edge-1" not in body
    [diff] = slack.posts(GENERAL, thread_ts=digest["ts"])
    assert "lab/core-1" in json.dumps(diff, ensure_ascii=False)
    assert own["text"] == "Backup of branch/edge-1 — no changes" and "*Sites" not in json.dumps(own)


def attempts_recorded(db: Path) -> int:
    """Attempts in the file: a row each, but unchanged ones that repeat the one before are counted on
    its row (storage/store.py)."""
    with sqlite3.connect(db) as conn:
        return int(conn.execute("SELECT COUNT(*) + IFNULL(SUM(repeats), 0) FROM attempts").fetchone()[0])


def changes_recorded(db: Path) -> list[tuple[str, int, int]]:
    """(device, previous version id, new version id) of every change recorded."""
    with sqlite3.connect(db) as conn:
        return conn.execute(
            "SELECT d.name, (SELECT MAX(v.id) FROM versions v WHERE v.device_id = d.id AND v.id < a.version_id),"
            " a.version_id FROM attempts a JOIN devices d ON d.id = a.device_id WHERE a.status = 'changed'"
        ).fetchall()


async def test_a_site_still_running_from_an_earlier_slot_is_named_in_the_next_slots_digest(
        tmp_path: Path, simulator: Simulator, slack: FakeSlack) -> None:
    """lab runs at 02:00 and 02:30, depot at 02:30. lab's 02:00 run is slow; 02:30 comes while it
    runs: depot is backed up and its digest names lab as not started, covered by the 02:00 run;
    lab's routers are not contacted twice; the 02:00 digest follows when lab finishes, and lab's
    schedule counts 02:30 as covered."""
    slow, depot1 = SimDevice("core-1", delay=2.0), SimDevice("gw-1")
    await add_routers(simulator, slow, depot1)
    settings = config_for(tmp_path, {"lab": [slow], "depot": [depot1]},
                          site_options={"lab": {"times": ["02:00", "02:30"]}, "depot": {"times": ["02:30"]}},
                          top=SCHEDULE)
    clock = Clock(datetime.now(UTC))
    async with run_bot(settings, slack, options=options(clock)) as bot:
        scheduler = bot.app[SCHEDULER]
        early, late = scheduler.aps.get_job("02:00 UTC"), scheduler.aps.get_job("02:30 UTC")
        first = asyncio.create_task(early.func(*early.args))
        await until(lambda: slow.sessions >= 1)
        clock.now += timedelta(minutes=30)
        await late.func(*late.args)
        await until(lambda: len(slack.posts(GENERAL)) == 1)
        await first
        await until(lambda: len(slack.posts(GENERAL)) == 2)
        assert await bot.app[BACKEND].store.last_scheduled("lab") == clock.now
    assert slow.commands == ["/export show-sensitive"]  # one export, once
    second_slot, first_slot = slack.posts(GENERAL)
    body = json.dumps(second_slot, ensure_ascii=False)
    assert second_slot["text"].startswith("Backup of 2 sites — 1 new, 1 site not started\n")
    assert ":x: `lab` not started — its 02:00 UTC run is still in progress; this slot is covered by that run" in body
    assert "`depot` 1 device, 1 new" in body
    assert first_slot["text"] == "Backup of lab/core-1 — 1 new"


async def test_quiet_posts_no_all_clear_but_app_home_shows_the_run(
        tmp_path: Path, simulator: Simulator, slack: FakeSlack) -> None:
    """schedule.quiet: true and nothing changed: the slot's run is recorded (App Home shows it) and
    nothing is posted; the next slot with a change posts its digest as usual."""
    r1, r2 = await add_routers(simulator, SimDevice("core-1"), SimDevice("gw-1"))
    settings = config_for(tmp_path, {"lab": [r1], "depot": [r2]},
                          top={"schedule": {"times": ["02:00"], "timezone": "UTC", "quiet": True}})
    clock = Clock(shift=-timedelta(days=1))
    async with run_bot(settings, slack, options=options(clock)) as bot:
        store = bot.app[BACKEND].store
        await bot.app[BACKEND].service.run(settings.devices(), "cli")  # yesterday
        clock.shift = timedelta(0)
        job = bot.app[SCHEDULER].aps.get_job("02:00 UTC")
        await job.func(*job.args)
        assert (await store.run(2)).status == "finished" and len(await store.run_attempts(2)) == 2
        await bot.event({"type": "app_home_opened", "user": "U0ADMIN001", "channel": "D0ADMIN001", "tab": "home"})
        (call,) = await slack.wait_for("views.publish")
        await asyncio.sleep(0.5)  # the deliverer polls every 0.2 s: room to post anything queued
        assert slack.posts(GENERAL) == []
        r2.change(1)
        await job.func(*job.args)
        await until(lambda: len(slack.posts(GENERAL)) == 1)
    view = json.dumps(call.params["view"], ensure_ascii=False)
    assert "*lab* · 1 device · last run" in view and "*depot* · 1 device · last run" in view
    assert view.count("(just now)") == 2, "the quiet run is the last run shown"
    [digest] = slack.posts(GENERAL)
    assert digest["text"].startswith("Backup of 2 sites — 1 changed\n")
    assert "`lab` 1 device, all unchanged" in json.dumps(digest, ensure_ascii=False)


def write_config(tmp_path: Path, sites: Mapping[str, Sequence[SimDevice]]) -> Path:
    path = tmp_path / "backupbot.yml"
    path.write_text(yaml.safe_dump({
        "storage": {"path": "backups.db"}, "slack": {"channel": GENERAL}, **SCHEDULE,
        "defaults": {"username": "backup", "password": "${ROUTER_PASSWORD}", "timeout": 60},
        "sites": {name: {"devices": [{"name": d.name, "host": d.host, "port": d.port} for d in devices]}
                  for name, devices in sites.items()},
    }))
    return path


def rows(db: Path, sql: str) -> list[tuple[Any, ...]]:
    with sqlite3.connect(db) as conn:
        return conn.execute(sql).fetchall()


async def test_killed_between_one_site_finishing_and_another_the_channel_hears_everything_once(
        tmp_path: Path, simulator: Simulator, slack: FakeSlack) -> None:
    """A real `serve` catches up lab and depot in one run; lab's router has changed and is done,
    depot's router is still exporting: SIGKILL. Nothing was posted (the digest is committed with
    the run's end). The restart marks the run interrupted together with a notice of lab's change,
    then catches both sites up in one run: the channel gets the change once and ONE digest naming
    both sites (lab now unchanged), nothing twice."""
    fast, slow = await add_routers(simulator, SimDevice("core-1"), SimDevice("gw-1", delay=60))
    config = write_config(tmp_path, {"lab": [fast], "depot": [slow]})
    settings = load_settings(config, {"ROUTER_PASSWORD": ROUTER_PASSWORD})
    db = settings.storage_path
    async with open_backend(settings, collector=fast_collector()) as backend:  # yesterday's backup of lab
        await backend.service.run(settings.devices("lab"), "cli")
        await backend.store.record_scheduled(dict.fromkeys(settings.sites, utcnow() - timedelta(days=2)))
    fast.change(1)
    env = {"SLACK_BOT_TOKEN": BOT_TOKEN, "SLACK_SIGNING_SECRET": SIGNING_SECRET, "SLACK_API_URL": slack.api_url}
    proc = await serve_process(config, env, "--port", str(free_port()))
    try:
        await until(lambda: rows(db, "SELECT COUNT(*) FROM attempts") == [(2,)] and slow.sessions >= 1)
    finally:
        proc.kill()
        await proc.wait()
    assert proc.returncode == -signal.SIGKILL
    assert rows(db, "SELECT trigger, scope, status FROM runs") == [
        ("cli", "lab", "finished"), ("catch-up", "depot,lab", "running")]
    assert rows(db, "SELECT COUNT(*) FROM outbox") == [(0,)] and slack.posts(GENERAL) == []

    slow.delay = 0.0
    async with run_bot(settings, slack, options=options()) as bot:
        store = bot.app[BACKEND].store
        await until(lambda: len(slack.posts(GENERAL)) == 2)
        await until(lambda: rows(db, "SELECT COUNT(*) FROM runs WHERE status = 'finished'") == [(2,)])
        await asyncio.sleep(0.5)  # anything else queued would be posted by now
        assert (await store.run(2)).status == "interrupted"
    notice, digest = slack.posts(GENERAL)
    assert "Config changed: lab/core-1" in notice["text"] and "Run cut short by a restart #2" in str(notice)
    assert len(slack.posts(GENERAL, thread_ts=notice["ts"])) == 1  # its diff
    body = json.dumps(digest, ensure_ascii=False)
    assert "Catch-up run (a scheduled time was missed) #3" in body and "*Sites (2)*" in body
    assert "`lab` 1 device, all unchanged" in body and "`depot` 1 device, 1 new" in body
    assert rows(db, "SELECT trigger, scope, status FROM runs") == [
        ("cli", "lab", "finished"), ("catch-up", "depot,lab", "interrupted"), ("catch-up", "depot,lab", "finished")]
    assert len(slack.calls_to("chat.postMessage")) == 3
