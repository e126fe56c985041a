"""Whether Slack has accepted the bot token yet, and who the bot is once it has.

Backups must not depend on Slack being up: the schedule runs and messages wait in the outbox
whatever Slack does. So `SlackLink.start` asks auth.test once: a token Slack refuses stops start-up
(StartupError, exit 2); Slack unreachable (connection refused or reset, DNS, timeout, 5xx, 429:
bot.slack.client.SlackUnreachable) is logged and `serve` starts anyway, asking again in the
background from `Recheck.first` seconds, doubling up to `Recheck.cap`, each call within
`Recheck.timeout`, until Slack answers. The first accepted check is logged. If Slack, once back,
refuses the token, that is logged as an error and shown in readiness; `serve` keeps running (the
schedule does not need Slack) and stops asking: a refused token only changes with a restart.

`identity` is None until the token was accepted. Bolt is authorized from here (`bolt_authorize`),
never with a Web API call on the ack path, so requests are answered while the identity is unknown.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

from slack_bolt.authorization import AuthorizeResult
from slack_sdk.web.async_client import AsyncWebClient

from bot.core.clock import Clock, utcnow
from bot.core.logs import log_event
from bot.core.errors import SlackUnreachable, StartupError
from bot.slack.client import CHECK_TIMEOUT, BotIdentity, check_token

log = logging.getLogger(__name__)

State = Literal["unchecked", "accepted", "unreachable", "refused"]


@dataclass(frozen=True)
class Recheck:
    """How auth.test is retried while Slack is unreachable; tests shorten the waits."""

    first: float = 2.0  # seconds before the first retry; doubles per attempt
    cap: float = 60.0
    timeout: float = CHECK_TIMEOUT  # for one call


class SlackLink:
    def __init__(self, client: AsyncWebClient, *, recheck: Recheck = Recheck(), clock: Clock = utcnow) -> None:
        self.client, self.recheck, self.clock = client, recheck, clock
        self.identity: BotIdentity | None = None
        self.state: State = "unchecked"
        self.since: datetime | None = None  # when `state` began
        self.error: str | None = None  # why the last check failed (a bot.slack.outcome code, or the refusal)
        self.checks = 0
        self.next_check_at: datetime | None = None
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        """One auth.test now. Refused: StartupError. Unreachable: keep checking in the background."""
        try:
            await self._check()
        except SlackUnreachable as exc:
            self._enter("unreachable", exc.code)
            log_event(log, logging.WARNING, "Slack unreachable at start-up: serving anyway, checking again in the"
                      " background", api=self.client.base_url, error=exc.code, retry_in_s=self.recheck.first)
            self._task = asyncio.create_task(self._keep_checking(), name="Slack token check")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _check(self) -> None:
        self.checks += 1
        identity = await check_token(self.client, self.recheck.timeout)
        down_since = self.since if self.state == "unreachable" else None
        self.identity = identity
        now = self._enter("accepted", None)
        after = {} if down_since is None else {"unreachable_for_s": round((now - down_since).total_seconds(), 1)}
        log_event(log, logging.INFO, "Slack accepted the bot token", team=identity.team, team_id=identity.team_id,
                  bot_user_id=identity.user_id, checks=self.checks, **after)

    async def _keep_checking(self) -> None:
        delay = self.recheck.first
        while True:
            self.next_check_at = self.clock() + timedelta(seconds=delay)
            await asyncio.sleep(delay)
            try:
                await self._check()
                return
            except SlackUnreachable as exc:
                if exc.code != self.error:
                    log_event(log, logging.WARNING, "Slack still unreachable", error=exc.code, checks=self.checks)
                self.error = exc.code
            except StartupError as exc:
                self._enter("refused", str(exc))
                log_event(log, logging.ERROR, "Slack refused the bot token: nothing reaches Slack until it is"
                          " replaced and serve restarted (backups go on)", error=str(exc))
                return
            delay = min(delay * 2, self.recheck.cap)

    def _enter(self, state: State, error: str | None) -> datetime:
        """Switch to `state` from now on; returns now."""
        now = self.clock()
        self.state, self.error, self.since, self.next_check_at = state, error, now, None
        return now


def bolt_authorize(link: SlackLink, bot_token: str) -> Callable[..., Awaitable[AuthorizeResult]]:
    """Bolt's `authorize`: the bot token and the request's team, with the bot's ids once known.
    (Bolt's default, with a token, calls auth.test on the first request, which fails while Slack
    is unreachable.)"""

    async def authorize(enterprise_id: str | None, team_id: str | None, user_id: str | None) -> AuthorizeResult:
        known = link.identity
        return AuthorizeResult(enterprise_id=enterprise_id, team_id=known.team_id if known else team_id,
                               team=known.team if known else None, bot_token=bot_token, user_id=user_id,
                               bot_user_id=known.user_id if known else None, bot_id=known.bot_id if known else None)

    return authorize
