"""PURE. A comparison as the Compare page shows it: hunks of rows, word-level highlights, folds of
unchanged lines, and parts small enough for a browser to show at once.

Built from the same Diff Slack shows (bot.routeros.diff over the redacted texts), so the page and
Slack never disagree about what changed. A hunk is a list of runs: `Same` (unchanged context
lines, numbered on both sides) and `Change` (the removed lines, then the added ones). Side by side
pairs the k-th removed line with the k-th added one; unified shows the removed lines, then the
added. Between hunks (and before the first, after the last) the unchanged lines are a `Fold`: the
page shows "N unchanged lines" and fetches them only when asked (bot.web.routes), so a 100,000-line
export with a few changes is a few hundred rows, not 100,000.

Big diffs: a comparison is first a `PairPlan` (`plan`, made with the diff in the CPU worker, which
keeps both: bot.web.kept): its hunks and folds cut into parts of about PART_ROWS rows (a hunk too
long for one part continues in the next), each part a list of spans naming hunk lines by index. A
plan stays small whatever the diff's size (a 100,000-line comparison with 4,000 hunks pickles in
milliseconds, where rows of objects took half a second). The rows of a part (`part_items`) are made
only when that part is shown: the page carries the first part and fetches the next on demand. Word highlights cost a
SequenceMatcher per pair of changed lines, so they too are made per part, only for paired lines
of at most WORD_LINE_LIMIT characters, and not at all for a pair too different to be one line
edited (the row colour says everything there).
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from difflib import SequenceMatcher
from typing import Literal, NamedTuple

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


class Fold(NamedTuple):
    """Unchanged lines not shown: new-side lines [new_start, new_start + size), equal to the
    old-side lines from old_start. `key` names it on the page."""

    key: str
    old_start: int  # 0-based
    new_start: int
    size: int

    @property
    def kind(self) -> Literal["fold"]:
        return "fold"


Item = HunkView | Fold


class SameSpan(NamedTuple):
    """Unchanged lines [start, stop) of a hunk, numbered from old_no and new_no."""

    old_no: int
    new_no: int
    start: int
    stop: int


class ChangeSpan(NamedTuple):
    """Removed lines [removed) and added lines [added) of a hunk (index ranges), numbered from
    old_no and new_no."""

    old_no: int
    new_no: int
    removed: tuple[int, int]
    added: tuple[int, int]


class HunkSpan(NamedTuple):
    """Which lines of hunk `hunk` a piece shows: all of them (runs None), or those runs of a hunk too
    long for one part. A plan names lines; a part's items hold them. (Spans are named tuples: a
    plan of thousands pickles ten times faster than dataclasses.)"""

    hunk: int
    runs: tuple[SameSpan | ChangeSpan, ...] | None = None
    continued: bool = False


Span = HunkSpan | Fold


@dataclass(frozen=True)
class PairPlan:
    """One pair of a comparison (older, newer) as parts of spans: small, whatever the diff's size.
    The rows of a part are made from the Diff's hunks only when that part is shown (`part_items`)."""

    old_id: int
    new_id: int
    added: int
    removed: int
    hunks: int
    old_lines: int
    new_lines: int
    parts: tuple[tuple[Span, ...], ...]

    def counts(self) -> PairCounts:
        return PairCounts(self.added, self.removed, self.hunks, len(self.parts))


class PairCounts(NamedTuple):
    """What a page says of a pair beside its rows (a plan's spans stay in the CPU worker: pickling
    those of a 100,000-line comparison took 25 ms a request)."""

    added: int
    removed: int
    hunks: int
    parts: int


_RANGES = re.compile(r"@@ -(\d+)(?:,(\d+))? \+(\d+)(?:,(\d+))? @@")


def _first(start: str, length: str | None) -> int:
    """0-based first line of a unified-diff range (an empty range names the line before it)."""
    return int(start) if length == "0" else int(start) - 1


def _ranges(hunk: Hunk) -> re.Match[str]:
    m = _RANGES.match(hunk.header)
    if m is None:
        raise ValueError(f"not a hunk header: {hunk.header!r}")
    return m


_RUN = re.compile(r"[^-+]+|-*\+*")  # over a hunk's first characters: context, or removed then added


def _runs(hunk: Hunk) -> tuple[list[SameSpan | ChangeSpan], int, int, int]:
    """The hunk's runs as spans; and its 0-based first new line, and the old and new line after it.
    Runs are found by one regex over the string of the lines' first characters (C, not a loop)."""
    m = _ranges(hunk)
    old, new = _first(m[1], m[2]), _first(m[3], m[4])
    new_start = new
    runs: list[SameSpan | ChangeSpan] = []
    tags = "".join([line[:1] or " " for line in hunk.lines])
    for run in _RUN.finditer(tags):
        start, stop = run.span()
        if start == stop:
            continue
        if tags[start] not in "-+":
            runs.append(SameSpan(old + 1, new + 1, start, stop))
            old, new = old + stop - start, new + stop - start
            continue
        middle = tags.find("+", start, stop)
        middle = stop if middle < 0 else middle
        runs.append(ChangeSpan(old + 1, new + 1, (start, middle), (middle, stop)))
        old, new = old + middle - start, new + stop - middle
    return runs, new_start, old, new


def span_rows(span: Span | SameSpan | ChangeSpan) -> int:
    """Rows a span takes in the unified layout (the taller one)."""
    if isinstance(span, SameSpan):
        return span.stop - span.start
    if isinstance(span, ChangeSpan):
        return span.removed[1] - span.removed[0] + span.added[1] - span.added[0]
    if isinstance(span, Fold):
        return 1
    assert span.runs is not None  # a whole hunk's rows are counted by `plan` itself
    return 1 + sum(map(span_rows, span.runs))


def _chunks(run: SameSpan | ChangeSpan, size: int) -> Iterator[SameSpan | ChangeSpan]:
    """The run in pieces of at most `size` rows; a change is cut into pairs that stay side by side."""
    if isinstance(run, SameSpan):
        for a in range(run.start, run.stop, size):
            yield SameSpan(run.old_no + a - run.start, run.new_no + a - run.start, a, min(a + size, run.stop))
        return
    half = max(1, size // 2)
    (r0, r1), (a0, a1) = run.removed, run.added
    for k in range(0, max(r1 - r0, a1 - a0), half):
        yield ChangeSpan(run.old_no + k, run.new_no + k, (min(r0 + k, r1), min(r0 + k + half, r1)),
                         (min(a0 + k, a1), min(a0 + k + half, a1)))


def plan(diff: Diff, old_id: int, new_id: int, pair: int = 0, budget: int = PART_ROWS) -> PairPlan:
    """The pair's hunks with the unchanged stretches between them folded, cut into parts of about
    `budget` rows (a hunk too long for one part continues in the next)."""
    spans: list[Span] = []
    rows: list[int] = []  # of each span
    old_at = new_at = 0

    def add(span: Span, n: int) -> None:
        spans.append(span)
        rows.append(n)

    def fold(count: int) -> None:
        if count > 0:
            add(Fold(f"p{pair}f{len(spans)}", old_at, new_at, count), 1)

    for index, hunk in enumerate(diff.hunks):
        m = _ranges(hunk)
        new_start = _first(m[3], m[4])
        fold(new_start - new_at)  # unchanged: as many lines on the old side
        if len(hunk.lines) < budget:  # the usual hunk: named whole, its runs found when shown
            add(HunkSpan(index), 1 + len(hunk.lines))
        else:
            runs, _, _, _ = _runs(hunk)
            pieces: list[SameSpan | ChangeSpan] = []
            size, continued = 1, False
            for run in runs:
                for chunk in _chunks(run, budget - 1):
                    if pieces and size + span_rows(chunk) > budget:
                        add(HunkSpan(index, tuple(pieces), continued), size)
                        pieces, size, continued = [], 1, True
                    pieces.append(chunk)
                    size += span_rows(chunk)
            add(HunkSpan(index, tuple(pieces), continued), size)
        old_at = _first(m[1], m[2]) + int(m[2] or 1)
        new_at = new_start + int(m[4] or 1)
    fold(diff.new_lines - new_at)
    parts: list[tuple[Span, ...]] = []
    current: list[Span] = []
    size = 0
    for span, n in zip(spans, rows):
        if current and size + n > budget:
            parts.append(tuple(current))
            current, size = [], 0
        current.append(span)
        size += n
    if current:
        parts.append(tuple(current))
    return PairPlan(old_id, new_id, diff.added, diff.removed, len(diff.hunks), diff.old_lines, diff.new_lines,
                    tuple(parts))


def compare_lines(versions: Sequence[tuple[int, Sequence[str]]],
                  budget: int = PART_ROWS) -> list[tuple[Diff, PairPlan]]:
    """(version id, display lines of its redacted normalized text) oldest first -> each consecutive
    pair's Diff and plan. The diff is bot.routeros.diff's, as Slack's is."""
    out = []
    for pair, ((old_id, old), (new_id, new)) in enumerate(itertools.pairwise(versions)):
        diff = diffing.diff_lines(old, new)
        out.append((diff, plan(diff, old_id, new_id, pair, budget)))
    return out


def shown_part(parts: int, part: int) -> int:
    """Of `parts` parts, the one a request for `part` gets: the first or last when it asks for one
    out of range."""
    return min(max(part, 0), max(parts - 1, 0))


def _hunk_view(hunk: Hunk, span: HunkSpan) -> HunkView:
    lines = hunk.lines
    runs: list[Run] = []
    for run in span.runs if span.runs is not None else _runs(hunk)[0]:
        if isinstance(run, SameSpan):
            runs.append(Same(run.old_no, run.new_no, tuple(line[1:] for line in lines[run.start:run.stop])))
        else:
            (r0, r1), (a0, a1) = run.removed, run.added
            runs.append(Change(tuple(Side(run.old_no + k, lines[i][1:]) for k, i in enumerate(range(r0, r1))),
                               tuple(Side(run.new_no + k, lines[i][1:]) for k, i in enumerate(range(a0, a1)))))
    return HunkView(hunk.section, _ranges(hunk)[0], tuple(runs), span.continued)


def part_items(hunks: Mapping[int, Hunk], spans: Sequence[Span]) -> tuple[Item, ...]:
    """The rows of one part: `hunks` holds (at least) the hunks its spans name, by index. With word
    highlights (see the module docstring)."""
    return with_words([_hunk_view(hunks[s.hunk], s) if isinstance(s, HunkSpan) else s for s in spans])


def needed(spans: Sequence[Span]) -> list[int]:
    """The hunk indexes a part's spans name (what `part_items` must be given)."""
    return sorted({s.hunk for s in spans if isinstance(s, HunkSpan)})


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
