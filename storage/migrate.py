"""Schema migrations: numbered SQL files applied in order, tracked by `PRAGMA user_version`.

`storage/migrations/NNNN_what.sql` is step NNNN; numbers start at 1 and have no gaps. Each step
runs in its own transaction together with the user_version bump, so a step is applied whole or
not at all. A database whose user_version is above the last step was written by a newer
backupbot; it is refused rather than misread.

A step whose data rewrite is too big for one transaction (0003: old zlib blobs into deltas)
only records what is left in a table; the owning module does the work in resumable batches when
the store opens (storage.blobs.rewrite_legacy_blobs), and every row reads correctly meanwhile.
"""

from __future__ import annotations

import re
import sqlite3
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import aiosqlite

from bot.core.errors import SchemaTooNew
from storage.db import transaction

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
    rows = list(await db.execute_fetchall("PRAGMA user_version"))
    return int(rows[0][0])


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
    for step in migrations[current:]:
        async with transaction(db):
            # Another process may have applied this step while we waited for the write lock.
            if await user_version(db) >= step.version:
                continue
            for statement in split_statements(step.sql):
                await db.execute(statement)
            # user_version lives in the file header, which is part of this same transaction.
            await db.execute(f"PRAGMA user_version = {step.version:d}")
    return max(current, newest)
