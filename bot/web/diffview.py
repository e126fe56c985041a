"""PURE. A comparison as the Compare page shows it: hunks of rows, word-level highlights, folds of
unchanged lines, and parts small enough for a browser to show at once.

Built from the same Diff Slack shows (bot.routeros.diff over the redacted texts), so the page and
Slack never disagree about what changed. A hunk is a list of runs: `Same` (unchanged context
lines, numbered on both sides) and `Change` (the removed lines, then the added ones). Side by side
pairs the k-th removed line with the k-th added one; unified shows the removed lines, then the
added. Between hunks (and before the first, after the last) the unchanged lines are a `Fold`: the
page shows "N unchanged lines" and fetches them only when asked (bot.web.routes), so a 100,000-line
export with a few changes is a few hundred rows, not 100,000.

Big diffs: the items are cut into parts of about PART_ROWS rows (a hunk too long for one part
continues in the next); the page carries the first part and fetches the next on demand. Word
highlights cost a SequenceMatcher per pair of changed lines, so they are computed per part
(`with_words`), only for paired lines of at most WORD_LINE_LIMIT characters, and not at all for a
pair too different to be one line edited (the row colour says everything there).
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field, replace
from difflib import SequenceMatcher
from typing import Literal

from bot.core.models import Diff, Hunk
from bot.routeros import diff as diffing

PART_ROWS = 600  # rows (unified count) per part: a browser lays that out in a few tens of ms
WORD_LINE_LIMIT = 1000  # characters; longer changed lines get the row colour only
MIN_SIMILARITY = 0.4  # share of characters two paired lines keep; below it they are not "one line edited"

Piece = tuple[str, bool]  # a stretch of a line, and whether it differs from the paired line


@dataclass(frozen=True)
class Side:
    """One line on one side: its number (1-based), text, and word highlights when it has them."""

    no: int
    text: str
    pieces: tuple[Piece, ...] | None = None


@dataclass(frozen=True)
class Same:
    """Unchanged lines: the first one's number on each side, then the lines."""

    old_no: int
    new_no: int
    lines: tuple[str, ...]
    kind: Literal["same"] = field(default="same", init=False)

    def numbered(self) -> Iterator[tuple[int, int, str]]:
        for k, text in enumerate(self.lines):
            yield self.old_no + k, self.new_no + k, text


@dataclass(frozen=True)
class Change:
    """Lines removed and lines added in their place (either may be empty)."""

    removed: tuple[Side, ...]
    added: tuple[Side, ...]
    kind: Literal["change"] = field(default="change", init=False)

    def pairs(self) -> list[tuple[Side | None, Side | None]]:
        """Side by side: the k-th removed line beside the k-th added one."""
        return list(itertools.zip_longest(self.removed, self.added))


Run = Same | Change


@dataclass(frozen=True)
class HunkView:
    section: str | None  # the RouterOS menu the hunk is in, e.g. "/ip firewall filter"
    ranges: str  # "@@ -12,4 +12,5 @@"
    runs: tuple[Run, ...]
    continued: bool = False  # the rest of a hunk too long for one part
    kind: Literal["hunk"] = field(default="hunk", init=False)


@dataclass(frozen=True)
class Fold:
    """Unchanged lines not shown: new-side lines [new_start, new_start + count), equal to the
    old-side lines from old_start. `key` names it on the page."""

    key: str
    old_start: int  # 0-based
    new_start: int
    count: int
    kind: Literal["fold"] = field(default="fold", init=False)


Item = HunkView | Fold


@dataclass(frozen=True)
class PairLayout:
    """One pair of a comparison (older, newer), as parts of items."""

    old_id: int
    new_id: int
    added: int
    removed: int
    hunks: int
    old_lines: int
    new_lines: int
    parts: tuple[tuple[Item, ...], ...]


_RANGES = re.compile(r"@@ -(\d+)(?:,(\d+))? \+(\d+)(?:,(\d+))? @@")


def _first(start: str, length: str | None) -> int:
    """0-based first line of a unified-diff range (an empty range names the line before it)."""
    return int(start) if length == "0" else int(start) - 1


def hunk_view(hunk: Hunk) -> tuple[HunkView, int, int]:
    """The hunk as runs, and the 0-based new-side lines where it starts and where it ends."""
    m = _RANGES.match(hunk.header)
    if m is None:
        raise ValueError(f"not a hunk header: {hunk.header!r}")
    old, new = _first(m[1], m[2]), _first(m[3], m[4])
    new_start = new
    runs: list[Run] = []
    same: list[str] = []
    removed: list[Side] = []
    added: list[Side] = []
    same_from = (old, new)

    def flush_change() -> None:
        if removed or added:
            runs.append(Change(tuple(removed), tuple(added)))
            removed.clear()
            added.clear()

    def flush_same() -> None:
        if same:
            runs.append(Same(same_from[0] + 1, same_from[1] + 1, tuple(same)))
            same.clear()

    for line in hunk.lines:
        tag, text = line[:1], line[1:]
        if tag == "-":
            flush_same()
            if added:  # a removal after additions starts a new change
                flush_change()
            removed.append(Side(old + 1, text))
            old += 1
        elif tag == "+":
            flush_same()
            added.append(Side(new + 1, text))
            new += 1
        else:
            flush_change()
            if not same:
                same_from = (old, new)
            same.append(text)
            old, new = old + 1, new + 1
    flush_same()
    flush_change()
    return HunkView(hunk.section, m[0], tuple(runs)), new_start, new


def rows(item: Item | Run) -> int:
    """Rows the item takes in the unified layout (the taller one)."""
    if isinstance(item, Same):
        return len(item.lines)
    if isinstance(item, Change):
        return len(item.removed) + len(item.added)
    if isinstance(item, Fold):
        return 1
    return 1 + sum(map(rows, item.runs))


def _chunks(run: Run, size: int) -> Iterator[Run]:
    if isinstance(run, Same):
        for k in range(0, len(run.lines), size):
            yield Same(run.old_no + k, run.new_no + k, run.lines[k:k + size])
        return
    half = max(1, size // 2)
    for k in range(0, max(len(run.removed), len(run.added)), half):
        yield Change(run.removed[k:k + half], run.added[k:k + half])


def split(hunk: HunkView, budget: int = PART_ROWS) -> list[HunkView]:
    """The hunk in pieces of at most `budget` rows; pieces after the first are `continued`."""
    if rows(hunk) <= budget:
        return [hunk]
    pieces: list[HunkView] = []
    runs: list[Run] = []
    size = 1
    for run in hunk.runs:
        for chunk in _chunks(run, budget - 1):
            if runs and size + rows(chunk) > budget:
                pieces.append(replace(hunk, runs=tuple(runs), continued=bool(pieces)))
                runs, size = [], 1
            runs.append(chunk)
            size += rows(chunk)
    pieces.append(replace(hunk, runs=tuple(runs), continued=bool(pieces)))
    return pieces


def parts(items: Sequence[Item], budget: int = PART_ROWS) -> tuple[tuple[Item, ...], ...]:
    """Items in parts of about `budget` rows, in order."""
    out: list[tuple[Item, ...]] = []
    current: list[Item] = []
    size = 0
    for item in items:
        for piece in split(item, budget) if isinstance(item, HunkView) else [item]:
            if current and size + rows(piece) > budget:
                out.append(tuple(current))
                current, size = [], 0
            current.append(piece)
            size += rows(piece)
    if current:
        out.append(tuple(current))
    return tuple(out)


def layout(diff: Diff, old_id: int, new_id: int, pair: int = 0, budget: int = PART_ROWS) -> PairLayout:
    """The pair's hunks with the unchanged stretches between them folded, in parts."""
    items: list[Item] = []
    old_at = new_at = 0

    def fold(count: int) -> None:
        if count > 0:
            items.append(Fold(f"p{pair}f{len(items)}", old_at, new_at, count))

    for hunk in diff.hunks:
        view, new_start, new_end = hunk_view(hunk)
        gap = new_start - new_at  # unchanged: as many lines on the old side
        fold(gap)
        items.append(view)
        old_at += gap + sum(len(r.lines) if isinstance(r, Same) else len(r.removed) for r in view.runs)
        new_at = new_end
    fold(diff.new_lines - new_at)
    return PairLayout(old_id, new_id, diff.added, diff.removed, len(diff.hunks), diff.old_lines, diff.new_lines,
                      parts(items, budget))


def compare_layouts(texts: Sequence[tuple[int, str]], budget: int = PART_ROWS) -> list[PairLayout]:
    """(version id, redacted normalized text) oldest first -> each consecutive pair's layout.

    Runs in the CPU worker: the diff is bot.routeros.diff's, as Slack's is."""
    return [layout(diffing.diff(old, new), old_id, new_id, pair, budget)
            for pair, ((old_id, old), (new_id, new)) in enumerate(itertools.pairwise(texts))]


# -- word-level highlights ---------------------------------------------------------------------------

_TOKEN = re.compile(r"\w+|\s+|[^\w\s]")


def _pieces(tokens: Sequence[str], same: Sequence[tuple[int, int]]) -> tuple[Piece, ...]:
    """Tokens joined into stretches, each marked as differing unless inside a `same` range."""
    flags = [True] * len(tokens)
    for start, stop in same:
        flags[start:stop] = [False] * (stop - start)
    out: list[Piece] = []
    for differs, group in itertools.groupby(zip(tokens, flags), key=lambda tf: tf[1]):
        out.append(("".join(t for t, _ in group), differs))
    return tuple(out)


def word_pieces(old: str, new: str) -> tuple[tuple[Piece, ...], tuple[Piece, ...]] | None:
    """The two lines cut into stretches that are the same or differ, word by word; None when a line
    is too long to be worth it, or the two have too little in common to be one line edited."""
    if len(old) > WORD_LINE_LIMIT or len(new) > WORD_LINE_LIMIT or not old or not new:
        return None
    a, b = _TOKEN.findall(old), _TOKEN.findall(new)
    matcher = SequenceMatcher(None, a, b, autojunk=False)
    blocks = [blk for blk in matcher.get_matching_blocks() if blk.size]
    kept = sum(len(t) for i, _, n in blocks for t in a[i:i + n])
    if kept < MIN_SIMILARITY * max(len(old), len(new)):
        return None
    return (_pieces(a, [(i, i + n) for i, _, n in blocks]), _pieces(b, [(j, j + n) for _, j, n in blocks]))


def _with_words(change: Change) -> Change:
    removed, added = list(change.removed), list(change.added)
    for k in range(min(len(removed), len(added))):
        found = word_pieces(removed[k].text, added[k].text)
        if found is not None:
            removed[k] = replace(removed[k], pieces=found[0])
            added[k] = replace(added[k], pieces=found[1])
    return Change(tuple(removed), tuple(added))


def with_words(items: Sequence[Item]) -> tuple[Item, ...]:
    """The items with word highlights in every pair of changed lines (one part's worth: see the
    module docstring). Runs in the CPU worker."""
    return tuple(replace(item, runs=tuple(_with_words(r) if isinstance(r, Change) else r for r in item.runs))
                 if isinstance(item, HunkView) else item for item in items)
