"""Buttons and checkboxes: ack at once, re-authorize from the payload's user, then do the work.

Every action is acknowledged before anything else (a checkbox tick is only acked: its state is
read from body["state"]["values"] when "Compare selected" is pressed). Button values carry ids and
names, never trust: anyone who can see a message can press its buttons, so each handler checks
the presser's access to the site the value (or the version it names) belongs to. Works from any
message and from the App Home (no channel, no response_url: answers go to the DM).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Coroutine
from typing import Any

from slack_bolt.async_app import AsyncApp
from slack_bolt.context.ack.async_ack import AsyncAck
from slack_bolt.context.respond.async_respond import AsyncRespond
from slack_sdk.web.async_client import AsyncWebClient

from bot.slack import blocks
from bot.core.errors import Busy, UserError
from bot.core.models import Device
from handlers import work
from handlers.deps import Deps
from handlers.replies import Reply
from handlers.work import Requester

log = logging.getLogger(__name__)

Work = Coroutine[Any, Any, None]
Plan = Callable[[Deps, Requester, Reply, str, dict[str, Any]], Work]


def channel_of(body: dict[str, Any]) -> str | None:
    """The conversation the action happened in; None in the App Home."""
    channel = (body.get("channel") or {}).get("id") or (body.get("container") or {}).get("channel_id")
    return str(channel) if channel else None


async def _backup(deps: Deps, who: Requester, reply: Reply, devices: list[Device], label: str) -> None:
    await reply.send(blocks.backup_started(label, len(devices), deps.service.busy(devices)))
    await work.backup(deps, who, reply, devices)


def _backup_site(deps: Deps, who: Requester, reply: Reply, value: str, body: dict[str, Any]) -> Work:
    devices = work.backup_targets(deps, who, blocks.parse_site(value))
    return _backup(deps, who, reply, devices, devices[0].site)


def _backup_device(deps: Deps, who: Requester, reply: Reply, value: str, body: dict[str, Any]) -> Work:
    devices = work.backup_targets(deps, who, *blocks.parse_device(value))
    return _backup(deps, who, reply, devices, devices[0].label)


def _open_device(deps: Deps, who: Requester, reply: Reply, value: str, body: dict[str, Any]) -> Work:
    return work.versions(deps, who, reply, work.device_for(deps, who, *blocks.parse_device(value)))


def _page(deps: Deps, who: Requester, reply: Reply, value: str, body: dict[str, Any]) -> Work:
    site, device, page = blocks.parse_page(value)
    return work.versions(deps, who, reply, work.device_for(deps, who, site, device), page, replace=True)


def _compare(deps: Deps, who: Requester, reply: Reply, value: str, body: dict[str, Any]) -> Work:
    work.device_for(deps, who, *blocks.parse_device(value))  # the list's own device: visible?
    ids = blocks.selected_versions((body.get("state") or {}).get("values") or {})
    return work.compare_selected(deps, who, reply, ids)  # each id re-authorized on its own site


PLANS: dict[str, Plan] = {
    blocks.VIEW_VERSION: lambda d, w, r, v, b: work.show(d, w, r, blocks.parse_version(v)),
    blocks.DOWNLOAD_VERSION: lambda d, w, r, v, b: work.download(d, w, r, blocks.parse_version(v)),
    blocks.SHOW_DIFF: lambda d, w, r, v, b: work.diff(d, w, r, blocks.parse_pair(v)),
    blocks.OPEN_DEVICE: _open_device,
    blocks.PAGE_VERSIONS: _page,
    blocks.COMPARE_SELECTED: _compare,
    blocks.BACKUP_SITE: _backup_site,
    blocks.BACKUP_DEVICE: _backup_device,
    blocks.OPEN_IN_BROWSER: lambda d, w, r, v, b: work.open_in_browser(d, w, r, *blocks.parse_web(v)),
}


def _listener(deps: Deps, action_id: str, plan: Plan) -> Callable[..., Coroutine[Any, Any, None]]:
    async def listener(ack: AsyncAck, body: dict[str, Any], action: dict[str, Any], respond: AsyncRespond,
                       client: AsyncWebClient) -> None:
        await ack()
        who = Requester(str(body["user"]["id"]), channel_of(body))
        reply = Reply(client, respond, who.user, who.channel)
        try:
            job = plan(deps.pinned(), who, reply, str(action.get("value", "")), body)
        except ValueError:
            log.warning("malformed %s value %r from %s", action_id, action.get("value"), who.user)
            job = reply.error("That button's value is not one I understand; run /backup again for a fresh list.")
        except UserError as exc:
            job = reply.error(str(exc))
        try:  # even a refusal is sent from a task: the HTTP answer never waits for a Slack call
            deps.tasks.spawn(job, name=f"{action_id} {action.get('value', '')} ({who.user})", on_error=reply.failed)
        except Busy as exc:  # overload only: tell them inline rather than not at all
            await reply.error(str(exc))

    listener.__name__ = f"on_{action_id}"
    return listener


async def _ack_only(ack: AsyncAck) -> None:
    """Checkbox ticks (nothing to do until Compare selected) and URL buttons (the browser opens the
    link; Slack still tells the app): acked, nothing else."""
    await ack()


def register(app: AsyncApp, deps: Deps) -> None:
    for action_id, plan in PLANS.items():
        app.action(action_id)(_listener(deps, action_id, plan))
    app.action(blocks.SELECT_VERSIONS)(_ack_only)
    app.action(blocks.OPEN_WEB)(_ack_only)
