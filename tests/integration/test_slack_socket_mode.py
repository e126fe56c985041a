"""--socket-mode: the same listeners over a WebSocket from the fake Slack, and the watchdog that
replaces a wedged connection."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from bot.serve.server import BACKEND, SOCKET, Options
from bot.slack.socket_mode import Watchdog
from bot.ssh.simulator import SimDevice, Simulator
from tests.integration.helpers import ALICE, GENERAL, add_routers, config_for, fast_collector, run_bot
from tests.integration.slack_fake import FakeSlack


def command(slack: FakeSlack, text: str, key: str) -> dict[str, str]:
    return {"token": "legacy", "team_id": "T0FAKETEAM", "channel_id": GENERAL, "user_id": ALICE,
            "user_name": "alice", "command": "/backup", "text": text, "api_app_id": "A0FAKE",
            "response_url": slack.response_url(key), "trigger_id": "1.trigger"}


async def wait_until(predicate: object, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():  # type: ignore[operator]
        assert time.monotonic() < deadline, "condition not reached"
        await asyncio.sleep(0.05)


async def test_socket_mode_serves_the_same_commands(tmp_path: Path, simulator: Simulator, slack: FakeSlack) -> None:
    """Over Socket Mode a command is acked on the socket (usage for help) and answered through
    response_url (sites); /slack/events is not served and /healthz reports the socket."""
    (r1,) = await add_routers(simulator, SimDevice("r1"))
    settings = config_for(tmp_path, {"lab": [r1]})
    async with run_bot(settings, slack, socket_mode=True) as bot:
        await bot.app[BACKEND].service.run(settings.devices(), "test")
        help_ack = await slack.wait_ack(await slack.send_envelope("slash_commands", command(slack, "help", "h")))
        assert "/backup sites" in str(help_ack)
        await slack.wait_ack(await slack.send_envelope("slash_commands", command(slack, "sites", "s")))
        (sites,) = await slack.wait_for("response_url", key="s")
        assert "*lab*" in str(sites.params["blocks"])
        status, health = await bot.admin_get("/healthz/ready")
        assert status == 200 and health["socket_mode"]["connected"] is True
        assert (await bot.post("text=help")).status == 404


async def test_watchdog_rebuilds_a_wedged_socket(tmp_path: Path, simulator: Simulator, slack: FakeSlack) -> None:
    """When the sdk's own monitor is dead and pongs stop, the watchdog sees the stale ping-pong,
    closes the handler and connects a new one (a fresh apps.connections.open), which then works."""
    (r1,) = await add_routers(simulator, SimDevice("r1"))
    options = Options(collector=fast_collector(), socket_mode=Watchdog(ping_interval=0.2, interval=0.2, stale_after=1.0))
    async with run_bot(config_for(tmp_path, {"lab": [r1]}), slack, socket_mode=True, options=options) as bot:
        runner = bot.app[SOCKET]
        opened = len(slack.calls_to("apps.connections.open"))
        # Wedge it: no more pongs from "Slack", and the sdk's reconnect monitor gone.
        slack.answer_pings = False
        assert runner.handler is not None
        monitor = runner.handler.client.current_session_monitor
        assert monitor is not None
        monitor.cancel()
        await wait_until(lambda: runner.rebuilds >= 1)
        assert len(slack.calls_to("apps.connections.open")) > opened
        slack.answer_pings = True
        await wait_until(lambda: len(slack.sockets) >= 1 and runner.handler is not None)
        ack = await slack.wait_ack(await slack.send_envelope("slash_commands", command(slack, "help", "h")))
        assert "/backup sites" in str(ack)
