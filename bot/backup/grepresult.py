"""PURE. What a search (bot.backup.grep) finds, and how it reads as text: what `backupbot grep`
prints, and the full result Slack uploads as a file. Lines come in blocks like `grep -n -C2`'s:
`534:` a matching line, `533-` a line around it, each block under the RouterOS section it is in.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from bot.core.models import Version
from bot.core.text import plural, when
from bot.routeros.grep import Hit, LineHistory, Query, Span


@dataclass(frozen=True)
class DeviceHits:
    """One device's latest backup, and its matching lines (the first `len(hits)` of `count`).
    (`version.last_verified` may be older than the store's: it is not re-read for every search.)"""

    version: Version
    count: int
    hits: tuple[Hit, ...]

    @property
    def label(self) -> str:
        return f"{self.version.site}/{self.version.device}"


@dataclass(frozen=True)
class GrepResult:
    query: Query
    devices: tuple[DeviceHits, ...]  # devices with a matching line, in inventory order
    searched: int  # devices whose latest backup was searched
    unbacked: int  # devices asked for that have no backup yet
    lines: int  # matching lines in all

    @property
    def listed(self) -> int:
        """Matching lines given in detail (the rest are counted only)."""
        return sum(len(d.hits) for d in self.devices)

    @property
    def complete(self) -> bool:
        return self.listed == self.lines

    @property
    def secret(self) -> bool:
        """Some line matched only inside a secret value (searched with download rights): whoever
        reads the result learns something about that secret, so it is for the requester alone."""
        return any(h.secret for d in self.devices for h in d.hits)


@dataclass(frozen=True)
class DeviceHistory:
    """The matching lines of one device across all its versions (oldest `first`, newest `last`)."""

    site: str
    device: str
    versions: int
    first: Version
    last: Version
    lines: tuple[LineHistory, ...]

    @property
    def label(self) -> str:
        return f"{self.site}/{self.device}"


@dataclass(frozen=True)
class HistoryResult:
    query: Query
    devices: tuple[DeviceHistory, ...]  # devices where a version ever had a matching line
    searched: int  # devices whose versions were searched
    unbacked: int
    secret: bool  # as GrepResult.secret


# --- as text ------------------------------------------------------------------------------------


def counts(result: GrepResult | HistoryResult) -> str:
    """`37 devices, 112 lines` (lines matching, in all)."""
    lines = sum(len(d.lines) for d in result.devices) if isinstance(result, HistoryResult) else result.lines
    return f"{plural(len(result.devices), 'device')}, {plural(lines, 'line')}"


def searched(result: GrepResult | HistoryResult) -> str:
    """What was searched: `the latest backups of 120 devices` (and how many have none yet)."""
    what = "every version of" if isinstance(result, HistoryResult) else "the latest backups of"
    text = f"{what} {plural(result.searched, 'device')}"
    if result.unbacked:
        text += f"; {plural(result.unbacked, 'device')} without a backup yet"
    return text


def title(result: GrepResult | HistoryResult) -> str:
    kind = "grep --history" if isinstance(result, HistoryResult) else "grep"
    return f"{kind} {result.query.describe()}: {counts(result)}"


def version_label(version: Version) -> str:
    return f"#{version.id} ({when(version.first_seen)} UTC)"


# --- the latest backups -------------------------------------------------------------------------


def result_text(result: GrepResult) -> str:
    """The whole result: a title line, then each device's blocks of lines."""
    if not result.devices:
        return f"No line matches {result.query.describe()} in {searched(result)}.\n"
    out = [f"{title(result)} — searched {searched(result)}", ""]
    for device in result.devices:
        out.append(device_title(device))
        out.extend(device_lines(device))
        out.append("")
    if not result.complete:
        out.append(incomplete(result))
    return "\n".join(out).rstrip("\n") + "\n"


def device_title(device: DeviceHits) -> str:
    listed = f" ({len(device.hits):,} listed)" if len(device.hits) < device.count else ""
    return (f"{device.label} {version_label(device.version)}: "
            f"{plural(device.count, 'matching line')}{listed}")


def incomplete(result: GrepResult) -> str:
    return (f"The first {result.listed:,} of {result.lines:,} matching lines are listed; every one is "
            "counted above. Narrow the pattern, or name a SITE, to see the others.")


def device_lines(device: DeviceHits) -> list[str]:
    """The device's matching lines in blocks (indented), each block under its section."""
    width = len(str(max((h.number + len(h.after) for h in device.hits), default=1)))
    out: list[str] = []
    for block in context_runs(device.hits):
        first_hit = next(h for _, _, h in block if h is not None)
        header = header_in_run(block, first_hit)
        if header is None:  # the section's own line is not in the block: name it above
            out.append(f"  {first_hit.section or '(top of the export)'}")
        elif out:
            out.append("  --")
        for number, text, hit in block:
            mark = ":" if hit is not None else "-"
            out.append(f"    {number:>{width}}{mark} {text}")
    return out


def device_hit_lines(device: DeviceHits) -> list[str]:
    """Only the matching lines, each under its section when that changes: a short view."""
    width = len(str(max((h.number for h in device.hits), default=1)))
    out: list[str] = []
    section: str | None = ""
    for hit in device.hits:
        if hit.section != section:
            section = hit.section
            out.append(f"  {section or '(top of the export)'}")
        out.append(f"    {hit.number:>{width}}: {hit.line}")
    return out


def context_runs(hits: Sequence[Hit]) -> Iterator[list[tuple[int, str, Hit | None]]]:
    """Runs of consecutive lines: matching lines with the lines around them, overlaps merged; each
    line as (number, text, its Hit if it is a matching line)."""
    lines: dict[int, tuple[str, Hit | None]] = {}
    for hit in hits:
        for i, text in enumerate(hit.before):
            lines.setdefault(hit.number - len(hit.before) + i, (text, None))
        lines[hit.number] = (hit.line, hit)
        for i, text in enumerate(hit.after):
            lines.setdefault(hit.number + 1 + i, (text, None))
    block: list[tuple[int, str, Hit | None]] = []
    for number in sorted(lines):
        if block and number != block[-1][0] + 1:
            yield block
            block = []
        block.append((number, *lines[number]))
    if block:
        yield block


def header_in_run(block: list[tuple[int, str, Hit | None]], hit: Hit) -> int | None:
    """The number of the line that starts the hit's section if the block shows it: the last line
    starting with "/" at or above the hit (bot.routeros.export.Sections' rule)."""
    found = None
    for number, text, _ in block:
        if number > hit.number:
            break
        if text.startswith("/"):
            found = number
    return found


# --- history -------------------------------------------------------------------------------------


def history_text(result: HistoryResult) -> str:
    if not result.devices:
        return f"No line matches {result.query.describe()} in {searched(result)}.\n"
    out = [f"{title(result)} — searched {searched(result)}", ""]
    for device in result.devices:
        out.append(history_title(device))
        out.extend(history_lines(device))
        out.append("")
    return "\n".join(out).rstrip("\n") + "\n"


def history_title(device: DeviceHistory) -> str:
    span = (f"{version_label(device.first)} … {version_label(device.last)}" if device.versions > 1
            else version_label(device.first))
    lines = plural(len(device.lines), "matching line")
    return f"{device.label}: {lines} in {plural(device.versions, 'version')}, {span}"


def history_lines(device: DeviceHistory) -> list[str]:
    out: list[str] = []
    section: str | None = ""
    for line in device.lines:
        if line.section != section:
            section = line.section
            out.append(f"  {section or '(top of the export)'}")
        out.append(f"    {line.line}")
        out.extend(f"      {phrase}" for phrase in span_phrases(line, device))
    return out


def span_phrases(line: LineHistory, device: DeviceHistory) -> list[str]:
    """One phrase per stretch of versions the line was in, e.g. `appeared in #12 (…); gone in #20 (…)`."""
    return [_span(span, line, device) for span in line.spans]


def _span(span: Span, line: LineHistory, device: DeviceHistory) -> str:
    if span.since.id == device.first.id:
        start = f"there since the oldest backup, {version_label(span.since)}"
    else:
        start = f"appeared in {version_label(span.since)}"
    if span.until is None:
        return f"{start}; still there (line {line.number} of #{device.last.id})"
    return f"{start}; gone in {version_label(span.until)}"
