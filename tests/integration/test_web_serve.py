"""`backupbot serve` with web.base_url, as a real process: no BACKUPBOT_WEB_SECRET is a clear exit 2
at start-up; in Socket Mode the public listener opens for the browser pages (and the bare /healthz)
only."""

from __future__ import annotations

import asyncio
import signal
from pathlib import Path

import aiohttp
import yaml

from tests.integration.helpers import free_port, read_until, serve_process
from tests.integration.slack_fake import APP_TOKEN, BOT_TOKEN, FakeSlack

SECRET = "a-web-secret-of-more-than-32-characters-000"


def write_config(tmp_path: Path, port: int) -> Path:
    path = tmp_path / "backupbot.yml"
    path.write_text(yaml.safe_dump({
        "storage": {"path": "backups.db"},
        "web": {"base_url": f"http://127.0.0.1:{port}"},
        "defaults": {"username": "backup", "password": "${ROUTER_PASSWORD}", "timeout": 3},
        "sites": {"lab": {"devices": [{"name": "never-contacted", "host": "127.0.0.1", "port": 1}]}},
    }))
    return path


async def test_the_pages_need_their_secret_to_start(tmp_path: Path, slack: FakeSlack) -> None:
    config = write_config(tmp_path, free_port())
    env = {"SLACK_BOT_TOKEN": BOT_TOKEN, "SLACK_SIGNING_SECRET": "s", "SLACK_API_URL": slack.api_url}
    for extra, expected in (({}, "BACKUPBOT_WEB_SECRET is not set"),
                            ({"BACKUPBOT_WEB_SECRET": "short"}, "BACKUPBOT_WEB_SECRET is too short (5 characters)")):
        proc = await serve_process(config, {**env, **extra})
        _, err = await asyncio.wait_for(proc.communicate(), 30)
        assert proc.returncode == 2, err.decode()
        assert f"backupbot serve: {expected}" in err.decode() and "Traceback" not in err.decode()


async def test_socket_mode_opens_the_public_listener_for_the_pages_only(tmp_path: Path, slack: FakeSlack) -> None:
    port, admin = free_port(), free_port()
    proc = await serve_process(write_config(tmp_path, port), {
        "SLACK_BOT_TOKEN": BOT_TOKEN, "SLACK_APP_TOKEN": APP_TOKEN, "SLACK_API_URL": slack.api_url,
        "BACKUPBOT_WEB_SECRET": SECRET}, "--socket-mode", "--port", str(port), "--admin-port", str(admin))
    try:
        assert proc.stderr is not None
        seen = await read_until(proc.stderr, f"listening on http://127.0.0.1:{admin}".encode())
        assert f"listening on http://127.0.0.1:{port} (public: GET /ui/ (browser pages), GET /healthz)".encode() in seen
        async with aiohttp.ClientSession() as session:
            async with session.get(f"http://127.0.0.1:{port}/ui/site/lab") as resp:
                assert resp.status == 403 and "/backup lab" in await resp.text()  # no session yet
            async with session.get(f"http://127.0.0.1:{port}/healthz") as resp:
                assert resp.status == 200
            async with session.post(f"http://127.0.0.1:{port}/slack/events", data="x") as resp:
                assert resp.status in (404, 405)  # Slack's requests come over the socket, not here
    finally:
        proc.send_signal(signal.SIGTERM)
        _, err = await asyncio.wait_for(proc.communicate(), 30)
    assert proc.returncode == 0, err.decode()
    assert SECRET not in err.decode()
