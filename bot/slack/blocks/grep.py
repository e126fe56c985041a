"""PURE. /backup grep's answers: the ack, the result when it fits in a message, and otherwise the
first devices with the counts of everything, pointing to the full result uploaded as a file.

Nothing is cut silently: the counts are always of every match, a device's lines cut to fit say how
many more are in the file, and "first N of M devices shown" says the rest is there too.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from bot.backup.grepresult import (
    DeviceHistory, DeviceHits, GrepResult, HistoryResult, counts, device_hit_lines, device_lines, history_lines,
    history_title, searched, version_label,
)
from bot.core.text import plural
from bot.routeros.grep import Query
from bot.slack.blocks.kit import (
    MAX_BLOCKS, MAX_SECTION_TEXT, MAX_TEXT, Block, Message, context, esc, header, message, section, text_size,
)

SHOWN_DEVICES = 10  # devices shown in the message when the result goes to a file
INLINE_CHARS = 3000  # a longer result goes to a file: a message is for reading at a glance
DEVICE_CHARS = 800  # lines of one device shown in the message, when others must fit too
LINE_CHARS = 300  # a longer line is cut (visibly) in the message; the file has it whole
_FENCE = "```"
_NAME = re.compile(r"[^A-Za-z0-9._-]+")


def grep_started(query: Query, devices: int, history: bool) -> Message:
    what = "every version" if history else "the latest backup"
    text = f"Searching {what} of {plural(devices, 'device')} for {esc(query.describe())}…"
    return message(text, [section(f":mag: {text}")])


def grep_file_name(query: Query, history: bool = False) -> str:
    slug = _NAME.sub("-", query.pattern).strip("-.")[:40] or "pattern"
    return f"grep{'-history' if history else ''}-{slug}.txt"


def grep_inline(result: GrepResult | HistoryResult) -> Message | None:
    """The whole result as one message, or None when it does not fit (upload the text instead)."""
    if not result.devices:
        text = f"No line matches {esc(result.query.describe())} in {esc(searched(result))}."
        return message(text, [section(text)])
    if isinstance(result, GrepResult) and not result.complete:
        return None
    parts = [_device(d, limit=None) for d in result.devices]
    if any(p is None for p in parts):
        return None
    top = _top(result)
    body = [section(p) for p in parts if p is not None]
    if len(top) + len(body) > MAX_BLOCKS or text_size([*top, *body]) > min(INLINE_CHARS, MAX_TEXT):
        return None
    return message(_fallback(result), [*top, *body])


def grep_summary(result: GrepResult | HistoryResult, file_name: str, *, private: bool) -> Message:
    """The first devices (their lines cut to fit), the counts of everything, and where the file went."""
    where = ("to our direct messages: some lines matched inside secret values, so it is for you alone"
             if private else "with this answer")
    top = _top(result)
    blocks_left = MAX_BLOCKS - len(top) - 1
    chars_left = MAX_TEXT - text_size(top) - 400  # the closing note
    body: list[Block] = []
    for device in result.devices[:SHOWN_DEVICES]:
        part = _device(device, limit=DEVICE_CHARS)
        block = section(part if part is not None else f"{_device_title(device)}\n_(its lines are in the file)_")
        size = text_size([block])
        if len(body) >= blocks_left or size > chars_left:
            break
        body.append(block)
        chars_left -= size
    total = plural(len(result.devices), "device")
    shown = f"First {len(body):,} of {total} shown" if len(body) < len(result.devices) else f"All {total} shown"
    note = context(f"{shown}. The full result, every line, is in *{esc(file_name)}*, sent {where}.")
    return message(_fallback(result) + f" (full result in {file_name})", [*top, *body, note])


def _top(result: GrepResult | HistoryResult) -> list[Block]:
    kind = "grep --history" if isinstance(result, HistoryResult) else "grep"
    line = f"*{counts(result)}* match · searched {esc(searched(result))}"
    if isinstance(result, GrepResult) and not result.complete:
        line += (f"\nThe first {result.listed:,} of {result.lines:,} matching lines are in the file; every one is "
                 "counted. Narrow the pattern, or name a SITE, to see the others.")
    return [header(f"{kind} {result.query.describe()}"), section(line)]


def _fallback(result: GrepResult | HistoryResult) -> str:
    return f"{result.query.describe()}: {counts(result)}"


def _device_title(device: DeviceHits | DeviceHistory) -> str:
    if isinstance(device, DeviceHistory):
        return f"*{esc(device.label)}* · {esc(history_title(device).split(': ', 1)[1])}"
    v = device.version
    lines = plural(device.count, "matching line")
    return f"*{esc(device.label)}* · {esc(version_label(v))} · RouterOS {esc(v.meta.ros_version or '?')} · {lines}"


def _device(device: DeviceHits | DeviceHistory, limit: int | None) -> str | None:
    """The device's title and its lines in a code block.

    limit None (the whole result inline): every line, with the lines around the matches; None if
    they do not all fit one section, or one is longer than LINE_CHARS or would break the code block.
    Otherwise (a glimpse beside the file): the matching lines only, each cut at LINE_CHARS, as many
    as fit in `limit` characters, then how many more are in the file; None only for a line that
    would break the code block."""
    title = _device_title(device)
    room = MAX_SECTION_TEXT - len(title) - 2 * len(_FENCE) - 80
    if isinstance(device, DeviceHistory):
        lines, weights = history_lines(device), None
    elif limit is None:
        lines, weights = device_lines(device), None
    else:
        lines = device_hit_lines(device)
        weights = [0 if line.startswith("  /") or line.startswith("  (") else 1 for line in lines]
    if any(_FENCE in line for line in lines):
        return None
    if limit is None:
        if any(len(line) > LINE_CHARS for line in lines) or sum(len(x) + 1 for x in map(esc, lines)) > room:
            return None
        return f"{title}\n{_FENCE}\n" + "\n".join(map(esc, lines)) + f"\n{_FENCE}"
    kept = _fit([esc(line, LINE_CHARS) for line in lines], min(room, limit))
    if weights is not None and isinstance(device, DeviceHits):
        more, noun = device.count - sum(weights[:len(kept)]), "more matching line"
    else:
        more, noun = len(lines) - len(kept), "more line"
    tail = f"\n_… {plural(more, noun)} in the file_" if more > 0 else ""
    if not kept:
        return f"{title}{tail}"
    return f"{title}\n{_FENCE}\n" + "\n".join(kept) + f"\n{_FENCE}{tail}"


def _fit(lines: Sequence[str], room: int) -> list[str]:
    kept: list[str] = []
    used = 0
    for line in lines:
        if used + len(line) + 1 > room:
            break
        kept.append(line)
        used += len(line) + 1
    return kept

