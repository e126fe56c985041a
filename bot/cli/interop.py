"""`backupbot import oxidized|files` and `backupbot export git`: their arguments, progress and report.

An import prints one line per source file (what was stored, what was already there, what was left
out and why) and a line of totals; it exits 1 when something asked for did not get in (a refused
file, history older than what is stored, a device that stopped part-way). A mirror configured in
`git:` gets the imported versions at the end (bot.app closes the backend after its sync).
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path
from typing import TextIO
from zoneinfo import ZoneInfo

from bot.app import Backend
from bot.cli import terminal
from bot.core.models import DEFAULT_GIT_AUTHOR, Settings
from bot.core.text import plural, when
from bot.interop.gitexport import export_git
from bot.interop.importing import DeviceImport, Importer, ImportReport
from bot.interop.sources import Folder, OxidizedRepo, Source

EXIT_OK, EXIT_FAILED = 0, 1


def add_parsers(sub: argparse._SubParsersAction[argparse.ArgumentParser],
                command: Callable[..., argparse.ArgumentParser]) -> None:
    """`import` and `export` with their sub-commands; `command(parent, name, help)` makes a parser that
    takes the global options."""
    imp = command(sub, "import", "import history: an Oxidized git repository, or a folder of .rsc files")
    sources = imp.add_subparsers(dest="source", required=True, metavar="SOURCE",
                                 help="oxidized or files; `backupbot import SOURCE -h` shows its options")
    ox = command(sources, "oxidized", "import an Oxidized git output repository's history (bare or not)")
    ox.add_argument("repo", metavar="GIT_REPO", help="the repository's folder")
    where = ox.add_mutually_exclusive_group()
    where.add_argument("--site", metavar="SITE",
                       help="match files to this site's devices only (default: every site; a name in two "
                            "sites is skipped)")
    where.add_argument("--site-from", choices=["group"],
                       help="each file's group folder names its site (Oxidized's groups)")
    ox.add_argument("--dry-run", action="store_true", help="read and check everything, store nothing")
    files = command(sources, "files", "import a folder of DEVICE.rsc or DEVICE_YYYYMMDD-HHMM.rsc files")
    files.add_argument("dir", metavar="DIR", help="the folder (its subfolders too)")
    files.add_argument("--site", metavar="SITE", required=True, help="the site whose devices the files are")
    files.add_argument("--dry-run", action="store_true", help="read and check everything, store nothing")
    exp = command(sub, "export", "write the whole history into a new git repository")
    targets = exp.add_subparsers(dest="target", required=True, metavar="TARGET", help="git")
    git = command(targets, "git", "every version of every device, in date order, one commit each, "
                                  "into a new repository")
    git.add_argument("dir", metavar="DIR", help="a missing or empty folder")
    git.add_argument("--raw", action="store_true",
                     help="commit the exact bytes received, secrets included (default: the normalized "
                          "config with secrets replaced by fingerprints)")


def _zone(settings: Settings, site: str) -> ZoneInfo:
    return ZoneInfo(settings.sites[site].timezone or settings.schedule.timezone)


async def cmd_import(b: Backend, args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    site = args.site
    if site is not None:
        b.catalog.site(site)  # NotFound, with suggestions
    source: Source
    if args.source == "oxidized":
        source = OxidizedRepo(Path(args.repo))
    else:
        source = Folder(Path(args.dir), _zone(b.settings, site))
    show = err.isatty()

    def progress(phase: str, done: int, total: int, troubled: int) -> None:
        if show:
            unit, failures = ("devices read", "refused") if phase == "reading" else ("versions stored", "stopped")
            err.write(terminal.progress(done, total, troubled, unit=unit, failures=failures))
            if done == total:
                err.write("\n")
            err.flush()

    async with source:
        report = await Importer(b.settings, b.store, b.catalog.clock, progress).run(
            source, site=site, site_from_group=getattr(args, "site_from", None) == "group", dry_run=args.dry_run)
    print(import_report(report, source.unit), file=out)
    if report.run_id is not None and b.mirror is not None:
        b.mirror.kick()
    return EXIT_FAILED if report.problems else EXIT_OK


async def cmd_export(b: Backend, args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    show = err.isatty()

    def progress(done: int) -> None:
        if show:
            err.write(f"\r{plural(done, 'version')} written")
            err.flush()

    author = b.settings.git.author if b.settings.git is not None else DEFAULT_GIT_AUTHOR
    exported = await export_git(b.store, Path(args.dir), author, raw=args.raw, progress=progress)
    if show and exported.versions:
        err.write("\n")
    what = "exact exports, secrets included" if args.raw else "normalized, secrets replaced by fingerprints"
    print(f"{exported.path}: {plural(exported.versions, 'version')} of {plural(exported.devices, 'device')}, "
          f"one commit each ({what})", file=out)
    return EXIT_OK


# -- the report (pure) --------------------------------------------------------------------------


def device_result(d: DeviceImport, unit: str, dry_run: bool) -> str:
    t = d.timeline
    if d.all_refused:
        return f"refused: {d.refused[0][1]}"
    parts = []
    if t.new:
        count = len(t.new) if dry_run else d.stored
        span = when(t.new[0].snapshot.at) + (f" → {when(t.new[-1].snapshot.at)}" if len(t.new) > 1 else "")
        parts.append(f"{plural(count, 'version')} {'to store' if dry_run else 'stored'} ({span})")
    if t.already:
        parts.append(f"{plural(t.already, 'version')} already stored")
    if t.older:
        parts.append(f"not imported: {plural(t.older, 'version')} dated before its last stored backup "
                     f"({when(t.since)})")
    if t.unchanged:
        parts.append(f"{plural(t.unchanged, unit)} without a change")
    if d.refused:
        snap, reason = d.refused[0]
        parts.append(f"{plural(len(d.refused), unit)} refused ({snap.label}: {reason})")
    if d.interrupted:
        parts.append(f"stopped: {d.interrupted}")
    return "; ".join(parts) or "nothing new"


def import_report(report: ImportReport, unit: str) -> str:
    rows = [[d.file.path, d.device.label, device_result(d, unit, report.dry_run)] for d in report.devices]
    rows += [[s.file.path, "-", f"skipped: {s.reason}"] for s in report.skipped]
    body = terminal.table(["SOURCE", "DEVICE", "RESULT"], rows) if rows else "(no files found)"
    files = len(report.devices) + len(report.skipped)
    refused = sum(d.all_refused for d in report.devices)
    devices = sum(bool(d.timeline.new) for d in report.devices)
    if report.dry_run:
        stored = (f"{plural(report.versions, 'version')} of {plural(devices, 'device')} to store "
                  "(dry run: nothing written)")
    else:
        written = sum(d.stored for d in report.devices)
        stored = f"{plural(written, 'version')} of {plural(devices, 'device')} stored" if written else "nothing new"
        if report.run_id is not None:
            stored += f" (run #{report.run_id})"
    totals = [f"{report.source}: {plural(files, 'file')}", stored, f"{len(report.skipped)} skipped",
              f"{refused} refused"]
    return f"{body}\n\n{'; '.join(totals)}"
