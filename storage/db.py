"""The SQLite connection: how it is opened, how a write transaction runs, and the base class
that serialises a process's use of its one connection.

Every `await db.execute(...)` is a round trip to aiosqlite's thread and back through the event
loop's self-pipe: ~90 us of CPU, most of it thread wake-ups and GIL hand-overs, however small the
statement. A backup's transaction used to be 7 of them. So a transaction is written as a plain
function of the sqlite3 connection (`Database._transact`), and the whole of it - BEGIN IMMEDIATE,
its statements, COMMIT or ROLLBACK - runs on that thread in one round trip (`on_thread`). The
async `transaction()` stays for the schema migrations and the blob rewrite, which await work
between their statements. Either way "one transaction, all or nothing" is written once here.
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar, cast

import aiosqlite

Params = Sequence[Any] | Mapping[str, Any]
T = TypeVar("T")

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


async def on_thread(db: aiosqlite.Connection, fn: Callable[[sqlite3.Connection], T]) -> T:
    """`fn(connection)` on the connection's own thread, in one round trip however many statements
    it runs. aiosqlite runs what is queued on a connection in order on that thread, so `fn` runs
    between the statements queued before and after it, exactly like one of them.

    (aiosqlite has no public call for this; `_execute` is the one its own methods use.)
    """
    execute = cast(Callable[[Callable[[], T]], Awaitable[T]], db._execute)
    return await execute(lambda: fn(db._conn))


def value(conn: sqlite3.Connection, sql: str, params: Params = ()) -> Any:
    """The first column of the first row, or None (on the connection's thread)."""
    row = conn.execute(sql, params).fetchone()
    return None if row is None else row[0]


async def first(db: aiosqlite.Connection, sql: str, params: Params = ()) -> aiosqlite.Row | None:
    rows = list(await db.execute_fetchall(sql, params))
    return rows[0] if rows else None


async def scalar(db: aiosqlite.Connection, sql: str, params: Params = ()) -> Any:
    return await on_thread(db, lambda conn: value(conn, sql, params))


class _Claim:
    """Whether anyone still waits for a transaction queued on the database thread."""

    abandoned = False


class _Abandoned(Exception):
    """Raised on the database thread for a transaction whose caller was cancelled before it began."""


def _in_transaction(conn: sqlite3.Connection, fn: Callable[[sqlite3.Connection], T], claim: _Claim) -> T:
    """BEGIN IMMEDIATE, fn, COMMIT; ROLLBACK on any error (on the database thread)."""
    if claim.abandoned:
        raise _Abandoned  # cancelled while queued: never started
    conn.execute("BEGIN IMMEDIATE")
    try:
        if claim.abandoned:
            raise _Abandoned  # cancelled while BEGIN waited for another process's lock: write nothing
        result = fn(conn)
        conn.execute("COMMIT")
    except BaseException:
        # "No transaction is active" (SQLite already rolled back) is fine: the error is what counts.
        with contextlib.suppress(sqlite3.OperationalError):
            conn.execute("ROLLBACK")
        raise
    return result


def _in_snapshot(conn: sqlite3.Connection, fn: Callable[[sqlite3.Connection], T]) -> T:
    """fn's statements in one read transaction: one snapshot of the database for all of them."""
    conn.execute("BEGIN")
    try:
        return fn(conn)
    finally:
        conn.execute("COMMIT")


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

    async def _transact(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """`fn(connection)` as one write transaction, run whole on the database thread in one
        round trip: committed if it returns, rolled back if it raises.

        A caller cancelled before the transaction began (e.g. while BEGIN waits for another
        process's lock) gets nothing written; one cancelled later may still see it commit, whole.
        """
        claim = _Claim()
        async with self._lock:
            try:
                return await on_thread(self._db, lambda conn: _in_transaction(conn, fn, claim))
            except asyncio.CancelledError:
                claim.abandoned = True
                raise

    async def _read(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """`fn(connection)` reading several statements from one snapshot, in one round trip."""
        async with self._lock:
            return await on_thread(self._db, lambda conn: _in_snapshot(conn, fn))

    @contextlib.asynccontextmanager
    async def _write(self) -> AsyncIterator[aiosqlite.Connection]:
        """A write transaction whose statements are awaited one by one; prefer `_transact`, which
        costs one round trip to the database thread instead of one per statement."""
        async with self._lock, transaction(self._db) as db:
            yield db

    async def _rows(self, sql: str, params: Params = ()) -> list[aiosqlite.Row]:
        # A single statement is its own snapshot, so reads need the lock but no transaction.
        async with self._lock:
            return list(await self._db.execute_fetchall(sql, params))

    async def _row(self, sql: str, params: Params = ()) -> aiosqlite.Row | None:
        rows = await self._rows(sql, params)
        return rows[0] if rows else None
