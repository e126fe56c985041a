"""App Home: when a user opens the bot's Home tab, publish a dashboard of what they may see:
sites (last and next scheduled run), failing devices and devices without a recent good backup.

Events are acked by Bolt before the listener runs; the dashboard is built in a tracked task.
In the Home tab there is no channel, so a site's allowed_channels decide as bot.core.access says for
channel=None.
"""

from __future__ import annotations

import logging
from typing import Any

from slack_bolt.async_app import AsyncApp
from slack_sdk.web.async_client import AsyncWebClient

from bot.core import access
from bot.slack import blocks
from bot.core.models import DeviceStatus, Status
from bot.core.errors import Busy
from handlers.deps import Deps
from handlers.replies import describe

log = logging.getLogger(__name__)


async def publish_home(deps: Deps, client: AsyncWebClient, user: str) -> None:
    visible = access.visible_sites(deps.settings, user, None)
    names = {s.name for s in visible}
    overviews = [o for o in await deps.catalog.sites() if o.site.name in names]
    statuses: list[DeviceStatus] = []
    for site in visible:
        statuses += await deps.catalog.device_statuses(site.name)
    failing = [s for s in statuses if s.last_attempt is not None and s.last_attempt.status is Status.FAILED
               and s.device.retired_at is None]  # a retired device is never tried again: nothing to fix
    stale = [s for s in statuses if deps.catalog.is_stale(s)]
    view = blocks.app_home(overviews, failing, stale, deps.clock(), deps.next_runs())
    await client.views_publish(user_id=user, view=view)


def register(app: AsyncApp, deps: Deps) -> None:
    async def app_home_opened(event: dict[str, Any], client: AsyncWebClient) -> None:
        if event.get("tab") != "home":
            return
        user = str(event["user"])

        async def report(exc: BaseException) -> None:  # the tracker logged it; show it where they look
            view = {"type": "home", "blocks": blocks.error(describe(exc))["blocks"]}
            await client.views_publish(user_id=user, view=view)

        try:
            deps.tasks.spawn(publish_home(deps.pinned(), client, user), name=f"app_home {user}", on_error=report)
        except Busy:
            log.warning("App Home for %s skipped: too busy", user)

    app.event("app_home_opened")(app_home_opened)
