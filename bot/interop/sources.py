"""Where imported history comes from: an Oxidized git output repository, or a folder of `.rsc` files.

Both are read as `SourceFile`s: one per file the source names after a router, each with its
snapshots (a state of the file and when it was seen). What is done with them is
bot.interop.importing's.

Oxidized (its git output): one file per node, at the top or in group folders (`groups` with
`single_repo`), named after the node, no extension; a bare repository unless someone cloned it.
Every commit that touched a file is a snapshot, dated by the commit's author date (the moment
Oxidized fetched it; a rebase or a copy of the repository keeps it, where the committer date moves).
The history read is HEAD's first-parent line, which is all of it for Oxidized (it never merges).

A folder: every `.rsc` file in it or its subfolders (hidden ones left out), named `DEVICE.rsc`
(dated by its modification time) or `DEVICE_YYYYMMDD-HHMM.rsc` (dated by its name, read in the
site's time zone).
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from types import TracebackType
from typing import Protocol
from zoneinfo import ZoneInfo

from bot.core.errors import GitError, UserError
from bot.interop import git


@dataclass(frozen=True)
class Snapshot:
    """One state of a source file: when it was seen, how to read it (`ref`), how to name it."""

    at: datetime
    ref: str  # a git blob id, or a file's path
    label: str  # "commit 3f2a1c9d0b", "core-1_20240105-0200.rsc"


@dataclass(frozen=True)
class SourceFile:
    path: str  # as the source names it: "riga/core-1", "core-1.rsc"
    name: str  # the router it is named after: "core-1"
    group: str | None = None  # Oxidized's group folder
    snapshots: tuple[Snapshot, ...] = field(default=(), repr=False)


class Source(Protocol):
    """What bot.interop.importing reads. Use as an async context manager."""

    description: str
    unit: str  # what a snapshot is called: "commit", "file"

    async def __aenter__(self) -> Source: ...
    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None: ...
    async def files(self) -> list[SourceFile]: ...
    async def read(self, ref: str) -> bytes: ...


# -- Oxidized ---------------------------------------------------------------------------------------

# Oldest first along HEAD's first parents; per commit its id and author time, then each file it
# changed as ":MODES IDS STATUS\0PATH\0" (-z: paths verbatim; --no-renames: a rename is D + A).
_LOG = ["log", "--reverse", "--first-parent", "--diff-merges=first-parent", "--no-renames", "--raw",
        "--no-abbrev", "-z", "--format=%x01%H %at", "HEAD"]
_REGULAR = ("100644", "100755")


def parse_log(out: bytes) -> list[SourceFile]:
    """SourceFiles from `git log` as _LOG asks for it (pure)."""
    snapshots: dict[str, list[Snapshot]] = {}
    for chunk in out.split(b"\x01")[1:]:
        header, _, changes = chunk.partition(b"\0")
        sha, at = header.decode().split()
        when = datetime.fromtimestamp(int(at), timezone.utc)
        tokens = changes.lstrip(b"\n").split(b"\0")
        for meta, raw_path in zip(tokens[0::2], tokens[1::2]):
            fields = meta.decode().lstrip(":").split()
            if len(fields) != 5:
                continue
            _old_mode, new_mode, _old, blob, status = fields
            if status[:1] in ("A", "M", "T") and new_mode in _REGULAR:
                snap = Snapshot(when, blob, f"commit {sha[:10]}")
                snapshots.setdefault(raw_path.decode("utf-8", "replace"), []).append(snap)
    files = []
    for path, snaps in snapshots.items():
        group, _, name = path.rpartition("/")
        files.append(SourceFile(path, name, group or None, tuple(snaps)))
    return sorted(files, key=lambda f: f.path)


class OxidizedRepo:
    """An Oxidized git output repository (bare or not), read with git itself; nothing is written."""

    def __init__(self, path: Path, timeout: float = git.TIMEOUT) -> None:
        self.path, self.timeout = path, timeout
        self.description = f"Oxidized repository {path}"
        self.unit = "commit"
        self._cat: git.CatFile | None = None

    async def __aenter__(self) -> OxidizedRepo:
        if not self.path.is_dir():
            raise UserError(f"{self.path}: no such directory")
        if await git.repository_at(self.path, self.timeout) is None:
            raise UserError(f"{self.path} is not a git repository (give the repository's own folder)")
        try:
            await git.run("rev-parse", "--verify", "--quiet", "HEAD^{commit}", cwd=self.path, timeout=self.timeout)
        except GitError:
            raise UserError(f"{self.path}: the repository has no commits") from None
        self._cat = git.CatFile(self.path, self.timeout)
        await self._cat.__aenter__()
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        if self._cat is not None:
            await self._cat.__aexit__(exc_type, exc, tb)

    async def files(self) -> list[SourceFile]:
        # A whole history in one listing: allow it the time a big repository needs.
        return parse_log(await git.run(*_LOG, cwd=self.path, timeout=self.timeout * 10))

    async def read(self, ref: str) -> bytes:
        assert self._cat is not None, "use it as an async context manager"
        return await self._cat.read(ref)


# -- a folder -------------------------------------------------------------------------------------

_DATED = re.compile(r"(?P<name>.+)_(?P<day>\d{8})-(?P<time>\d{4})\.rsc", re.IGNORECASE)


def dated_name(filename: str, zone: ZoneInfo) -> tuple[str, datetime] | None:
    """("core-1", its time in UTC) from `core-1_20240105-0200.rsc`, read in `zone`; None if not so named
    or the date is impossible (pure)."""
    m = _DATED.fullmatch(filename)
    if m is None:
        return None
    try:
        local = datetime.strptime(m["day"] + m["time"], "%Y%m%d%H%M").replace(tzinfo=zone)
    except ValueError:
        return None
    return m["name"], local.astimezone(timezone.utc)


class Folder:
    """`.rsc` files in a folder and its subfolders (hidden ones left out)."""

    def __init__(self, path: Path, zone: ZoneInfo) -> None:
        self.path, self.zone = path, zone
        self.description = f"folder {path}"
        self.unit = "file"

    async def __aenter__(self) -> Folder:
        if not self.path.is_dir():
            raise UserError(f"{self.path}: no such directory")
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        return None

    async def files(self) -> list[SourceFile]:
        return await asyncio.to_thread(self._scan)

    def _scan(self) -> list[SourceFile]:
        found: dict[str, list[tuple[str, Snapshot]]] = {}
        for path in sorted(self._rsc_files()):
            relative = path.relative_to(self.path).as_posix()
            dated = dated_name(path.name, self.zone)
            if dated is not None:
                name, at = dated
            else:
                name = path.name[:-len(".rsc")]
                at = datetime.fromtimestamp(path.stat().st_mtime, timezone.utc)
            found.setdefault(name.lower(), []).append((name, Snapshot(at, str(path), relative)))
        files = []
        for items in found.values():
            name = items[0][0]
            labels = [s.label for _, s in items]
            where = labels[0] if len(labels) == 1 else f"{labels[0]} (+{len(labels) - 1} more)"
            files.append(SourceFile(where, name, None, tuple(s for _, s in items)))
        return sorted(files, key=lambda f: f.path)

    def _rsc_files(self) -> Iterator[Path]:
        for path in self.path.rglob("*"):
            hidden = any(part.startswith(".") for part in path.relative_to(self.path).parts)
            if not hidden and path.is_file() and path.suffix.lower() == ".rsc":
                yield path

    async def read(self, ref: str) -> bytes:
        try:
            return await asyncio.to_thread(Path(ref).read_bytes)
        except OSError as exc:
            raise UserError(f"{ref}: cannot be read ({exc.strerror or exc})") from None
