"""PURE. A fleet search (bot.backup.grep) as the search page shows it: per device, runs of lines as
`grep -n -C2` gives them, each run under its RouterOS section, the matches in a matching line marked,
and every line number a link to that line on the View page.

Nothing is dropped silently: every matching device is named and counted. The page lists the first
lines the search listed (bot.backup.grep.WEB_LINES); a device whose lines were not all listed says
how many it has and, when they would all fit on a page, links to a search of that device alone;
devices with none listed follow in a table of their own, each with its count (and that link).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from bot.backup.grepresult import DeviceHits, GrepResult, context_runs, counts, header_in_run, searched
from bot.core.text import plural, when
from bot.routeros.grep import Hit, Query
from bot.web import paths

Piece = tuple[str, bool]  # a stretch of a line, and whether the pattern matched it
TOP = "(top of the export)"


@dataclass(frozen=True)
class Row:
    number: int  # 1-based, as `backupbot show` numbers the normalized config
    pieces: tuple[Piece, ...]
    hit: bool  # a matching line (else a line around one)
    secret: bool  # matched only inside a secret value, which the (redacted) line hides
    href: str  # the line on the View page


@dataclass(frozen=True)
class Run:
    label: str | None  # the section, named above the run when its header line is not in it
    rows: tuple[Row, ...]


@dataclass(frozen=True)
class DeviceView:
    site: str
    device: str
    version_id: int
    taken: str
    ros: str
    count: int  # its matching lines
    listed: int  # ... shown here
    runs: tuple[Run, ...]
    device_href: str
    version_href: str
    narrow: str | None  # a search of this device alone, when it would show lines not shown here

    @property
    def label(self) -> str:
        return f"{self.site}/{self.device}"

    @property
    def lines(self) -> str:
        return plural(self.count, "matching line")


@dataclass(frozen=True)
class SearchView:
    what: str  # `“winbox”`, `regex “dst-port=\d+” (ignoring case)`
    counts: str  # "37 devices, 112 lines"
    searched: str  # "the latest backups of 120 devices"
    shown: tuple[DeviceView, ...]  # devices with lines listed, in inventory order
    more: tuple[DeviceView, ...]  # matching devices none of whose lines are listed
    lines: int
    listed: int
    secret: bool  # some line matched only inside a secret value

    @property
    def found(self) -> bool:
        return bool(self.shown or self.more)

    @property
    def incomplete(self) -> str | None:
        if self.listed == self.lines:
            return None
        return (f"The first {self.listed:,} of {self.lines:,} matching lines are shown; every one is counted. "
                "Narrow the pattern, or search one site or device, to see the others.")


def pieces(line: str, spans: Sequence[tuple[int, int]]) -> tuple[Piece, ...]:
    """The line cut at the matches (sorted, not overlapping, as re.finditer gives them)."""
    out: list[Piece] = []
    at = 0
    for start, end in spans:
        if start < at or end > len(line) or start >= end:
            continue  # not where the line has it: shown unmarked rather than wrong
        if start > at:
            out.append((line[at:start], False))
        out.append((line[start:end], True))
        at = end
    if at < len(line) or not out:
        out.append((line[at:], False))
    return tuple(out)


def _runs(device: DeviceHits) -> tuple[Run, ...]:
    version = device.version.id
    runs = []
    for block in context_runs(device.hits):
        first = next(h for _, _, h in block if h is not None)
        label = None if header_in_run(block, first) is not None else first.section or TOP
        runs.append(Run(label, tuple(_row(version, number, text, hit) for number, text, hit in block)))
    return tuple(runs)


def _row(version: int, number: int, text: str, hit: Hit | None) -> Row:
    href = paths.version_line(version, number)
    if hit is None:
        return Row(number, ((text, False),), False, False, href)
    return Row(number, pieces(text, hit.spans), True, hit.secret, href)


def _device(device: DeviceHits, query: Query, limit: int) -> DeviceView:
    v = device.version
    narrow = None
    if len(device.hits) < device.count <= limit:
        narrow = paths.search(query.pattern, regex=query.regex, ignore_case=query.ignore_case, site=v.site,
                              device=v.device)
    return DeviceView(v.site, v.device, v.id, f"{when(v.first_seen)} UTC", v.meta.ros_version or "?", device.count,
                      len(device.hits), _runs(device), paths.device(v.site, v.device), paths.version(v.id), narrow)


def search_view(result: GrepResult, limit: int) -> SearchView:
    """The page of `result`, a search that listed at most `limit` lines."""
    devices = [_device(d, result.query, limit) for d in result.devices]
    return SearchView(result.query.describe(), counts(result), searched(result),
                      tuple(d for d in devices if d.listed), tuple(d for d in devices if not d.listed),
                      result.lines, result.listed, result.secret)
