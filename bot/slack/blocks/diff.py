"""PURE. Diffs for Slack: the full text for a snippet, or a short inline message.

`diff_text` is what goes into a snippet uploaded with snippet_type="diff" (Slack colours the
-/+ lines there). `diff_inline` renders a short diff as message blocks; Slack does not colour
code blocks in messages, so removed lines get a red square and added lines a green one (unicode
glyphs, shown inside code blocks on desktop and phone), keeping the -/+ as well. A diff is never
cut: if any part does not fit, diff_inline returns None and the caller uploads the snippet.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from bot.slack.blocks.kit import MAX_BLOCKS, MAX_SECTION_TEXT, MAX_TEXT, Message, esc, message, section
from bot.core.models import Diff
from bot.core.text import changes, diffs_text

REMOVED, ADDED, CONTEXT = "🟥 ", "🟩 ", "   "  # a square is about two columns wide, then a space
INLINE_MAX = MAX_TEXT - 500  # room for the fallback-ish title lines and any caller additions
_RANGE = re.compile(r"@@ [^@]* @@")
_FENCE = "```"


def pair_title(diff: Diff) -> str:
    """`site-a/core-1 #3 (…) → #7 (…)`: the device named once when both sides share it."""
    old_dev, _, old_rest = diff.old_label.partition(" #")
    new_dev, _, new_rest = diff.new_label.partition(" #")
    if old_rest and new_rest and old_dev == new_dev:
        return f"{old_dev} #{old_rest} → #{new_rest}"
    return f"{diff.old_label} → {diff.new_label}"


def diff_text(diffs: Sequence[Diff]) -> str:
    """Unified text of every pair, each after its own `===== a → b =====` line."""
    return "".join(f"===== {pair_title(d)} =====\n" + diffs_text([d]) for d in diffs)


def _pieces(diffs: Sequence[Diff]) -> list[tuple[bool, str]] | None:
    """(is_code, mrkdwn line) for the inline form; None if a line would break the code block."""
    out: list[tuple[bool, str]] = []
    for d in diffs:
        counts = f"`{changes(d.added, d.removed)}`" if not d.empty else "no differences"
        out.append((False, f"*{esc(pair_title(d))}* · {counts}"))
        for hunk in d.hunks:
            match = _RANGE.match(hunk.header)
            where = esc(hunk.section) if hunk.section else "top of the export"
            out.append((False, f"*{where}* · `{match.group(0) if match else esc(hunk.header)}`"))
            for line in hunk.lines:
                if _FENCE in line:
                    return None
                mark = {"-": REMOVED, "+": ADDED}.get(line[:1], CONTEXT)
                out.append((True, mark + esc(line)))
    return out


def _pack(pieces: list[tuple[bool, str]]) -> list[str] | None:
    """Sections of at most MAX_SECTION_TEXT characters, code fenced (a split block is closed
    and reopened); None if one line cannot fit even alone."""
    sections: list[str] = []
    lines: list[str] = []
    in_code = False
    size = 0  # len("\n".join(lines))

    def fits(extra: list[str], code: bool) -> bool:
        added = sum(len(x) + 1 for x in extra) - (0 if lines else 1)
        return size + added + (len(_FENCE) + 1 if code else 0) <= MAX_SECTION_TEXT

    for code, text in pieces:
        extra = ([_FENCE] if code and not in_code else []) + ([_FENCE] if not code and in_code else []) + [text]
        if not fits(extra, code):
            if not lines:
                return None
            sections.append("\n".join(lines + ([_FENCE] if in_code else [])))
            lines, in_code, size = [], False, 0
            extra = ([_FENCE] if code else []) + [text]
            if not fits(extra, code):
                return None
        size += sum(len(x) + 1 for x in extra) - (0 if lines else 1)
        lines.extend(extra)
        in_code = code
    if lines:
        sections.append("\n".join(lines + ([_FENCE] if in_code else [])))
    return sections


def diff_inline(diffs: Sequence[Diff], max_chars: int = 2800) -> Message | None:
    """The diffs as a message when their whole rendering is at most `max_chars` characters
    (capped at INLINE_MAX) in sections of at most 3,000; otherwise None: upload diff_text."""
    if not diffs:
        return message("Nothing to compare.", [section("Nothing to compare.")])
    limit = min(max_chars, INLINE_MAX)
    if sum(len(line) for d in diffs for h in d.hunks for line in h.lines) > limit:
        return None  # cheap early answer for big diffs: the rendering is longer still
    pieces = _pieces(diffs)
    sections = _pack(pieces) if pieces is not None else None
    if sections is None or len(sections) > MAX_BLOCKS:
        return None
    if sum(len(s) for s in sections) > limit:
        return None
    fallback = "; ".join(f"{esc(pair_title(d))}: {changes(d.added, d.removed) if not d.empty else 'no differences'}"
                         for d in diffs)
    return message(fallback, [section(s) for s in sections])
