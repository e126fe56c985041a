"""The served application: start-up checks, /healthz, signature verification, graceful shutdown."""

from __future__ import annotations

import time
from pathlib import Path

from bot.simulator import SimDevice, Simulator
from tests.integration.conftest import add_routers, config_for, run_bot, sign
from tests.integration.slack_fake import FakeSlack


async def test_healthz_reports_database(tmp_path: Path, simulator: Simulator, slack: FakeSlack) -> None:
    """GET /healthz answers 200 JSON with the database check once the app is up."""
    (r1,) = await add_routers(simulator, SimDevice("r1"))
    async with run_bot(config_for(tmp_path, {"lab": [r1]}), slack) as bot:
        status, body = await bot.get("/healthz")
        assert status == 200
        assert body["ok"] is True and body["database"]["ok"] is True


async def test_bad_signature_is_401_and_nothing_runs(tmp_path: Path, simulator: Simulator, slack: FakeSlack) -> None:
    """A wrong signature, a missing one, or a timestamp 6 minutes old gets 401: no Web API call, no backup."""
    (r1,) = await add_routers(simulator, SimDevice("r1"))
    async with run_bot(config_for(tmp_path, {"lab": [r1]}), slack) as bot:
        calls_before = len(slack.calls)
        body = bot.command_body("lab now")
        for headers in (sign(body, secret="not-the-secret"), {},
                        sign(body, timestamp=int(time.time()) - 360)):
            reply = await bot.post(body, headers)
            assert reply.status == 401, headers
        assert slack.calls[calls_before:] == []
    assert r1.connections == 0
