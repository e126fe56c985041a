"""What the end-to-end tests share: the bot's real aiohttp server and requests signed as Slack signs them.

`run_bot(settings, slack, ...)` starts the real
application (bot.serve.server.create_app) on 127.0.0.1:<free port>, and its admin listener on another,
with SLACK_API_URL pointing at the fake, and returns a `SlackBot` that sends requests signed exactly
as Slack signs them (and reads the admin listener: `admin_get`, `admin_text`).
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import socket
import sys
import time
import urllib.parse
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web

from bot.ssh.collector import Collector
from bot.config.load import parse_settings
from bot.core.models import Settings
from bot.serve.server import TASKS, Options, create_app
from bot.serve.web import build_admin_app
from bot.ssh.simulator import SimDevice
from bot.slack.client import Credentials
from tests.integration.slack_fake import APP_TOKEN, BOT_TOKEN, FakeSlack

SIGNING_SECRET = "fake-signing-secret-0123456789abcdef"
WEB_SECRET = b"fake-web-secret-0123456789abcdef-0123456789"  # BACKUPBOT_WEB_SECRET, for web.base_url
ROUTER_PASSWORD = "sim-Pa55-word"
ADMIN = "U0ADMIN001"
ALICE = "U0ALICE001"  # an ordinary member
GENERAL = "C0GENERAL1"


def sign(body: str, timestamp: int | None = None, secret: str = SIGNING_SECRET) -> dict[str, str]:
    """The two headers Slack adds: v0=HMAC-SHA256(secret, "v0:{ts}:{body}") and the timestamp."""
    ts = str(int(time.time()) if timestamp is None else timestamp)
    digest = hmac.new(secret.encode(), f"v0:{ts}:{body}".encode(), hashlib.sha256).hexdigest()
    return {"X-Slack-Signature": f"v0={digest}", "X-Slack-Request-Timestamp": ts}


def credentials(slack: FakeSlack, *, socket_mode: bool = False, **env: str) -> Credentials:
    base = {"SLACK_BOT_TOKEN": BOT_TOKEN, "SLACK_SIGNING_SECRET": SIGNING_SECRET, "SLACK_APP_TOKEN": APP_TOKEN,
            "SLACK_API_URL": slack.api_url}
    base.update(env)
    return Credentials.from_env(base, socket_mode=socket_mode)


def config_for(tmp_path: Path, sites: Mapping[str, Sequence[SimDevice]], *,
               site_options: Mapping[str, Mapping[str, Any]] | None = None,
               admins: Sequence[str] = (ADMIN,), timeout: float = 5.0,
               top: Mapping[str, Any] | None = None) -> Settings:
    """A real config (parsed by bot.config) with one site per key, each device a simulated router;
    `top` replaces top-level sections (e.g. "schedule", or "slack" without a channel)."""
    data = {
        "storage": {"path": "backups.db"},
        "concurrency": 20,
        "slack": {"channel": GENERAL, "admins": list(admins)},
        "defaults": {"username": "backup", "password": "${ROUTER_PASSWORD}", "timeout": timeout},
        "sites": {name: {"devices": [{"name": d.name, "host": d.host, "port": d.port} for d in devices],
                         **(site_options or {}).get(name, {})}
                  for name, devices in sites.items()},
        **(top or {}),
    }
    return parse_settings(data, {"ROUTER_PASSWORD": ROUTER_PASSWORD}, tmp_path)


def fast_collector() -> Collector:
    return Collector(connect_timeout=2.0, retries=1, backoff=0.05, idle_timeout=3.0)


@dataclass
class Reply:
    """The bot's HTTP answer to one request, and how long it took to arrive."""

    status: int
    text: str
    elapsed: float
    response_key: str | None = None

    @property
    def json(self) -> Any:
        return json.loads(self.text) if self.text else None


@dataclass
class SlackBot:
    """Talks to the running bot the way Slack does."""

    url: str
    slack: FakeSlack
    app: web.Application
    session: aiohttp.ClientSession
    admin_url: str = ""
    secret: str = SIGNING_SECRET
    _n: int = field(default=0)

    async def post(self, body: str, headers: Mapping[str, str] | None = None,
                   path: str = "/slack/events") -> Reply:
        hdrs = {"Content-Type": "application/x-www-form-urlencoded", **(headers if headers is not None else sign(body))}
        t0 = time.monotonic()
        async with self.session.post(self.url + path, data=body.encode(), headers=hdrs) as resp:
            text = await resp.text()
        return Reply(resp.status, text, time.monotonic() - t0)

    def _key(self) -> str:
        self._n += 1
        return f"r{self._n}"

    def command_body(self, text: str, *, user: str = ALICE, channel: str = GENERAL, key: str = "r") -> str:
        return urllib.parse.urlencode({
            "token": "legacy-verification-token", "team_id": "T0FAKETEAM", "team_domain": "fake",
            "channel_id": channel, "channel_name": "general", "user_id": user, "user_name": user.lower(),
            "command": "/backup", "text": text, "api_app_id": "A0FAKE",
            "is_enterprise_install": "false", "response_url": self.slack.response_url(key),
            "trigger_id": f"{time.time():.0f}.trigger"})

    async def command(self, text: str, *, user: str = ALICE, channel: str = GENERAL,
                      headers: Mapping[str, str] | None = None) -> Reply:
        key = self._key()
        body = self.command_body(text, user=user, channel=channel, key=key)
        reply = await self.post(body, sign(body) if headers is None else headers)
        reply.response_key = key
        return reply

    def action_payload(self, action_id: str, value: str | None = None, *, user: str = ALICE,
                       channel: str | None = GENERAL, state: Mapping[str, Any] | None = None,
                       block_id: str = "b", action: Mapping[str, Any] | None = None,
                       key: str = "r", view: bool = False) -> dict[str, Any]:
        act: dict[str, Any] = {"action_id": action_id, "block_id": block_id, "type": "button",
                               "action_ts": f"{time.time():.6f}"}
        if value is not None:
            act["value"] = value
        act.update(action or {})
        payload: dict[str, Any] = {
            "type": "block_actions", "user": {"id": user, "username": user.lower(), "team_id": "T0FAKETEAM"},
            "api_app_id": "A0FAKE", "token": "legacy-verification-token", "trigger_id": "1.trigger",
            "team": {"id": "T0FAKETEAM", "domain": "fake"}, "actions": [act],
            "state": {"values": dict(state or {})},
        }
        if view:  # a button in App Home: no channel, no response_url
            payload["container"] = {"type": "view", "view_id": "V1"}
            payload["view"] = {"id": "V1", "type": "home", "blocks": []}
        else:
            payload["container"] = {"type": "message", "message_ts": "1.000001", "channel_id": channel,
                                    "is_ephemeral": True}
            payload["channel"] = {"id": channel, "name": "general"}
            payload["message"] = {"ts": "1.000001", "text": "", "blocks": []}
            payload["response_url"] = self.slack.response_url(key)
        return payload

    async def action(self, action_id: str, value: str | None = None, **kw: Any) -> Reply:
        key = self._key()
        payload = self.action_payload(action_id, value, key=key, **kw)
        body = "payload=" + urllib.parse.quote(json.dumps(payload))
        reply = await self.post(body)
        reply.response_key = key
        return reply

    async def event(self, event: Mapping[str, Any]) -> Reply:
        body = json.dumps({"token": "legacy", "team_id": "T0FAKETEAM", "api_app_id": "A0FAKE",
                           "event": dict(event), "type": "event_callback", "event_id": f"Ev{time.time_ns()}",
                           "event_time": int(time.time()), "authorizations": [
                               {"team_id": "T0FAKETEAM", "user_id": "U0BACKUPBOT", "is_bot": True}]})
        hdrs = {**sign(body), "Content-Type": "application/json"}
        t0 = time.monotonic()
        async with self.session.post(self.url + "/slack/events", data=body.encode(), headers=hdrs) as resp:
            text = await resp.text()
        return Reply(resp.status, text, time.monotonic() - t0)

    async def get_text(self, path: str) -> tuple[int, str]:
        """GET on the public listener."""
        async with self.session.get(self.url + path) as resp:
            return resp.status, await resp.text()

    async def admin_get(self, path: str) -> tuple[int, Any]:
        """GET JSON from the admin listener (/healthz/ready, /healthz/live)."""
        async with self.session.get(self.admin_url + path) as resp:
            return resp.status, await resp.json()

    async def admin_text(self, path: str) -> tuple[int, str]:
        async with self.session.get(self.admin_url + path) as resp:
            return resp.status, await resp.text()


@asynccontextmanager
async def run_bot(settings: Settings, slack: FakeSlack, *, socket_mode: bool = False,
                  options: Options | None = None, port: int = 0, **env: str) -> AsyncIterator[SlackBot]:
    """The bot's real aiohttp application on 127.0.0.1:<port, or a free one> and its admin listener on
    another (as `backupbot serve` runs them), stopped (tasks drained) on exit. With web.base_url in the
    settings, the browser pages are on too, their links signed with WEB_SECRET."""
    creds = credentials(slack, socket_mode=socket_mode, **env)
    opts = options or Options(collector=fast_collector(), drain_timeout=10.0)
    app = create_app(settings, creds, socket_mode=socket_mode, options=opts, web_secret=WEB_SECRET)
    runner = web.AppRunner(app, handle_signals=False)
    await runner.setup()
    admin = web.AppRunner(build_admin_app(app), handle_signals=False)
    await admin.setup()
    try:
        await web.TCPSite(runner, "127.0.0.1", port).start()
        await web.TCPSite(admin, "127.0.0.1", 0).start()
        port, admin_port = runner.addresses[0][1], admin.addresses[0][1]
        async with aiohttp.ClientSession() as session:
            yield SlackBot(f"http://127.0.0.1:{port}", slack, app, session, admin_url=f"http://127.0.0.1:{admin_port}")
    finally:
        await admin.cleanup()
        await runner.cleanup()


async def add_routers(sim: Any, *devices: SimDevice) -> list[SimDevice]:
    """Add devices (with the config's router password) to the simulator and start them."""
    for d in devices:
        d.password = ROUTER_PASSWORD
        sim.add(d)
    await sim.start()
    return list(devices)


def blocks_text(message: Mapping[str, Any]) -> str:
    """All text of a message (fallback text and every block), for content assertions."""
    return json.dumps(message, ensure_ascii=False)


def buttons(message: Mapping[str, Any]) -> list[tuple[str, str]]:
    """(action_id, value) of every button in a message, in order."""
    found: list[tuple[str, str]] = []

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            if node.get("type") == "button":
                found.append((node["action_id"], node.get("value", "")))
            for v in node.values():
                walk(v)
        elif isinstance(node, list):
            for v in node:
                walk(v)

    walk(dict(message))
    return found


def checkbox_values(message: Mapping[str, Any]) -> list[str]:
    return [opt["value"] for block in message.get("blocks", []) for el in block.get("elements", [])
            if el.get("type") == "checkboxes" for opt in el["options"]]


def is_error(message: Mapping[str, Any]) -> bool:
    """True for a message made by blocks.error (a refusal or a failure)."""
    found = message.get("blocks") or []
    return len(found) == 1 and found[0].get("text", {}).get("text") == ":warning: " + message.get("text", "")


async def settle(bot: SlackBot, timeout: float = 30.0) -> None:
    """Wait until every task the bot started after an ack has finished."""
    await asyncio.wait_for(bot.app[TASKS].idle(), timeout)


async def serve_process(config: Path, env: Mapping[str, str], *args: str) -> asyncio.subprocess.Process:
    """`backupbot --config CONFIG serve --host 127.0.0.1 ARGS` as a real process (stdout/stderr piped),
    with `--admin-port <free port>` unless ARGS name one (9090 may be taken on a shared machine)."""
    admin = () if "--admin-port" in args else ("--admin-port", str(free_port()))
    return await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bot", "--config", str(config), "serve", "--host", "127.0.0.1", *admin, *args,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        env={"PATH": "/usr/bin:/bin", "ROUTER_PASSWORD": ROUTER_PASSWORD, **env})


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def read_until(stream: asyncio.StreamReader, marker: bytes, timeout: float = 30.0) -> bytes:
    """Read a process's output line by line until a line contains `marker`; everything read."""
    seen = b""

    async def scan() -> bytes:
        nonlocal seen
        while True:
            line = await stream.readline()
            if not line:
                raise AssertionError(f"stream ended before {marker!r}:\n{seen.decode(errors='replace')}")
            seen += line
            if marker in line:
                return seen

    return await asyncio.wait_for(scan(), timeout)


async def answer(slack: FakeSlack, reply: Reply, n: int = 1, timeout: float = 10.0) -> dict[str, Any]:
    """The n-th message the bot posted to this request's response_url (waiting for it)."""
    calls = await slack.wait_for("response_url", n, timeout, key=reply.response_key)
    return calls[n - 1].params
