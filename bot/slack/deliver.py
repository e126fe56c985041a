"""The outbox deliverer: posts queued messages to Slack, each exactly once, for as long as it takes.

One task in `backupbot serve`. The guarantees (order per channel, pacing, what is retried how,
simpler forms for refused content, never twice, and their limits) are docs/slack.md, "Delivery";
this module is how they are kept:

- Each channel is a queue: storage's `outbox_heads` gives its oldest pending item, so replies follow
  their parent; channels proceed independently, at most one post per `Tuning.spacing` each.
- Never twice: the item is marked "may be in Slack" (committed) before the post, and every post
  carries message metadata {"event_type": "backupbot_outbox", "event_payload": {"outbox_id": N}}
  (an uploaded file has ".outbox-N." in its name: bot.slack.outcome.tagged). An item found still
  marked is first looked for in the channel (`_find`: conversations.history / .replies) and, if
  there, marked delivered instead of posted again.
- What a failure means is bot.slack.outcome.classify's answer: wait Retry-After, back off, retry
  slowly (`blocked_retry`), or send the next simpler form (AS_BUILT, PLAIN, NOTE), then give up.
  Every failure is counted (DeliveryMetrics) and logged.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any, Protocol

from slack_sdk.web.async_client import AsyncWebClient

from bot.core.clock import Clock
from bot.core.logs import log_event
from bot.slack.outcome import EVENT_TYPE, THREAD_GONE, Failure, carries, classify, tagged
from storage.outbox import OutboxItem

log = logging.getLogger(__name__)

AS_BUILT, PLAIN, NOTE = 0, 1, 2  # OutboxItem.form


class DeliveryMetrics(Protocol):
    """What the deliverer reports (bot.serve.metrics.Metrics)."""

    def delivery_failed(self, code: str) -> None: ...
    def set_outbox_depth(self, n: int) -> None: ...


class DeliveryStore(Protocol):
    async def outbox_heads(self) -> list[OutboxItem]: ...
    async def begin_delivery(self, item_id: int, at: datetime) -> None: ...
    async def mark_delivered(self, item_id: int, ts: str) -> None: ...
    async def mark_failed(self, item_id: int, error: str, next_attempt_at: datetime, *,
                          maybe_sent: bool = False, form: int | None = None) -> None: ...
    async def give_up(self, item_id: int, error: str, at: datetime) -> None: ...
    async def outbox_depth(self) -> int: ...


@dataclass(frozen=True)
class Tuning:
    """Production defaults; tests shorten the waits."""

    spacing: float = 1.0  # seconds between two posts to one channel
    backoff: float = 2.0  # first retry after a transient failure; doubles per attempt
    max_backoff: float = 300.0
    blocked_retry: float = 600.0  # channel/token problems: try again this often
    poll: float = 30.0  # look for messages other processes (the CLI) enqueued
    reconcile_margin: float = 600.0  # look this far before an attempt began (clock skew)
    history_pages: int = 10  # of 200 messages each, when looking for an earlier attempt
    stop_grace: float = 5.0  # at shutdown, let the post in progress finish this long


class Deliverer:
    def __init__(self, store: DeliveryStore, client: AsyncWebClient, clock: Clock, *,
                 metrics: DeliveryMetrics | None = None, tuning: Tuning = Tuning()) -> None:
        self.store, self.client, self.clock, self.metrics, self.tuning = store, client, clock, metrics, tuning
        self.delivered = 0  # since start (for /healthz)
        self._bell = asyncio.Event()
        self._stopping = False
        self._task: asyncio.Task[None] | None = None
        self._last_post: dict[str, float] = {}

    # -- lifecycle -----------------------------------------------------------------------------
    def start(self) -> None:
        self._task = asyncio.create_task(self.run(), name="outbox deliverer")

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    def wake(self) -> None:
        """Something was enqueued: look now instead of at the next poll."""
        self._bell.set()

    async def stop(self) -> None:
        """Finish the post in progress (up to tuning.stop_grace s), then stop; what is queued stays queued."""
        self._stopping = True
        self._bell.set()
        if self._task is None:
            return
        with contextlib.suppress(TimeoutError, asyncio.CancelledError):
            await asyncio.wait_for(asyncio.shield(self._task), self.tuning.stop_grace)
        if not self._task.done():
            self._task.cancel()  # a cancelled post keeps its "may be in Slack" mark: reconciled later
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def run(self) -> None:
        while not self._stopping:
            try:
                heads = await self.store.outbox_heads()
            except Exception:
                log.exception("reading the outbox failed")
                await self._nap(self.tuning.poll)
                continue
            now = self.clock()
            ready = [h for h in heads if h.parent_id is None or h.parent_ts is not None or h.parent_gave_up]
            due = [h for h in ready if h.next_attempt_at <= now]  # (a reply waits for its parent's ts)
            if due:
                progress = await asyncio.gather(*(self._deliver(h) for h in due))
                await self._refresh_depth()
                if not any(progress):
                    await self._nap(1.0)  # only unexpected errors: don't spin
                continue
            await self._refresh_depth()
            waits = [(h.next_attempt_at - now).total_seconds() for h in ready]
            await self._nap(min([*waits, self.tuning.poll]))

    async def _nap(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._bell.wait(), max(seconds, 0.0))
        self._bell.clear()

    async def _refresh_depth(self) -> None:
        if self.metrics is not None:
            with contextlib.suppress(Exception):
                self.metrics.set_outbox_depth(await self.store.outbox_depth())

    # -- one item ------------------------------------------------------------------------------
    async def _deliver(self, item: OutboxItem) -> bool:
        """Deliver (or reconcile, or reschedule) one item; False only if even that failed."""
        posting = False
        try:
            if item.sending_since is not None:
                ts = await self._find(item)
                if ts is not None:
                    await self.store.mark_delivered(item.id, ts)
                    log_event(log, logging.INFO, "slack message was already delivered", outbox_id=item.id,
                              channel=item.channel, kind=item.kind, ts=ts)
                    return True
            await self._pace(item.channel)
            await self.store.begin_delivery(item.id, self.clock())
            posting = True
            ts = await self._send(item)
            self._last_post[item.channel] = time.monotonic()
            await self.store.mark_delivered(item.id, ts)
            self.delivered += 1
            log_event(log, logging.INFO, "slack message delivered", outbox_id=item.id, channel=item.channel,
                      kind=item.kind, ts=ts, form=item.form, attempts=item.attempts + 1)
            return True
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            failure = classify(exc, posting=posting)
            if not posting and item.sending_since is not None:
                # Looking for an earlier attempt failed: that attempt may still have posted.
                failure = replace(failure, maybe_sent=True)
            if failure.code.startswith("internal:"):
                log.exception("delivering outbox item %d failed", item.id)
            try:
                await self._failed(item, failure)
            except Exception:
                log.exception("recording the failure of outbox item %d failed", item.id)
                return False
            return True

    async def _failed(self, item: OutboxItem, f: Failure) -> None:
        if self.metrics is not None:
            self.metrics.delivery_failed(f.code)
        now = self.clock()
        fields = {"outbox_id": item.id, "channel": item.channel, "kind": item.kind, "error": f.code,
                  "failure": f.kind, "attempt": item.attempts + 1, "maybe_sent": f.maybe_sent}
        if f.kind == "rejected":
            if item.form >= NOTE:
                await self.store.give_up(item.id, f.code, now)
                log_event(log, logging.ERROR, "slack refused the message in every form; given up", **fields)
                return
            await self.store.mark_failed(item.id, f.code, now, form=item.form + 1)
            log_event(log, logging.WARNING, "slack refused the message; sending a simpler form",
                      form=item.form + 1, **fields)
            return
        if f.kind == "rate_limited":
            delay = f.retry_after if f.retry_after is not None else 1.0
        elif f.kind == "blocked":
            delay = self.tuning.blocked_retry
        else:
            delay = min(self.tuning.max_backoff, self.tuning.backoff * 2 ** min(item.attempts, 30))
        await self.store.mark_failed(item.id, f.code, now + timedelta(seconds=delay), maybe_sent=f.maybe_sent)
        log_event(log, logging.ERROR if f.kind == "blocked" else logging.WARNING, "slack delivery failed",
                  retry_in=round(delay, 2), **fields)

    async def _pace(self, channel: str) -> None:
        last = self._last_post.get(channel)
        if last is not None:
            wait = self.tuning.spacing - (time.monotonic() - last)
            if wait > 0:
                await asyncio.sleep(wait)

    # -- Slack calls ---------------------------------------------------------------------------
    def _thread(self, item: OutboxItem) -> str | None:
        """Where a reply goes: its parent's thread, unless the parent was given up or is gone."""
        if item.parent_gave_up or (item.form > AS_BUILT and item.last_error in THREAD_GONE):
            return None
        return item.parent_ts

    async def _send(self, item: OutboxItem) -> str:
        payload = item.payload
        file = payload.get("file")
        if item.form >= NOTE:
            note = (f"backupbot could not post a {item.kind} message here (outbox #{item.id}; "
                    f"Slack said {item.last_error or 'no'}). The server's log has it; /backup shows the same data.")
            return await self._post(item, note, None)
        if file is not None:
            return await self._upload(item, file, snippet=item.form == AS_BUILT)
        return await self._post(item, str(payload.get("text") or ""),
                                payload.get("blocks") if item.form == AS_BUILT else None)

    async def _post(self, item: OutboxItem, text: str, blocks: Any) -> str:
        response = await self.client.chat_postMessage(
            channel=item.channel, text=text, blocks=blocks, thread_ts=self._thread(item),
            metadata={"event_type": EVENT_TYPE, "event_payload": {"outbox_id": item.id}},
            unfurl_links=False, unfurl_media=False)
        return str(response["ts"])

    async def _upload(self, item: OutboxItem, file: Mapping[str, Any], *, snippet: bool) -> str:
        response = await self.client.files_upload_v2(
            channel=item.channel, thread_ts=self._thread(item), content=str(file["content"]),
            filename=tagged(str(file["filename"]), item.id), title=str(file.get("title") or file["filename"]),
            snippet_type=file.get("snippet_type") if snippet else None)
        uploaded = response.get("file") or {}
        # The share's ts appears asynchronously in Slack; the file id marks delivery just as well
        # (nothing threads under a file).
        for shares in (uploaded.get("shares") or {}).values():
            for ts in (s.get("ts") for s in shares.get(item.channel, [])):
                if ts:
                    return str(ts)
        return f"file:{uploaded.get('id', '?')}"

    async def _find(self, item: OutboxItem) -> str | None:
        """The ts of this item's post if it is already in the channel (or thread), else None."""
        assert item.sending_since is not None
        oldest = f"{(item.sending_since - timedelta(seconds=self.tuning.reconcile_margin)).timestamp():.6f}"
        thread = self._thread(item)
        cursor: str | None = None
        for _ in range(self.tuning.history_pages):
            args: dict[str, Any] = {"channel": item.channel, "oldest": oldest, "limit": 200,
                                    "include_all_metadata": True}
            if cursor:
                args["cursor"] = cursor
            if thread is not None:
                response = await self.client.conversations_replies(ts=thread, **args)
            else:
                response = await self.client.conversations_history(**args)
            for message in response.get("messages") or []:
                if carries(message, item.id):
                    return str(message["ts"])
            cursor = (response.get("response_metadata") or {}).get("next_cursor") or None
            if not cursor:
                return None
        log_event(log, logging.WARNING, "reconciliation stopped after the page limit; posting",
                  outbox_id=item.id, channel=item.channel, pages=self.tuning.history_pages)
        return None
