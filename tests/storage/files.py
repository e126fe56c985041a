"""Looking into a store's file the way an operator would, beside the store: sqlite3 and the codec.

Used by the kill and migration tests to prove a file whole without going through Store itself.
"""

from __future__ import annotations

import importlib.util
import shutil
import sqlite3
from collections import Counter
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, cast

from storage.blobs import BLOB_CHAIN, VERSION_CHAIN
from storage.codec import FULL_EVERY, StoredBlob, unpack_chain

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "storage"
# Written by commit 197417d's Store API (schema 2, zlib blobs): see make_schema2_db.py beside it.
SCHEMA2_DB = FIXTURES / "schema2-zlib.sqlite"
SCHEMA2_EXPECTED = FIXTURES / "schema2-zlib.expected.json"


# Written by commit a6f8e5f's Store API (schema 6, one attempts row per attempt): see make_schema6_db.py.
SCHEMA6_DB = FIXTURES / "schema6.sqlite"
SCHEMA6_EXPECTED = FIXTURES / "schema6.expected.json"


def copy_schema2_db(folder: Path) -> Path:
    path = folder / "old.sqlite"
    shutil.copyfile(SCHEMA2_DB, path)
    return path


def copy_schema6_db(folder: Path) -> Path:
    path = folder / "schema6.sqlite"
    shutil.copyfile(SCHEMA6_DB, path)
    return path


def schema6_answers() -> Callable[[Any], Awaitable[dict[str, Any]]]:
    """The function that recorded SCHEMA6_EXPECTED from the Store API of its day (make_schema6_db.py's
    `answers`), to ask today's Store the very same questions."""
    spec = importlib.util.spec_from_file_location("make_schema6_db", FIXTURES / "make_schema6_db.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return cast(Callable[[Any], Awaitable[dict[str, Any]]], module.answers)


def one(db: sqlite3.Connection, query: str, params: tuple[object, ...] = ()) -> object:
    return db.execute(query, params).fetchone()[0]


def decode_every_blob(db: sqlite3.Connection) -> Counter[str]:
    """Decode every blob through its chain (which checks its sha256 and size); count them by codec.

    Also checks what the writers promise: each blob's depth is its chain's, and under FULL_EVERY.
    """
    codecs: Counter[str] = Counter()
    for blob_id, size, depth in db.execute("SELECT id, size, depth FROM blobs").fetchall():
        chain = [StoredBlob(*row[:-1]) for row in sorted(db.execute(BLOB_CHAIN, {"blob": blob_id}), key=last)]
        assert len(unpack_chain(chain)) == size
        assert len(chain) == depth + 1 and depth < FULL_EVERY, (blob_id, len(chain), depth)
        codecs[chain[0].codec] += 1
    return codecs


def version_raw(db: sqlite3.Connection, version_id: int) -> bytes:
    """A version's raw bytes, decoded through its chain and checked against its sha256."""
    rows = sorted(db.execute(VERSION_CHAIN, {"version": version_id}), key=last)
    return unpack_chain([StoredBlob(*row[:-1]) for row in rows])


def last(row: tuple[object, ...]) -> int:
    """A chain query's rows come unsorted, each with its place in the chain last."""
    value = row[-1]
    assert isinstance(value, int)
    return value


def check_whole(path: Path) -> Counter[str]:
    """integrity_check, foreign_key_check, and every blob decodes; returns the blobs by codec."""
    with sqlite3.connect(path) as db:
        assert one(db, "PRAGMA integrity_check") == "ok"
        assert db.execute("PRAGMA foreign_key_check").fetchall() == []
        return decode_every_blob(db)
