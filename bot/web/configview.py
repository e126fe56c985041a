"""PURE. A config as the View page shows it: numbered lines, and a table of contents of its
RouterOS sections (each run of lines under one menu path, e.g. `/ip firewall filter`).

Lines are the display lines Slack's diffs number (bot.routeros.diff.display_lines: long script
sources split at their `\\n` escapes), so a line number means the same on the View and Compare
pages. A terse export repeats the menu on every line; consecutive lines of the same menu are one
section. A config too long for one page is shown WINDOW lines at a time; the table of contents
always lists every section and links into whichever window holds it.
"""

from __future__ import annotations

from collections.abc import Sequence
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
