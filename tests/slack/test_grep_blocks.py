"""/backup grep's Block Kit answers: within Slack's limits however big the result, nothing dropped
without saying so, and lines that would break a code block never inlined."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest
from slack_sdk.models.blocks import Block as SdkBlock

from bot.backup.grepresult import DeviceHistory, DeviceHits, GrepResult, HistoryResult
from bot.core.models import ExportMeta, Version
from bot.routeros.grep import Hit, LineHistory, Query, Span
from bot.slack import blocks

TAKEN = datetime(2026, 3, 1, 2, 0, tzinfo=UTC)


def version(n: int, device: str = "gw") -> Version:
    return Version(n, "site-a", device, TAKEN, TAKEN, 1000, "ab" * 32, ExportMeta("7.20.1"))


def hit(number: int, line: str = "add action=accept chain=input dst-port=8291 protocol=tcp") -> Hit:
    return Hit(number, "/ip firewall filter", line, ("add chain=input a", "add chain=input b"),
               ("add chain=input c", "add chain=input d"))


def result(devices: int, hits: int = 1, line: str | None = None, *, lines: int | None = None) -> GrepResult:
    found = tuple(DeviceHits(version(i + 1, f"gw-{i + 1:03d}"), hits,
                             tuple(hit(10 * j + 5, *(line,) if line else ()) for j in range(hits)))
                  for i in range(devices))
    total = devices * hits if lines is None else lines
    return GrepResult(Query("8291"), found, devices + 3, 0, total)


def valid(message: dict[str, Any]) -> str:
    """Slack's limits, checked here and by slack_sdk's own validators; the message's text."""
    assert 1 <= len(message["blocks"]) <= 50 and len(message["text"]) <= 3000
    for block in message["blocks"]:
        assert SdkBlock.parse(block).to_dict() == block
        if block["type"] == "section":
            assert len(block["text"]["text"]) <= 3000
            assert block["text"]["text"].count("```") % 2 == 0
    texts = [b["text"]["text"] for b in message["blocks"] if "text" in b] + [
        e["text"] for b in message["blocks"] for e in b.get("elements", [])]
    assert sum(map(len, texts)) <= 10_000
    return json.dumps(message, ensure_ascii=False)


def test_a_small_result_is_the_answer() -> None:
    message = blocks.grep_inline(result(2))
    assert message is not None
    shown = valid(message)
    assert message["text"] == "“8291”: 2 devices, 2 lines"
    assert "*site-a/gw-001* · #1 (2026-03-01 02:00 UTC) · RouterOS 7.20.1 · 1 matching line" in shown
    assert "5: add action=accept chain=input dst-port=8291" in shown and "/ip firewall filter" in shown
    assert "3- add chain=input a" in shown and "7- add chain=input d" in shown  # the lines around it
    assert "searched the latest backups of 5 devices" in shown


def test_no_match_says_what_was_searched() -> None:
    message = blocks.grep_inline(GrepResult(Query("x"), (), 7, 2, 0))
    assert message is not None
    assert message["text"] == ("No line matches “x” in the latest backups of 7 devices; 2 devices without a "
                               "backup yet.")


@pytest.mark.parametrize(("devices", "hits", "line"), [
    (37, 3, None),  # many devices
    (3, 400, None),  # many lines on few devices
    (500, 2, "x" * 2500),  # lines longer than a section
])
def test_a_big_result_shows_the_first_devices_and_counts_everything(devices: int, hits: int, line: str | None) -> None:
    big = result(devices, hits, line)
    assert blocks.grep_inline(big) is None
    message = blocks.grep_summary(big, "grep-8291.txt", private=False)
    shown = valid(message)
    listed = [b for b in message["blocks"] if b["type"] == "section" and b["text"]["text"].startswith("*site-a/")]
    assert 1 <= len(listed) <= 10
    assert f"*{devices} devices, {devices * hits:,} lines* match" in shown
    first = f"First {len(listed)} of {devices} devices" if len(listed) < devices else f"All {devices} devices"
    assert f"{first} shown. The full result, every line, is in *grep-8291.txt*, sent with this answer." in shown
    for block in listed:  # the first matching line is shown; a device whose lines were cut says how many
        text = block["text"]["text"]
        assert "5: add action=accept" in text or "5: xxx" in text
        shown_hits = text.count("5: ")
        assert shown_hits == hits or f"… {hits - shown_hits:,} more matching line" in text


def test_lines_counted_but_not_listed_are_said_to_be() -> None:
    capped = result(3, 2, lines=50_000)
    message = blocks.grep_summary(capped, "grep-8291.txt", private=True)
    shown = valid(message)
    assert "The first 6 of 50,000 matching lines are in the file; every one is counted." in shown
    assert "sent to our direct messages: some lines matched inside secret values" in shown


def test_a_line_with_a_code_fence_is_never_inlined() -> None:
    fenced = result(1, 1, 'add comment="```oops```"')
    assert blocks.grep_inline(fenced) is None
    shown = valid(blocks.grep_summary(fenced, "grep-8291.txt", private=False))
    assert "_(its lines are in the file)_" in shown


def test_history_fits_too() -> None:
    spans = (Span(version(3), version(9)), Span(version(12), None))
    device = DeviceHistory("site-a", "gw", 20, version(1), version(40),
                           tuple(LineHistory(f"add chain=input dst-port={i}", "/ip firewall filter", spans, i)
                                 for i in range(3)))
    small = HistoryResult(Query("dst-port"), (device,), 1, 0, False)
    message = blocks.grep_inline(small)
    assert message is not None
    shown = valid(message)
    assert "appeared in #3 (2026-03-01 02:00 UTC); gone in #9 (2026-03-01 02:00 UTC)" in shown
    assert "appeared in #12 (2026-03-01 02:00 UTC); still there (line 2 of #40)" in shown
    many = HistoryResult(Query("dst-port"), (DeviceHistory("site-a", "gw", 20, version(1), version(40), tuple(
        LineHistory(f"add chain=input dst-port={i}", "/ip firewall filter", spans, i) for i in range(300))),), 1, 0,
        False)
    assert blocks.grep_inline(many) is None
    valid(blocks.grep_summary(many, "grep-history-dst-port.txt", private=False))


def test_file_names_are_safe() -> None:
    assert blocks.grep_file_name(Query("winbox")) == "grep-winbox.txt"
    assert blocks.grep_file_name(Query(r"dst-port=\d+ / *"), history=True) == "grep-history-dst-port-d.txt"
    assert blocks.grep_file_name(Query("***")) == "grep-pattern.txt"
