"""Redacted texts and comparisons for the pages, computed in the CPU worker and kept for a while.

A version never changes once stored, and neither does the redaction key, so what is computed
from versions can be kept as long as memory allows: the text of a version (redacted exactly as
Slack shows it: Catalog.redacted_config), its numbered lines and sections (the View page, and the
unchanged lines a fold of the Compare page opens), and a comparison's Diff and plan (its later
parts are fetched while the page is open). Each kind is kept in an LRU bounded by the
characters it holds. Two requests for the same missing value share one computation.
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Hashable, Sequence
from typing import Generic, Protocol, TypeVar

from bot.backup.offload import cpu
from bot.core.models import Version
from bot.web import configview, diffview
from bot.web.configview import ConfigLines
from bot.core.models import Diff
from bot.web.diffview import PairPlan

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")

TEXT_CHARS = 48_000_000  # about five 100,000-line exports
LINES_CHARS = 24_000_000
COMPARE_CHARS = 24_000_000


class Redacting(Protocol):
    async def redacted_config(self, version_id: int) -> str: ...


class Lru(Generic[K, V]):
    """At most `budget` weight of values, least recently used dropped first; `get` computes a
    missing value once, however many ask for it meanwhile."""

    def __init__(self, budget: int, weigh: Callable[[V], int]) -> None:
        self.budget, self.weigh = budget, weigh
        self._values: OrderedDict[K, tuple[V, int]] = OrderedDict()
        self._pending: dict[K, asyncio.Future[V]] = {}
        self._weight = 0

    def __contains__(self, key: K) -> bool:
        return key in self._values

    async def get(self, key: K, compute: Callable[[], Awaitable[V]]) -> V:
        if key in self._values:
            self._values.move_to_end(key)
            return self._values[key][0]
        if key in self._pending:
            return await asyncio.shield(self._pending[key])
        future: asyncio.Future[V] = asyncio.get_running_loop().create_future()
        self._pending[key] = future
        try:
            value = await compute()
        except asyncio.CancelledError:
            future.cancel()
            raise
        except BaseException as exc:
            future.set_exception(exc)
            future.exception()  # retrieved: nobody else may be waiting
            raise
        finally:
            del self._pending[key]
        future.set_result(value)
        self._put(key, value)
        return value

    def _put(self, key: K, value: V) -> None:
        weight = self.weigh(value)
        if weight > self.budget:
            return  # bigger than everything we may keep: computed for this request only
        self._values[key] = (value, weight)
        self._weight += weight
        while self._weight > self.budget:
            _, (_, dropped) = self._values.popitem(last=False)
            self._weight -= dropped


def _compare_weight(pairs: Sequence[tuple[Diff, PairPlan]]) -> int:
    return sum(len(line) + 60 for diff, _ in pairs for hunk in diff.hunks for line in hunk.lines)


class Texts:
    def __init__(self, catalog: Redacting) -> None:
        self.catalog = catalog
        self._texts: Lru[int, str] = Lru(TEXT_CHARS, len)
        self._lines: Lru[int, ConfigLines] = Lru(LINES_CHARS, lambda c: sum(map(len, c.lines)) + 50 * len(c.lines))
        self._compares: Lru[tuple[int, ...], list[tuple[Diff, PairPlan]]] = Lru(COMPARE_CHARS, _compare_weight)

    async def text(self, version_id: int) -> str:
        """The version's normalized config, redacted as Slack shows it."""
        return await self._texts.get(version_id, lambda: self.catalog.redacted_config(version_id))

    async def lines(self, version_id: int) -> ConfigLines:
        async def compute() -> ConfigLines:
            return await cpu(configview.config_lines, await self.text(version_id))

        return await self._lines.get(version_id, compute)

    async def compare(self, versions: Sequence[Version]) -> list[tuple[Diff, PairPlan]]:
        """Each consecutive pair of the versions, oldest first (as Catalog.compare orders them):
        its Diff and its plan."""
        ordered = sorted(versions, key=lambda v: (v.first_seen, v.id))

        async def compute() -> list[tuple[Diff, PairPlan]]:
            texts = [(v.id, await self.text(v.id)) for v in ordered]
            return await cpu(diffview.compare_plans, texts)

        return await self._compares.get(tuple(v.id for v in ordered), compute)
