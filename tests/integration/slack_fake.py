"""A local fake of Slack's Web API (and response_url, file upload and Socket Mode endpoints).

An aiohttp server on 127.0.0.1 that answers the methods backupbot calls the way Slack does and
records every call, so tests assert on what reached "Slack". It can misbehave on demand:
`fail(method, status=429, retry_after=1, times=2)` answers that status before succeeding,
`go_down()` / `come_up()` stop and restart the listener on the same port (connection refused in
between), `not_in_channel` / `missing_channels` make posts and uploads to those channels fail as
Slack does. `fail(..., landed=True)` answers the error AFTER doing the work (a post that reached
the channel but whose answer says otherwise), and `hold(method)` keeps the next answer back until
`release()` (the call is done and recorded: a client killed meanwhile never hears the answer).

Channels keep what was posted (`messages`): chat.postMessage and shared files, with ts,
thread_ts, metadata and files, answered back by conversations.history (top-level messages,
newest first, metadata only with include_all_metadata) and conversations.replies (a thread,
parent first) with Slack's paging (limit, cursor, oldest exclusive).

Socket Mode: `apps.connections.open` hands out `ws://.../socket`; `send_envelope()` pushes an
envelope to the connected bot and `socket_acks` collects what it answers. `answer_pings=False`
makes the socket go silent (a wedged connection).
"""

from __future__ import annotations

import asyncio
import itertools
import json
import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import WSMsgType, web

BOT_TOKEN = "xoxb-fake-bot-token"
APP_TOKEN = "xapp-fake-app-token"
BOT_USER = "U0BACKUPBOT"
TEAM = "T0FAKETEAM"


@dataclass
class Call:
    method: str  # Web API method, "upload" (file bytes), "response_url" or "socket"
    params: dict[str, Any]
    status: int
    at: float = field(default_factory=time.monotonic)
    key: str | None = None  # response_url key, upload file id
    body: bytes = b""

    def text(self) -> str:
        """Everything this call carried, for "does X appear anywhere" assertions."""
        return json.dumps(self.params, default=str) + self.body.decode("utf-8", errors="replace")


@dataclass
class Fault:
    status: int
    times: int
    retry_after: int | None = None
    error: str | None = None  # with status 200: {"ok": false, "error": error}
    landed: bool = False  # do the work (post the message) before answering the fault


@dataclass
class Upload:
    file_id: str
    filename: str
    snippet_type: str | None
    content: bytes = b""
    title: str | None = None
    channel: str | None = None
    initial_comment: str | None = None
    completed: bool = False


class FakeSlack:
    def __init__(self, *, bot_token: str = BOT_TOKEN, app_token: str = APP_TOKEN) -> None:
        self.bot_token, self.app_token = bot_token, app_token
        self.calls: list[Call] = []
        self.uploads: dict[str, Upload] = {}
        self.not_in_channel: set[str] = set()
        self.missing_channels: set[str] = set()
        self.faults: dict[str, list[Fault]] = {}
        self.messages: dict[str, list[dict[str, Any]]] = {}  # channel -> posted messages, oldest first
        self._holds: dict[str, asyncio.Event] = {}
        self.holding = asyncio.Event()  # set once a held call has been done and its answer is waiting
        self.answer_pings = True
        self.socket_acks: dict[str, Any] = {}
        self.sockets: list[web.WebSocketResponse] = []
        self.port = 0
        self._ids = itertools.count(1)
        self._changed = asyncio.Condition()
        self._runner: web.AppRunner | None = None
        self._site: web.TCPSite | None = None

    # -- lifecycle ---------------------------------------------------------------------------------
    async def start(self) -> None:
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_post("/api/{method}", self._api)
        app.router.add_get("/api/{method}", self._api)
        app.router.add_post("/upload/{file_id}", self._upload)
        app.router.add_post("/respond/{key}", self._respond)
        app.router.add_get("/socket", self._socket)
        self._runner = web.AppRunner(app, handle_signals=False)
        await self._runner.setup()
        await self.come_up()

    async def come_up(self) -> None:
        assert self._runner is not None
        self._site = web.TCPSite(self._runner, "127.0.0.1", self.port, reuse_address=True)
        await self._site.start()
        if not self.port:
            self.port = self._runner.addresses[0][1]

    async def go_down(self) -> None:
        """Stop listening (connections are refused) until come_up(); open keep-alive connections
        are dropped too, as when Slack (or the network to it) really goes away."""
        if self._site is not None:
            await self._site.stop()
            self._site = None
        if self._runner is not None and self._runner.server is not None:
            for handler in list(self._runner.server.connections):
                handler.force_close()
        for ws in list(self.sockets):
            await ws.close()

    async def stop(self) -> None:
        for ws in list(self.sockets):
            await ws.close()
        if self._runner is not None:
            await self._runner.cleanup()

    # -- addresses ---------------------------------------------------------------------------------
    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def api_url(self) -> str:
        """What SLACK_API_URL is set to."""
        return f"{self.base}/api/"

    def response_url(self, key: str | None = None) -> str:
        return f"{self.base}/respond/{key or uuid.uuid4().hex[:12]}"

    # -- fault injection ---------------------------------------------------------------------------
    def fail(self, method: str, status: int = 429, *, times: int = 1, retry_after: int | None = None,
             error: str | None = None, landed: bool = False) -> None:
        self.faults.setdefault(method, []).append(Fault(status, times, retry_after, error, landed))

    def hold(self, method: str) -> None:
        """Do the next `method` call, record it, and keep its answer back until release()."""
        self._holds[method] = asyncio.Event()
        self.holding.clear()

    def release(self) -> None:
        for gate in self._holds.values():
            gate.set()
        self._holds.clear()

    # -- what the channels hold ----------------------------------------------------------------------
    def posts(self, channel: str, *, thread_ts: str | None = None) -> list[dict[str, Any]]:
        """Top-level messages of a channel (or the replies of one thread), oldest first."""
        found = self.messages.get(channel, [])
        if thread_ts is None:
            return [m for m in found if m.get("thread_ts") in (None, m["ts"])]
        return [m for m in found if m.get("thread_ts") == thread_ts and m["ts"] != thread_ts]

    def _store(self, channel: str, ts: str, **fields: Any) -> dict[str, Any]:
        message = {"type": "message", "ts": ts, "user": BOT_USER, "bot_id": "B0BACKUPBOT", **fields}
        if message.get("thread_ts") is None:
            message.pop("thread_ts", None)
        self.messages.setdefault(channel, []).append(message)
        return message

    # -- what was received -------------------------------------------------------------------------
    def calls_to(self, *methods: str) -> list[Call]:
        return [c for c in self.calls if c.method in methods]

    def responses(self, key: str | None = None) -> list[dict[str, Any]]:
        """JSON bodies posted to response_url(key) (any key if None), in order."""
        return [c.params for c in self.calls if c.method == "response_url" and (key is None or c.key == key)]

    def completed_uploads(self) -> list[Upload]:
        return [u for u in self.uploads.values() if u.completed]

    def everything_sent(self) -> str:
        """Every byte the bot sent to Slack (API params, uploads, response_url posts, socket acks)."""
        return "\n".join(c.text() for c in self.calls) + json.dumps(self.socket_acks, default=str)

    async def wait_for(self, method: str, count: int = 1, timeout: float = 10.0, *,
                       key: str | None = None) -> list[Call]:
        """Wait until `count` calls of `method` (to response_url `key`) were recorded; return them."""
        def matching() -> list[Call]:
            return [c for c in self.calls if c.method == method and c.status < 400 and (key is None or c.key == key)]
        async with self._changed:
            await asyncio.wait_for(self._changed.wait_for(lambda: len(matching()) >= count), timeout)
        return matching()

    async def _record(self, call: Call) -> None:
        self.calls.append(call)
        async with self._changed:
            self._changed.notify_all()

    # -- handlers ----------------------------------------------------------------------------------
    async def _params(self, request: web.Request) -> dict[str, Any]:
        params: dict[str, Any] = dict(request.query)
        if request.content_type == "application/json":
            params.update(await request.json())
        elif request.can_read_body:
            params.update(dict(await request.post()))
        return params

    def _fault(self, method: str) -> Fault | None:
        queue = self.faults.get(method, [])
        while queue and queue[0].times <= 0:
            queue.pop(0)
        if not queue:
            return None
        queue[0].times -= 1
        return queue[0]

    async def _api(self, request: web.Request) -> web.Response:
        method = request.match_info["method"]
        params = await self._params(request)
        token = request.headers.get("Authorization", "").removeprefix("Bearer ").strip()
        fault = self._fault(method)
        if fault is not None:
            if fault.landed:
                self._answer(method, params, token)
            status = fault.status
            headers = {"Retry-After": str(fault.retry_after)} if fault.retry_after is not None else {}
            await self._record(Call(method, params, status))
            body = {"ok": False, "error": fault.error or ("ratelimited" if status == 429 else "internal_error")}
            return web.json_response(body, status=status, headers=headers)
        body = self._answer(method, params, token)
        await self._record(Call(method, params, 200 if body.get("ok") else 299))
        gate = self._holds.get(method)
        if gate is not None:
            self.holding.set()
            await gate.wait()
        return web.json_response(body)

    def _answer(self, method: str, params: dict[str, Any], token: str) -> dict[str, Any]:
        expected = self.app_token if method == "apps.connections.open" else self.bot_token
        if token != expected:
            return {"ok": False, "error": "invalid_auth"}
        channel = params.get("channel") or params.get("channel_id")
        if channel in self.not_in_channel and method in ("chat.postMessage", "files.completeUploadExternal"):
            return {"ok": False, "error": "not_in_channel"}
        if channel in self.missing_channels:
            return {"ok": False, "error": "channel_not_found"}
        n = next(self._ids)
        ts = f"{int(time.time())}.{n:06d}"  # real time, like Slack (history's `oldest` compares with it)
        match method:
            case "auth.test":
                return {"ok": True, "url": "https://fake.slack.test/", "team": "Fake", "user": "backupbot",
                        "team_id": TEAM, "user_id": BOT_USER, "bot_id": "B0BACKUPBOT"}
            case "chat.postMessage":
                thread = params.get("thread_ts") or None
                if thread is not None and not any(m["ts"] == thread for m in self.messages.get(str(channel), [])):
                    return {"ok": False, "error": "thread_not_found"}
                self._store(str(channel), ts, text=params.get("text"), blocks=_json(params.get("blocks")),
                            metadata=_json(params.get("metadata")), thread_ts=thread)
                return {"ok": True, "channel": channel, "ts": ts, "message": {"text": params.get("text"), "ts": ts}}
            case "conversations.history":
                found = [m for m in self.posts(str(channel)) if float(m["ts"]) > float(params.get("oldest") or 0)]
                return self._page(list(reversed(found)), params)
            case "conversations.replies":
                thread = [m for m in self.messages.get(str(channel), []) if m["ts"] == params.get("ts")]
                if not thread:
                    return {"ok": False, "error": "thread_not_found"}
                replies = [m for m in self.posts(str(channel), thread_ts=str(params.get("ts")))
                           if float(m["ts"]) > float(params.get("oldest") or 0)]
                return self._page(thread + replies, params)
            case "chat.postEphemeral":
                return {"ok": True, "message_ts": ts}
            case "chat.update":
                return {"ok": True, "channel": channel, "ts": params.get("ts")}
            case "conversations.open":
                users = str(params.get("users", ""))
                return {"ok": True, "channel": {"id": "D" + users.split(",")[0].lstrip("UW")}}
            case "files.getUploadURLExternal":
                file_id = f"F{n:08d}"
                self.uploads[file_id] = Upload(file_id, str(params.get("filename")), params.get("snippet_type"))
                return {"ok": True, "upload_url": f"{self.base}/upload/{file_id}", "file_id": file_id}
            case "files.completeUploadExternal":
                files = json.loads(params.get("files", "[]"))
                for f in files:
                    upload = self.uploads.get(f["id"])
                    if upload is None or upload.completed:
                        return {"ok": False, "error": "invalid_file_id"}
                for f in files:
                    upload = self.uploads[f["id"]]
                    upload.title, upload.channel = f.get("title"), channel
                    upload.initial_comment, upload.completed = params.get("initial_comment"), True
                if channel:  # the file is shared: a message appears in the channel (or thread)
                    self._store(str(channel), ts, text=params.get("initial_comment") or "",
                                files=[{"id": f["id"], "name": self.uploads[f["id"]].filename,
                                        "title": f.get("title")} for f in files],
                                thread_ts=params.get("thread_ts") or None)
                return {"ok": True, "files": [{"id": f["id"], "title": f.get("title")} for f in files]}
            case "views.publish":
                return {"ok": True, "view": {"id": f"V{n}", "type": "home"}}
            case "apps.connections.open":
                return {"ok": True, "url": f"ws://127.0.0.1:{self.port}/socket?n={n}"}
        return {"ok": False, "error": "unknown_method"}

    @staticmethod
    def _page(messages: list[dict[str, Any]], params: dict[str, Any]) -> dict[str, Any]:
        """One page as Slack answers it: `limit` messages from `cursor`; metadata only if asked for."""
        start = int(params.get("cursor") or 0)
        limit = int(params.get("limit") or 100)
        page = messages[start:start + limit]
        if str(params.get("include_all_metadata", "")).lower() not in ("1", "true"):
            page = [{k: v for k, v in m.items() if k != "metadata"} for m in page]
        more = start + limit < len(messages)
        return {"ok": True, "messages": page, "has_more": more,
                "response_metadata": {"next_cursor": str(start + limit) if more else ""}}

    async def _upload(self, request: web.Request) -> web.Response:
        file_id = request.match_info["file_id"]
        data = await request.read()
        fault = self._fault("upload")
        status = fault.status if fault else 200
        await self._record(Call("upload", {"file_id": file_id}, status, key=file_id, body=data))
        if fault is None and file_id in self.uploads:
            self.uploads[file_id].content = data
        return web.Response(status=status, text=f"OK - {len(data)}" if status == 200 else "error")

    async def _respond(self, request: web.Request) -> web.Response:
        fault = self._fault("response_url")
        status = fault.status if fault else 200
        await self._record(Call("response_url", await request.json(), status, key=request.match_info["key"]))
        return web.Response(status=status, text="ok" if status == 200 else "error")

    # -- Socket Mode -------------------------------------------------------------------------------
    async def _socket(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(autoping=False)
        await ws.prepare(request)
        self.sockets.append(ws)
        await self._record(Call("socket", {"connected": True}, 101))
        await ws.send_str(json.dumps({"type": "hello", "num_connections": len(self.sockets),
                                      "connection_info": {"app_id": "A0FAKE"}}))
        try:
            async for msg in ws:
                if msg.type == WSMsgType.PING:
                    if self.answer_pings:
                        await ws.pong(msg.data)
                elif msg.type == WSMsgType.TEXT:
                    data = json.loads(msg.data)
                    self.socket_acks[data.get("envelope_id")] = data.get("payload")
                    await self._record(Call("socket_ack", data, 200))
        finally:
            self.sockets.remove(ws)
        return ws

    async def send_envelope(self, kind: str, payload: dict[str, Any]) -> str:
        """Push an envelope ("slash_commands", "interactive", "events_api") to the newest socket."""
        envelope_id = uuid.uuid4().hex
        await self.sockets[-1].send_str(json.dumps({"envelope_id": envelope_id, "type": kind, "payload": payload,
                                                    "accepts_response_payload": kind != "events_api"}))
        return envelope_id

    async def wait_ack(self, envelope_id: str, timeout: float = 5.0) -> Any:
        async with self._changed:
            await asyncio.wait_for(self._changed.wait_for(lambda: envelope_id in self.socket_acks), timeout)
        return self.socket_acks[envelope_id]


def _json(value: Any) -> Any:
    """Form-encoded calls carry JSON fields as strings; JSON calls carry them as they are."""
    if isinstance(value, str):
        try:
            return json.loads(value)
        except ValueError:
            return value
    return value


def texts(calls: Iterable[Call]) -> str:
    return "\n".join(c.text() for c in calls)
