"""The command line's grammar (bot.cli.build_parser) and the colour decision (bot.cli.terminal.colour_wanted).
tests/integration/test_cli.py runs the commands themselves."""

from __future__ import annotations

import argparse
import asyncio
import importlib.metadata
import io
import os
import sqlite3
import tomllib
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import TextIO

import pytest

from bot.cli import main as cli
from bot.cli.main import build_parser, main
from bot.cli.terminal import colour_wanted
from bot.core.models import ExportMeta, Status
from storage.store import Store


def commands(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return dict(sub.choices)


@pytest.mark.parametrize("argv", [
    ["--config", "F", "-v", "backup", "site-a"],
    ["backup", "-v", "--config", "F", "site-a"],
    ["backup", "site-a", "--config", "F", "--verbose"],
    ["-v", "backup", "--config", "F", "site-a"],
    ["--config", "F", "backup", "-v", "site-a"],
])
def test_global_options_before_or_after_the_command(argv: list[str]) -> None:
    args = build_parser().parse_args(argv)
    assert (args.config, args.verbose, args.command, args.site) == ("F", True, "backup", "site-a")


@pytest.mark.parametrize("rest", [["sites"], ["backup"], ["list", "hq"], ["show", "1"], ["diff", "1", "2"],
                                  ["trust", "hq", "r1"], ["check-config"], ["serve", "--port", "3000"]])
def test_a_value_given_before_the_command_is_not_overwritten_by_the_command(rest: list[str]) -> None:
    """The argparse pitfall: a command's own copy of --config/-v must not reset what came before it."""
    args = build_parser().parse_args(["--config", "F", "-v", *rest])
    assert (args.config, args.verbose) == ("F", True)
    args = build_parser().parse_args(rest)
    assert (args.config, args.verbose) == (None, False)  # main() reads backupbot.yml then (integration test)


def test_every_command_but_demo_takes_config_and_all_take_verbose() -> None:
    for name, parser in commands(build_parser()).items():
        options = {o for a in parser._actions for o in a.option_strings}
        assert {"-v", "--verbose"} <= options, name
        assert ("--config" in options) == (name != "demo"), name


def test_every_argument_has_help_and_shows_its_default() -> None:
    """Help for each positional and option; every option that takes a value and every optional
    positional says what happens when it is left out."""
    top = build_parser()
    for name, parser in {"backupbot": top, **commands(top)}.items():
        shown = " ".join(parser.format_help().split())
        for action in parser._actions:
            where = (name, action.dest)
            assert action.help, where
            if not action.option_strings and action.dest != "command":
                assert action.metavar and action.metavar.isupper(), where
            takes_value = action.nargs != 0 and not isinstance(action, argparse._SubParsersAction)
            optional = action.option_strings or action.nargs == "?"
            if takes_value and optional and action.dest != "help":
                default = f"(default: {action.default})" if action.default is not None else "(default:"
                assert default in shown or "(default:" in action.help, (where, shown)


def test_help_and_version_exit_0_and_usage_errors_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    for argv, code in ((["--version"], 0), (["--help"], 0), (["serve", "--help"], 0), ([], 2), (["sites", "--nope"], 2),
                       (["show", "ID"], 2)):
        with pytest.raises(SystemExit) as exited:
            main(argv, {}, io.StringIO(), io.StringIO())
        assert exited.value.code == code, argv
    capsys.readouterr()
    with pytest.raises(SystemExit):
        main(["--version"], {})
    assert capsys.readouterr().out == f"backupbot {importlib.metadata.version('backupbot')}\n"


def test_version_from_a_source_tree_that_was_never_installed(monkeypatch: pytest.MonkeyPatch) -> None:
    def not_installed(name: str) -> str:
        raise importlib.metadata.PackageNotFoundError(name)

    monkeypatch.setattr(importlib.metadata, "version", not_installed)
    project = tomllib.loads((Path(cli.__file__).parents[2] / "pyproject.toml").read_text())["project"]
    assert cli.version() == f"{project['version']} (source tree, not installed)"


@pytest.fixture
def terminal() -> Iterator[TextIO]:
    leader, follower = os.openpty()
    with open(follower, "w") as stream:
        yield stream
    os.close(leader)


@pytest.mark.parametrize(("env", "on_a_terminal"), [
    ({}, True),
    ({"TERM": "xterm-256color"}, True),
    ({"NO_COLOR": "1"}, False),
    ({"NO_COLOR": "0"}, False),  # any non-empty value (no-color.org)
    ({"NO_COLOR": ""}, True),    # empty means unset
    ({"TERM": "dumb"}, False),
])
def test_colour_only_on_a_terminal_without_no_color_or_term_dumb(
        terminal: TextIO, env: dict[str, str], on_a_terminal: bool) -> None:
    assert colour_wanted(terminal, env) is on_a_terminal
    assert colour_wanted(io.StringIO(), env) is False


# -- a database the CLI cannot use: one line and the documented exit code, never a traceback ------
def _config(tmp_path: Path) -> Path:
    path = tmp_path / "backupbot.yml"
    path.write_text("storage: {path: backups.db}\n"
                    "sites: {hq: {devices: [{name: r1, host: 127.0.0.1, username: u, password: '${PW}'}]}}\n")
    return path


def _run(argv: list[str], env: dict[str, str] | None = None) -> tuple[int, str]:
    err = io.StringIO()
    code = main(argv, {"PW": "secret-pw", **(env or {})}, io.StringIO(), err)
    return code, err.getvalue()


async def _store_with_one_version(db: Path) -> int:
    async with await Store.open(db) as store:
        run_id = await store.start_run("cli", datetime(2026, 1, 1, tzinfo=UTC), "hq")
        version = await store.add_version(run_id, "hq", "r1", datetime(2026, 1, 1, tzinfo=UTC), b"/ip address\n",
                                          "0" * 64, ExportMeta(), Status.NEW, 0, 0, None)
    return version.id


def test_a_database_from_a_newer_backupbot_is_one_line_and_exit_2(tmp_path: Path,
                                                                  capsys: pytest.CaptureFixture[str]) -> None:
    """`sites`, and `serve` at start-up, refuse a too-new database with the reason, not a traceback."""
    config = _config(tmp_path)
    asyncio.run(_store_with_one_version(tmp_path / "backups.db"))
    with sqlite3.connect(tmp_path / "backups.db") as db:
        db.execute("PRAGMA user_version = 99")
    code, err = _run(["--config", str(config), "sites"])
    assert code == 2 and err.startswith("backupbot: database ") and "schema version 99" in err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1
    code, _ = _run(["--config", str(config), "serve", "--host", "127.0.0.1", "--port", "0", "--admin-port", "0"],
                   {"SLACK_BOT_TOKEN": "xoxb-0-0", "SLACK_SIGNING_SECRET": "not-used"})
    printed = capsys.readouterr().err  # serve speaks on the process's stderr
    assert code == 2 and "backupbot serve: database " in printed and "schema version 99" in printed
    assert "Traceback" not in printed


def test_a_corrupt_stored_config_is_one_line_and_exit_1(tmp_path: Path) -> None:
    """`show ID` (and --raw) on a blob that no longer matches its sha256: the reason, exit 1."""
    config = _config(tmp_path)
    version_id = asyncio.run(_store_with_one_version(tmp_path / "backups.db"))
    with sqlite3.connect(tmp_path / "backups.db") as db:
        db.execute("UPDATE blobs SET data = ?", (b"not what was stored",))
    for extra in ([], ["--raw"]):
        code, err = _run(["--config", str(config), "show", str(version_id), *extra])
        assert code == 1 and err.startswith("backupbot: blob ") and len(err.strip().splitlines()) == 1
        assert "Traceback" not in err
