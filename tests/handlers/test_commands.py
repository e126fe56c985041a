"""handlers.commands.parse: the /backup text as a Command, purely (no Slack, no I/O)."""

from __future__ import annotations

import pytest

from bot.routeros.grep import Query
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


@pytest.mark.parametrize(("text", "expected"), [
    ("grep winbox", Command(Kind.GREP, query=Query("winbox"))),
    ("GREP winbox site-a", Command(Kind.GREP, site="site-a", query=Query("winbox"))),
    ("grep winbox site-a core-1", Command(Kind.GREP, site="site-a", device="core-1", query=Query("winbox"))),
    (r"grep -E dst-port=\d+", Command(Kind.GREP, query=Query(r"dst-port=\d+", regex=True))),
    (r"grep regex:dst-port=\d+", Command(Kind.GREP, query=Query(r"dst-port=\d+", regex=True))),
    ("grep -i -E WinBox", Command(Kind.GREP, query=Query("WinBox", regex=True, ignore_case=True))),
    ("grep -iE WinBox", Command(Kind.GREP, query=Query("WinBox", regex=True, ignore_case=True))),
    ("grep --history winbox site-a core-1",
     Command(Kind.GREP, site="site-a", device="core-1", query=Query("winbox"), history=True)),
    ('grep "allow ssh" site-a', Command(Kind.GREP, site="site-a", query=Query("allow ssh"))),
    ("grep “allow ssh” site-a", Command(Kind.GREP, site="site-a", query=Query("allow ssh"))),  # curly quotes
    ("""grep 'from mgmt" dst-port' site-a""", Command(Kind.GREP, site="site-a", query=Query('from mgmt" dst-port'))),
    ('grep comment="defconf site-a', Command(Kind.GREP, site="site-a", query=Query('comment="defconf'))),
    ('grep "defconf', Command(Kind.GREP, query=Query('"defconf'))),  # no closing quote: the word as typed
    ("grep # site-a", Command(Kind.GREP, site="site-a", query=Query("#"))),
    ("grep -- -1 site-a", Command(Kind.GREP, site="site-a", query=Query("-1"))),
    ("grep a&lt;b&amp;&gt;", Command(Kind.GREP, query=Query("a<b&>"))),  # Slack escapes &, < and >
])
def test_grep(text: str, expected: Command) -> None:
    assert parse(text) == expected


@pytest.mark.parametrize(("text", "problem"), [
    ("grep", "Search for what?"),
    ("grep -E", "Search for what?"),
    ("grep -x winbox", "Unknown option -x."),
    ("grep winbox a b c", "Too many words after the pattern"),
    ("grep --history winbox site-a", "--history follows the matching lines through one device's versions"),
])
def test_malformed_grep_says_what_is_wrong(text: str, problem: str) -> None:
    cmd = parse(text)
    assert cmd.kind is Kind.USAGE and cmd.problem is not None and cmd.problem.startswith(problem)
