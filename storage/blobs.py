"""Where a version's export bytes live: the blobs table, its delta chains, and the one-time rewrite
of the whole zlib blobs older backupbots wrote into deltas. (storage/codec.py owns the encodings.)

A new version's blob is a delta against the blob of the device's previous version, so reading it
means reading its chain: one recursive query, bounded to FULL_EVERY deltas, then decoding in a
worker thread. What keeps chains sound:

- Content addressing: one blob per distinct raw export, whichever devices hold it. A blob shared by
  two devices is a fine base for both; a delta depends only on its base's raw bytes.
- A blob never changes, with one exception: the rewrite re-encodes a schema-2 zlib blob once (same
  raw bytes, proven before it commits). A zlib blob the rewrite has not yet reached is never chosen
  as a base, so a blob's depth is final by the time anything depends on it.
- base_id < id (a CHECK in the schema): a chain cannot loop.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
from collections import OrderedDict
from collections.abc import Iterable

import aiosqlite

from storage.codec import (
    FULL_EVERY,
    ZLIB,
    ZSTD_DELTA,
    PackedBlob,
    StoredBlob,
    compress,
    may_extend,
    unpack_chain,
    unpack_delta,
)
from bot.core.errors import CorruptBlob
from storage.db import first, on_thread, scalar, transaction, value
from storage.records import DEVICE_ID

log = logging.getLogger(__name__)

# A blob and its bases, nearest first once sorted by n (chain_of): at most FULL_EVERY + 1 rows, one
# more than a legal chain has, so a chain too deep to be sound is told apart from one that ends in a
# whole blob. The recursion carries ids only and each blob's data is read once, by the join, unsorted:
# carrying the data through the recursion and a sort copied a 2 MB blob three times more (a chain of
# two 100,000-line exports: 15 ms instead of 2).
_CHAIN = """
WITH RECURSIVE chain (n, id, base_id) AS (
    SELECT 0, id, base_id FROM blobs WHERE id = ({start})
    UNION ALL
    SELECT c.n + 1, b.id, b.base_id FROM chain c JOIN blobs b ON b.id = c.base_id WHERE c.n < {limit}
)
SELECT b.id, b.codec, b.size, b.sha256, b.data, b.base_id, c.n FROM chain c JOIN blobs b ON b.id = c.id
"""

VERSION_CHAIN = _CHAIN.format(limit=FULL_EVERY, start="SELECT blob_id FROM versions WHERE id = :version")

# The chain a new version of :site/:device is a delta against: its latest version's, unless that
# blob is a zlib blob the rewrite may still re-encode (then the new blob is stored whole).
BASE_CHAIN = _CHAIN.format(limit=FULL_EVERY, start=f"""
    SELECT b.id FROM blobs b
    WHERE b.id = (SELECT blob_id FROM versions WHERE device_id = {DEVICE_ID} ORDER BY id DESC LIMIT 1)
      AND NOT (b.codec = '{ZLIB}' AND b.id > IFNULL((SELECT done_blob FROM blob_rewrite), b.id))""")

BLOB_CHAIN = _CHAIN.format(limit=FULL_EVERY, start=":blob")

REWRITE_BATCH = 200  # versions visited per transaction: well under a second of work
_CACHE_BYTES = 64 * 2**20  # raw exports kept while rewriting: about one per device of a big fleet


def stored_blob(row: aiosqlite.Row) -> StoredBlob:
    return StoredBlob(row["id"], row["codec"], row["size"], row["sha256"], row["data"], row["base_id"])


def chain_of(rows: Iterable[aiosqlite.Row]) -> list[StoredBlob]:
    """The rows of a _CHAIN query as the chain, nearest first."""
    return [stored_blob(r) for r in sorted(rows, key=lambda r: int(r["n"]))]


def blob_id(conn: sqlite3.Connection, blob: PackedBlob) -> int:
    """The blob's id, inserting it unless the same raw bytes are already stored (inside the
    caller's transaction, on the database thread). The base, read before the transaction, is still
    valid: blobs that can be bases never change."""
    found = value(conn, "SELECT id FROM blobs WHERE sha256 = ?", (blob.sha256,))
    if found is None:
        found = value(conn, "INSERT INTO blobs (sha256, size, codec, data, base_id, depth)"
                            " VALUES (?, ?, ?, ?, ?, ?) RETURNING id",
                      (blob.sha256, blob.size, blob.codec, blob.data, blob.base_id, blob.depth))
    return int(found)


async def insert_blob(db: aiosqlite.Connection, blob: PackedBlob) -> int:
    """`blob_id` from a transaction that awaits its statements (storage.db.transaction)."""
    return await on_thread(db, lambda conn: blob_id(conn, blob))


# -- the rewrite of schema-2 blobs ------------------------------------------------------------------


class _RawCache:
    """Raw bytes of recently visited blobs, bounded in bytes: the next version of a device is a
    delta against the previous one, which is then usually here instead of decoded again."""

    def __init__(self, limit: int) -> None:
        self._items: OrderedDict[int, bytes] = OrderedDict()
        self._bytes, self._limit = 0, limit

    def get(self, blob_id: int) -> bytes | None:
        return self._items.get(blob_id)

    def put(self, blob_id: int, raw: bytes) -> None:
        self._items[blob_id] = raw
        self._bytes += len(raw)
        while self._bytes > self._limit:
            self._bytes -= len(self._items.popitem(last=False)[1])


def _redo(blob: StoredBlob, base_id: int, base_depth: int, base_raw: bytes) -> tuple[bytes, PackedBlob | None]:
    """A zlib blob's raw bytes, and the same bytes as a delta against `base_raw` if that is smaller
    (worker thread). Raises CorruptBlob if the old blob is damaged; a delta that would not decode
    back to the very same bytes is never returned."""
    raw = unpack_chain([blob])
    data = compress(raw, base_raw)
    if len(data) >= len(blob.data):
        return raw, None
    try:
        unpack_delta(StoredBlob(blob.id, ZSTD_DELTA, blob.size, blob.sha256, data, base_id), base_raw)
    except CorruptBlob:
        return raw, None
    return raw, PackedBlob(blob.sha256, blob.size, ZSTD_DELTA, data, base_id, base_depth + 1)


async def rewrite_legacy_blobs(db: aiosqlite.Connection, batch: int = REWRITE_BATCH) -> int:
    """Re-encode the whole zlib blobs of schema 2 as deltas against their device's previous version,
    `batch` versions per transaction; return how many were rewritten.

    Versions are visited in id order, which is the order the old code created their blobs in, so a
    blob's base (an earlier version's blob) is always final before the blob is rewritten. Progress is
    committed with each batch, so a kill at any instant loses at most one batch of work, and two
    processes opening the database at once never rewrite the same batch (the loser starts over).
    Blobs that are damaged, or first of their device, or would not shrink stay as they are: zlib is
    readable forever.
    """
    cache = _RawCache(_CACHE_BYTES)
    rewritten = 0
    announced = False
    while (state := await _rewrite_state(db)) is not None:
        next_version, last_version, done_blob = state
        if not announced:
            log.info("re-encoding the configs of versions %d-%d as deltas (once, after an upgrade)",
                     next_version, last_version)
            announced = True
        rows = list(await db.execute_fetchall(
            "SELECT id, device_id, blob_id FROM versions WHERE id >= ? AND id <= ? ORDER BY id LIMIT ?",
            (next_version, last_version, batch)))
        plan, new_done = await _plan(db, rows, done_blob, cache)
        async with transaction(db):
            if await _rewrite_state(db) != state:
                continue  # another process did this batch meanwhile
            for blob_id, blob in plan:
                await db.execute(
                    "UPDATE blobs SET codec = ?, data = ?, base_id = ?, depth = ? WHERE id = ? AND codec = ?",
                    (blob.codec, blob.data, blob.base_id, blob.depth, blob_id, ZLIB))
            if not rows or rows[-1]["id"] >= last_version:
                await db.execute("DELETE FROM blob_rewrite")
            else:
                await db.execute("UPDATE blob_rewrite SET next_version = ?, done_blob = ?",
                                 (rows[-1]["id"] + 1, new_done))
        rewritten += len(plan)
    if announced:
        log.info("re-encoded %d configs as deltas; `VACUUM` returns the freed space to the file system", rewritten)
    return rewritten


async def _rewrite_state(db: aiosqlite.Connection) -> tuple[int, int, int] | None:
    row = await first(db, "SELECT next_version, last_version, done_blob FROM blob_rewrite")
    return None if row is None else (row[0], row[1], row[2])


async def _plan(db: aiosqlite.Connection, rows: list[aiosqlite.Row], done_blob: int,
                cache: _RawCache) -> tuple[list[tuple[int, PackedBlob]], int]:
    """The re-encodings for one batch of versions, and the highest blob id they make final."""
    plan: list[tuple[int, PackedBlob]] = []
    depths: dict[int, int] = {}  # of blobs re-encoded in this batch, not yet committed
    for row in rows:
        blob_id = row["blob_id"]
        if blob_id <= done_blob:
            continue  # not this blob's first version: it was visited then
        done_blob = blob_id
        found = await first(db, "SELECT id, codec, size, sha256, data, base_id FROM blobs WHERE id = ?", (blob_id,))
        assert found is not None  # versions.blob_id is a foreign key
        blob = stored_blob(found)
        base_id = await scalar(db, "SELECT blob_id FROM versions WHERE device_id = ? AND id < ? ORDER BY id DESC"
                                   " LIMIT 1", (row["device_id"], row["id"]))
        if blob.codec != ZLIB or base_id is None or base_id >= blob_id:
            continue
        base_depth = depths.get(base_id)
        if base_depth is None:
            base_depth = int(await scalar(db, "SELECT depth FROM blobs WHERE id = ?", (base_id,)))
        base_raw = cache.get(base_id)
        try:
            if base_raw is None:
                base_chain = chain_of(await db.execute_fetchall(BLOB_CHAIN, {"blob": base_id}))
                if not may_extend(base_depth, max(blob.size, base_chain[0].size)):
                    continue
                base_raw = await asyncio.to_thread(unpack_chain, base_chain)
            elif not may_extend(base_depth, max(blob.size, len(base_raw))):
                continue
            raw, packed = await asyncio.to_thread(_redo, blob, base_id, base_depth, base_raw)
        except CorruptBlob as exc:
            log.warning("left blob %d as it is: %s", blob_id, exc)
            continue
        cache.put(blob_id, raw)
        if packed is not None:
            plan.append((blob_id, packed))
            depths[blob_id] = packed.depth
    return plan, done_blob
