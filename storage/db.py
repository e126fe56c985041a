"""The SQLite connection: how it is opened, how a write transaction runs, and the base class
that serialises a process's use of its one connection.

Every `await db.execute(...)` is a round trip to aiosqlite's thread and back through the event
loop's self-pipe: ~90 us of CPU, most of it thread wake-ups and GIL hand-overs, however small the
statement. A backup's transaction used to be 7 of them. So a transaction is written as a plain
function of the sqlite3 connection (`Database._transact`), and the whole of it - BEGIN IMMEDIATE,
its statements, COMMIT or ROLLBACK - runs on that thread in one round trip (`on_thread`), and
the jobs of many tasks queued meanwhile share one round trip (`Database`). The async
`transaction()` stays for the schema migrations and the blob rewrite, which await work between
their statements. Either way "one transaction, all or nothing" is written once here.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import sqlite3
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
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


class _Abandoned(Exception):
    """Raised on the database thread for a job whose caller was cancelled before it began."""


@dataclass(eq=False)
class _Job:
    """One caller's work for the database thread, and where its outcome goes."""

    work: Callable[[sqlite3.Connection, _Job], Any]
    future: asyncio.Future[Any]
    abandoned: bool = False  # its caller was cancelled: do nothing that has not begun


def _in_transaction(conn: sqlite3.Connection, fn: Callable[[sqlite3.Connection], T], job: _Job) -> T:
    """BEGIN IMMEDIATE, fn, COMMIT; ROLLBACK on any error (on the database thread)."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        if job.abandoned:
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


def _run_batch(conn: sqlite3.Connection, batch: list[_Job]) -> list[tuple[bool, Any]]:
    """Each job of the batch in turn, each on its own (on the database thread): (ok, result or error)."""
    outcomes: list[tuple[bool, Any]] = []
    for job in batch:
        try:
            if job.abandoned:
                raise _Abandoned  # cancelled while queued: never started
            outcomes.append((True, job.work(conn, job)))
        except Exception as exc:  # noqa: BLE001 - each job's error is raised to its own caller
            outcomes.append((False, exc))
    return outcomes


class Database:
    """One aiosqlite connection shared by a process's tasks.

    Jobs (`_transact`, `_read`, `_rows`) queue up; whatever is queued when the database thread is
    free goes over in ONE round trip and runs there in order, each job still on its own: its own
    transaction or snapshot, its own result or error. A backup run's hundreds of sessions finish
    in bursts, so a burst's reads and writes share a hop instead of paying ~70 us each.

    The lock is held for each such round trip and by `_write`, whose statements are awaited one by
    one: statements of concurrent tasks must never interleave on the one connection, or a task
    could read another's uncommitted rows or write into its transaction.
    """

    def __init__(self, db: aiosqlite.Connection) -> None:
        self._db = db
        self._lock = asyncio.Lock()
        self._closed = False
        self._queue: list[_Job] = []
        self._pump: asyncio.Task[None] | None = None

    async def close(self) -> None:
        """Close the connection (a second call does nothing)."""
        if self._pump is not None:
            await asyncio.shield(self._pump)  # what is queued still runs
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
        """`fn(connection)` as one write transaction, run whole on the database thread: committed
        if it returns, rolled back if it raises.

        A caller cancelled before the transaction began (e.g. while BEGIN waits for another
        process's lock) gets nothing written; one cancelled later may still see it commit, whole.
        """
        return cast(T, await self._submit(lambda conn, job: _in_transaction(conn, fn, job)))

    async def _read(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """`fn(connection)` reading several statements from one snapshot."""
        return cast(T, await self._submit(lambda conn, _job: _in_snapshot(conn, fn)))

    @contextlib.asynccontextmanager
    async def _write(self) -> AsyncIterator[aiosqlite.Connection]:
        """A write transaction whose statements are awaited one by one; prefer `_transact`, which
        costs at most one round trip to the database thread instead of one per statement."""
        async with self._lock, transaction(self._db) as db:
            yield db

    async def _rows(self, sql: str, params: Params = ()) -> list[aiosqlite.Row]:
        # A single statement is its own snapshot: no transaction needed.
        rows = await self._submit(lambda conn, _job: conn.execute(sql, params).fetchall())
        return cast(list[aiosqlite.Row], rows)

    async def _row(self, sql: str, params: Params = ()) -> aiosqlite.Row | None:
        rows = await self._rows(sql, params)
        return rows[0] if rows else None

    async def _submit(self, work: Callable[[sqlite3.Connection, _Job], Any]) -> Any:
        job = _Job(work, asyncio.get_running_loop().create_future())
        self._queue.append(job)
        if self._pump is None:
            self._pump = asyncio.create_task(self._drain(), name="database jobs")
        try:
            return await job.future
        except asyncio.CancelledError:
            job.abandoned = True
            raise

    async def _drain(self) -> None:
        """Run queued jobs, a batch per round trip, until none is left."""
        try:
            while self._queue:
                batch, self._queue = self._queue, []
                try:
                    async with self._lock:
                        outcomes = await on_thread(self._db, functools.partial(_run_batch, batch=batch))
                except Exception as exc:  # noqa: BLE001 - the connection failed (closed): every caller gets it
                    outcomes = [(False, exc)] * len(batch)
                except BaseException:
                    # Only the loop shutting down cancels this task: nobody is left waiting forever.
                    for job in [*batch, *self._queue]:
                        job.future.cancel()
                    self._queue = []
                    raise
                for job, (ok, result) in zip(batch, outcomes, strict=True):
                    if job.future.done():
                        continue  # cancelled: nobody waits
                    if ok:
                        job.future.set_result(result)
                    else:
                        job.future.set_exception(result)
        finally:
            self._pump = None
