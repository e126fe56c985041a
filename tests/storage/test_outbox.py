"""The outbox's delivery state in a real SQLite file: per-channel FIFO heads, the "may be in Slack"
mark, simpler forms, giving up (and what happens to the replies), and the readiness (/healthz/ready) status."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from bot.core.messages import OutboxMessage
from storage.store import Store
from tests.helpers import due_outbox

T0 = datetime(2026, 3, 10, 2, 0, tzinfo=timezone.utc)


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Store]:
    async with await Store.open(tmp_path / "db.sqlite") as s:
        yield s


async def test_heads_are_the_oldest_pending_item_of_each_channel(store: Store) -> None:
    """One head per channel, oldest first; a failed head keeps the rest of ITS channel waiting
    (order within a channel), while another channel's head is still offered."""
    a1, a2, b1 = await store.enqueue([OutboxMessage("CA", "summary", {"n": 1}),
                                      OutboxMessage("CA", "drift", {"n": 2}, parent=-1),
                                      OutboxMessage("CB", "summary", {"n": 3})], T0)
    assert [h.id for h in await store.outbox_heads()] == [a1, b1]
    await store.mark_failed(a1, "internal_error", at(60))
    heads = {h.channel: h for h in await store.outbox_heads()}
    assert heads["CA"].id == a1 and heads["CA"].next_attempt_at == at(60)  # a2 is not offered past it
    await store.mark_delivered(a1, "1.000001")
    [ca, cb] = await store.outbox_heads()
    assert (ca.id, ca.parent_ts, cb.id) == (a2, "1.000001", b1)


async def test_the_may_be_sent_mark_is_kept_until_slack_says_no(store: Store) -> None:
    """begin_delivery marks the item (keeping the FIRST attempt's time); a failure with unknown
    outcome keeps the mark; a definite "not posted" clears it."""
    [item] = await store.enqueue([OutboxMessage("C1", "summary", {})], T0)
    await store.begin_delivery(item, at(1))
    await store.mark_failed(item, "timeout", at(5), maybe_sent=True)
    await store.begin_delivery(item, at(6))
    [head] = await store.outbox_heads()
    assert (head.sending_since, head.attempts, head.last_error) == (at(1), 1, "timeout")
    await store.mark_failed(item, "not_in_channel", at(600))
    [head] = await store.outbox_heads()
    assert head.sending_since is None and head.attempts == 2


async def test_a_simpler_form_and_giving_up_release_the_replies(store: Store) -> None:
    """mark_failed(form=...) switches the rendering; a given-up parent leaves the queue (not the
    database) and its replies become heads flagged to be posted on their own."""
    parent, child = await store.enqueue([OutboxMessage("C1", "summary", {"text": "x"}),
                                         OutboxMessage("C1", "drift", {"text": "y"}, parent=-1)], T0)
    await store.mark_failed(parent, "invalid_blocks", T0, form=1)
    assert (await store.outbox_heads())[0].form == 1
    await store.give_up(parent, "invalid_blocks", at(1))
    [head] = await store.outbox_heads()
    assert (head.id, head.parent_ts, head.parent_gave_up) == (child, None, True)
    assert await store.outbox_depth() == 1
    [due] = await due_outbox(store, at(1))
    assert due.id == child


async def test_outbox_status_reports_depth_age_failures_and_given_up(store: Store) -> None:
    """What /healthz/ready shows: pending count, oldest pending, failing items with errors, given up."""
    assert (await store.outbox_status()).depth == 0
    a, b, c = await store.enqueue([OutboxMessage("C1", "summary", {}), OutboxMessage("C2", "summary", {}),
                                   OutboxMessage("C3", "alert", {})], T0)
    await store.mark_failed(b, "channel_not_found", at(600))
    await store.give_up(c, "invalid_blocks", at(2))
    await store.mark_delivered(a, "1.1")
    status = await store.outbox_status()
    assert (status.depth, status.oldest_created_at, status.given_up) == (1, T0, 1)
    assert [(i.id, i.last_error) for i in status.failing] == [(b, "channel_not_found")]
    assert status.last_given_up is not None and status.last_given_up.id == c


async def test_an_unfinished_run_is_interrupted_once_with_its_messages(store: Store) -> None:
    """interrupt_run marks a running run interrupted and enqueues its messages in one transaction;
    a second call (or a finished run) writes nothing."""
    run_id = await store.start_run("schedule", T0, "lab")
    assert [r.id for r in await store.unfinished_runs()] == [run_id]
    assert await store.interrupt_run(run_id, at(5), [OutboxMessage("C1", "change", {"text": "x"})])
    assert not await store.interrupt_run(run_id, at(6), [OutboxMessage("C1", "change", {"text": "y"})])
    assert await store.unfinished_runs() == [] and await store.outbox_depth() == 1
    assert (await store.run(run_id)).status == "interrupted"
