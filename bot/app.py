"""Composition root of the backend: the one place that builds the store, the SSH worker, the
service, the catalog, the announcer, the inventory, the fleet search and the git mirror, and wires
them. The CLI and `serve` (bot.serve.server, which adds Slack around it) both open it.

The inventory in use is one LiveSettings (bot.core.live) shared by the catalog, the announcer, the
fleet search, the git mirror and everything `serve` adds; with an `inventory:` source it is the file
merged with the source's list, read once here (bot.inventory.refresh), and kept current by `serve`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass

from bot.backup.grep import Grep
from bot.backup.service import BackupService
from bot.backup.textcache import TextCache, cache_dir
from bot.core.clock import Clock, utcnow
from bot.backup.catalog import Catalog
from bot.core.live import LiveSettings
from bot.inventory import open_source
from bot.inventory.refresh import Refresher
from bot.ssh.collector import Collector
from bot.core.models import RunSummary, Settings
from bot.interop.mirror import CLOSE_TIMEOUT, GitMirror
from bot.slack.notify import Announcer
from bot.ssh.worker import SshWorker
from storage.store import Store


@dataclass
class Backend:
    live: LiveSettings
    store: Store
    service: BackupService
    catalog: Catalog
    announce: Announcer
    grep: Grep
    mirror: GitMirror | None = None  # `git:` in the config
    refresher: Refresher | None = None  # with an `inventory:` source
    # Why the inventory in use is not a fresh read of the source (it was unreadable), for the CLI to say.
    inventory_note: str | None = None

    @property
    def settings(self) -> Settings:
        """The inventory in use now (read it at each use; it changes when the source is refreshed)."""
        return self.live.settings


@asynccontextmanager
async def open_backend(
    settings: Settings, *, clock: Clock = utcnow, collector: Collector | None = None,
    observe: Callable[[RunSummary], None] | None = None, read_source: bool = True,
) -> AsyncIterator[Backend]:
    """Store, inventory, service and catalog. Every run enqueues what the channel should hear
    (bot.slack.notify), whoever starts it: `serve` delivers it, also for runs made by the CLI in
    another process. `read_source=False` uses the last good inventory list without reading the source.
    With a git mirror, every finished run starts a sync in the background, and closing waits for the
    last one (bounded: bot.interop.mirror)."""
    store = await Store.open(settings.storage_path)
    mirror = GitMirror(settings.git, store, clock) if settings.git is not None else None

    def observed(summary: RunSummary) -> None:
        if mirror is not None:
            mirror.kick()
        if observe is not None:
            observe(summary)

    finished = False
    try:
        live = LiveSettings(settings)
        refresher, note = None, None
        if settings.inventory is not None:
            refresher = Refresher(settings, live, store, open_source(settings.inventory), settings.inventory, clock)
            if read_source:
                note = await refresher.start()
            else:
                await refresher.use_stored()
        catalog = Catalog(live, store, clock)
        announce = Announcer(live, store, catalog)
        async with SshWorker(collector or Collector()) as ssh:
            service = BackupService(settings, ssh, store, clock, announce=announce, observe=observed)
            grep = Grep(store, TextCache(cache_dir(settings.storage_path), store))
            try:
                yield Backend(live, store, service, catalog, announce, grep, mirror, refresher, note)
            finally:
                await grep.close()
        finished = True
    finally:
        try:
            if mirror is not None:  # interrupted (Ctrl-C, an error): stop it now; the next run catches up
                await mirror.close(CLOSE_TIMEOUT if finished else 0.0)
        finally:
            await store.close()
