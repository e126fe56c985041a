"""What every Slack listener needs, passed in explicitly by the composition root.

`live` is the inventory in use, swapped when the inventory source is refreshed (bot.core.live). Each
listener takes `pinned()` at its start: the request's checks, its answer and the work after the ack
then see one inventory, whatever a refresh does meanwhile; the next request sees the new one."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Protocol

from bot.backup.grep import Grep
from bot.backup.service import BackupService
from bot.core.clock import Clock
from bot.backup.catalog import Catalog
from bot.core.live import LiveSettings
from bot.core.models import Settings, Version
from bot.routeros.grep import Query
from bot.slack.tasks import TaskTracker


class WebLinks(Protocol):
    """Signed links to the browser pages for one Slack user (bot.web.links.Linker); None where the
    pages are off or that user may not see the site there."""

    def home(self, user: str) -> str | None: ...
    def site(self, user: str, site: str) -> str | None: ...
    def device(self, user: str, site: str, device: str) -> str | None: ...
    def version(self, user: str, version: Version) -> str | None: ...
    def compare(self, user: str, versions: Sequence[Version]) -> str | None: ...
    def search(self, user: str, query: Query, site: str | None = None, device: str | None = None) -> str | None: ...


@dataclass(frozen=True)
class Deps:
    live: LiveSettings  # the inventory in use: read `settings` at each use, it is swapped on refresh
    catalog: Catalog
    service: BackupService
    grep: Grep
    tasks: TaskTracker
    clock: Clock
    # Each site's next scheduled run (UTC), for the App Home; empty when nothing is scheduled.
    next_runs: Callable[[], Mapping[str, datetime]] = field(default=dict)
    web: WebLinks | None = None  # web.base_url set: "Open in browser" buttons

    @property
    def settings(self) -> Settings:
        return self.live.settings

    def pinned(self) -> Deps:
        """These dependencies on the inventory in use now, for one request from its start to its end."""
        settings = self.settings
        return replace(self, live=LiveSettings(settings), catalog=self.catalog.pinned(settings))
