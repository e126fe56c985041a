"""`backupbot serve` as a real process, stopped the hard way: SIGKILL after Slack accepted a post
but before the bot recorded it (the restart finds the post instead of repeating it), SIGTERM in
the middle of a scheduled run (clean exit, nothing half-written, undelivered messages still queued),
and SIGKILL while Slack is unreachable (started anyway, restarted anyway, summary posted once)."""

from __future__ import annotations

import asyncio
import signal
import sqlite3
from collections.abc import Sequence
from datetime import timedelta
from pathlib import Path
from typing import Any

import yaml

from bot.app import open_backend
from bot.core.clock import utcnow
from bot.config.load import load_settings
from bot.slack.deliver import Tuning
from bot.serve.server import BACKEND, Options
from bot.ssh.simulator import SimDevice, Simulator
from bot.core.messages import OutboxMessage
from storage.store import Store
from tests.integration.helpers import (
    GENERAL,
    ROUTER_PASSWORD,
    SIGNING_SECRET,
    add_routers,
    fast_collector,
    free_port,
    read_until,
    run_bot,
    serve_process,
)
from tests.integration.slack_fake import BOT_TOKEN, FakeSlack
from tests.helpers import until

MISSING = "C0MISSING1"


def write_config(tmp_path: Path, routers: Sequence[SimDevice]) -> Path:
    path = tmp_path / "backupbot.yml"
    devices = [{"name": d.name, "host": d.host, "port": d.port} for d in routers] or [
        {"name": "never-contacted", "host": "127.0.0.1", "port": 1}]
    path.write_text(yaml.safe_dump({
        "storage": {"path": "backups.db"}, "slack": {"channel": GENERAL},
        "schedule": {"times": ["02:00"], "timezone": "UTC", "jitter": 0},
        "defaults": {"username": "backup", "password": "${ROUTER_PASSWORD}", "timeout": 60},
        "sites": {"lab": {"devices": devices}},
    }))
    return path


def env(slack: FakeSlack) -> dict[str, str]:
    return {"SLACK_BOT_TOKEN": BOT_TOKEN, "SLACK_SIGNING_SECRET": SIGNING_SECRET, "SLACK_API_URL": slack.api_url}


def note(text: str, channel: str = GENERAL) -> OutboxMessage:
    return OutboxMessage(channel, "summary", {"text": text, "blocks": [
        {"type": "section", "text": {"type": "mrkdwn", "text": text}}]})


def rows(db: Path, sql: str) -> list[tuple[Any, ...]]:
    with sqlite3.connect(db) as conn:
        return conn.execute(sql).fetchall()


async def test_killed_after_slack_accepted_a_post_the_restart_finds_it_instead_of_reposting(
        tmp_path: Path, slack: FakeSlack) -> None:
    """serve posts "first"; Slack has put it in the channel but its answer is held back; the
    process is SIGKILLed. The item is left marked "may be in Slack" with no ts. The restarted bot
    finds the post in conversations.history by its outbox id, records that ts, does not post it
    again, and then delivers "second", which was never sent."""
    config = write_config(tmp_path, [])
    settings = load_settings(config, {"ROUTER_PASSWORD": ROUTER_PASSWORD})
    db = settings.storage_path
    async with await Store.open(db) as store:
        first, second = await store.enqueue([note("first"), note("second")], utcnow())
    slack.hold("chat.postMessage")
    proc = await serve_process(config, env(slack), "--port", str(free_port()))
    try:
        await asyncio.wait_for(slack.holding.wait(), 30)
    finally:
        proc.kill()
        await proc.wait()
        slack.release()
    assert proc.returncode == -signal.SIGKILL
    [(ts, since)] = rows(db, f"SELECT ts, sending_since FROM outbox WHERE id = {first}")
    assert ts is None and since is not None
    assert [m["text"] for m in slack.posts(GENERAL)] == ["first"]

    opts = Options(collector=fast_collector(), drain_timeout=5.0, delivery=Tuning(spacing=0.0, poll=0.2))
    async with run_bot(settings, slack, options=opts) as bot:
        store = bot.app[BACKEND].store
        await until(lambda: len(slack.posts(GENERAL)) == 2)
        for _ in range(100):
            if await store.outbox_depth() == 0:
                break
            await asyncio.sleep(0.02)
    posts = slack.posts(GENERAL)
    assert [m["text"] for m in posts] == ["first", "second"]
    assert [c.params["text"] for c in slack.calls_to("chat.postMessage")] == ["first", "second"]
    assert slack.calls_to("conversations.history")
    assert rows(db, "SELECT id, ts FROM outbox ORDER BY id") == [(first, posts[0]["ts"]), (second, posts[1]["ts"])]


async def test_sigterm_mid_run_exits_cleanly_and_the_restart_still_tells_the_change(
        tmp_path: Path, simulator: Simulator, slack: FakeSlack) -> None:
    """A catch-up run is under way (one router's change recorded, one router slow) and a message
    cannot be delivered yet. SIGTERM: serve starts nothing new, gives the run its grace, cancels the
    slow device and exits 0. The database is intact: the change is kept, the cancelled device wrote
    nothing, the run is left unfinished and the undelivered message is still queued. The next start
    marks the run interrupted together with a message about the change it recorded (delivered with
    its diff in the thread), and catches up again."""
    fast, slow = await add_routers(simulator, SimDevice("r-fast"), SimDevice("r-slow", delay=60))
    config = write_config(tmp_path, [fast, slow])
    settings = load_settings(config, {"ROUTER_PASSWORD": ROUTER_PASSWORD})
    db = settings.storage_path
    async with open_backend(settings, collector=fast_collector()) as backend:  # yesterday's backup of r-fast
        await backend.service.run(settings.devices("lab", "r-fast"), "cli")
        two_days_ago = utcnow() - timedelta(days=2)
        await backend.store.record_scheduled({"lab": two_days_ago})
        [queued] = await backend.store.enqueue([note("cannot go yet", MISSING)], utcnow())
    fast.change(1)
    slack.missing_channels.add(MISSING)
    proc = await serve_process(config, env(slack), "--port", str(free_port()))
    try:
        await until(lambda: rows(db, "SELECT COUNT(*) FROM attempts") == [(2,)] and slow.sessions >= 1)  # its export
    finally:
        proc.send_signal(signal.SIGTERM)
        _, err = await asyncio.wait_for(proc.communicate(), 30)
    log = err.decode()
    assert proc.returncode == 0, log
    assert "Traceback" not in log and "exception was never retrieved" not in log
    assert 'event="scheduler stopped" cancelled=1' in log
    assert BOT_TOKEN not in log and ROUTER_PASSWORD not in log
    assert rows(db, "PRAGMA integrity_check") == [("ok",)]
    assert rows(db, "SELECT trigger, status FROM runs") == [("cli", "finished"), ("catch-up", "running")]
    assert rows(db, "SELECT d.name, a.status FROM attempts a JOIN devices d ON d.id = a.device_id") == [
        ("r-fast", "new"), ("r-fast", "changed")]
    assert rows(db, "SELECT id, ts FROM outbox") == [(queued, None)]

    slow.delay = 0.0
    opts = Options(collector=fast_collector(), drain_timeout=5.0, delivery=Tuning(spacing=0.0, poll=0.2))
    async with run_bot(settings, slack, options=opts) as bot:
        store = bot.app[BACKEND].store
        assert [r.status for r in [await store.run(1), await store.run(2)]] == ["finished", "interrupted"]
        await until(lambda: len(slack.posts(GENERAL)) == 2)  # the change, then the catch-up's summary
    notice, summary = slack.posts(GENERAL)
    assert "Config changed: lab/r-fast" in notice["text"] and "Run cut short by a restart #2" in str(notice)
    assert len(slack.posts(GENERAL, thread_ts=notice["ts"])) == 1
    assert "Catch-up run" in str(summary)


async def test_started_during_a_slack_outage_killed_and_restarted_the_summary_is_posted_once(
        tmp_path: Path, simulator: Simulator, slack: FakeSlack) -> None:
    """Slack's Web API refuses connections. `serve` starts anyway (saying so on stderr), catches up
    the missed scheduled slot and queues its summary. SIGKILL; a restart while Slack is still down
    starts too and runs nothing twice. Slack comes back: the restarted bot's token check succeeds
    (logged) and the summary is posted exactly once."""
    (r1,) = await add_routers(simulator, SimDevice("r1"))
    config = write_config(tmp_path, [r1])
    settings = load_settings(config, {"ROUTER_PASSWORD": ROUTER_PASSWORD})
    db = settings.storage_path
    async with open_backend(settings, collector=fast_collector()) as backend:
        await backend.store.record_scheduled({"lab": utcnow() - timedelta(days=2)})
    await slack.go_down()

    first = await serve_process(config, env(slack), "--port", str(free_port()))
    assert first.stderr is not None
    started = await read_until(first.stderr, b"listening on http://127.0.0.1")
    await until(lambda: rows(db, "SELECT trigger, status FROM runs") == [("catch-up", "finished")]
                and rows(db, "SELECT COUNT(*) FROM outbox WHERE ts IS NULL") == [(1,)])
    first.kill()
    await first.wait()
    assert first.returncode == -signal.SIGKILL
    assert b'event="Slack unreachable at start-up: serving anyway, checking again in the background"' in started
    assert b"error=connection_error" in started

    second = await serve_process(config, env(slack), "--port", str(free_port()))
    try:
        assert second.stderr is not None
        await read_until(second.stderr, b"Slack unreachable at start-up")
        await read_until(second.stderr, b"listening on http://127.0.0.1")
        await asyncio.sleep(1.0)  # the restarted deliverer meets the outage too
        await slack.come_up()
        back = await read_until(second.stderr, b'event="Slack accepted the bot token"', timeout=60)
        await until(lambda: rows(db, "SELECT COUNT(*) FROM outbox WHERE ts IS NULL") == [(0,)], timeout=60)
        await asyncio.sleep(1.0)
    finally:
        second.send_signal(signal.SIGTERM)
        _, rest = await asyncio.wait_for(second.communicate(), 30)
    assert second.returncode == 0, rest.decode()
    assert b"unreachable_for_s=" in back and b"team=Fake" in back
    assert rows(db, "SELECT trigger, status FROM runs") == [("catch-up", "finished")]
    [summary] = slack.posts(GENERAL)
    assert [c.params["text"] for c in slack.calls_to("chat.postMessage") if c.status == 200] == [summary["text"]]
    assert len(slack.calls_to("auth.test")) == 1


async def test_socket_mode_app_token_refused_at_start_up_is_exit_2(tmp_path: Path, slack: FakeSlack) -> None:
    """Slack answers and refuses SLACK_APP_TOKEN: exit 2 with one line naming it, as before; the
    token itself is never printed."""
    wrong = "xapp-wrong-app-token-000"
    proc = await serve_process(write_config(tmp_path, []), {**env(slack), "SLACK_APP_TOKEN": wrong}, "--socket-mode")
    out, err = await asyncio.wait_for(proc.communicate(), 30)
    assert proc.returncode == 2, err.decode()
    assert "SLACK_APP_TOKEN was refused by Slack (apps.connections.open: invalid_auth)" in err.decode()
    assert wrong not in err.decode() + out.decode() and "Traceback" not in err.decode()
