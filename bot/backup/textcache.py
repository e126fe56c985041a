"""Normalized configs kept decompressed in files, so that searching a fleet (bot.backup.grep) reads
text instead of decoding hundreds of delta chains and normalizing hundreds of MB every time.

The files live in a directory beside the database, `<storage path>.grep-cache/` (mode 0700: they
hold secrets, like the database):

    <stamp>/text/<version id>-<hash>                the normalized text, secrets included
    <stamp>/redacted-<key id>/<version id>-<hash>   the same, redacted (bot.routeros.redact)
    ….idx beside each                               where its lines and sections are (grep.LineIndex)

- A file is named by its version, which never changes, and that version's hash of its normalized
  text; <stamp> is a digest of the rules that shape the text (header and noise rules, the secret
  patterns, this layout) and <key id> one of the instance's redaction key. So a file is either right
  or missing, never stale: a missing one is made again from the version (store.raw, normalize,
  redact) in the CPU worker, written to a temporary file, flushed to disk and renamed into place, so
  no reader ever sees half a file, whatever dies when.
- Nothing fills it ahead of time: a backup costs exactly what it did without it. The first search
  after a run makes the files of the versions that run added; `prune` then removes the files of
  versions that are no longer a device's latest, and the directories of other stamps and keys.
- Nothing else depends on it: removing the directory at any time costs only the next search's time.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
import shutil
import tempfile
import time
from collections.abc import Collection, Sequence
from enum import StrEnum
from pathlib import Path
from typing import Final, Protocol

from bot.backup.grepworker import INDEX_SUFFIX
from bot.backup.offload import cpu
from bot.core.models import Version
from bot.core.secrets import SECRET_PROPERTY, SECRET_VARIABLE
from bot.routeros import export as routeros
from bot.routeros import redact as redaction
from bot.routeros.grep import LineIndex

LAYOUT: Final = "2"  # bump when what a file holds changes in a way the rule digest does not see
FILLS_AT_ONCE: Final = 4  # versions decoded and written at once (the CPU worker does one at a time)
_TEMP_PREFIX: Final = ".tmp-"
_TEMP_MAX_AGE: Final = 3600.0  # seconds: a temporary file this old was left by a writer that died
Files = dict[tuple[int, "Kind"], str]  # (version id, kind) -> the file's path


class Kind(StrEnum):
    TEXT = "text"  # the normalized config
    REDACTED = "redacted"  # ... with its secrets replaced by keyed fingerprints


class Sources(Protocol):
    """Where the files are made from (storage.store.Store)."""

    async def raw(self, version_id: int) -> bytes: ...
    async def instance_key(self) -> bytes: ...


def cache_dir(storage_path: Path) -> Path:
    return storage_path.with_name(storage_path.name + ".grep-cache")


def rules_stamp() -> str:
    """A digest of everything that decides a file's content besides the version itself."""
    rules = [rx.pattern for rx, _ in routeros.HEADER_RULES + routeros.NOISE_RULES]
    rules += [SECRET_PROPERTY.pattern, SECRET_VARIABLE.pattern, LAYOUT]
    return hashlib.sha256("\n".join(rules).encode()).hexdigest()[:12]


def key_id(key: bytes) -> str:
    return hashlib.sha256(b"backupbot grep cache\n" + key).hexdigest()[:12]


class TextCache:
    def __init__(self, root: Path, sources: Sources) -> None:
        self.root = root
        self.sources = sources
        self.stamp = rules_stamp()
        self._key: bytes | None = None
        self._slots = asyncio.Semaphore(FILLS_AT_ONCE)

    async def key(self) -> bytes:
        if self._key is None:
            self._key = await self.sources.instance_key()
        return self._key

    async def folder(self, kind: Kind) -> Path:
        return self._folder(kind, await self.key())

    def _folder(self, kind: Kind, key: bytes) -> Path:
        return self.root / self.stamp / ("text" if kind is Kind.TEXT else f"redacted-{key_id(key)}")

    def files(self, wanted: Sequence[tuple[Version, Collection[Kind]]]) -> Files:
        """Where the files asked for are (or would be), without looking; once `ensure` has run.
        Paths are strings: a search names ten thousand of them."""
        assert self._key is not None, "ensure() first"
        folders = {kind: str(self._folder(kind, self._key)) for kind in Kind}
        return {(v.id, k): f"{folders[k]}/{v.id}-{v.hash[:16]}" for v, kinds in wanted for k in kinds}

    async def ensure(self, wanted: Sequence[tuple[Version, Collection[Kind]]]) -> tuple[Files, int]:
        """Every file asked for, made if missing: ({(version id, kind): path}, how many versions
        needed one)."""
        folders = [await self.folder(kind) for kind in Kind]
        await asyncio.to_thread(_make_folders, self.root, folders)
        files = self.files(wanted)
        missing = await asyncio.to_thread(_missing, wanted, files)
        if missing:
            key = await self.key()
            await asyncio.gather(*(self._fill(version, paths, key) for version, paths in missing))
        return files, len(missing)

    async def write(self, version: Version, paths: dict[Kind, Path]) -> None:
        """Write this version's texts to `paths` (any place: `--history` writes older versions
        to a folder of its own)."""
        await self._fill(version, paths, await self.key())

    async def _fill(self, version: Version, paths: dict[Kind, Path], key: bytes) -> None:
        async with self._slots:
            raw = await self.sources.raw(version.id)
            await cpu(write_texts, raw, str(paths.get(Kind.TEXT, "")), str(paths.get(Kind.REDACTED, "")), key)

    async def prune(self, latest: Collection[int]) -> int:
        """Remove the files of versions not in `latest` (every device's latest version), of other
        stamps and keys, and temporary files left by writers that died; return how many went."""
        keep = {await self.folder(kind) for kind in Kind}
        return await asyncio.to_thread(_prune, self.root, keep, {str(i) for i in latest})

    async def scratch(self) -> Path:
        """A new private folder under the cache for one request's files (remove it when done)."""
        await asyncio.to_thread(_make_folders, self.root, [])
        return Path(await asyncio.to_thread(tempfile.mkdtemp, prefix=_TEMP_PREFIX, dir=self.root))


def _make_folders(root: Path, folders: list[Path]) -> None:
    root.mkdir(mode=0o700, parents=True, exist_ok=True)
    if root.stat().st_mode & 0o077:
        root.chmod(0o700)  # whatever made it: it holds secrets
    for folder in folders:
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)


def _missing(wanted: Sequence[tuple[Version, Collection[Kind]]],
             files: Files) -> list[tuple[Version, dict[Kind, Path]]]:
    """The files asked for that do not exist: one listing per folder, not a stat per file."""
    present: dict[str, set[str]] = {}
    out = []
    for version, kinds in wanted:
        absent = {}
        for kind in kinds:
            folder, _, name = files[version.id, kind].rpartition("/")
            if folder not in present:
                present[folder] = set(os.listdir(folder))
            if name not in present[folder]:
                absent[kind] = Path(files[version.id, kind])
        if absent:
            out.append((version, absent))
    return out


def write_texts(raw: bytes, text_path: str, redacted_path: str, key: bytes) -> None:
    """(CPU worker) Normalize `raw` and write it to text_path, and redacted to redacted_path ("": not
    wanted), each to a temporary file first, flushed, then renamed into place."""
    text = routeros.normalize(raw)
    if text_path:
        _write_text(Path(text_path), text.encode())
    if redacted_path:
        _write_text(Path(redacted_path), redaction.redact(text, key).encode())


def _write_text(path: Path, data: bytes) -> None:
    """The index first: a text that is there has its index (a missing one only costs speed)."""
    _write_atomically(path.with_name(path.name + INDEX_SUFFIX), LineIndex.of(data).encode())
    _write_atomically(path, data)


def _write_atomically(path: Path, data: bytes) -> None:
    fd, temp = tempfile.mkstemp(prefix=_TEMP_PREFIX, dir=path.parent)  # mode 0600
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())  # a power cut must leave the file whole or absent, never short
        os.replace(temp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temp)
        raise


def _prune(root: Path, keep: set[Path], latest: set[str]) -> int:
    removed = 0
    now = time.time()
    if not root.is_dir():
        return 0
    for stamp in root.iterdir():
        if stamp.name.startswith(_TEMP_PREFIX):
            removed += _remove_if_old(stamp, now)
            continue
        if not any(folder.parent == stamp for folder in keep):
            shutil.rmtree(stamp, ignore_errors=True)
            continue
        for folder in stamp.iterdir():
            if folder not in keep:
                shutil.rmtree(folder, ignore_errors=True)
                continue
            for entry in os.scandir(folder):
                if entry.name.startswith(_TEMP_PREFIX):
                    removed += _remove_if_old(Path(entry.path), now)
                elif entry.name.split("-", 1)[0] not in latest:
                    with contextlib.suppress(FileNotFoundError):
                        os.unlink(entry.path)
                        removed += 1
    return removed


def _remove_if_old(path: Path, now: float) -> int:
    try:
        if now - path.stat().st_mtime < _TEMP_MAX_AGE:
            return 0
        if path.is_dir():
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink()
    except FileNotFoundError:
        return 0
    return 1
