"""Where a request's answers go: the requester's response_url, their DM with the bot, or a file.

`Reply` is built from one command or action payload. Messages go through `respond()` (ephemeral,
or replacing the message that holds the buttons) when the payload has a response_url; from the App
Home (no response_url), or when the response_url has expired or fails, they go to the requester's
DM with the bot instead. Files go to the conversation the request came from; when the bot cannot
post there (not_in_channel, channel_not_found: a private channel or someone else's DM) they go to
the DM, and the requester is told so. Raw configs only ever go to the DM (`upload(..., dm=True)`).
"""

from __future__ import annotations

import logging
from typing import Any

from slack_bolt.context.respond.async_respond import AsyncRespond
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot.slack import blocks
from bot.core.errors import UserError

log = logging.getLogger(__name__)

CANNOT_POST = ("not_in_channel", "channel_not_found")
SNIPPET_LIMIT = 1_000_000  # Slack refuses larger snippets (snippet_too_large); bigger goes as a plain file


def describe(exc: BaseException) -> str:
    """What the requester is told when their request failed: never a stack trace."""
    if isinstance(exc, UserError):
        return str(exc)
    return ("Sorry, something went wrong on my side while doing that "
            f"({type(exc).__name__}); it has been logged for the operators.")


class Reply:
    def __init__(self, client: AsyncWebClient, respond: AsyncRespond | None, user: str,
                 channel: str | None) -> None:
        self.client, self.respond, self.user, self.channel = client, respond, user, channel
        self._dm: str | None = None

    async def dm(self) -> str:
        """The requester's DM channel with the bot (conversations.open, needs im:write)."""
        if self._dm is None:
            response = await self.client.conversations_open(users=self.user)
            self._dm = str(response["channel"]["id"])
        return self._dm

    async def send(self, message: blocks.Message, *, replace: bool = False) -> None:
        """Show `message` to the requester only (ephemeral, or in their DM)."""
        if self.respond is not None:
            try:
                response = await self.respond(text=message["text"], blocks=message.get("blocks"),
                                              response_type="ephemeral", replace_original=replace or None)
                if response.status_code == 200:
                    return
                log.warning("response_url answered %s; sending to the DM instead", response.status_code)
            except Exception as exc:  # noqa: BLE001 - expired or unreachable response_url: use the DM
                log.warning("response_url failed (%s); sending to the DM instead", type(exc).__name__)
        await self.client.chat_postMessage(channel=await self.dm(), text=message["text"],
                                           blocks=message.get("blocks"))

    async def error(self, text: str) -> None:
        await self.send(blocks.error(text))

    async def failed(self, exc: BaseException) -> None:
        """TaskTracker on_error: tell the requester what went wrong."""
        await self.error(describe(exc))

    async def upload(self, *, content: str | bytes, filename: str, title: str, snippet_type: str | None = None,
                     dm: bool = False) -> str:
        """Upload a file where the request came from (or to the DM); return the channel it went to."""
        size = len(content.encode() if isinstance(content, str) else content)
        kind = snippet_type if snippet_type and size <= SNIPPET_LIMIT else None
        args: dict[str, Any] = {"content": content, "filename": filename, "title": title}
        if kind:
            args["snippet_type"] = kind
        if not dm and self.channel is not None:
            try:
                await self.client.files_upload_v2(channel=self.channel, **args)
                return self.channel
            except SlackApiError as exc:
                if exc.response.get("error") not in CANNOT_POST:
                    raise
            target = await self.dm()
            await self.client.files_upload_v2(channel=target, **args)
            await self.send(blocks.error(
                f"I can't post files in this conversation (invite me to the channel to share them here), "
                f"so I sent {filename} to our direct messages instead."))
            return target
        target = await self.dm()
        await self.client.files_upload_v2(channel=target, **args)
        return target
