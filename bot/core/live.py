"""The one holder of the current Settings, for everything that must follow a refreshed inventory.

Settings stay immutable: a refresh (bot.inventory.refresh) builds a whole new Settings and
`replace`s it here, in one assignment, between two awaits of the event loop, so nobody ever sees
half an inventory. Consumers (the scheduler, the catalog, the announcer, the Slack handlers, the
browser pages and the Linker of their links, readiness) keep the holder, never a Settings, and read
`.settings` at each use; a piece of work that must stay consistent takes ONE snapshot at its start
and keeps it (a run backs up the devices it started with; a Slack or page request pins the catalog:
Catalog.pinned). The fleet search is handed the devices of its request's snapshot; the git mirror
and the importers' history work from the database and the Settings they are given. Listeners
hear of each replacement synchronously, old and new in hand (the scheduler re-plans its slots);
one that raises is logged and does not stop the others.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from bot.core.models import Settings

log = logging.getLogger(__name__)

Listener = Callable[[Settings, Settings], None]


class LiveSettings:
    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._listeners: list[Listener] = []

    @classmethod
    def of(cls, settings: Settings | LiveSettings) -> LiveSettings:
        """The holder itself, or a new one around a fixed Settings (the CLI's one-shot commands, tests)."""
        return settings if isinstance(settings, LiveSettings) else cls(settings)

    @property
    def settings(self) -> Settings:
        return self._settings

    def replace(self, settings: Settings) -> None:
        """Make `settings` the current one and tell every listener. (Whether it differs is the caller's
        question: comparing two inventories of thousands of devices is work for a thread, not the loop.)"""
        old = self._settings
        self._settings = settings
        for listener in list(self._listeners):
            try:
                listener(old, settings)
            except Exception:
                log.exception("a listener of the inventory failed (%r)", listener)

    def subscribe(self, listener: Listener) -> Callable[[], None]:
        """Call `listener(old, new)` after each replacement; returns the function that unsubscribes."""
        self._listeners.append(listener)
        return lambda: self._listeners.remove(listener) if listener in self._listeners else None
