r"""Unified diffs of normalized RouterOS exports, each hunk naming the menu section it changes.

Pure: no I/O, no asyncio, no clock. Inputs are texts already passed through
`routeros.normalize`, so wrapping, timestamps and state comments never show up as changes.

Script sources: normalize() joins a `/system script ... source="..."` into one line, often many
KB long, so a two-line script edit would show as one giant line replaced. For diffing only, each
line is split before every `\n` escape (an escaped newline inside a quoted value) and the
pieces after the first are indented by 4 spaces - the layout RouterOS itself prints, minus the
trailing `\`. Hunk lines, line numbers and the +/- counts are in these display lines.

Speed: difflib.SequenceMatcher alone goes quadratic on big exports (2 s for 1 MB of real
config, a minute for 30k repeated lines). So lines are matched by patience diff (as git's
`--patience`): trim the common head and tail, anchor on lines unique to both sides, recurse
between anchors; only small anchorless regions use difflib (autojunk off: in an export the
"popular" lines are real content, not junk), and big ones a greedy linear walk.
tests/routeros/test_diff.py times the 300 KB and 1 MB cases.

Big exports (benchmarks/diff_speed.py: 20,000 and 100,000 lines against GNU `diff -u`): work per
line is left to C - Counter, dict, map and compress over whole lists, str.find over the text -
and Python loops run per run of matched lines, per region and per hunk. Each hunk's section comes
from one index per side (`routeros.Sections`), not from walking back to its header.
"""

from __future__ import annotations

import itertools
import operator
import sys
from bisect import bisect_left
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from difflib import SequenceMatcher

from bot.core.models import Diff, Hunk
from bot.routeros.export import Sections

Opcode = tuple[str, int, int, int, int]


# Line boundaries str.splitlines() knows besides "\n" (normalized text has none of them).
_OTHER_BREAKS = ("\r", "\x0b", "\x0c", "\x1c", "\x1d", "\x1e", "\x85", "\u2028", "\u2029")


def display_lines(text: str) -> list[str]:
    """Normalized lines, each long script source split before its `\\n` escapes (see above)."""
    return display_cut(text)[0]


def display_cut(text: str) -> tuple[list[str], list[tuple[int, int]]]:
    """(display_lines(text), display_splits(text)): the splits recorded while the lines are cut, with
    no second scan of an export (the View page keeps both: bot.web.kept)."""
    splits: list[tuple[int, int]] | None
    if any(br in text for br in _OTHER_BREAKS):
        lines = text.splitlines()
        escaped: Iterable[int] = itertools.compress(
            range(len(lines)), map(str.__contains__, lines, itertools.repeat("\\n"))
        )
        splits = None  # rare: cut at other line ends too, so display_splits numbers them apart
    else:  # the same lines, found faster
        lines = text.split("\n")
        if lines[-1] == "":
            lines.pop()
        escaped = _escaped_line_numbers(text)
        splits = []
    # Only the few lines holding an escape are split; the rest are copied in slices.
    out: list[str] = []
    done = 0
    for k in escaped:
        out.extend(lines[done:k])
        pieces = _split_escaped_newlines(lines[k])
        out.extend(pieces)
        if splits is not None and len(pieces) > 1:
            splits.append((k, len(pieces)))
        done = k + 1
    if done:
        out.extend(lines[done:])
    else:
        out = lines
    return out, display_splits(text) if splits is None else splits


def display_splits(text: str) -> list[tuple[int, int]]:
    """(k, n) for each line k (0-based, of the "\\n"-separated lines a grep hit is numbered in) that
    display_lines shows as n > 1 lines: where display and normalized line numbers part. (A text
    with other line breaks is split by them too, as display_lines does; exports escape them.)"""
    lines = text.split("\n")
    if any(br in text for br in _OTHER_BREAKS):
        candidates: Iterable[int] = range(len(lines))
    else:
        candidates = _escaped_line_numbers(text)
    out = []
    for k in candidates:
        pieces = sum(len(_split_escaped_newlines(part)) for part in lines[k].splitlines()) or 1
        if pieces > 1:
            out.append((k, pieces))
    return out


def _escaped_line_numbers(text: str) -> Iterator[int]:
    """Numbers of the "\\n"-separated lines holding a `\\n`: found with one scan of the text and
    numbered by counting the line ends before them, not by testing every line."""
    k = pos = 0  # the line number of text position `pos`
    at = text.find("\\n")
    while at >= 0:
        k += text.count("\n", pos, at)
        yield k
        pos = text.find("\n", at)
        if pos < 0:
            return
        at = text.find("\\n", pos)


def _split_escaped_newlines(line: str) -> list[str]:
    """`line` cut before each `\\n` escape, the pieces after the first indented by 4 spaces.

    An escape is a backslash run of odd length before the `n` (`\\\\n` is a backslash, then `n`).
    str.find, not a regex: a pattern with a look-behind is tried at every character of what is
    often a many-KB script source.
    """
    pieces: list[str] = []
    start = 0
    at = line.find("\\n")
    while at >= 0:
        run = at  # the backslash run ending at `at` starts at `run`
        while run > 0 and line[run - 1] == "\\":
            run -= 1
        if (at - run) % 2 == 0 and at > start:
            pieces.append(line[start:at] if start == 0 else "    " + line[start:at])
            start = at
        at = line.find("\\n", at + 2)
    pieces.append(line[start:] if start == 0 else "    " + line[start:])
    return pieces


# Anchorless regions up to this many line pairs go to difflib; bigger ones (thousands of
# identical lines) get a greedy linear walk, which stays fast where difflib is quadratic.
_DIFFLIB_LIMIT = 250_000
_MAX_REPEAT = 4


Block = tuple[int, int, int]  # (i, j, n): a[i:i + n] == b[j:j + n]

# A region this small (lines on both sides) is first checked for any line in common: a replaced
# line or two, the usual case, then costs one set instead of two Counters and a SequenceMatcher.
_SMALL = 64


def _blocks(a: Sequence[str], b: Sequence[str]) -> list[Block]:
    """Matched runs of lines, increasing in both, adjacent runs merged: patience diff over regions.

    Each region is trimmed of its common head and tail; lines occurring once (or equally few
    times) on each side anchor it, in the longest run that keeps both orders, and the gaps
    between anchors become regions of their own. A region with no anchors uses _fallback.

    Speed: a 100,000-line export has some 90,000 anchors but only a few thousand runs of them, so
    per-line work is left to C (Counter, dict, map, compress over whole lists) and Python loops
    run per run and per region.
    """
    found: list[Block] = []
    stack = [(0, len(a), 0, len(b))]
    while stack:
        alo, ahi, blo, bhi = stack.pop()
        head = _common(a, b, alo, blo, min(ahi - alo, bhi - blo), 1)
        if head:
            found.append((alo, blo, head))
            alo, blo = alo + head, blo + head
        tail = _common(a, b, ahi - 1, bhi - 1, min(ahi - alo, bhi - blo), -1)
        if tail:
            ahi, bhi = ahi - tail, bhi - tail
            found.append((ahi, bhi, tail))
        if alo == ahi or blo == bhi:
            continue
        if ahi - alo + bhi - blo <= _SMALL and set(a[alo:ahi]).isdisjoint(b[blo:bhi]):
            continue  # nothing in common: no anchors, and nothing for _fallback to match
        anchors_i, anchors_j = _anchors(a, b, alo, ahi, blo, bhi)
        if not anchors_i:
            found.extend(_fallback(a, b, alo, ahi, blo, bhi))
            continue
        # Anchors consecutive on both sides form a run; a new run starts where either side jumps.
        n = len(anchors_i)
        jumps = map(
            operator.or_,
            map(operator.ne, map(operator.sub, itertools.islice(anchors_i, 1, None), anchors_i), itertools.repeat(1)),
            map(operator.ne, map(operator.sub, itertools.islice(anchors_j, 1, None), anchors_j), itertools.repeat(1)),
        )
        starts = [0, *itertools.compress(range(1, n), jumps), n]
        for start, stop in itertools.pairwise(starts):
            i, j = anchors_i[start], anchors_j[start]
            if i > alo and j > blo:  # the gap before this run has lines on both sides
                stack.append((alo, i, blo, j))
            found.append((i, j, stop - start))
            alo, blo = i + stop - start, j + stop - start
        if alo < ahi and blo < bhi:
            stack.append((alo, ahi, blo, bhi))
    found.sort()
    merged: list[Block] = []
    for i, j, n in found:
        if merged:
            pi, pj, pn = merged[-1]
            if pi + pn == i and pj + pn == j:
                merged[-1] = (pi, pj, pn + n)
                continue
        merged.append((i, j, n))
    return merged


def _common(a: Sequence[str], b: Sequence[str], i: int, j: int, most: int, direction: int) -> int:
    """How many lines are equal from a[i] and b[j] on, going forward (direction 1) or back (-1),
    at most `most`. Compared in slices of growing, then halving size: a diff of a big export
    with its one change near the end trims 100,000 lines in C, not in a Python loop."""
    k, step, growing = 0, 16, True
    while step >= 16:
        m = min(step, most - k)
        if m >= 16 and (
            a[i + k:i + k + m] == b[j + k:j + k + m] if direction > 0
            else a[i - k - m + 1:i - k + 1] == b[j - k - m + 1:j - k + 1]
        ):
            k += m
            step = step * 2 if growing else step
        else:
            step, growing = step // 2, False
    while k < most and a[i + direction * k] == b[j + direction * k]:
        k += 1
    return k


def _anchors(
    a: Sequence[str], b: Sequence[str], alo: int, ahi: int, blo: int, bhi: int
) -> tuple[list[int], list[int]]:
    """Anchor pairs (a list of i, one of j): the longest increasing run (patience LIS) of
    candidate pairs.

    Candidates are lines unique on both sides (classic patience diff) or, more generally,
    occurring equally often - at most _MAX_REPEAT times - on both sides, paired in order: the
    k-th `set disabled=yes` on the left with the k-th on the right.
    """
    in_a, in_b = a[alo:ahi], b[blo:bhi]
    count_a, count_b = Counter(in_a), Counter(in_b)
    times_a = list(map(count_a.__getitem__, in_a))
    cand_i = list(itertools.compress(range(alo, ahi), map(operator.eq, times_a, map(count_b.get, in_a))))
    if not cand_i:
        return [], []
    at_b = dict(zip(in_b, range(blo, bhi)))  # a unique line's only position
    cand_j = list(map(at_b.__getitem__, map(a.__getitem__, cand_i)))
    if len(count_a) < len(in_a):  # some lines repeat: pair the k-th in a with the k-th in b
        repeated = itertools.compress(range(alo, ahi), map(operator.lt, itertools.repeat(1), times_a))
        cand_i, cand_j = _pair_repeated(a, b, blo, bhi, count_a, repeated, cand_i, cand_j)
    chain = _longest_increasing(cand_j)
    if len(chain) == 1:
        start, stop = chain[0]
        return cand_i[start:stop], cand_j[start:stop]
    anchors_i: list[int] = []
    anchors_j: list[int] = []
    for start, stop in chain:
        anchors_i += cand_i[start:stop]
        anchors_j += cand_j[start:stop]
    return anchors_i, anchors_j


def _pair_repeated(
    a: Sequence[str], b: Sequence[str], blo: int, bhi: int, count_a: Counter[str], repeated: Iterable[int],
    cand_i: list[int], cand_j: list[int],
) -> tuple[list[int], list[int]]:
    """Candidates whose line occurs more than once (at `repeated` positions of a): the k-th
    occurrence in a gets the k-th in b, and lines occurring more than _MAX_REPEAT times are no
    candidates at all."""
    fix = []  # (index into the candidates, line)
    for i in repeated:
        k = bisect_left(cand_i, i)
        if k < len(cand_i) and cand_i[k] == i:
            fix.append((k, a[i]))
    if not fix:
        return cand_i, cand_j
    lines = {line for _, line in fix if count_a[line] <= _MAX_REPEAT}
    where_b: dict[str, list[int]] = {}
    for j in itertools.compress(range(blo, bhi), map(lines.__contains__, b[blo:bhi])):
        where_b.setdefault(b[j], []).append(j)
    seen: Counter[str] = Counter()
    keep = [True] * len(cand_i)
    for k, line in fix:
        if line in lines:
            cand_j[k] = where_b[line][seen[line]]
            seen[line] += 1
        else:
            keep[k] = False
    if all(keep):
        return cand_i, cand_j
    return list(itertools.compress(cand_i, keep)), list(itertools.compress(cand_j, keep))


def _longest_increasing(values: list[int]) -> list[tuple[int, int]]:
    """The longest strictly increasing subsequence of `values` (distinct ints) by patience
    sorting, as (start, stop) index ranges of consecutive elements, in order.

    It is the one the textbook loop finds (a pile per length, bisect for the pile, back links
    to rebuild), stepped in bulk: in a run of increasing values, once one value goes on a new
    pile, so does every value after it, each linked to the one before. Exports keep their order,
    so a 100,000-line diff is a handful of such runs and not 100,000 steps in Python.
    """
    n = len(values)
    tops: list[int] = []  # the value at the top of each pile, increasing
    top_index: list[int] = []  # the index of that value
    back = [-1] * n  # the index of the value before, in the longest run ending here
    # The first index of the bulk step that placed each value: the value before any other in
    # that step is the one just before it, so only the first of a step needs its back link.
    run_start = list(range(n))
    starts = [0, *itertools.compress(range(1, n), map(operator.gt, values, itertools.islice(values, 1, None))), n]
    for start, stop in itertools.pairwise(starts):  # each a run of increasing values
        for k in range(start, stop):
            value = values[k]
            if not tops or value > tops[-1]:  # a new pile, and so for the rest of the run
                back[k] = top_index[-1] if tops else -1
                run_start[k:stop] = [k] * (stop - k)
                tops += values[k:stop]
                top_index += range(k, stop)
                break
            pile = bisect_left(tops, value)
            back[k] = top_index[pile - 1] if pile else -1
            tops[pile], top_index[pile] = value, k
    chain: list[tuple[int, int]] = []
    k = top_index[-1] if top_index else -1
    while k >= 0:
        chain.append((run_start[k], k + 1))
        k = back[run_start[k]]
    return chain[::-1]


def _fallback(a: Sequence[str], b: Sequence[str], alo: int, ahi: int, blo: int, bhi: int) -> list[Block]:
    """Matches in a region with no unique lines (e.g. many repeated `    \\n` script lines)."""
    if (ahi - alo) * (bhi - blo) <= _DIFFLIB_LIMIT:
        matcher = SequenceMatcher(None, a[alo:ahi], b[blo:bhi], autojunk=False)
        return [(alo + i, blo + j, n) for i, j, n in matcher.get_matching_blocks() if n]
    # Greedy walk: on a mismatch, skip whichever side reaches a match again sooner.
    positions_a: dict[str, list[int]] = {}
    positions_b: dict[str, list[int]] = {}
    for i in range(alo, ahi):
        positions_a.setdefault(a[i], []).append(i)
    for j in range(blo, bhi):
        positions_b.setdefault(b[j], []).append(j)
    pairs: list[Block] = []
    i, j = alo, blo
    while i < ahi and j < bhi:
        if a[i] == b[j]:
            pairs.append((i, j, 1))
            i, j = i + 1, j + 1
            continue
        next_j = _next(positions_b.get(a[i]), j)  # where a[i] appears again in b
        next_i = _next(positions_a.get(b[j]), i)  # where b[j] appears again in a
        if next_j == next_i == _NEVER:
            i, j = i + 1, j + 1  # a[i] -> b[j] is a replacement
        elif next_j - j <= next_i - i:
            j = next_j  # b[j:next_j] are insertions
        else:
            i = next_i  # a[i:next_i] are deletions
    return pairs


_NEVER = sys.maxsize


def _next(positions: list[int] | None, after: int) -> int:
    """First position >= after, or _NEVER."""
    if not positions:
        return _NEVER
    k = bisect_left(positions, after)
    return positions[k] if k < len(positions) else _NEVER


def _opcodes(a: Sequence[str], b: Sequence[str]) -> list[Opcode]:
    """difflib-style opcodes (equal/replace/delete/insert) for a -> b from the matched runs."""
    ops: list[Opcode] = []
    i = j = 0
    for bi, bj, n in [*_blocks(a, b), (len(a), len(b), 0)]:
        if bi > i or bj > j:
            tag = "replace" if bi > i and bj > j else "delete" if bi > i else "insert"
            ops.append((tag, i, bi, j, bj))
        if n:
            ops.append(("equal", bi, bi + n, bj, bj + n))
        i, j = bi + n, bj + n
    return ops


def _groups(ops: list[Opcode], context: int) -> Iterator[list[Opcode]]:
    """Hunks: changes at most 2*context equal lines apart share one (as difflib does)."""
    if not any(tag != "equal" for tag, *_ in ops):
        return
    ops = list(ops)
    if ops[0][0] == "equal":
        _, i1, i2, j1, j2 = ops[0]
        ops[0] = ("equal", max(i1, i2 - context), i2, max(j1, j2 - context), j2)
    if ops[-1][0] == "equal":
        _, i1, i2, j1, j2 = ops[-1]
        ops[-1] = ("equal", i1, min(i2, i1 + context), j1, min(j2, j1 + context))
    group: list[Opcode] = []
    for tag, i1, i2, j1, j2 in ops:
        if tag == "equal" and i2 - i1 > 2 * context:
            group.append((tag, i1, min(i2, i1 + context), j1, min(j2, j1 + context)))
            yield group
            group = []
            i1, j1 = max(i1, i2 - context), max(j1, j2 - context)
        group.append((tag, i1, i2, j1, j2))
    if group and not (len(group) == 1 and group[0][0] == "equal"):
        yield group


def _range(start: int, stop: int) -> str:
    """`start,length` as in unified diff (1-based; an empty range names the line before)."""
    length = stop - start
    if length == 1:
        return str(start + 1)
    return f"{start + 1 if length else start},{length}"


def _hunk(group: list[Opcode], a: Sequence[str], b: Sequence[str], sections_a: Sections, sections_b: Sections) -> Hunk:
    # The first change: a group starts with it or with one run of equal (context) lines.
    tag, i1, _, j1, _ = group[1] if group[0][0] == "equal" else group[0]
    # Name the section where the change begins: on the new side, or the old side when the
    # first change is a deletion (its line no longer exists in the new text).
    section = sections_a.of(i1) if tag == "delete" else sections_b.of(j1)
    header = f"@@ -{_range(group[0][1], group[-1][2])} +{_range(group[0][3], group[-1][4])} @@"
    if section:
        header += f" {section}"
    lines: list[str] = []
    for tag, i1, i2, j1, j2 in group:
        if tag == "equal":
            lines += [" " + line for line in a[i1:i2]]
            continue
        lines += ["-" + line for line in a[i1:i2]]
        lines += ["+" + line for line in b[j1:j2]]
    return Hunk(section=section, header=header, lines=tuple(lines))


def diff(old: str, new: str, old_label: str = "a", new_label: str = "b", context: int = 3) -> Diff:
    """Unified diff of two normalized texts; hunk headers name the RouterOS section."""
    return diff_lines(display_lines(old), display_lines(new), old_label, new_label, context)


def diff_lines(a: Sequence[str], b: Sequence[str], old_label: str = "a", new_label: str = "b",
               context: int = 3) -> Diff:
    """`diff` of two texts already cut into their display_lines (kept by whoever shows them too)."""
    ops = _opcodes(a, b)
    sections_a, sections_b = Sections(a), Sections(b)
    hunks = tuple(_hunk(group, a, b, sections_a, sections_b) for group in _groups(ops, context))
    added, removed = _count(ops)
    return Diff(old_label=old_label, new_label=new_label, hunks=hunks, added=added, removed=removed,
                old_lines=len(a), new_lines=len(b))


def _count(ops: list[Opcode]) -> tuple[int, int]:
    added = sum(j2 - j1 for tag, _, _, j1, j2 in ops if tag != "equal")
    removed = sum(i2 - i1 for tag, i1, i2, _, _ in ops if tag != "equal")
    return added, removed


def count_changes(old: str, new: str) -> tuple[int, int]:
    """(added, removed) line counts, the same numbers diff() reports."""
    return _count(_opcodes(display_lines(old), display_lines(new)))


def compare(texts: Sequence[tuple[str, str]]) -> list[Diff]:
    """Given (label, normalized text) pairs oldest first, the diff of each consecutive pair."""
    return [
        diff(old, new, old_label, new_label)
        for (old_label, old), (new_label, new) in itertools.pairwise(texts)
    ]
