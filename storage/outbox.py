"""The outbox: Slack messages stored in the same transaction as the facts they report.

A run's summary is committed with the run's end, so a crash can never leave a finished run that
nobody hears about, nor a message about a run that was not recorded. bot.slack.notify builds the
messages; bot.slack.deliver posts them later and retries failures; a reply waits until the message
it belongs under has been delivered, because Slack needs that message's `ts` to thread the reply.
docs/slack.md ("What the channel is told") has the guarantees.

`insert_batch` runs inside a transaction the caller holds, so other writes can carry messages;
OutboxStore is the delivery side that storage.store.Store exposes.

Delivery state (migration 0002): `begin_delivery` commits "this item may be in Slack from now on"
before the post; `mark_delivered` records Slack's ts; `mark_failed` schedules a retry (and, when
Slack said for sure that nothing was posted, clears the "may be in Slack" mark); `give_up` takes
an item Slack will never accept out of the queue without deleting it. Each channel is a FIFO:
`outbox_heads` returns only the oldest pending item of each channel, so messages reach a channel
in the order they were written, replies after the message they belong under.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import aiosqlite

from bot.core.messages import OutboxMessage
from storage.codec import from_db_time, from_db_time_or_none, to_db_time
from storage.db import Database, value


@dataclass(frozen=True)
class OutboxItem:
    """A stored message that is due for delivery."""

    id: int
    channel: str
    kind: str
    payload: dict[str, Any]
    parent_id: int | None
    parent_ts: str | None  # Slack ts of the parent once it is delivered: post with thread_ts=this
    attempts: int  # failed deliveries so far
    next_attempt_at: datetime
    created_at: datetime
    last_error: str | None = None
    sending_since: datetime | None = None  # an attempt began and may have reached Slack
    form: int = 0  # rendering to send: 0 as built, 1 plain text, 2 a short note
    parent_gave_up: bool = False  # the parent will never be posted: post this on its own


@dataclass(frozen=True)
class OutboxStatus:
    """What /healthz shows about the outbox."""

    depth: int  # pending (neither delivered nor given up)
    oldest_created_at: datetime | None  # of the pending items
    failing: list[OutboxItem]  # pending items whose last attempt failed, oldest first (capped)
    given_up: int
    last_given_up: OutboxItem | None


@dataclass(frozen=True)
class Prepared:
    """A message checked and serialised before any transaction starts."""

    channel: str
    kind: str
    payload: str
    parent: int | None


def prepare(messages: Sequence[OutboxMessage]) -> list[Prepared]:
    """Validate parents and serialise payloads, so a bad message fails before anything is written."""
    out = []
    for index, message in enumerate(messages):
        if message.parent is not None and (message.parent == 0 or -message.parent > index):
            raise ValueError(
                f"outbox message {index} has parent {message.parent}: a negative parent must name an "
                "earlier message of the same batch (-1 is the first)"
            )
        payload = json.dumps(message.payload, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
        out.append(Prepared(message.channel, message.kind, payload, message.parent))
    return out


def insert_batch(conn: sqlite3.Connection, batch: Sequence[Prepared], at: int) -> list[int]:
    """Insert a prepared batch inside the caller's transaction (on the database thread); returns
    the new ids in order."""
    ids: list[int] = []
    for message in batch:
        parent = message.parent
        if parent is not None and parent < 0:
            parent = ids[-parent - 1]
        ids.append(value(
            conn,
            "INSERT INTO outbox (channel, kind, payload, parent_id, created_at, next_attempt_at)"
            " VALUES (?, ?, ?, ?, ?, ?) RETURNING id",
            (message.channel, message.kind, message.payload, parent, at, at),
        ))
    return ids


_COLUMNS = """
SELECT o.id, o.channel, o.kind, o.payload, o.parent_id, p.ts AS parent_ts, o.attempts,
       o.next_attempt_at, o.created_at, o.last_error, o.sending_since, o.form,
       p.gave_up_at IS NOT NULL AS parent_gave_up
FROM outbox o LEFT JOIN outbox p ON p.id = o.parent_id
"""
_PENDING = "o.ts IS NULL AND o.gave_up_at IS NULL"

# The oldest pending item of each channel, due or not (the deliverer sleeps until the earliest).
_HEADS = _COLUMNS + """
WHERE o.id IN (SELECT MIN(id) FROM outbox WHERE ts IS NULL AND gave_up_at IS NULL GROUP BY channel)
ORDER BY o.id
"""

_FAILING = _COLUMNS + f" WHERE {_PENDING} AND o.last_error IS NOT NULL ORDER BY o.id LIMIT ?"


class OutboxStore(Database):
    """The delivery side of the outbox, as part of storage.store.Store."""

    async def enqueue(self, messages: Sequence[OutboxMessage], at: datetime) -> list[int]:
        """Enqueue messages that go with no other write; returns their ids (see OutboxMessage.parent)."""
        batch = prepare(messages)
        return await self._transact(lambda conn: insert_batch(conn, batch, to_db_time(at)))

    async def mark_delivered(self, item_id: int, ts: str) -> None:
        """Record Slack's ts. Idempotent: a repeated call (a retry that raced) keeps the first ts."""
        await self._update(item_id, "UPDATE outbox SET ts = ? WHERE id = ? AND ts IS NULL", (ts, item_id))

    async def mark_failed(self, item_id: int, error: str, next_attempt_at: datetime, *,
                          maybe_sent: bool = False, form: int | None = None) -> None:
        """Count a failed delivery and set when to retry; a late failure never revives a delivered item.

        `maybe_sent`: the outcome is unknown (timeout, lost connection, 5xx), so the "may be in
        Slack" mark stays and the next attempt looks before it posts; otherwise it is cleared.
        `form` switches the rendering the next attempt sends.
        """
        await self._update(
            item_id,
            "UPDATE outbox SET attempts = attempts + 1, last_error = ?, next_attempt_at = ?,"
            " sending_since = CASE WHEN ? THEN sending_since END, form = coalesce(?, form)"
            " WHERE id = ? AND ts IS NULL",
            (error, to_db_time(next_attempt_at), maybe_sent, form, item_id),
        )

    async def begin_delivery(self, item_id: int, at: datetime) -> None:
        """Commit "may be in Slack from `at` on" before posting; an earlier unknown attempt's time is kept."""
        await self._update(item_id, "UPDATE outbox SET sending_since = coalesce(sending_since, ?)"
                                    " WHERE id = ? AND ts IS NULL", (to_db_time(at), item_id))

    async def give_up(self, item_id: int, error: str, at: datetime) -> None:
        """Take an item Slack will never accept out of the queue; it is kept, with its error."""
        await self._update(item_id, "UPDATE outbox SET gave_up_at = ?, last_error = ?, attempts = attempts + 1"
                                    " WHERE id = ? AND ts IS NULL", (to_db_time(at), error, item_id))

    async def outbox_heads(self) -> list[OutboxItem]:
        """The oldest pending item of each channel (due or not), oldest first."""
        return [_item(row) for row in await self._rows(_HEADS)]

    async def outbox_depth(self) -> int:
        """How many messages are not delivered yet (given-up ones excluded)."""
        return int((await self._rows("SELECT COUNT(*) FROM outbox WHERE ts IS NULL AND gave_up_at IS NULL"))[0][0])

    async def outbox_status(self, failing_limit: int = 10) -> OutboxStatus:
        """Depth, age of the oldest pending item, the failing items and the given-up ones."""
        row = await self._row("SELECT COUNT(*), MIN(created_at) FROM outbox WHERE ts IS NULL AND gave_up_at IS NULL")
        failing = [_item(r) for r in await self._rows(_FAILING, (failing_limit,))]
        gave_up = await self._row("SELECT COUNT(*), MAX(id) FROM outbox WHERE gave_up_at IS NOT NULL")
        last = await self._row(_COLUMNS + " WHERE o.id = ?", (gave_up[1],)) if gave_up and gave_up[1] else None
        assert row is not None and gave_up is not None  # aggregates always return a row
        return OutboxStatus(depth=int(row[0]), oldest_created_at=from_db_time(row[1]) if row[1] is not None else None,
                            failing=failing, given_up=int(gave_up[0]), last_given_up=_item(last) if last else None)

    async def _update(self, item_id: int, sql: str, params: tuple[Any, ...]) -> None:
        """Run an UPDATE of undelivered item `item_id`; LookupError if no such item exists at all."""

        def update(conn: sqlite3.Connection) -> None:
            if conn.execute(sql, params).rowcount == 0 and value(conn, "SELECT 1 FROM outbox WHERE id = ?",
                                                                 (item_id,)) is None:
                raise LookupError(f"no outbox item {item_id}")

        await self._transact(update)


def _item(row: aiosqlite.Row) -> OutboxItem:
    return OutboxItem(
        id=row["id"],
        channel=row["channel"],
        kind=row["kind"],
        payload=json.loads(row["payload"]),
        parent_id=row["parent_id"],
        parent_ts=row["parent_ts"],
        attempts=row["attempts"],
        next_attempt_at=from_db_time(row["next_attempt_at"]),
        created_at=from_db_time(row["created_at"]),
        last_error=row["last_error"],
        sending_since=from_db_time_or_none(row["sending_since"]),
        form=row["form"],
        parent_gave_up=bool(row["parent_gave_up"]),
    )
