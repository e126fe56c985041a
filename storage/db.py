"""The SQLite connection: how it is opened, how a write transaction runs, and the base class
that serialises a process's use of its one connection.

Every write in the store goes through `transaction()`, so "one transaction, all or nothing" is
written once.
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
from collections.abc import AsyncIterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import aiosqlite

Params = Sequence[Any] | Mapping[str, Any]

PRAGMAS = (
    # WAL: readers never block the writer, and a commit appends to the log instead of rewriting
    # pages in place. With synchronous=NORMAL a commit is written to the OS (not fsync'ed) before
    # COMMIT returns, so a killed process never loses a committed transaction; only a power loss
    # or kernel crash can lose the last few commits, and even then the file is never corrupted.
    "PRAGMA journal_mode = WAL",
    "PRAGMA synchronous = NORMAL",
    "PRAGMA foreign_keys = ON",
)


async def connect(path: Path, busy_timeout: float) -> aiosqlite.Connection:
    """Open `path` in autocommit mode (transactions are explicit) with the pragmas above.

    `timeout` installs SQLite's busy handler, so a second process briefly holding the database
    (a backup copy, the sqlite3 shell) makes us wait instead of failing with "database is locked".
    """
    db = await aiosqlite.connect(path, timeout=busy_timeout, isolation_level=None)
    try:
        db.row_factory = aiosqlite.Row
        for pragma in PRAGMAS:
            await db.execute(pragma)
    except BaseException:
        await db.close()
        raise
    return db


@contextlib.asynccontextmanager
async def transaction(db: aiosqlite.Connection) -> AsyncIterator[aiosqlite.Connection]:
    """BEGIN IMMEDIATE ... COMMIT, ROLLBACK on any error (cancellation included).

    IMMEDIATE takes the write lock up front, so a transaction never fails half-way with
    SQLITE_BUSY when it first writes; waiting for the lock is covered by the busy timeout.
    """
    try:
        # BEGIN is inside the try: a task cancelled while waiting for the lock still has its
        # BEGIN executed later by aiosqlite's thread, and must not leave that transaction open.
        await db.execute("BEGIN IMMEDIATE")
        yield db
        await db.execute("COMMIT")
    except BaseException:
        await _rollback(db)
        raise


async def _rollback(db: aiosqlite.Connection) -> None:
    # aiosqlite runs calls in order on one thread, so this ROLLBACK follows any statement still in
    # flight, even when we got here because the awaiting task was cancelled. "No transaction is
    # active" (BEGIN itself failed, or SQLite already rolled back) is fine: the original error is
    # what the caller needs to see.
    with contextlib.suppress(sqlite3.OperationalError):
        await db.execute("ROLLBACK")


async def first(db: aiosqlite.Connection, sql: str, params: Params = ()) -> aiosqlite.Row | None:
    rows = list(await db.execute_fetchall(sql, params))
    return rows[0] if rows else None


async def scalar(db: aiosqlite.Connection, sql: str, params: Params = ()) -> Any:
    row = await first(db, sql, params)
    return None if row is None else row[0]


class Database:
    """One aiosqlite connection shared by a process's tasks, used one operation at a time.

    The lock is needed even though aiosqlite queues calls: statements of concurrent tasks would
    otherwise interleave on the one connection, so a task could read another's uncommitted rows
    or write into its transaction.
    """

    def __init__(self, db: aiosqlite.Connection) -> None:
        self._db = db
        self._lock = asyncio.Lock()
        self._closed = False

    async def close(self) -> None:
        """Close the connection (a second call does nothing)."""
        async with self._lock:
            if self._closed:
                return
            self._closed = True
            try:
                # Refreshes planner statistics where they drifted; SQLite advises it before closing.
                await self._db.execute("PRAGMA optimize")
            finally:
                await self._db.close()

    @contextlib.asynccontextmanager
    async def _write(self) -> AsyncIterator[aiosqlite.Connection]:
        async with self._lock, transaction(self._db) as db:
            yield db

    async def _rows(self, sql: str, params: Params = ()) -> list[aiosqlite.Row]:
        # A single statement is its own snapshot, so reads need the lock but no transaction.
        async with self._lock:
            return list(await self._db.execute_fetchall(sql, params))

    async def _row(self, sql: str, params: Params = ()) -> aiosqlite.Row | None:
        rows = await self._rows(sql, params)
        return rows[0] if rows else None
