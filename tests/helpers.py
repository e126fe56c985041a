"""What several test modules share: import from here, never from another test module.

Production code has no test-only paths; what only tests need lives here.
"""

from __future__ import annotations

from datetime import datetime

from storage.codec import to_db_time
from storage.outbox import _COLUMNS, _PENDING, OutboxItem, _item
from storage.store import Store

# -- the store, as tests inspect it ------------------------------------------------------------------

# Undelivered, due, and either top-level or under a delivered (or given-up) parent; oldest first: the
# order a channel reads its messages in. (The deliverer itself takes storage's outbox_heads.)
_DUE = _COLUMNS + f"""
WHERE {_PENDING} AND o.next_attempt_at <= ?
  AND (o.parent_id IS NULL OR p.ts IS NOT NULL OR p.gave_up_at IS NOT NULL)
ORDER BY o.id
LIMIT ?
"""


async def due_outbox(store: Store, now: datetime, limit: int = 50) -> list[OutboxItem]:
    """The outbox items that could be posted at `now`, oldest first."""
    return [_item(row) for row in await store._rows(_DUE, (to_db_time(now), limit))]


async def interrupt_unfinished(store: Store, at: datetime) -> int:
    """Mark every run still 'running' interrupted (as `serve` does at start-up); how many."""
    runs = await store.unfinished_runs()
    return sum([await store.interrupt_run(run.id, at) for run in runs])
