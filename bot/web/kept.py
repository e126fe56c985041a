"""(CPU worker) The pages' texts and comparisons, computed and kept where they are used: in the CPU
worker process (bot.backup.offload). bot.web.texts asks for them from the bot's process.

A page needs a small part of a big value: a comparison's counts and the rows of one of its parts, 50
unchanged lines of a fold, a window of a config. The big values stay here, where they are computed:
the display lines of each version's redacted text (9 MB for a 100,000-line export) and each
comparison's Diff and plan. Passing them between processes cost more than computing them: each
9 MB crossing is some 15-30 ms of pickling and pipe, and a cold Compare page of two 100,000-line
exports made ten crossings (export in, text out, text in, redacted text out, for each version; both
texts in and the Diff out for the diff). Now only the versions' blobs come in (a few hundred KB to
a few MB, decoded here: storage.codec.unpack_chains), and only the answer goes out.

A question about a version this process does not hold answers `Missing(version ids)`: the caller
asks again with those versions' blobs (`sources`), or with their texts made by the second worker
meanwhile (`redacted`, `hold`: bot.web.texts). So a worker that was replaced, or values dropped to
stay within the budgets, cost a recomputation, never a wrong answer. Values are kept per `Scope`
(one per bot.web.texts.Texts, which serves one store with one redaction key), so version ids of
two databases never meet. Each kind is kept in an LRU bounded by the characters it holds (plus a
per-line cost), like the caches of the bot's process before it.

The texts are redacted exactly as Slack shows them (bot.backup.catalog.redacted_text), and the
diff is bot.routeros.diff's: the page and Slack never disagree.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Hashable, Mapping, Sequence
from dataclasses import dataclass
from typing import Generic, NamedTuple, TypeVar

from bot.backup.catalog import Chain, redacted_text
from bot.backup.offload import Parcel, leave, take
from bot.core.models import Diff
from bot.routeros import diff as diffing
from bot.web import configview, diffview
from bot.web.configview import ConfigWindow, Section
from bot.web.diffview import Item, PairCounts, PairPlan
from storage.codec import unpack_chains

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")

LINE_COST = 60  # bytes a line costs beyond its characters (its str object and its slot in a list)
CONFIGS_BUDGET = 64_000_000  # about four 100,000-line exports (15 M each)
COMPARES_BUDGET = 32_000_000  # a comparison of two of them with 14 % of their lines changed takes 9 M

# version id -> its blobs (storage.store.Store.chains), or its redacted text made beside (`redacted`)
Sources = Mapping[int, Chain | Parcel]


class Scope(NamedTuple):
    """Whose values: one store's (`name`, unique to a bot.web.texts.Texts), redacted with `key`."""

    name: str
    key: bytes


class Missing(NamedTuple):
    """The answer needs these versions, which this process does not hold: ask again with their blobs."""

    versions: tuple[int, ...]


@dataclass(frozen=True)
class Compared:
    """A comparison's pairs (each consecutive pair's counts, oldest first) and the rows of the part
    shown of the pairs asked about (by pair index)."""

    pairs: tuple[PairCounts, ...]
    items: Mapping[int, tuple[Item, ...]]


class Kept(Generic[K, V]):
    """At most `budget` weight of values, least recently used dropped first. (This process runs one
    call at a time: no locks.)"""

    def __init__(self, budget: int, weigh: Callable[[V], int]) -> None:
        self.budget, self.weigh = budget, weigh
        self._values: OrderedDict[K, tuple[V, int]] = OrderedDict()
        self._weight = 0

    def get(self, key: K) -> V | None:
        found = self._values.get(key)
        if found is None:
            return None
        self._values.move_to_end(key)
        return found[0]

    def put(self, key: K, value: V) -> None:
        weight = self.weigh(value)
        if weight > self.budget:
            return  # bigger than everything we may keep: computed for this call only
        self._values[key] = (value, weight)
        self._weight += weight
        while self._weight > self.budget:
            _, (_, dropped) = self._values.popitem(last=False)
            self._weight -= dropped


@dataclass
class _Config:
    """A version's redacted text as display lines (bot.routeros.diff.display_lines), where their
    numbering parts from the normalized lines' (configview.parting), and its sections once the
    View page has asked for them."""

    lines: list[str]
    parts: configview.Parting
    weight: int
    sections: tuple[Section, ...] | None = None

    def outline(self) -> tuple[Section, ...]:
        if self.sections is None:
            self.sections = configview.outline(self.lines)
        return self.sections


def _compare_weight(pairs: Sequence[tuple[Diff, PairPlan]]) -> int:
    return sum(len(line) + LINE_COST for diff, _ in pairs for hunk in diff.hunks for line in hunk.lines)


_configs: Kept[tuple[str, int], _Config] = Kept(CONFIGS_BUDGET, lambda c: c.weight)
_compares: Kept[tuple[str, tuple[int, ...]], list[tuple[Diff, PairPlan]]] = Kept(COMPARES_BUDGET, _compare_weight)


def _held(scope: Scope, sources: Sources, ids: Sequence[int]) -> dict[int, _Config] | Missing:
    """The versions' configs: kept ones, and the others made from their blobs in `sources`."""
    held: dict[int, _Config] = {}
    for version_id in ids:
        if (config := _configs.get((scope.name, version_id))) is not None:
            held[version_id] = config
    wanted = [i for i in dict.fromkeys(ids) if i not in held]
    missing = tuple(i for i in wanted if i not in sources)
    if missing:
        return Missing(missing)
    texts, lost = {}, []
    for version_id in wanted:
        if isinstance(parcel := sources[version_id], Parcel):
            try:
                texts[version_id] = take(parcel).decode()
            except FileNotFoundError:  # taken by a call that died with its worker, and is now retried
                lost.append(version_id)
    if lost:
        return Missing(tuple(lost))
    chains = {i: chain for i in wanted if not isinstance(chain := sources[i], Parcel)}
    texts.update(zip(chains, (redacted_text(raw, scope.key) for raw in unpack_chains([*chains.values()]))))
    for version_id in wanted:
        lines, splits = diffing.display_cut(texts.pop(version_id))
        parts = configview.parting(splits)
        weight = sum(map(len, lines)) + LINE_COST * (len(lines) + len(parts))
        held[version_id] = _Config(lines, parts, weight)
        _configs.put((scope.name, version_id), held[version_id])
    return held


def redacted(chains: Sequence[Chain], key: bytes) -> list[Parcel]:
    """The versions' redacted texts, left for this process to take: made in the second worker
    (bot.backup.offload.cpu_aside) while this one makes the others (bot.web.texts)."""
    return [leave(redacted_text(raw, key).encode()) for raw in unpack_chains(chains)]


def hold(scope: Scope, sources: Sources) -> None:
    """Make and keep the versions' lines: the first worker's half of making a comparison's versions."""
    _held(scope, sources, [*sources])


def comparison(scope: Scope, sources: Sources, ids: tuple[int, ...], pair: int | None, part: int) -> Compared | Missing:
    """The comparison of the versions `ids` (oldest first), with the rows of part `part` of pair
    `pair` (of every pair: None)."""
    pairs = _compares.get((scope.name, ids))
    if pairs is None:
        held = _held(scope, sources, ids)
        if isinstance(held, Missing):
            return held
        pairs = diffview.compare_lines([(i, held[i].lines) for i in ids])
        _compares.put((scope.name, ids), pairs)
    shown = range(len(pairs)) if pair is None else [pair]
    return Compared(tuple(layout.counts() for _, layout in pairs), {k: _part(*pairs[k], part) for k in shown})


def _part(diff: Diff, layout: PairPlan, part: int) -> tuple[Item, ...]:
    if not layout.parts:
        return ()
    spans = layout.parts[diffview.shown_part(len(layout.parts), part)]
    return diffview.part_items({i: diff.hunks[i] for i in diffview.needed(spans)}, spans)


def lines(scope: Scope, sources: Sources, version_id: int, start: int, count: int) -> tuple[str, ...] | Missing:
    """Display lines [start, start + count) of the version (fewer at its end)."""
    held = _held(scope, sources, [version_id])
    if isinstance(held, Missing):
        return held
    return tuple(held[version_id].lines[start:start + count])


def line_at(scope: Scope, sources: Sources, version_id: int, normalized: int) -> tuple[int, int] | Missing:
    """(the display line, 0-based, where the version's normalized line `normalized` (0-based, as a
    search numbers them) starts; how many display lines it has): where the View page shows a hit."""
    held = _held(scope, sources, [version_id])
    if isinstance(held, Missing):
        return held
    config = held[version_id]
    return configview.display_index(config.parts, normalized), len(config.lines)


def window(scope: Scope, sources: Sources, version_id: int, at: int) -> ConfigWindow | Missing:
    """The window of the version's display lines that holds line `at`, and all its sections."""
    held = _held(scope, sources, [version_id])
    if isinstance(held, Missing):
        return held
    config = held[version_id]
    start, stop = configview.window(len(config.lines), at)
    return ConfigWindow(len(config.lines), start, tuple(config.lines[start:stop]), config.outline())
