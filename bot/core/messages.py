"""The message a run leaves for a Slack channel: built by bot.slack.notify, committed by storage with
the facts it reports (the outbox), posted later by bot.slack.deliver. docs/slack.md says who hears what.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class OutboxMessage:
    """A message to enqueue.

    `parent` says which thread it belongs in:
      - None: a top-level message;
      - N > 0: a reply in the thread of existing outbox item N;
      - -k (k >= 1): a reply in the thread of the k-th message of the same batch, so -1 is the
        batch's first message. It must refer to a message earlier in the batch.
    """

    channel: str
    kind: str
    payload: dict[str, Any]  # JSON-serialisable
    parent: int | None = None
