"""Schema migrations: numbered SQL files applied in order, tracked by `PRAGMA user_version`.

`storage/migrations/NNNN_what.sql` is step NNNN; numbers start at 1 and have no gaps. Each step
runs in its own transaction together with the user_version bump, so a step is applied whole or
not at all. A database whose user_version is above the last step was written by a newer
backupbot; it is refused rather than misread.

A step runs with foreign key enforcement off and `PRAGMA foreign_key_check` before its COMMIT: the
way SQLite documents for rebuilding a table others refer to (0007 rebuilds versions), which
enforcement would refuse half-way. So a step may leave no dangling reference, checked before it
counts, and enforcement is back on before anything else uses the connection.

A step whose data rewrite is too big for one transaction (0003: old zlib blobs into deltas)
only records what is left in a table; the owning module does the work in resumable batches when
the store opens (storage.blobs.rewrite_legacy_blobs), and every row reads correctly meanwhile.

A step that shrinks the data (0007) leaves the freed pages in the file; once the steps are done,
the file is compacted (VACUUM) if more than a quarter of it is free, so an upgrade does not leave
a file larger than a new one would be.
"""

from __future__ import annotations

import logging
import re
import sqlite3
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import aiosqlite

from bot.core.errors import SchemaTooNew, StorageError
from storage.db import transaction

log = logging.getLogger(__name__)

_NAME = re.compile(r"^(\d{4})_\w+\.sql$")


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    sql: str


def load_migrations() -> list[Migration]:
    """The packaged migration files, in order (read on demand: nothing happens at import time)."""
    folder = resources.files("storage").joinpath("migrations")
    found = []
    for entry in folder.iterdir():
        match = _NAME.match(entry.name)
        if match:
            found.append(Migration(int(match.group(1)), entry.name, entry.read_text(encoding="utf-8")))
    found.sort(key=lambda m: m.version)
    if [m.version for m in found] != list(range(1, len(found) + 1)):
        raise RuntimeError(f"migrations must be numbered 1..N without gaps: {[m.name for m in found]}")
    return found


def split_statements(script: str) -> list[str]:
    """Cut a script into statements, using SQLite's own tokenizer to find where each ends.

    (`executescript` would do this, but it commits any open transaction first, which would break
    "one step, one transaction".) Semicolons inside strings, comments and trigger bodies are safe.
    """
    *pieces, tail = script.split(";")
    statements, pending = [], ""
    for piece in pieces:
        pending += piece + ";"
        if sqlite3.complete_statement(pending):
            statements.append(pending.strip())
            pending = ""
    # Trailing comments are harmless to execute; an unfinished statement fails loudly when run.
    if (pending + tail).strip():
        statements.append((pending + tail).strip())
    return statements


async def user_version(db: aiosqlite.Connection) -> int:
    return await _pragma(db, "user_version")


async def migrate(db: aiosqlite.Connection, path: Path) -> int:
    """Apply pending migrations; return the schema version now in effect."""
    migrations = load_migrations()
    newest = len(migrations)
    current = await user_version(db)
    if current > newest:
        raise SchemaTooNew(
            f"database {path} has schema version {current}, but this backupbot knows only up to "
            f"{newest}; upgrade backupbot, or point it at another storage path"
        )
    applied = False
    for step in migrations[current:]:
        # Only outside a transaction does this pragma take effect.
        await db.execute("PRAGMA foreign_keys = OFF")
        try:
            async with transaction(db):
                # Another process may have applied this step while we waited for the write lock.
                if await user_version(db) >= step.version:
                    continue
                for statement in split_statements(step.sql):
                    await db.execute(statement)
                dangling = list(await db.execute_fetchall("PRAGMA foreign_key_check"))
                if dangling:
                    table, rowid, parent, _ = dangling[0]
                    raise StorageError(
                        f"database {path}: upgrading it to schema version {step.version} stopped, as "
                        f"{len(dangling)} row(s) would refer to rows that do not exist (first: {table} row {rowid} "
                        f"to {parent}); the file is unchanged")
                # user_version lives in the file header, which is part of this same transaction.
                await db.execute(f"PRAGMA user_version = {step.version:d}")
                applied = True
        finally:
            await db.execute("PRAGMA foreign_keys = ON")
    if applied:
        await _compact(db, path)
    return max(current, newest)


async def _compact(db: aiosqlite.Connection, path: Path) -> None:
    """VACUUM if more than a quarter of the file is free pages. It runs as a transaction of its own
    (a kill leaves the file as it was); one that cannot run now (another process reading, too little
    disk for the copy it makes) only costs space, so it is logged and the store opens anyway."""
    free, total = await _pragma(db, "freelist_count"), await _pragma(db, "page_count")
    if free * 4 <= total:
        return
    log.info("compacting %s after the schema upgrade (%d of %d pages free)", path, free, total)
    try:
        await db.execute("VACUUM")
    except sqlite3.OperationalError as exc:
        log.warning("could not compact %s now (%s); `sqlite3 %s VACUUM` with backupbot stopped does it",
                    path, exc, path)


async def _pragma(db: aiosqlite.Connection, name: str) -> int:
    rows = list(await db.execute_fetchall(f"PRAGMA {name}"))
    return int(rows[0][0])
