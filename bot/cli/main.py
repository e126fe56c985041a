"""Command-line front end over the same BackupService and Catalog the Slack handlers use."""

from __future__ import annotations

import argparse
import asyncio
import importlib.metadata
import json
import logging
import sys
import tomllib
from collections.abc import Awaitable, Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, TextIO

from bot.cli import interop, terminal
from bot.app import Backend, open_backend
from bot.config.load import load_settings
from bot.core.errors import BackupbotError, ConfigError, InventoryError, SchemaTooNew, StartupError, UserError
from bot.core.kinds import Trigger
from bot.core.logs import configure_logging, register_secret
from bot.core.secrets import SECRET_ENV
from bot.core.text import diffs_text
from bot.serve.listen import Listen
from bot.core.models import DeviceResult, NetBoxSource, Settings
from bot.backup.grep import CLI_LINES, Reading, targets
from bot.backup.grepresult import history_text, result_text
from bot.routeros.grep import Query, compile_query

EXIT_OK, EXIT_FAILED, EXIT_CONFIG = 0, 1, 2
DEFAULT_CONFIG = "backupbot.yml"
LISTEN = Listen()  # serve's defaults, shown by `serve -h`


class _Help(argparse.ArgumentDefaultsHelpFormatter):
    """Appends "(default: …)" to every option that has a default worth showing (not None or False)."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        if action.default is None or action.default is False or "(default" in (action.help or ""):
            return action.help
        return super()._get_help_string(action)


def version() -> str:
    """The installed version; from a source tree that was never installed, pyproject.toml's."""
    try:
        return importlib.metadata.version("backupbot")
    except importlib.metadata.PackageNotFoundError:
        try:
            with open(Path(__file__).parents[2] / "pyproject.toml", "rb") as f:
                return f"{tomllib.load(f)['project']['version']} (source tree, not installed)"
        except (OSError, KeyError, tomllib.TOMLDecodeError):
            return "unknown (not installed)"


def _global_options(parser: argparse.ArgumentParser, config: bool = True) -> None:
    """--config and -v, given to the top-level parser and to each command so they may stand on either
    side of it. Each parser gets its own copies (argparse `parents` would share one Action, and the
    top level's set_defaults would then change the commands' copies too). They default to SUPPRESS:
    a command's copy sets nothing unless given, so it cannot overwrite a value given before the command."""
    if config:
        parser.add_argument("--config", metavar="FILE", default=argparse.SUPPRESS,
                            help=f"YAML config file (default: {DEFAULT_CONFIG})")
    parser.add_argument("-v", "--verbose", action="store_true", default=argparse.SUPPRESS,
                        help="log retries and failures to stderr (serve always does)")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="backupbot", description="MikroTik RouterOS config backups.",
                                formatter_class=_Help)
    _global_options(p)
    # The one place the global options get a value when none is given. config=None: main() tells
    # `demo` it takes no --config, and gives every other command DEFAULT_CONFIG.
    p.set_defaults(config=None, verbose=False)
    p.add_argument("--version", action="version", version=f"%(prog)s {version()}",
                   help="print the installed version and exit")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND",
                           help="one of these; `backupbot COMMAND -h` shows its options")

    def cmd(name: str, help: str, json_flag: bool = False, takes_config: bool = True,
            parent: argparse._SubParsersAction[argparse.ArgumentParser] = sub) -> argparse.ArgumentParser:
        sp = parent.add_parser(name, help=help, description=help, formatter_class=_Help)
        _global_options(sp, config=takes_config)
        if json_flag:
            sp.add_argument("--json", action="store_true", help="machine-readable output (default: text)")
        return sp

    b = cmd("backup", "back up all devices, a site, or one device now", json_flag=True)
    b.add_argument("site", nargs="?", metavar="SITE", help="only this site (default: every site)")
    b.add_argument("device", nargs="?", metavar="DEVICE", help="only this device of SITE (default: all of them)")
    cmd("sites", "list sites with their last run and counts", json_flag=True)
    ls = cmd("list", "a site's devices, or a device's versions", json_flag=True)
    ls.add_argument("site", metavar="SITE", help="site name")
    ls.add_argument("device", nargs="?", metavar="DEVICE", help="list this device's versions (default: the devices)")
    ls.add_argument("--limit", type=int, default=50, metavar="N", help="at most this many versions, newest first")
    sh = cmd("show", "print a stored config version", json_flag=True)
    sh.add_argument("id", type=int, metavar="ID", help="version id (from `list SITE DEVICE`)")
    sh.add_argument("--raw", action="store_true",
                    help="print the exact bytes received from the device (default: the normalized config)")
    d = cmd("diff", "unified diff of two versions' normalized configs")
    d.add_argument("id1", type=int, metavar="ID1", help="older version id")
    d.add_argument("id2", type=int, metavar="ID2", help="newer version id")
    g = cmd("grep", "search the latest backup of every device for a pattern (--history: every version)",
            json_flag=True)
    g.add_argument("pattern", metavar="PATTERN",
                   help="plain text; a regular expression (Python re) with -E or a regex: prefix")
    g.add_argument("site", nargs="?", metavar="SITE", help="only this site (default: every site)")
    g.add_argument("device", nargs="?", metavar="DEVICE", help="only this device of SITE")
    g.add_argument("-E", "--regex", action="store_true", help="PATTERN is a regular expression")
    g.add_argument("-i", "--ignore-case", action="store_true", help="ignore upper and lower case")
    g.add_argument("--history", action="store_true",
                   help="when each matching line appeared in the device's versions, and when it went")
    inv = cmd("inventory", "read the inventory source (NetBox or CSV) and show what it gives and what would "
                           "change; changes nothing unless --apply", json_flag=True)
    inv.add_argument("--apply", action="store_true",
                     help="save what the source gives as the inventory now, retiring the devices it no longer "
                          "lists, also when serve holds it back for retiring too many at once")
    t = cmd("trust", "accept a device's changed SSH host key")
    t.add_argument("site", metavar="SITE", help="site name")
    t.add_argument("device", metavar="DEVICE", help="device name")
    cmd("check-config", "validate the config file and exit")
    demo = cmd("demo", "back up simulated routers on 127.0.0.1: no router or Slack account needed; "
                       "writes its own config, DIR/backupbot.yml", takes_config=False)
    demo.add_argument("--dir", metavar="DIR",
                      help="where to keep the demo's config and database (default: a new temporary directory)")
    demo.add_argument("--web", action="store_true",
                      help="then serve the browser pages on 127.0.0.1 until Ctrl-C and print a signed link to the "
                           "comparison of the changed router")
    demo.add_argument("--port", type=int, default=0, help="port for --web (default: a free one)")
    interop.add_parsers(sub, lambda parent, name, help: cmd(name, help, parent=parent))
    serve = cmd("serve", "run the Slack bot and the daily schedule")
    serve.add_argument("--port", type=int, default=LISTEN.port, help="port for POST /slack/events and GET /healthz")
    serve.add_argument("--host", default=LISTEN.host, help="address to listen on")
    serve.add_argument("--socket-mode", action="store_true",
                       help="connect to Slack over Socket Mode (default: HTTP on --port)")
    serve.add_argument("--admin-port", type=int, default=LISTEN.admin_port,
                       help="liveness, readiness and /metrics listen here")
    serve.add_argument("--admin-host", default=LISTEN.admin_host,
                       help="address of the admin listener; keep it off the internet")
    return p


def main(argv: Sequence[str], env: Mapping[str, str], out: TextIO = sys.stdout, err: TextIO = sys.stderr) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command == "demo" and args.config is not None:  # given before the command
        parser.error("demo writes its own config file into --dir; it takes no --config")
    config = args.config if args.config is not None else DEFAULT_CONFIG
    # One scrubbed line per event (bot.core.logs). `serve` logs what it does; for other commands the
    # summary table already reports failures, and logs are for when you want to see retries.
    configure_logging(logging.INFO if args.verbose or args.command == "serve" else logging.ERROR, stream=err)
    register_secrets(env)
    args.colour = terminal.colour_wanted(out, env)  # for diff and demo
    try:
        if args.command == "demo":
            from bot.cli.demo import run_demo

            if args.port and not args.web:
                parser.error("--port is for --web: the plain demo serves nothing")
            web = (args.port, env) if args.web else None
            return asyncio.run(run_demo(Path(args.dir) if args.dir else None, out, colour=args.colour, web=web))
        settings = load_settings(config, env)
        for device in settings.devices():
            register_secret(device.password)
        register_secret(settings.defaults.password)
        if settings.inventory is not None and isinstance(settings.inventory.source, NetBoxSource):
            register_secret(settings.inventory.source.token)
        if args.command == "check-config":
            count = len(settings.devices())
            more = "" if settings.inventory is None else (
                f"; more come from {settings.inventory.source.describe} (`backupbot inventory` reads it)")
            print(f"{config}: OK ({len(settings.sites)} sites, {count} devices{more})", file=out)
            return EXIT_OK
        if args.command == "serve":
            from bot.serve.server import serve

            listen = Listen(args.host, args.port, args.admin_host, args.admin_port)
            return serve(settings, env, listen=listen, socket_mode=args.socket_mode)
        return asyncio.run(_with_backend(settings, args, out, err))
    except ConfigError as exc:
        print(f"{config}: configuration is not valid:", file=err)
        for problem in exc.problems:
            print(f"  - {problem}", file=err)
        return EXIT_CONFIG
    except BackupbotError as exc:  # a user error, a database that cannot be used, ...: one line, no traceback
        print(f"backupbot: {exc}", file=err)
        return EXIT_CONFIG if isinstance(exc, (StartupError, SchemaTooNew)) else EXIT_FAILED
    except KeyboardInterrupt:
        print("interrupted", file=err)
        return 130


def register_secrets(env: Mapping[str, str]) -> None:
    """Mask every credential the environment holds (Slack's, and the ${VAR}s a config expands)
    in every log line, however it got there."""
    for name, value in env.items():
        if SECRET_ENV.search(name):
            register_secret(value)


# Commands that name sites or devices read the inventory source first (falling back to its last good
# list): `import` matches its files to them. The others use the last good list without asking the source.
READS_SOURCE = {"backup", "sites", "list", "trust", "import"}


async def _with_backend(settings: Settings, args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    if args.command == "inventory" and settings.inventory is None:
        raise StartupError("no inventory source is configured: add an `inventory:` section with netbox or csv "
                           "(README, \"Inventory from NetBox or a CSV file\")")
    async with open_backend(settings, read_source=args.command in READS_SOURCE) as backend:
        if backend.inventory_note is not None:
            print(f"backupbot: {backend.inventory_note}", file=err)
        return await COMMANDS[args.command](backend, args, out, err)


def _emit(args: argparse.Namespace, out: TextIO, doc: Callable[[], Any], text: Callable[[], str]) -> None:
    """The --json document, or the text for people."""
    if args.json:
        json.dump(doc(), out, indent=2)
        out.write("\n")
    else:
        print(text(), file=out)


async def cmd_backup(b: Backend, args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    devices = b.catalog.backup_targets(args.site, args.device) if args.site else b.settings.devices()
    show_progress = err.isatty() and not args.json
    done = failed = 0

    def on_result(r: DeviceResult) -> None:
        nonlocal done, failed
        done += 1
        failed += r.status.value == "failed"
        if show_progress:
            err.write(terminal.progress(done, len(devices), failed))
            err.flush()

    summary = await b.service.run(devices, Trigger.CLI, on_result=on_result)
    if show_progress:
        err.write("\n")
    _emit(args, out, lambda: terminal.summary_json(summary), lambda: terminal.summary(summary))
    return EXIT_FAILED if summary.failed else EXIT_OK


async def cmd_sites(b: Backend, args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    overviews = await b.catalog.sites()
    _emit(args, out, lambda: terminal.sites_json(overviews), lambda: terminal.sites(overviews))
    return EXIT_OK


async def cmd_list(b: Backend, args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    if args.device:
        versions = await b.catalog.versions(args.site, args.device, limit=args.limit)
        origins = await b.store.version_origins(args.site, args.device, [v.id for v in versions])
        none = f"{args.site}/{args.device}: no versions yet"
        _emit(args, out, lambda: [{**terminal.version_json(v), "origin": origins.get(v.id)} for v in versions],
              lambda: terminal.versions(versions, origins) if versions else none)
        return EXIT_OK
    statuses = await b.catalog.device_statuses(args.site)
    _emit(args, out, lambda: terminal.devices_json(statuses), lambda: terminal.devices(statuses))
    return EXIT_OK


async def cmd_show(b: Backend, args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    if args.raw:
        raw = await b.catalog.raw(args.id)
        buffer = getattr(out, "buffer", None)
        if buffer is None:  # a text-only stream (tests): the closest we can do
            out.write(raw.decode("utf-8", errors="replace"))
        else:
            out.flush()
            buffer.write(raw)
            buffer.flush()
        return EXIT_OK
    version = await b.catalog.version(args.id)
    config = await b.catalog.config(args.id)
    _emit(args, out, lambda: {**terminal.version_json(version), "config": config}, lambda: config.rstrip("\n"))
    return EXIT_OK


async def cmd_diff(b: Backend, args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    diffs = await b.catalog.compare([args.id1, args.id2])
    text = diffs_text(diffs)
    out.write(terminal.colour_diff(text) if args.colour else text)
    return EXIT_OK


async def cmd_trust(b: Backend, args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    key = await b.catalog.trust(args.site, args.device)
    print(f"{args.site}/{args.device}: now trusting host key {key.fingerprint}", file=out)
    return EXIT_OK


async def cmd_grep(b: Backend, args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    """Every line that matches, with secrets (whoever runs the CLI holds the database). Like grep:
    exit 1 when nothing matches, 2 for a pattern that can't be used."""
    query = Query.of(args.pattern, regex=args.regex, ignore_case=args.ignore_case)
    try:
        compile_query(query)
    except UserError as exc:  # a malformed argument, like grep's exit 2
        print(f"backupbot: {exc}", file=err)
        return EXIT_CONFIG
    if args.device:
        b.catalog.device(args.site, args.device)  # NotFound, with the closest names
    elif args.site:
        b.catalog.site(args.site)
    devices = targets(b.settings, dict.fromkeys(b.settings.sites, Reading.REAL), args.site, args.device)
    if args.history:
        history = await b.grep.history(query, devices, show_secrets=True)
        _emit(args, out, lambda: terminal.history_json(history), lambda: history_text(history).rstrip("\n"))
        return EXIT_OK if history.devices else EXIT_FAILED
    result = await b.grep.search(query, devices, show_secrets=True, limit=CLI_LINES)
    _emit(args, out, lambda: terminal.grep_json(result), lambda: result_text(result).rstrip("\n"))
    return EXIT_OK if result.devices else EXIT_FAILED


async def cmd_inventory(b: Backend, args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    """What the source gives against the last good list; with --apply, save it (serve uses it at its next refresh)."""
    refresher = b.refresher
    assert refresher is not None  # _with_backend refused the command without a source
    stored = await b.store.stored_inventory()
    try:
        if args.apply:
            outcome = await refresher.refresh(accept=True)
            if outcome.plan is None:
                raise InventoryError(outcome.error or "unreadable")
            change = outcome.plan
        else:
            change, stored = await refresher.preview()
    except InventoryError as exc:
        source, error = refresher.source.describe, str(exc)
        _emit(args, out, lambda: terminal.inventory_failed_json(source, error, stored),
              lambda: terminal.inventory_failed(source, error, stored))
        return EXIT_FAILED
    _emit(args, out, lambda: terminal.inventory_json(change, stored, applied=args.apply),
          lambda: terminal.inventory(change, stored, applied=args.apply))
    return EXIT_OK


Command = Callable[[Backend, argparse.Namespace, TextIO, TextIO], Awaitable[int]]
COMMANDS: dict[str, Command] = {"backup": cmd_backup, "sites": cmd_sites, "list": cmd_list, "show": cmd_show,
            "diff": cmd_diff, "grep": cmd_grep, "trust": cmd_trust, "import": interop.cmd_import,
            "export": interop.cmd_export, "inventory": cmd_inventory}
