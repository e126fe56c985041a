"""The pages' colours (bot/web/static/ui.css) keep WCAG AA contrast for text: at least 4.5:1 for
every text colour on every background it is drawn on, red and green rows and word highlights included."""

from __future__ import annotations

import re

import pytest

from bot.web.app import HERE

CSS = (HERE / "static" / "ui.css").read_text()
COLOURS = dict(re.findall(r"--([\w-]+):\s*(#[0-9a-fA-F]{6})\s*;", CSS))

# (text colour, background): every pairing the stylesheet makes
PAIRS = [
    ("text", "bg"), ("text", "panel"), ("text", "hunk-bg"), ("text", "flash-bg"),
    ("text", "del-bg"), ("text", "del-num-bg"), ("text", "del-word"),
    ("text", "add-bg"), ("text", "add-num-bg"), ("text", "add-word"),
    ("del-marker", "del-bg"), ("add-marker", "add-bg"), ("del-marker", "bg"), ("add-marker", "bg"),
    ("muted", "bg"), ("muted", "panel"), ("muted", "hunk-bg"),
    ("link", "bg"), ("link", "panel"), ("link", "hunk-bg"),
    ("bad", "bg"), ("warn", "bg"), ("primary-text", "primary-bg"),
    # the search page and the line a link points at
    ("text", "hit-bg"), ("text", "match-bg"), ("muted", "hit-bg"), ("link", "hit-bg"), ("warn", "hit-bg"),
    ("text", "target-bg"), ("muted", "target-bg"), ("bad", "error-bg"),
]


def luminance(hex_colour: str) -> float:
    def channel(c: int) -> float:
        s = c / 255
        return s / 12.92 if s <= 0.04045 else ((s + 0.055) / 1.055) ** 2.4

    r, g, b = (int(hex_colour[i:i + 2], 16) for i in (1, 3, 5))
    return 0.2126 * channel(r) + 0.7152 * channel(g) + 0.0722 * channel(b)


def contrast(a: str, b: str) -> float:
    hi, lo = sorted((luminance(a), luminance(b)), reverse=True)
    return (hi + 0.05) / (lo + 0.05)


def test_the_formula_matches_wcags_reference_values() -> None:
    assert contrast("#000000", "#ffffff") == pytest.approx(21.0)
    assert contrast("#777777", "#ffffff") == pytest.approx(4.48, abs=0.01)


@pytest.mark.parametrize(("fg", "bg"), PAIRS, ids=[f"{f} on {b}" for f, b in PAIRS])
def test_text_keeps_aa_contrast(fg: str, bg: str) -> None:
    ratio = contrast(COLOURS[fg], COLOURS[bg])
    assert ratio >= 4.5, f"--{fg} {COLOURS[fg]} on --{bg} {COLOURS[bg]}: {ratio:.2f}:1"


def test_removed_is_red_and_added_is_green_and_words_are_stronger() -> None:
    def rgb(name: str) -> tuple[int, int, int]:
        return tuple(int(COLOURS[name][i:i + 2], 16) for i in (1, 3, 5))  # type: ignore[return-value]

    for name in ("del-bg", "del-word"):
        r, g, b = rgb(name)
        assert r > g and r > b
    for name in ("add-bg", "add-word"):
        r, g, b = rgb(name)
        assert g > r and g > b
    assert luminance(COLOURS["del-word"]) < luminance(COLOURS["del-bg"])
    assert luminance(COLOURS["add-word"]) < luminance(COLOURS["add-bg"])
