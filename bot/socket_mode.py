"""Socket Mode: the same Bolt app over Slack's WebSocket, with a watchdog for a wedged socket.

slack_sdk's client reconnects by itself, but it has wedged in the field (a closed session looping
on "Session is closed", a monitor task that died). The watchdog checks every `interval` seconds
that `await client.is_connected()` holds and that the last ping-pong is recent; after
`failures_allowed` bad checks in a row (so it never fights a reconnect the client is already doing)
it closes the handler and builds a fresh one, which starts from a new WebSocket URL.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from typing import Any

from slack_bolt.adapter.socket_mode.async_handler import AsyncSocketModeHandler
from slack_bolt.async_app import AsyncApp
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot.slack_client import StartupError

log = logging.getLogger(__name__)


async def check_app_token(client: AsyncWebClient, app_token: str) -> None:
    """apps.connections.open once, so a bad SLACK_APP_TOKEN stops start-up with a clear message
    (the sdk's connect() would otherwise retry it forever)."""
    try:
        await client.apps_connections_open(app_token=app_token)
    except SlackApiError as exc:
        error = exc.response.get("error", "unknown error") if exc.response is not None else "unknown error"
        raise StartupError(f"SLACK_APP_TOKEN was refused by Slack (apps.connections.open: {error})") from None


class SocketModeRunner:
    """Owns the current AsyncSocketModeHandler and the watchdog task that replaces it when stale."""

    def __init__(
        self,
        app: AsyncApp,
        app_token: str,
        web_client: AsyncWebClient,
        *,
        ping_interval: float = 10.0,
        interval: float = 15.0,
        stale_after: float = 60.0,
        failures_allowed: int = 2,
        connect_timeout: float = 30.0,
    ) -> None:
        self._make: Callable[[], AsyncSocketModeHandler] = lambda: AsyncSocketModeHandler(
            app, app_token, web_client=web_client, ping_interval=ping_interval)
        self.interval, self.stale_after = interval, stale_after
        self.failures_allowed, self.connect_timeout = failures_allowed, connect_timeout
        self.handler: AsyncSocketModeHandler | None = None
        self.rebuilds = 0
        self._failures = 0
        self._watchdog: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self.handler = await self._connect()
        self._watchdog = asyncio.create_task(self._watch(), name="socket-mode watchdog")

    async def stop(self) -> None:
        if self._watchdog is not None:
            self._watchdog.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._watchdog
        if self.handler is not None:
            await _close(self.handler)
            self.handler = None

    async def status(self) -> dict[str, Any]:
        """For /healthz: connected, seconds since the last pong, rebuilds so far."""
        if self.handler is None:
            return {"ok": False, "connected": False, "rebuilds": self.rebuilds}
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
        handler = self._make()
        try:
            await asyncio.wait_for(handler.connect_async(), self.connect_timeout)
        except BaseException:
            await _close(handler)
            raise
        return handler

    async def check(self) -> bool:
        """One watchdog tick; returns True if the handler was rebuilt."""
        healthy = (await self.status())["ok"]
        self._failures = 0 if healthy else self._failures + 1
        if self._failures <= self.failures_allowed:
            return False
        log.warning("Socket Mode connection looks wedged (connected=%s, last pong %ss ago); reconnecting",
                    self.handler is not None and await self.handler.client.is_connected(), self._pong_age())
        old, self.handler = self.handler, None
        if old is not None:
            await _close(old)
        self.handler = await self._connect()
        self.rebuilds += 1
        self._failures = 0
        log.info("Socket Mode reconnected (rebuild %d)", self.rebuilds)
        return True

    async def _watch(self) -> None:
        while True:
            await asyncio.sleep(self.interval)
            try:
                await self.check()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("Socket Mode watchdog could not reconnect; retrying in %.0fs", self.interval)


async def _close(handler: AsyncSocketModeHandler) -> None:
    try:
        await handler.close_async()
    except Exception:
        log.warning("closing the old Socket Mode handler failed", exc_info=True)
