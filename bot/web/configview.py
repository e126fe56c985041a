"""PURE. A config as the View page shows it: numbered lines, and a table of contents of its
RouterOS sections (each run of lines under one menu path, e.g. `/ip firewall filter`).

Lines are the display lines Slack's diffs number (bot.routeros.diff.display_lines: long script
sources split at their `\\n` escapes), so a line number means the same on the View and Compare
pages. A terse export repeats the menu on every line; consecutive lines of the same menu are one
section. A config too long for one page is shown WINDOW lines at a time; the table of contents
always lists every section and links into whichever window holds it.

A fleet search (bot.backup.grep) numbers the normalized lines, as `backupbot show` does; where a
script was split, the View page's numbers run ahead of them. `display_index` maps one to the other,
so a search hit opens the View page at its own line.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from bot.routeros.export import Sections

WINDOW = 5000  # lines per page: a browser shows them at once without a pause


@dataclass(frozen=True)
class Section:
    line: int  # 0-based first line
    path: str  # e.g. "/ip firewall filter"
    count: int  # lines in the section


@dataclass(frozen=True)
class ConfigWindow:
    """What the View page shows of a config: lines [start, start + len(lines)) of `total`, and every
    section (the table of contents)."""

    total: int
    start: int
    lines: tuple[str, ...]
    sections: tuple[Section, ...]


# (normalized line, 0-based; display lines before the next normalized line, minus its number + 1)
# for each normalized line shown as several: the few points where the two numberings part
Parting = tuple[tuple[int, int], ...]


def parting(splits: Iterable[tuple[int, int]]) -> Parting:
    """The points where the numberings part, from bot.routeros.diff.display_splits' (line, pieces)."""
    ahead, out = 0, []
    for k, pieces in splits:
        ahead += pieces - 1
        out.append((k, ahead))
    return tuple(out)


def display_index(parts: Parting, normalized: int) -> int:
    """The 0-based display line where normalized line `normalized` (0-based) starts."""
    i = bisect.bisect_left(parts, (normalized, -1))
    return normalized + (parts[i - 1][1] if i else 0)


def outline(lines: Sequence[str]) -> tuple[Section, ...]:
    """The sections of the display lines, in order; lines before the first menu belong to none."""
    names = Sections(lines)
    starts: list[tuple[int, str]] = []
    for i, line in enumerate(lines):
        if line.startswith("/"):
            path = names.of(i) or line
            if not starts or starts[-1][1] != path:
                starts.append((i, path))
    ends = [start for start, _ in starts[1:]] + [len(lines)]
    return tuple(Section(start, path, end - start) for (start, path), end in zip(starts, ends))


def window(total: int, at: int, size: int = WINDOW) -> tuple[int, int]:
    """The [start, stop) of the page of lines that holds line `at` (0-based), in steps of `size`."""
    at = min(max(at, 0), max(total - 1, 0))
    start = at - at % size
    return start, min(start + size, total)
