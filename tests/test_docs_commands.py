"""Every `backupbot …` command written in README.md and docs/ goes through the real argument parser,
so the documentation and the CLI cannot drift apart (tests/integration/test_cli.py also runs the
read-only ones against a demo database).

Where commands are found:
- in fenced code blocks: each shell line (a trailing `\\` joins the next line, `#` starts a comment),
  split at `&&`, `||`, `;` and `|`; every part whose first word is `backupbot`;
- in prose and tables: every inline code span that starts with `backupbot ` (a bare `backupbot` or
  `backupbot.yml` is a name, not a command).

How a syntax summary is read: `[…]` marks an optional part, so a line with brackets stands for the
shortest command it allows (every optional part left out) and the longest (every one put in), and
both must parse. An ALL-CAPS word is a placeholder and is replaced by a sample value (SAMPLES); a
placeholder without a sample fails the test, so a new one is given a value on purpose.
"""

from __future__ import annotations

import contextlib
import io
import shlex

import pytest

from bot.cli.main import build_parser
from tests.helpers import commands_in, documented_commands, expand

def parse_error(argv: list[str]) -> str | None:
    """What the real parser says about argv, or None if it parses."""
    stderr = io.StringIO()
    try:
        with contextlib.redirect_stderr(stderr), contextlib.redirect_stdout(io.StringIO()):
            build_parser().parse_args(argv)
    except SystemExit as exc:  # --help and --version exit 0 and are fine
        return None if exc.code == 0 else stderr.getvalue().strip() or f"exit {exc.code}"
    return None


DOCUMENTED = documented_commands()


@pytest.mark.parametrize("argv", [argv for _, argv in DOCUMENTED], ids=[f"{w} {' '.join(a)}" for w, a in DOCUMENTED])
def test_documented_command_parses(argv: list[str]) -> None:
    error = parse_error(argv)
    assert error is None, f"`backupbot {shlex.join(argv)}` is documented but does not parse:\n{error}"


def test_the_documented_commands_are_found() -> None:
    """The extractor really reads the docs: code blocks (with their options), table rows in both forms, prose."""
    commands = [argv for _, argv in DOCUMENTED]
    assert ["serve", "--config", "backupbot.yml", "--port", "3000"] in commands  # docs/slack.md code block
    assert ["serve", "--config", "backupbot.yml", "--socket-mode"] in commands
    assert ["demo"] in commands  # after `&&` in README's first line
    assert ["backup"] in commands and ["backup", "site-a", "core-1", "--json"] in commands  # README's table
    assert ["trust", "site-a", "core-1"] in commands  # prose
    assert ["--version"] in commands and ["sites", "-h"] in commands
    assert {where.split(":")[0] for where, _ in DOCUMENTED} >= {"README.md", "docs/slack.md"}


def test_extraction_rules() -> None:
    markdown = """
Run `backupbot sites --json` or `backupbot.yml`, `backupbot`.

```sh
export X=1 && backupbot backup site-a \\
    --json                # a comment --nope
backupbot list SITE | less
docker run backupbot      # an image called backupbot is not a command
```

| `backupbot show ID [--raw] [--json]` | x |
"""
    assert commands_in(markdown) == [
        (2, ["sites", "--json"]),
        (5, ["backup", "site-a", "--json"]),
        (7, ["list", "site-a"]),
        (11, ["show", "12"]),
        (11, ["show", "12", "--raw", "--json"]),
    ]
    assert expand("backupbot backup [SITE [DEVICE]] [--json]") == ["backupbot backup  ", "backupbot backup SITE DEVICE --json"]
    with pytest.raises(KeyError, match="NEWTHING"):
        commands_in("`backupbot show NEWTHING`")


def test_an_option_that_does_not_exist_fails() -> None:
    """What makes this file worth having: a documented option the CLI lacks is an error, with argparse's reason."""
    [(_, argv)] = commands_in("```\nbackupbot serve --config backupbot.yml --no-such-option 1\n```")
    assert "unrecognized arguments: --no-such-option 1" in (parse_error(argv) or "")
    assert "invalid int value" in (parse_error(["show", "ID"]) or "")
    assert parse_error(["serve", "--config", "backupbot.yml", "--port", "3000"]) is None
    assert parse_error(["--version"]) is None and parse_error(["diff", "-h"]) is None
