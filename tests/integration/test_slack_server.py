"""The served application: start-up checks (refused tokens, ports taken), the public and admin
listeners, signature verification, graceful shutdown."""

from __future__ import annotations

import asyncio
import json
import signal
import socket
import sqlite3
import time
import urllib.parse
from pathlib import Path

import aiohttp
import pytest
import yaml

from bot.serve.server import BACKEND, Options
from bot.ssh.simulator import SimDevice, Simulator
from tests.integration.helpers import (
    SIGNING_SECRET,
    add_routers,
    answer,
    config_for,
    fast_collector,
    free_port,
    read_until,
    run_bot,
    serve_process,
    settle,
    sign,
)
from tests.integration.slack_fake import APP_TOKEN, BOT_TOKEN, FakeSlack


async def test_healthz_reports_database(tmp_path: Path, simulator: Simulator, slack: FakeSlack) -> None:
    """GET /healthz answers 200 JSON with the database check once the app is up."""
    (r1,) = await add_routers(simulator, SimDevice("r1"))
    async with run_bot(config_for(tmp_path, {"lab": [r1]}), slack) as bot:
        status, body = await bot.admin_get("/healthz/ready")
        assert status == 200
        assert body["ok"] is True and body["database"]["ok"] is True


async def test_healthz_is_503_when_the_database_is_unreachable(tmp_path: Path, simulator: Simulator,
                                                               slack: FakeSlack) -> None:
    """/healthz fails (503, database.ok false) when the database cannot be queried."""
    (r1,) = await add_routers(simulator, SimDevice("r1"))
    async with run_bot(config_for(tmp_path, {"lab": [r1]}), slack) as bot:
        await bot.app[BACKEND].store.close()
        status, body = await bot.admin_get("/healthz/ready")
        assert status == 503
        assert body["ok"] is False and body["database"]["ok"] is False


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


# -- start-up ---------------------------------------------------------------------------------------
def write_config(tmp_path: Path, routers: list[SimDevice]) -> Path:
    path = tmp_path / "backupbot.yml"
    path.write_text(yaml.safe_dump({
        "storage": {"path": "backups.db"},
        "defaults": {"username": "backup", "password": "${ROUTER_PASSWORD}", "timeout": 3},
        "sites": {"lab": {"devices": [{"name": d.name, "host": d.host, "port": d.port} for d in routers]
                          or [{"name": "never-contacted", "host": "127.0.0.1", "port": 1}]}},
    }))
    return path


async def test_missing_credentials_stop_start_up_naming_the_variable(tmp_path: Path) -> None:
    """No signing secret (HTTP) or no app token (Socket Mode): exit 2 with one line naming the variable."""
    config = write_config(tmp_path, [])
    cases = [({"SLACK_BOT_TOKEN": BOT_TOKEN}, (), "SLACK_SIGNING_SECRET"),
             ({"SLACK_SIGNING_SECRET": "s"}, (), "SLACK_BOT_TOKEN"),
             ({"SLACK_BOT_TOKEN": BOT_TOKEN, "SLACK_SIGNING_SECRET": "s"}, ("--socket-mode",), "SLACK_APP_TOKEN")]
    for env, args, variable in cases:
        proc = await serve_process(config, env, *args)
        out, err = await asyncio.wait_for(proc.communicate(), 30)
        assert proc.returncode == 2, err
        assert variable in err.decode() and "Traceback" not in err.decode()
        assert BOT_TOKEN not in err.decode() + out.decode()


async def test_refused_token_stops_start_up(tmp_path: Path, slack: FakeSlack) -> None:
    """auth.test runs at start-up: a token Slack refuses is exit 2 with a clear line, token not printed."""
    wrong = "xoxb-wrong-token-000"
    proc = await serve_process(write_config(tmp_path, []), {
        "SLACK_BOT_TOKEN": wrong, "SLACK_SIGNING_SECRET": SIGNING_SECRET, "SLACK_API_URL": slack.api_url})
    out, err = await asyncio.wait_for(proc.communicate(), 30)
    assert proc.returncode == 2
    assert "SLACK_BOT_TOKEN was refused by Slack (auth.test: invalid_auth)" in err.decode()
    assert wrong not in err.decode() + out.decode() and "Traceback" not in err.decode()


async def test_serve_answers_until_sigterm(tmp_path: Path, simulator: Simulator, slack: FakeSlack) -> None:
    """`backupbot serve` as a process: the public /healthz, the admin readiness and a signed command
    work; SIGTERM stops it with 0."""
    (r1,) = await add_routers(simulator, SimDevice("r1"))
    port, admin = free_port(), free_port()
    proc = await serve_process(write_config(tmp_path, [r1]), {
        "SLACK_BOT_TOKEN": BOT_TOKEN, "SLACK_SIGNING_SECRET": SIGNING_SECRET, "SLACK_API_URL": slack.api_url},
        "--port", str(port), "--admin-port", str(admin))
    try:
        assert proc.stderr is not None
        await read_until(proc.stderr, f"listening on http://127.0.0.1:{admin}".encode())
        async with aiohttp.ClientSession() as session:
            async with session.get(f"http://127.0.0.1:{port}/healthz") as resp:
                assert resp.status == 200 and await resp.text() == "ok"
            async with session.get(f"http://127.0.0.1:{admin}/healthz/ready") as resp:
                assert resp.status == 200 and (await resp.json())["database"]["ok"] is True
            body = "command=%2Fbackup&text=help&user_id=U0ALICE001&channel_id=C0GENERAL1&team_id=T0FAKETEAM"
            async with session.post(f"http://127.0.0.1:{port}/slack/events", data=body,
                                    headers={**sign(body), "Content-Type": "application/x-www-form-urlencoded"}) as resp:
                assert resp.status == 200 and "/backup sites" in await resp.text()
    finally:
        proc.send_signal(signal.SIGTERM)
        out, err = await asyncio.wait_for(proc.communicate(), 30)
    assert proc.returncode == 0, err
    assert BOT_TOKEN not in err.decode() + out.decode()


# -- Web API trouble ---------------------------------------------------------------------------------
async def test_rate_limited_upload_waits_retry_after_then_succeeds(tmp_path: Path, simulator: Simulator,
                                                                   slack: FakeSlack) -> None:
    """files.completeUploadExternal answers 429 Retry-After: 1 once: the client waits at least that long,
    retries, and the snippet arrives; the user sees no error."""
    (r1,) = await add_routers(simulator, SimDevice("r1"))
    settings = config_for(tmp_path, {"lab": [r1]})
    async with run_bot(settings, slack) as bot:
        summary = await bot.app[BACKEND].service.run(settings.devices(), "test")
        slack.fail("files.completeUploadExternal", 429, retry_after=1)
        reply = await bot.command(f"show {summary.results[0].version.id}")
        assert reply.elapsed < 1.0
        await settle(bot)
    first, second = slack.calls_to("files.completeUploadExternal")
    assert (first.status, second.status) == (429, 200)
    assert second.at - first.at >= 1.0
    assert len(slack.completed_uploads()) == 1
    assert slack.responses() == []


async def test_failure_after_the_ack_is_told_to_the_user_and_logged(tmp_path: Path, simulator: Simulator,
                                                                    slack: FakeSlack,
                                                                    caplog: pytest.LogCaptureFixture) -> None:
    """An error inside the tracked task (Slack refuses the upload) is logged with its traceback
    and the requester gets a plain sentence through response_url: never silence."""
    (r1,) = await add_routers(simulator, SimDevice("r1"))
    settings = config_for(tmp_path, {"lab": [r1]})
    async with run_bot(settings, slack) as bot:
        summary = await bot.app[BACKEND].service.run(settings.devices(), "test")
        slack.fail("files.getUploadURLExternal", 200, error="fatal_error")
        reply = await bot.command(f"show {summary.results[0].version.id}")
        msg = await answer(slack, reply)
    assert "something went wrong on my side" in msg["text"] and "SlackApiError" in msg["text"]
    assert "Traceback" not in json.dumps(msg)
    assert any(r.name == "bot.slack.tasks" and r.exc_info for r in caplog.records)


async def test_response_url_failure_falls_back_to_dm(tmp_path: Path, simulator: Simulator, slack: FakeSlack) -> None:
    """When the response_url is gone (404, e.g. expired after 30 minutes), the answer goes to the DM."""
    (r1,) = await add_routers(simulator, SimDevice("r1"))
    async with run_bot(config_for(tmp_path, {"lab": [r1]}), slack) as bot:
        slack.fail("response_url", 404)
        await bot.command("sites")
        (post,) = await slack.wait_for("chat.postMessage")
    assert post.params["channel"] == "D0ALICE001" and "lab" in json.dumps(post.params)


# -- shutdown ----------------------------------------------------------------------------------------
async def test_shutdown_waits_for_running_backup_and_delivers_it(tmp_path: Path, simulator: Simulator,
                                                                 slack: FakeSlack) -> None:
    """Stopping the app while a backup runs waits for it (drain), so its summary is still delivered
    and the run is recorded as finished before the database closes."""
    (r1,) = await add_routers(simulator, SimDevice("r1", delay=0.5))
    settings = config_for(tmp_path, {"lab": [r1]})
    async with run_bot(settings, slack) as bot:
        reply = await bot.command("lab now")
        assert "Backing up lab" in reply.text
        assert slack.responses(reply.response_key) == []
    # run_bot's exit ran the app's cleanup: it returned only after the task finished
    (summary,) = slack.responses(reply.response_key)
    assert "Backup of lab" in summary["text"]
    with sqlite3.connect(tmp_path / "backups.db") as db:
        assert db.execute("SELECT status FROM runs ORDER BY id DESC LIMIT 1").fetchone()[0] == "finished"


async def test_shutdown_cancels_tasks_past_the_drain_timeout_and_says_so(tmp_path: Path, simulator: Simulator,
                                                                        slack: FakeSlack) -> None:
    """A task still running after drain_timeout is cancelled (never left dangling); the requester
    is told the request was stopped."""
    (r1,) = await add_routers(simulator, SimDevice("r1", behaviour="hang"))
    settings = config_for(tmp_path, {"lab": [r1]}, timeout=30)
    t0 = time.monotonic()
    async with run_bot(settings, slack, options=Options(collector=fast_collector(), drain_timeout=0.3)) as bot:
        reply = await bot.command("lab now")
        await asyncio.sleep(0.2)  # let the backup reach the hanging router
    assert time.monotonic() - t0 < 5
    (note,) = slack.responses(reply.response_key)
    assert "restarting" in note["text"]


async def test_unexpected_listener_error_gets_a_sentence_not_a_trace(tmp_path: Path, simulator: Simulator,
                                                                    slack: FakeSlack,
                                                                    caplog: pytest.LogCaptureFixture) -> None:
    """A listener that blows up (a payload missing a field Slack always sends) still answers 200
    with a plain sentence (command) or through response_url (button); the traceback goes to the log."""
    (r1,) = await add_routers(simulator, SimDevice("r1"))
    async with run_bot(config_for(tmp_path, {"lab": [r1]}), slack) as bot:
        body = bot.command_body("sites").replace("user_id=U0ALICE001&", "")
        reply = await bot.post(body)
        assert reply.status == 200
        assert "something went wrong on my side" in reply.json["text"] and "Traceback" not in reply.text

        payload = bot.action_payload("view_version", "1", key="broken")
        del payload["user"]
        reply = await bot.post("payload=" + urllib.parse.quote(json.dumps(payload)))
        assert reply.status == 200
        (msg,) = await slack.wait_for("response_url", key="broken")
        assert "something went wrong on my side" in msg.params["text"]
    assert any(r.name == "handlers" and r.exc_info for r in caplog.records)


async def test_a_port_that_cannot_be_listened_on_is_exit_2_naming_the_option(tmp_path: Path, slack: FakeSlack) -> None:
    """The admin port (or the public one) already taken: exit 2 with one line naming the address
    and the option to change, no traceback."""
    env = {"SLACK_BOT_TOKEN": BOT_TOKEN, "SLACK_SIGNING_SECRET": SIGNING_SECRET, "SLACK_API_URL": slack.api_url}
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        busy = taken.getsockname()[1]
        for args, option in ((("--admin-port", str(busy)), "--admin-host/--admin-port"),
                             (("--port", str(busy)), "--host/--port")):
            proc = await serve_process(write_config(tmp_path, []), env, *args)
            _, err = await asyncio.wait_for(proc.communicate(), 30)
            assert proc.returncode == 2, err.decode()
            assert f"backupbot serve: cannot listen on 127.0.0.1:{busy} (" in err.decode()
            assert f"choose another with {option}" in err.decode() and "Traceback" not in err.decode()


async def test_socket_mode_opens_no_public_port_only_the_admin_one(tmp_path: Path, slack: FakeSlack) -> None:
    """`serve --socket-mode` as a process: nothing listens on --port (Slack is reached over the
    WebSocket); the admin listener answers liveness and readiness."""
    port, admin = free_port(), free_port()
    proc = await serve_process(write_config(tmp_path, []), {
        "SLACK_BOT_TOKEN": BOT_TOKEN, "SLACK_APP_TOKEN": APP_TOKEN, "SLACK_API_URL": slack.api_url},
        "--socket-mode", "--port", str(port), "--admin-port", str(admin))
    try:
        assert proc.stderr is not None
        seen = await read_until(proc.stderr, f"listening on http://127.0.0.1:{admin}".encode())
        assert b"Socket Mode: no public listener" in seen and f":{port}".encode() not in seen
        async with aiohttp.ClientSession() as session:
            async with session.get(f"http://127.0.0.1:{admin}/healthz/ready") as resp:
                assert resp.status == 200 and (await resp.json())["socket_mode"]["connected"] is True
            with pytest.raises(aiohttp.ClientConnectorError):
                await session.get(f"http://127.0.0.1:{port}/healthz")
    finally:
        proc.send_signal(signal.SIGTERM)
        _, err = await asyncio.wait_for(proc.communicate(), 30)
    assert proc.returncode == 0, err.decode()
