"""Slack listeners: one register() per surface, each given its dependencies explicitly.

Also the one app-level error handler: whatever escapes a listener is logged with its traceback
and the user gets a plain sentence instead (the ack itself when it has not been sent yet, else
through respond()), never a stack trace and never silence.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from slack_bolt.async_app import AsyncApp
from slack_bolt.context.respond.async_respond import AsyncRespond
from slack_bolt.response import BoltResponse

from handlers import actions, commands, events
from handlers.deps import Deps
from handlers.replies import describe

log = logging.getLogger(__name__)


def register(app: AsyncApp, deps: Deps) -> None:
    """Attach every listener (and the one app-level error handler) to `app`."""
    commands.register(app, deps)
    actions.register(app, deps)
    events.register(app, deps)
    app.error(on_error)


async def on_error(error: Exception, body: dict[str, Any], respond: AsyncRespond | None,
                   response: BoltResponse | None) -> BoltResponse | None:
    log.error("unhandled error in a Slack listener (%s)", type(error).__name__, exc_info=error)
    text = describe(error)
    is_command = "command" in body
    if respond is not None and (response is None or not is_command):  # the ack cannot carry the message
        try:
            await respond(text=text, response_type="ephemeral")
        except Exception:
            log.warning("could not tell the user about the error", exc_info=True)
    if response is None:  # already acknowledged
        return None
    # Still answering Slack's request: 200 (a 500 shows the user "dispatch_failed"), and for a
    # slash command the sentence itself is the answer.
    answer = json.dumps({"response_type": "ephemeral", "text": text}) if is_command else ""
    return BoltResponse(status=200, body=answer, headers={"content-type": ["application/json;charset=utf-8"]})
