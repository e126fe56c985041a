"""What every Slack listener needs, passed in explicitly by the composition root."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime

from bot.backup.service import BackupService
from bot.core.clock import Clock
from bot.backup.catalog import Catalog
from bot.core.live import LiveSettings
from bot.core.models import Settings
from bot.slack.tasks import TaskTracker


@dataclass(frozen=True)
class Deps:
    live: LiveSettings  # the inventory in use: read `settings` at each use, it is swapped on refresh
    catalog: Catalog
    service: BackupService
    tasks: TaskTracker
    clock: Clock
    # Each site's next scheduled run (UTC), for the App Home; empty when nothing is scheduled.
    next_runs: Callable[[], Mapping[str, datetime]] = field(default=dict)

    @property
    def settings(self) -> Settings:
        return self.live.settings
