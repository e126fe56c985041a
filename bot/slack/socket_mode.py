"""Socket Mode: the same Bolt app over Slack's WebSocket, with a watchdog for a wedged socket.

Connecting starts with apps.connections.open (bot.slack.client.token_call, within a timeout): at
start-up a refused SLACK_APP_TOKEN stops `serve` (StartupError, exit 2); Slack unreachable does
not: `serve` starts without a socket and the watchdog connects once Slack answers. The URL Slack
hands out is given to the sdk's client, so it does not ask again (its own connect() would retry a
refused token forever).

slack_sdk's client reconnects by itself, but it has wedged in the field (a closed session looping
on "Session is closed", a monitor task that died). The watchdog checks every `interval` seconds
that `await client.is_connected()` holds and that the last ping-pong is recent; after
`failures_allowed` bad checks in a row (so it never fights a reconnect the client is already doing)
it closes the handler and builds a fresh one, which starts from a new WebSocket URL. With no
handler at all (never connected, or the last rebuild failed) it connects at the next tick. A token
Slack refuses later on is logged and shown in readiness, and not asked about again.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from slack_bolt.adapter.socket_mode.async_handler import AsyncSocketModeHandler
from slack_bolt.async_app import AsyncApp
from slack_sdk.web.async_client import AsyncWebClient

from bot.core.logs import log_event
from bot.core.errors import SlackUnreachable, StartupError
from bot.slack.client import CHECK_TIMEOUT, token_call

log = logging.getLogger(__name__)


async def open_connection(client: AsyncWebClient, app_token: str, timeout: float = CHECK_TIMEOUT) -> str:
    """apps.connections.open: a WebSocket URL. StartupError if the app token is refused,
    SlackUnreachable if Slack gave no verdict."""
    response = await token_call(lambda: client.apps_connections_open(app_token=app_token),
                                variable="SLACK_APP_TOKEN", method="apps.connections.open", timeout=timeout)
    return str(response["url"])


@dataclass(frozen=True)
class Watchdog:
    """Production defaults; tests shorten the waits."""

    ping_interval: float = 10.0  # seconds between the sdk's pings
    interval: float = 15.0  # between two watchdog checks
    stale_after: float = 60.0  # a last pong older than this is a bad check
    failures_allowed: int = 2  # bad checks in a row before the handler is rebuilt
    connect_timeout: float = 30.0


class SocketModeRunner:
    """Owns the current AsyncSocketModeHandler and the watchdog task that replaces it when stale."""

    def __init__(self, app: AsyncApp, app_token: str, web_client: AsyncWebClient, *,
                 watchdog: Watchdog = Watchdog()) -> None:
        self._make: Callable[[], AsyncSocketModeHandler] = lambda: AsyncSocketModeHandler(
            app, app_token, web_client=web_client, ping_interval=watchdog.ping_interval)
        self._open: Callable[[], Awaitable[str]] = lambda: open_connection(web_client, app_token)
        self.interval, self.stale_after = watchdog.interval, watchdog.stale_after
        self.failures_allowed, self.connect_timeout = watchdog.failures_allowed, watchdog.connect_timeout
        self.handler: AsyncSocketModeHandler | None = None
        self.rebuilds = 0
        self.error: str | None = None  # why there is no connection (a bot.slack.outcome code, or the refusal)
        self.refused = False
        self._down_at: float | None = None  # monotonic time the bot was first without a socket
        self._failures = 0
        self._watchdog: asyncio.Task[None] | None = None

    async def start(self) -> None:
        """Connect now; a refused app token raises StartupError. Slack unreachable: the watchdog
        connects later."""
        try:
            self.handler = await self._connect()
        except SlackUnreachable as exc:
            self._lost(exc.code)
            log_event(log, logging.WARNING, "Socket Mode cannot connect yet (Slack unreachable): serving anyway,"
                      " the watchdog retries", error=exc.code, retry_every_s=self.interval)
        self._watchdog = asyncio.create_task(self._watch(), name="socket-mode watchdog")

    @property
    def watching(self) -> bool:
        """The watchdog task runs (liveness: if it died, nothing would ever reconnect)."""
        return self._watchdog is not None and not self._watchdog.done()

    async def stop(self) -> None:
        if self._watchdog is not None:
            self._watchdog.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._watchdog
        if self.handler is not None:
            await _close(self.handler)
            self.handler = None

    async def status(self) -> dict[str, Any]:
        """For readiness: connected, seconds since the last pong, rebuilds so far; or why not connected."""
        if self.handler is None:
            down = None if self._down_at is None else round(time.monotonic() - self._down_at, 1)
            return {"ok": False, "connected": False, "rebuilds": self.rebuilds, "error": self.error,
                    "disconnected_for_s": down}
        client = self.handler.client
        connected = await client.is_connected()
        age = self._pong_age()
        return {"ok": connected and not self._stale(age), "connected": connected,
                "last_ping_pong_age": None if age is None else round(age, 1), "rebuilds": self.rebuilds}

    def _pong_age(self) -> float | None:
        last = self.handler.client.last_ping_pong_time if self.handler is not None else None
        return None if last is None else max(0.0, time.time() - last)

    def _stale(self, age: float | None) -> bool:
        return age is not None and age > self.stale_after

    async def _connect(self) -> AsyncSocketModeHandler:
        url = await self._open()
        handler = self._make()
        handler.client.wss_uri = url  # the sdk connects there instead of asking for a URL itself
        try:
            await asyncio.wait_for(handler.connect_async(), self.connect_timeout)
        except TimeoutError:
            await _close(handler)
            raise SlackUnreachable("websocket_timeout") from None
        except BaseException:
            await _close(handler)
            raise
        return handler

    def _lost(self, error: str) -> None:
        self.error = error
        if self._down_at is None:
            self._down_at = time.monotonic()

    async def _connect_again(self) -> None:
        """No handler: connect; say so once when it works, or once per new reason it does not."""
        try:
            self.handler = await self._connect()
        except SlackUnreachable as exc:
            if exc.code != self.error:
                log_event(log, logging.WARNING, "Socket Mode still cannot connect", error=exc.code)
            self._lost(exc.code)
            return
        except StartupError as exc:
            self.refused = True
            self._lost(str(exc))
            log_event(log, logging.ERROR, "Socket Mode: Slack refused the app token; no request reaches the bot"
                      " until SLACK_APP_TOKEN is replaced and serve restarted (backups go on)", error=str(exc))
            return
        down = None if self._down_at is None else round(time.monotonic() - self._down_at, 1)
        self.error, self._down_at, self._failures = None, None, 0
        log_event(log, logging.INFO, "Socket Mode connected", disconnected_for_s=down)

    async def check(self) -> bool:
        """One watchdog tick; returns True if the handler was rebuilt."""
        if self.handler is None:
            if not self.refused:
                await self._connect_again()
            return False
        healthy = (await self.status())["ok"]
        self._failures = 0 if healthy else self._failures + 1
        if self._failures <= self.failures_allowed:
            return False
        log.warning("Socket Mode connection looks wedged (connected=%s, last pong %ss ago); reconnecting",
                    self.handler is not None and await self.handler.client.is_connected(), self._pong_age())
        old, self.handler = self.handler, None
        await _close(old)
        self._lost("wedged")
        await self._connect_again()
        if self.handler is None:
            return False
        self.rebuilds += 1
        return True

    async def _watch(self) -> None:
        while True:
            await asyncio.sleep(self.interval)
            try:
                await self.check()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("Socket Mode watchdog tick failed; next in %.0fs", self.interval)


async def _close(handler: AsyncSocketModeHandler) -> None:
    try:
        await handler.close_async()
    except Exception:
        log.warning("closing the old Socket Mode handler failed", exc_info=True)
