"""Slack credentials and the one Web API client: built here, used by the handlers and the outbox.

Credentials come only from the environment mapping the entry point passes in. A missing variable
or a token Slack refuses (bot.slack.outcome.TOKEN_REFUSED) is a `StartupError` naming the variable,
raised before anything serves requests. Slack not answering usefully (connection refused or reset,
DNS, timeout, 5xx, 429) is `SlackUnreachable` instead: no verdict on the token, so `serve` starts
anyway and asks again later (bot.slack.link). Tokens never appear in a log line or an error message.

The client shares one aiohttp ClientSession (the caller owns it: created on startup, closed on
cleanup) and retries what is worth retrying: connection errors, 429 (sleeping Retry-After) and
500/503.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import TypeVar

import aiohttp
from slack_sdk.http_retry.builtin_async_handlers import (
    AsyncConnectionErrorRetryHandler,
    AsyncRateLimitErrorRetryHandler,
    AsyncServerErrorRetryHandler,
)
from slack_sdk.web.async_client import AsyncWebClient

from bot.core.errors import SlackUnreachable, StartupError
from bot.slack.outcome import classify, token_refused

DEFAULT_API_URL = "https://slack.com/api/"
USER_AGENT_PREFIX = "backupbot"
CHECK_TIMEOUT = 10.0  # seconds for one token check (auth.test, apps.connections.open)
T = TypeVar("T")


@dataclass(frozen=True)
class Credentials:
    bot_token: str = field(repr=False)
    signing_secret: str | None = field(default=None, repr=False)  # HTTP mode
    app_token: str | None = field(default=None, repr=False)  # Socket Mode
    api_url: str = DEFAULT_API_URL

    @classmethod
    def from_env(cls, env: Mapping[str, str], *, socket_mode: bool) -> Credentials:
        """Read SLACK_BOT_TOKEN, then SLACK_SIGNING_SECRET (HTTP) or SLACK_APP_TOKEN (Socket Mode)."""
        needed = ["SLACK_BOT_TOKEN", "SLACK_APP_TOKEN" if socket_mode else "SLACK_SIGNING_SECRET"]
        missing = [name for name in needed if not env.get(name, "").strip()]
        if missing:
            mode = "Socket Mode" if socket_mode else "HTTP mode"
            raise StartupError(f"{' and '.join(missing)} {'is' if len(missing) == 1 else 'are'} not set"
                               f" (required in {mode}; see docs/slack.md)")
        bot_token = env["SLACK_BOT_TOKEN"].strip()
        if not bot_token.startswith("xoxb-"):
            raise StartupError("SLACK_BOT_TOKEN does not look like a bot token (it should start with xoxb-)")
        app_token = env.get("SLACK_APP_TOKEN", "").strip() or None
        if socket_mode and app_token is not None and not app_token.startswith("xapp-"):
            raise StartupError("SLACK_APP_TOKEN does not look like an app-level token (it should start with xapp-)")
        return cls(bot_token=bot_token, signing_secret=env.get("SLACK_SIGNING_SECRET", "").strip() or None,
                   app_token=app_token, api_url=api_base_url(env.get("SLACK_API_URL")))


def api_base_url(value: str | None) -> str:
    """SLACK_API_URL with the trailing slash urljoin needs (".../api" would lose its last part)."""
    url = (value or "").strip() or DEFAULT_API_URL
    return url if url.endswith("/") else url + "/"


def build_client(
    credentials: Credentials,
    session: aiohttp.ClientSession,
    *,
    timeout: int = 30,
    rate_limit_retries: int = 3,
    server_error_retries: int = 2,
    connection_retries: int = 2,
    with_token: bool = True,
) -> AsyncWebClient:
    """The Web API client for the bot token, on the shared session, with retries. `with_token=False`
    for Bolt, which then takes the token from its `authorize` on each request (bot.slack.link)."""
    return AsyncWebClient(
        token=credentials.bot_token if with_token else None,
        base_url=credentials.api_url,
        session=session,
        timeout=timeout,
        user_agent_prefix=USER_AGENT_PREFIX,
        retry_handlers=[
            AsyncConnectionErrorRetryHandler(max_retry_count=connection_retries),
            AsyncRateLimitErrorRetryHandler(max_retry_count=rate_limit_retries),
            AsyncServerErrorRetryHandler(max_retry_count=server_error_retries),
        ],
    )


@dataclass(frozen=True)
class BotIdentity:
    team_id: str
    team: str
    user_id: str
    bot_id: str | None


async def token_call(call: Callable[[], Awaitable[T]], *, variable: str, method: str,
                     timeout: float = CHECK_TIMEOUT) -> T:
    """One Web API call that tests a token, within `timeout`: StartupError naming `variable` if Slack
    refuses the token, SlackUnreachable for any other failure."""
    try:
        return await asyncio.wait_for(call(), timeout)
    except Exception as exc:  # noqa: BLE001 - classify() sorts every failure; none escapes unexplained
        failure = classify(exc, posting=False)
        if token_refused(failure):
            raise StartupError(f"{variable} was refused by Slack ({method}: {failure.code})") from None
        raise SlackUnreachable(failure.code) from None


async def check_token(client: AsyncWebClient, timeout: float = CHECK_TIMEOUT) -> BotIdentity:
    """auth.test: who the bot is. StartupError if the token is refused, SlackUnreachable otherwise."""
    response = await token_call(client.auth_test, variable="SLACK_BOT_TOKEN", method="auth.test", timeout=timeout)
    return BotIdentity(team_id=str(response.get("team_id", "")), team=str(response.get("team", "")),
                       user_id=str(response.get("user_id", "")), bot_id=response.get("bot_id"))


async def post_to_dm(client: AsyncWebClient, user: str, message: Mapping[str, object]) -> None:
    """Post a bot.slack.blocks Message to the user's DM with the bot (the result of a backup
    started in the browser; conversations.open needs im:write)."""
    opened = await client.conversations_open(users=user)
    await client.chat_postMessage(channel=str(opened["channel"]["id"]), text=str(message["text"]),
                                  blocks=message.get("blocks"))  # type: ignore[arg-type]
