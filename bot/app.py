"""Composition root: the only place that builds concrete objects and wires them together."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

from bot.backup import BackupService, Clock, utcnow
from bot.catalog import Catalog
from bot.collector import Collector
from bot.models import Settings
from bot.sshworker import SshWorker
from storage.store import Store


@dataclass
class Backend:
    settings: Settings
    store: Store
    service: BackupService
    catalog: Catalog


@asynccontextmanager
async def open_backend(
    settings: Settings, *, clock: Clock = utcnow, collector: Collector | None = None
) -> AsyncIterator[Backend]:
    store = await Store.open(settings.storage_path)
    try:
        async with SshWorker(collector or Collector()) as ssh:
            service = BackupService(settings, ssh, store, clock)
            yield Backend(settings, store, service, Catalog(settings, store, clock))
    finally:
        await store.close()
