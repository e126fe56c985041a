"""Composition root of the backend: the one place that builds the store, the SSH worker, the
service, the catalog, the announcer, the fleet search and the git mirror, and wires them. The CLI
and `serve` (bot.serve.server, which adds Slack around it) both open it."""

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
from bot.interop.mirror import CLOSE_TIMEOUT, GitMirror
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
    mirror: GitMirror | None = None  # `git:` in the config


@asynccontextmanager
async def open_backend(
    settings: Settings, *, clock: Clock = utcnow, collector: Collector | None = None,
    observe: Callable[[RunSummary], None] | None = None,
) -> AsyncIterator[Backend]:
    """Store, service and catalog. Every run enqueues what the channel should hear (bot.slack.notify),
    whoever starts it: `serve` delivers it, also for runs made by the CLI in another process. With a
    git mirror, every finished run starts a sync in the background, and closing waits for the last one
    (bounded: bot.interop.mirror)."""
    store = await Store.open(settings.storage_path)
    mirror = GitMirror(settings.git, store, clock) if settings.git is not None else None

    def observed(summary: RunSummary) -> None:
        if mirror is not None:
            mirror.kick()
        if observe is not None:
            observe(summary)

    finished = False
    try:
        catalog = Catalog(settings, store, clock)
        announce = Announcer(settings, store, catalog)
        async with SshWorker(collector or Collector()) as ssh:
            service = BackupService(settings, ssh, store, clock, announce=announce, observe=observed)
            grep = Grep(store, TextCache(cache_dir(settings.storage_path), store))
            yield Backend(settings, store, service, catalog, announce, grep, mirror)
        finished = True
    finally:
        try:
            if mirror is not None:  # interrupted (Ctrl-C, an error): stop it now; the next run catches up
                await mirror.close(CLOSE_TIMEOUT if finished else 0.0)
        finally:
            await store.close()
