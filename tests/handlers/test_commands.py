"""handlers.commands.parse: the /backup text as a Command, purely (no Slack, no I/O)."""

from __future__ import annotations

import pytest

from handlers.commands import Command, Kind, parse


@pytest.mark.parametrize(("text", "expected"), [
    ("", Command(Kind.HELP)),
    ("   ", Command(Kind.HELP)),
    ("help", Command(Kind.HELP)),
    ("sites", Command(Kind.SITES)),
    ("SITES", Command(Kind.SITES)),
    ("site-a", Command(Kind.SITE, site="site-a")),
    ("site-a core-1", Command(Kind.DEVICE, site="site-a", device="core-1")),
    ("site-a now", Command(Kind.BACKUP, site="site-a")),
    ("site-a core-1 now", Command(Kind.BACKUP, site="site-a", device="core-1")),
    ("show 12", Command(Kind.SHOW, ids=(12,))),
    ("show #12", Command(Kind.SHOW, ids=(12,))),
    ("download 7", Command(Kind.DOWNLOAD, ids=(7,))),
    ("diff 3 9", Command(Kind.DIFF, ids=(3, 9))),
    ("diff site-a core-1", Command(Kind.LATEST_CHANGE, site="site-a", device="core-1")),
    ("search 10.0.0", Command(Kind.SEARCH, text="10.0.0")),
    ("search  main  st", Command(Kind.SEARCH, text="main  st")),
    ("  site-a   core-1  ", Command(Kind.DEVICE, site="site-a", device="core-1")),
])
def test_each_row_of_the_table(text: str, expected: Command) -> None:
    """Every documented form parses to its Command; spacing and keyword case don't matter."""
    assert parse(text) == expected


@pytest.mark.parametrize("text", [
    "help me", "sites now", "show", "show x", "show 1 2", "download", "download abc", "diff 1",
    "diff 1 site-a", "diff site-a 1", "diff 1 2 3", "search", "site-a core-1 now extra", "a b c",
])
def test_malformed_text_is_usage(text: str) -> None:
    """Anything that fits no row is USAGE (answered with the usage), never an exception."""
    assert parse(text) == Command(Kind.USAGE)
