"""PURE. Packing long lists (sites, devices, failures) into few Block Kit sections.

As many lines per section as 3,000 characters allow, within a block and character budget;
when the budget runs out, the last line says "… and N more …" with the exact count - nothing
is dropped without saying so. `share_budget` splits one message's budget between several lists
(`fair_share`) so that a long list of changes cannot crowd out the failures.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from bot.slack.blocks.kit import MAX_SECTION_TEXT, Block, clip, section, text_size


@dataclass(frozen=True)
class Entry:
    """One item of a list: a compact mrkdwn line, and richer blocks used while room allows."""

    line: str
    detail: tuple[Block, ...] = ()


def fit_lines(
    lines: Sequence[str], *, blocks: int, chars: int, more: Callable[[int], str],
    title: str | None = None, sep: str = "\n", max_lines: int | None = None,
) -> tuple[list[Block], int]:
    """Sections holding `title` then `lines` joined by `sep`, within `blocks` sections and
    `chars` characters of text.

    Returns the sections and how many of `lines` they show. If not all fit, the last section
    ends with more(hidden) (lines are taken back until it fits), so nothing is dropped unsaid.
    """
    chunks: list[list[tuple[str, str]]] = []  # (joiner, text) pieces of each section
    used = 0

    def push(text: str, joiner: str, force: bool = False) -> bool:
        nonlocal used
        text = clip(text, MAX_SECTION_TEXT)
        size = sum(len(j) + len(t) for j, t in chunks[-1]) if chunks else 0
        if chunks and size + len(joiner) + len(text) <= MAX_SECTION_TEXT:
            if used + len(joiner) + len(text) > chars and not force:
                return False
            chunks[-1].append((joiner, text))
            used += len(joiner) + len(text)
            return True
        if (len(chunks) >= blocks or used + len(text) > chars) and not force:
            return False
        chunks.append([("", text)])
        used += len(text)
        return True

    if title is not None:
        push(title, "", force=True)
    shown = 0
    for line in lines[:max_lines]:
        if not push(line, "\n" if shown == 0 else sep):
            break
        shown += 1
    hidden = len(lines) - shown
    while hidden:
        if push(more(hidden), "\n"):
            break
        if shown == 0:  # not even "… and N more" fits the budget: say it anyway (small overrun)
            push(more(hidden), "\n", force=True)
            break
        joiner, text = chunks[-1].pop()
        used -= len(joiner) + len(text)
        if not chunks[-1]:
            chunks.pop()
        shown -= 1
        hidden += 1
    return [section("".join(j + t for j, t in c)) for c in chunks], shown


def group(
    title: str | None, entries: Sequence[Entry], *, blocks: int, chars: int,
    more: Callable[[int], str], max_detailed: int = 0, sep: str = "\n", max_items: int | None = None,
) -> list[Block]:
    """A titled list: the first entries with their detail blocks while the budget allows
    (at most `max_detailed`), the rest as packed compact lines (at most `max_items` entries
    shown in all), then "… and N more" counting every entry not shown."""
    out: list[Block] = []
    used_blocks = used_chars = 0
    detailed = 0
    reserve_chars = len(more(len(entries))) + 1
    has_detail = max_detailed > 0 and any(e.detail for e in entries)
    if has_detail and title is not None:
        out.append(section(title))
        used_blocks, used_chars = 1, len(title)
        title = None
    if has_detail:
        for entry in entries[:min(max_detailed, len(entries) if max_items is None else max_items)]:
            size = text_size(entry.detail)
            rest = len(entries) - detailed - 1
            need_blocks = len(entry.detail) + (1 if rest else 0)
            need_chars = size + (reserve_chars if rest else 0)
            if not entry.detail or used_blocks + need_blocks > blocks or used_chars + need_chars > chars:
                break
            out.extend(entry.detail)
            used_blocks += len(entry.detail)
            used_chars += size
            detailed += 1
    rest_entries = entries[detailed:]
    if rest_entries or title is not None:
        packed, _ = fit_lines([e.line for e in rest_entries], blocks=blocks - used_blocks,
                              chars=chars - used_chars, more=more, title=title, sep=sep,
                              max_lines=None if max_items is None else max(max_items - detailed, 0))
        out.extend(packed)
    return out


UNLIMITED = (10**6, 10**9)  # (blocks, chars): a budget no list reaches, to measure its full rendering
Render = Callable[[int, int], list[Block]]  # (blocks, chars) -> the list rendered within that budget


def share_budget(renders: Sequence[Render], *, blocks: int, chars: int) -> list[list[Block]]:
    """Several lists in one message: each rendered in full if that fits its fair share of `blocks`
    and `chars`, else within its share (ending "… and N more"). Small lists are never cut to make
    room for a big one; the big ones split what is left evenly."""
    full = [render(*UNLIMITED) for render in renders]
    block_shares = fair_share([len(f) for f in full], blocks)
    char_shares = fair_share([text_size(f) for f in full], chars)
    return [f if len(f) <= nb and text_size(f) <= nc else render(nb, nc)
            for render, f, nb, nc in zip(renders, full, block_shares, char_shares)]


def fair_share(needs: Sequence[int], total: int) -> list[int]:
    """Split `total` so small needs are met in full and the big ones share the rest evenly."""
    shares = [0] * len(needs)
    pending = sorted(range(len(needs)), key=lambda i: needs[i])
    remaining = max(total, 0)
    while pending:
        each = remaining // len(pending)
        first = pending[0]
        if needs[first] > each:
            for i in pending:
                shares[i] = each
            break
        shares[first] = needs[first]
        remaining -= needs[first]
        pending.pop(0)
    return shares
