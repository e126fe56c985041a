"""What every Slack listener needs, passed in explicitly by the composition root."""

from __future__ import annotations

from dataclasses import dataclass

from bot.backup import BackupService, Clock
from bot.catalog import Catalog
from bot.models import Settings
from bot.tasks import TaskTracker


@dataclass(frozen=True)
class Deps:
    settings: Settings
    catalog: Catalog
    service: BackupService
    tasks: TaskTracker
    clock: Clock
