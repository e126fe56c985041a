"""Backups never depend on Slack being up: `serve` started while Slack's Web API refuses connections
(or answers 5xx / 429, or does not answer in time) starts anyway, runs the schedule, queues what
the channel is told and delivers it, once, when Slack is back; Socket Mode connects then. A token
Slack refuses is still a start-up error (tests/integration/test_slack_server.py), and one refused
after the outage is shown in readiness without stopping backups. The bot's real aiohttp app, real
SQLite, simulated routers over SSH, the fake Slack taken down and brought back on its port.
(Killing a real `serve` during an outage: tests/integration/test_serve_process.py.)"""

from __future__ import annotations

import asyncio
import json
import logging
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from bot.app import open_backend
from bot.core.clock import utcnow
from bot.slack.deliver import Tuning
from bot.core.models import Settings
from bot.serve.server import BACKEND, SLACK_LINK, SOCKET, Options
from bot.ssh.simulator import SimDevice, Simulator
from bot.slack.link import Recheck
from bot.slack.socket_mode import Watchdog
from storage.store import Store
from tests.integration.helpers import ALICE, GENERAL, SlackBot, add_routers, config_for, fast_collector, run_bot
from tests.integration.slack_fake import FakeSlack
from tests.helpers import until

FAST_RECHECK = Recheck(first=0.1, cap=0.3, timeout=1.0)


def options(**kw: Any) -> Options:
    return Options(collector=fast_collector(), drain_timeout=5.0, slack_recheck=FAST_RECHECK,
                   delivery=Tuning(spacing=0.0, backoff=0.05, max_backoff=0.3, poll=0.2), **kw)


async def missed_yesterday(tmp_path: Path, simulator: Simulator) -> Settings:
    """Site "lab" (one router) scheduled daily at 02:00 UTC, last scheduled two days ago: `serve`
    catches the missed slot up at once, through the scheduler, like any scheduled run."""
    (r1,) = await add_routers(simulator, SimDevice("r1"))
    settings = config_for(tmp_path, {"lab": [r1]},
                          top={"schedule": {"times": ["02:00"], "timezone": "UTC", "jitter": 0}})
    async with open_backend(settings) as backend:
        await backend.store.record_scheduled({"lab": utcnow() - timedelta(days=2)})
    return settings


async def ready(bot: SlackBot) -> tuple[int, dict[str, Any]]:
    return await bot.admin_get("/healthz/ready")


def accepted_posts(slack: FakeSlack) -> list[Any]:
    return [c for c in slack.calls_to("chat.postMessage") if c.status == 200]


async def test_serve_starts_while_slack_is_unreachable_and_delivers_the_scheduled_summary_once_back(
        tmp_path: Path, simulator: Simulator, slack: FakeSlack, caplog: pytest.LogCaptureFixture) -> None:
    """Slack refuses connections: serve starts anyway (liveness and the public /healthz ok;
    readiness shows Slack unreachable since start-up, still within its grace), answers a command
    (Bolt is authorized without Slack), and the scheduled catch-up run happens and its summary
    waits in the outbox. Slack comes back: the token check succeeds (logged once), the summary is
    posted exactly once and the outbox is empty."""
    settings = await missed_yesterday(tmp_path, simulator)
    await slack.go_down()
    caplog.set_level(logging.INFO)
    async with run_bot(settings, slack, options=options()) as bot:
        store: Store = bot.app[BACKEND].store
        await until(lambda: _finished_runs(store, 1))
        assert await store.outbox_depth() >= 1

        status, body = await ready(bot)
        assert status == 200, body
        assert body["slack"]["state"] == "unreachable" and body["slack"]["error"] == "connection_error"
        assert body["slack"]["ok"] is True and body["slack"]["unreachable_for_s"] >= 0 and body["slack"]["since"]
        assert body["slack"]["checks"] >= 1 and "team" not in body["slack"]
        assert await bot.admin_get("/healthz/live") == (200, {"ok": True, "deliverer": True, "scheduler": True})
        assert await bot.get_text("/healthz") == (200, "ok")
        assert bot.app[SLACK_LINK].identity is None

        reply = await bot.command("help", user=ALICE)  # Slack reaches us even if we cannot reach it
        assert reply.status == 200 and "/backup sites" in reply.text

        await until(lambda: bot.app[SLACK_LINK].checks >= 3)  # asked again, in the background
        assert accepted_posts(slack) == []
        await slack.come_up()
        await until(lambda: len(slack.posts(GENERAL)) == 1)
        await until(lambda: _drained(store))
        await asyncio.sleep(0.5)  # several delivery and check intervals: nothing more may come
        status, body = await ready(bot)
        assert status == 200 and body["slack"]["state"] == "accepted"
        assert (body["slack"]["team"], body["slack"]["bot_user_id"]) == ("Fake", "U0BACKUPBOT")
        assert bot.app[SLACK_LINK].identity is not None
        runs = [r for r in [await store.run(i) for i in (1, 2)] if r is not None]

    assert [(r.trigger, r.status) for r in runs] == [("catch-up", "finished")]
    [summary] = slack.posts(GENERAL)
    assert len(accepted_posts(slack)) == 1 and "lab" in json.dumps(summary)
    assert len(slack.calls_to("auth.test")) == 1  # checks stop once accepted; Bolt never calls it
    events = [r.getMessage() for r in caplog.records if r.name == "bot.slack.link"]
    assert events[0].startswith("Slack unreachable at start-up")
    assert events.count("Slack accepted the bot token") == 1
    [accepted] = [r for r in caplog.records if r.getMessage() == "Slack accepted the bot token"]
    assert accepted.fields["unreachable_for_s"] >= 0 and accepted.fields["checks"] >= 3  # type: ignore[attr-defined]


async def _finished_runs(store: Store, n: int) -> bool:
    runs = [await store.run(i) for i in range(1, n + 1)]
    return all(r is not None and r.status == "finished" for r in runs)


async def _drained(store: Store) -> bool:
    return await store.outbox_depth() == 0


@pytest.mark.parametrize(("fault", "error"), [(503, "internal_error"), (429, "ratelimited"), ("hold", "timeout")])
async def test_5xx_429_and_no_answer_at_start_up_are_unreachable_not_refused(
        tmp_path: Path, slack: FakeSlack, fault: int | str, error: str) -> None:
    """auth.test answered 503 or 429, or not within the check's timeout: serve starts and the next
    check gets through."""
    settings = config_for(tmp_path, {"lab": []}, site_options={"lab": {"devices": [
        {"name": "never-contacted", "host": "127.0.0.1", "port": 1}]}})
    if fault == "hold":
        slack.hold("auth.test")
    else:
        slack.fail("auth.test", int(fault), retry_after=0 if fault == 429 else None)
    async with run_bot(settings, slack, options=options()) as bot:
        link = bot.app[SLACK_LINK]
        assert (link.state, link.error) == ("unreachable", error)
        slack.release()
        await until(lambda: link.state == "accepted")
        assert link.identity is not None and link.identity.user_id == "U0BACKUPBOT"


async def test_a_token_refused_once_slack_is_back_is_shown_and_backups_go_on(
        tmp_path: Path, simulator: Simulator, slack: FakeSlack) -> None:
    """Unreachable at start-up, then Slack answers invalid_auth: readiness turns 503 naming the
    refusal, liveness stays ok, no more checks are made, and a backup still runs and is stored."""
    (r1,) = await add_routers(simulator, SimDevice("r1"))
    settings = config_for(tmp_path, {"lab": [r1]})
    await slack.go_down()
    async with run_bot(settings, slack, options=options(), SLACK_BOT_TOKEN="xoxb-revoked-000") as bot:
        link = bot.app[SLACK_LINK]
        await slack.come_up()
        await until(lambda: link.state == "refused")
        status, body = await ready(bot)
        assert status == 503 and body["slack"]["ok"] is False
        assert body["slack"]["error"] == "SLACK_BOT_TOKEN was refused by Slack (auth.test: invalid_auth)"
        assert (await bot.admin_get("/healthz/live"))[0] == 200
        checks = link.checks
        summary = await bot.app[BACKEND].service.run(settings.devices(), "cli")
        assert [r.status.value for r in summary.results] == ["new"]
        await asyncio.sleep(0.5)
        assert link.checks == checks


async def test_socket_mode_starts_without_slack_and_connects_when_it_is_back(
        tmp_path: Path, simulator: Simulator, slack: FakeSlack) -> None:
    """Socket Mode with Slack unreachable: serve starts without a socket (readiness says so and why),
    and the watchdog connects when Slack is back; a command then arrives over the socket."""
    (r1,) = await add_routers(simulator, SimDevice("r1"))
    await slack.go_down()
    opts = options(socket_mode=Watchdog(ping_interval=0.2, interval=0.2, stale_after=5.0))
    async with run_bot(config_for(tmp_path, {"lab": [r1]}), slack, socket_mode=True, options=opts) as bot:
        runner = bot.app[SOCKET]
        assert runner.handler is None
        status, body = await ready(bot)
        assert status == 503 and body["socket_mode"]["connected"] is False
        assert body["socket_mode"]["error"] == "connection_error" and body["slack"]["state"] == "unreachable"
        assert (await bot.admin_get("/healthz/live"))[1]["socket_watchdog"] is True
        await asyncio.sleep(0.5)  # a few watchdog ticks against a Slack still down
        await slack.come_up()
        await until(lambda: len(slack.sockets) == 1)
        await until(lambda: _ready(bot))
        envelope = await slack.send_envelope("slash_commands", {
            "token": "legacy", "team_id": "T0FAKETEAM", "channel_id": GENERAL, "user_id": ALICE, "command": "/backup",
            "text": "help", "api_app_id": "A0FAKE", "response_url": slack.response_url("h"), "trigger_id": "1"})
        assert "/backup sites" in str(await slack.wait_ack(envelope))
        assert runner.rebuilds == 0 and bot.app[SLACK_LINK].state == "accepted"


async def _ready(bot: SlackBot) -> bool:
    return (await ready(bot))[0] == 200


async def test_socket_mode_app_token_refused_once_slack_is_back_is_shown_and_not_retried(
        tmp_path: Path, slack: FakeSlack) -> None:
    """Unreachable at start-up, then apps.connections.open answers invalid_auth: readiness names the
    refusal, the watchdog stops asking, liveness stays ok."""
    settings = config_for(tmp_path, {"lab": []}, site_options={"lab": {"devices": [
        {"name": "never-contacted", "host": "127.0.0.1", "port": 1}]}})
    await slack.go_down()
    opts = options(socket_mode=Watchdog(ping_interval=0.2, interval=0.1, stale_after=5.0))
    async with run_bot(settings, slack, socket_mode=True, options=opts, SLACK_APP_TOKEN="xapp-revoked-000") as bot:
        runner = bot.app[SOCKET]
        await slack.come_up()
        await until(lambda: runner.refused)
        status, body = await ready(bot)
        assert status == 503 and body["socket_mode"]["connected"] is False
        assert body["socket_mode"]["error"] == "SLACK_APP_TOKEN was refused by Slack (apps.connections.open: invalid_auth)"
        asked = len(slack.calls_to("apps.connections.open"))
        await asyncio.sleep(0.5)
        assert len(slack.calls_to("apps.connections.open")) == asked == 1
        assert (await bot.admin_get("/healthz/live"))[0] == 200
