"""What a Slack call's failure means for the outbox, and how a post is recognised in the channel.

`classify` sorts an exception from the Web API client into what the deliverer does next:
wait Retry-After (429), retry with backoff (5xx, timeouts, unreachable, unknown errors), retry
slowly (channel or token problems the bot cannot fix itself), or send a simpler form (content
Slack refuses). It also says whether the message may have been posted anyway: a post whose
answer never arrived (timeout, dropped connection, 5xx) may be in the channel, one Slack refused
with an error code, or that never connected, is not.

`token_refused` tells whether a failure is Slack refusing the token (TOKEN_REFUSED), as opposed to
Slack being unreachable, busy or refusing something else.

`carries` tells whether a message from conversations.history/replies is a given outbox item's
post: by its message metadata, or for an uploaded file by `.outbox-N.` in the file name
(`tagged`), since files cannot carry metadata.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import aiohttp
from slack_sdk.errors import SlackApiError, SlackRequestError

EVENT_TYPE = "backupbot_outbox"

# The one table of Slack error codes (and our transport codes): what each means to the deliverer
# (the sets below) and how /metrics counts it (`delivery_reason`, a closed set of reasons).

# Slack refuses the token itself: nothing will work until someone replaces it or reinstalls the app.
# `serve` stops at start-up on these (bot.slack.client); the deliverer treats them as blocked.
TOKEN_REFUSED = frozenset({
    "invalid_auth", "not_authed", "account_inactive", "token_revoked", "token_expired", "not_allowed_token_type",
})
# The token works but may not do this: a scope or a workspace permission is missing.
NOT_PERMITTED = frozenset({"team_access_not_granted", "ekm_access_denied", "missing_scope", "no_permission",
                           "access_denied"})
# The channel cannot take the message: the bot is not in it, it is gone, archived or restricted.
CHANNEL_REFUSED = frozenset({
    "channel_not_found", "not_in_channel", "is_archived", "channel_is_archived", "restricted_action",
    "restricted_action_read_only_channel", "restricted_action_thread_only_channel",
})
BLOCKED = TOKEN_REFUSED | NOT_PERMITTED | CHANNEL_REFUSED
RATE_LIMITED = frozenset({"ratelimited", "rate_limited"})
# Slack's own trouble, said with an error code (a bare 5xx is "http_5NN").
SLACK_TROUBLE = frozenset({"internal_error", "fatal_error", "service_unavailable", "request_timeout"})
# Ours, for a call that got no answer from Slack (classify below).
TRANSPORT = frozenset({"timeout", "connection_error", "network"})
REJECTED = frozenset({
    "invalid_blocks", "invalid_blocks_format", "msg_too_long", "msg_blocks_too_long", "no_text",
    "too_many_attachments", "invalid_attachments", "invalid_metadata_format", "invalid_metadata_schema",
    "metadata_too_large", "metadata_must_be_sent_from_app", "snippet_too_large", "unknown_snippet_type",
    "invalid_arguments", "invalid_thread_ts", "thread_not_found", "cannot_reply_to_message",
    "file_upload_size_restricted", "invalid_file_type", "file_too_large",
})

# The parent message is gone (deleted in Slack): a reply is sent on its own instead.
THREAD_GONE = frozenset({"invalid_thread_ts", "thread_not_found", "cannot_reply_to_message"})

# How /metrics counts a failed delivery: each reason and the codes it covers. Anything else is "other".
DELIVERY_REASONS: Mapping[str, frozenset[str]] = {
    "rate_limited": RATE_LIMITED,
    "network": TRANSPORT,
    "auth": TOKEN_REFUSED | NOT_PERMITTED,
    "channel": CHANNEL_REFUSED,
    "invalid_message": REJECTED,
    "slack_error": SLACK_TROUBLE,
}


def delivery_reason(code: str) -> str | None:
    """The metrics reason of a failure code (a reason's own name counts as itself); None if unknown."""
    if code in DELIVERY_REASONS:
        return code
    if code.startswith("http_5"):
        return "slack_error"
    return next((reason for reason, codes in DELIVERY_REASONS.items() if code in codes), None)


@dataclass(frozen=True)
class Failure:
    """A failed call, classified: what to record, when to retry, whether it may have posted."""

    code: str  # Slack's error code, or timeout / connection_error / network / http_NNN
    kind: str  # "rate_limited" | "transient" | "blocked" | "rejected"
    maybe_sent: bool
    retry_after: float | None = None


def classify(exc: BaseException, *, posting: bool) -> Failure:
    """What a failed Slack call means. `posting`: the call could have created a message (so an
    answer lost on the way back leaves the outcome unknown)."""
    if isinstance(exc, SlackApiError):
        status = int(getattr(exc.response, "status_code", 0) or 0)
        data = getattr(exc.response, "data", None)
        code = str(data.get("error")) if isinstance(data, dict) and data.get("error") else f"http_{status}"
        if status == 429 or code in RATE_LIMITED:
            headers: Mapping[str, str] = getattr(exc.response, "headers", None) or {}
            try:
                after = float(headers.get("Retry-After") or headers.get("retry-after") or 1)
            except ValueError:
                after = 1.0
            return Failure("ratelimited", "rate_limited", False, max(after, 0.0))
        if status >= 500:
            return Failure(code, "transient", posting)
        if code in BLOCKED:
            return Failure(code, "blocked", False)
        if code in REJECTED:
            return Failure(code, "rejected", False)
        return Failure(code, "transient", False)  # Slack answered "no": nothing was posted
    if isinstance(exc, aiohttp.ClientConnectorError):  # never connected: nothing was sent
        return Failure("connection_error", "transient", False)
    if isinstance(exc, (TimeoutError, asyncio.TimeoutError)):
        return Failure("timeout", "transient", posting)
    if isinstance(exc, SlackRequestError):  # e.g. the file bytes were refused before any share
        return Failure("upload_failed", "transient", False)
    if isinstance(exc, (aiohttp.ClientError, OSError)):
        return Failure("network", "transient", posting)
    return Failure(f"internal:{type(exc).__name__}", "transient", posting)


def token_refused(failure: Failure) -> bool:
    return failure.kind == "blocked" and failure.code in TOKEN_REFUSED


def carries(message: Mapping[str, Any], item_id: int) -> bool:
    """Whether a Slack message is outbox item `item_id`'s post (metadata, or an uploaded file's name)."""
    meta = message.get("metadata") or {}
    if meta.get("event_type") == EVENT_TYPE and str((meta.get("event_payload") or {}).get("outbox_id")) == str(item_id):
        return True
    pattern = re.compile(rf"\.outbox-{item_id}\.")
    return any(pattern.search(str(f.get("name") or "")) for f in message.get("files") or [])


def tagged(filename: str, item_id: int) -> str:
    """`lab-r1-3-7.diff` -> `lab-r1-3-7.outbox-42.diff`: how an uploaded file is found again."""
    stem, dot, ext = filename.rpartition(".")
    return f"{stem}.outbox-{item_id}.{ext}" if dot else f"{filename}.outbox-{item_id}.txt"
