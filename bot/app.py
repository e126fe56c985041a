"""Composition root of the backend: the one place that builds the store, the SSH worker, the
service, the catalog, the announcer and the fleet search, and wires them. The CLI and `serve` (bot.serve.server, which
adds Slack around it) both open it."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass

from bot.backup.grep import Grep
from bot.backup.service import BackupService
from bot.backup.textcache import TextCache, cache_dir
from bot.core.clock import Clock, utcnow
from bot.backup.catalog import Catalog
from bot.ssh.collector import Collector
from bot.core.models import RunSummary, Settings
from bot.slack.notify import Announcer
from bot.ssh.worker import SshWorker
from storage.store import Store


@dataclass
class Backend:
    settings: Settings
    store: Store
    service: BackupService
    catalog: Catalog
    announce: Announcer
    grep: Grep


@asynccontextmanager
async def open_backend(
    settings: Settings, *, clock: Clock = utcnow, collector: Collector | None = None,
    observe: Callable[[RunSummary], None] | None = None,
) -> AsyncIterator[Backend]:
    """Store, service and catalog. Every run enqueues what the channel should hear (bot.slack.notify),
    whoever starts it: `serve` delivers it, also for runs made by the CLI in another process."""
    store = await Store.open(settings.storage_path)
    try:
        catalog = Catalog(settings, store, clock)
        announce = Announcer(settings, store, catalog)
        async with SshWorker(collector or Collector()) as ssh:
            service = BackupService(settings, ssh, store, clock, announce=announce, observe=observe)
            grep = Grep(store, TextCache(cache_dir(settings.storage_path), store))
            yield Backend(settings, store, service, catalog, announce, grep)
    finally:
        await store.close()
