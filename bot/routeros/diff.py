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
tests/test_diffing.py times the 300 KB and 1 MB cases.
"""

from __future__ import annotations

import itertools
import re
import sys
from bisect import bisect_left
from collections import Counter
from collections.abc import Iterator, Sequence
from difflib import SequenceMatcher

from bot.core.models import Diff, Hunk
from bot.routeros.export import section_of

Opcode = tuple[str, int, int, int, int]

# An escaped newline `\n` inside a quoted value: a backslash run of odd length, then `n`.
_ESCAPED_NEWLINE = re.compile(r"(?<!\\)(?:\\\\)*\\n")


def display_lines(text: str) -> list[str]:
    """Normalized lines, each long script source split before its `\\n` escapes (see above)."""
    out: list[str] = []
    for line in text.splitlines():
        if "\\n" not in line:
            out.append(line)
            continue
        start = 0
        for m in _ESCAPED_NEWLINE.finditer(line):
            cut = m.end() - 2  # before the `\\n` itself
            if cut > start:
                out.append(line[start:cut] if start == 0 else "    " + line[start:cut])
                start = cut
        out.append(line[start:] if start == 0 else "    " + line[start:])
    return out


# Anchorless regions up to this many line pairs go to difflib; bigger ones (thousands of
# identical lines) get a greedy linear walk, which stays fast where difflib is quadratic.
_DIFFLIB_LIMIT = 250_000
_MAX_REPEAT = 4


def _matches(a: Sequence[str], b: Sequence[str]) -> list[tuple[int, int]]:
    """Matched (i, j) line pairs, increasing in both: patience diff over regions.

    Each region is trimmed of its common head and tail; lines occurring once (or equally few
    times) on each side anchor it, in the longest run that keeps both orders, and the gaps
    between anchors become regions of their own. A region with no anchors uses _fallback.
    """
    pairs: list[tuple[int, int]] = []
    stack = [(0, len(a), 0, len(b))]
    while stack:
        alo, ahi, blo, bhi = stack.pop()
        while alo < ahi and blo < bhi and a[alo] == b[blo]:
            pairs.append((alo, blo))
            alo, blo = alo + 1, blo + 1
        while alo < ahi and blo < bhi and a[ahi - 1] == b[bhi - 1]:
            ahi, bhi = ahi - 1, bhi - 1
            pairs.append((ahi, bhi))
        if alo == ahi or blo == bhi:
            continue
        anchors = _anchors(a, b, alo, ahi, blo, bhi)
        if not anchors:
            pairs.extend(_fallback(a, b, alo, ahi, blo, bhi))
            continue
        for i, j in anchors:
            pairs.append((i, j))
            stack.append((alo, i, blo, j))
            alo, blo = i + 1, j + 1
        stack.append((alo, ahi, blo, bhi))
    pairs.sort()
    return pairs


def _anchors(
    a: Sequence[str], b: Sequence[str], alo: int, ahi: int, blo: int, bhi: int
) -> list[tuple[int, int]]:
    """Anchor pairs: the longest increasing run (patience LIS) of candidate pairs.

    Candidates are lines unique on both sides (classic patience diff) or, more generally,
    occurring equally often - at most _MAX_REPEAT times - on both sides, paired in order: the
    k-th `set disabled=yes` on the left with the k-th on the right.
    """
    count_a = Counter(a[alo:ahi])
    count_b = Counter(b[blo:bhi])
    where_b: dict[str, list[int]] = {}
    for j in range(blo, bhi):
        line = b[j]
        if count_b[line] == count_a.get(line) and count_b[line] <= _MAX_REPEAT:
            where_b.setdefault(line, []).append(j)
    seen: Counter[str] = Counter()
    candidates = []
    for i in range(alo, ahi):
        line = a[i]
        if line in where_b:
            candidates.append((i, where_b[line][seen[line]]))
            seen[line] += 1
    # Longest increasing subsequence of j, with back links to rebuild it.
    tops: list[int] = []  # j at the top of each pile
    top_index: list[int] = []  # index into candidates of that top
    back: list[int] = []
    for k, (_, j) in enumerate(candidates):
        pile = bisect_left(tops, j)
        back.append(top_index[pile - 1] if pile else -1)
        if pile == len(tops):
            tops.append(j)
            top_index.append(k)
        else:
            tops[pile], top_index[pile] = j, k
    run: list[tuple[int, int]] = []
    k = top_index[-1] if top_index else -1
    while k >= 0:
        run.append(candidates[k])
        k = back[k]
    return run[::-1]


def _fallback(
    a: Sequence[str], b: Sequence[str], alo: int, ahi: int, blo: int, bhi: int
) -> list[tuple[int, int]]:
    """Matches in a region with no unique lines (e.g. many repeated `    \\n` script lines)."""
    if (ahi - alo) * (bhi - blo) <= _DIFFLIB_LIMIT:
        matcher = SequenceMatcher(None, a[alo:ahi], b[blo:bhi], autojunk=False)
        return [
            (alo + i + k, blo + j + k) for i, j, n in matcher.get_matching_blocks() for k in range(n)
        ]
    # Greedy walk: on a mismatch, skip whichever side reaches a match again sooner.
    positions_a: dict[str, list[int]] = {}
    positions_b: dict[str, list[int]] = {}
    for i in range(alo, ahi):
        positions_a.setdefault(a[i], []).append(i)
    for j in range(blo, bhi):
        positions_b.setdefault(b[j], []).append(j)
    pairs = []
    i, j = alo, blo
    while i < ahi and j < bhi:
        if a[i] == b[j]:
            pairs.append((i, j))
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
    """difflib-style opcodes (equal/replace/delete/insert) for a -> b from the matched pairs."""
    ops: list[Opcode] = []
    i = j = 0
    for mi, mj in [*_matches(a, b), (len(a), len(b))]:
        if mi > i or mj > j:
            tag = "replace" if mi > i and mj > j else "delete" if mi > i else "insert"
            ops.append((tag, i, mi, j, mj))
        if mi < len(a):
            if ops and ops[-1][0] == "equal" and ops[-1][2] == mi:
                _, i1, _, j1, _ = ops.pop()
                ops.append(("equal", i1, mi + 1, j1, mj + 1))
            else:
                ops.append(("equal", mi, mi + 1, mj, mj + 1))
        i, j = mi + 1, mj + 1
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


def _hunk(group: list[Opcode], a: Sequence[str], b: Sequence[str]) -> Hunk:
    first = next(op for op in group if op[0] != "equal")
    # Name the section where the change begins: on the new side, or the old side when the
    # first change is a deletion (its line no longer exists in the new text).
    section = section_of(a, first[1]) if first[0] == "delete" else section_of(b, first[3])
    header = f"@@ -{_range(group[0][1], group[-1][2])} +{_range(group[0][3], group[-1][4])} @@"
    if section:
        header += f" {section}"
    lines: list[str] = []
    for tag, i1, i2, j1, j2 in group:
        if tag == "equal":
            lines.extend(" " + line for line in a[i1:i2])
            continue
        lines.extend("-" + line for line in a[i1:i2])
        lines.extend("+" + line for line in b[j1:j2])
    return Hunk(section=section, header=header, lines=tuple(lines))


def diff(old: str, new: str, old_label: str = "a", new_label: str = "b", context: int = 3) -> Diff:
    """Unified diff of two normalized texts; hunk headers name the RouterOS section."""
    a, b = display_lines(old), display_lines(new)
    ops = _opcodes(a, b)
    hunks = tuple(_hunk(group, a, b) for group in _groups(ops, context))
    added, removed = _count(ops)
    return Diff(old_label=old_label, new_label=new_label, hunks=hunks, added=added, removed=removed)


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
