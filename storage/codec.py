"""How values are encoded in the database: timestamps and compressed, content-addressed blobs.

Pure functions, no I/O. `pack` and `unpack` are CPU-bound on big configs, so the store runs them
with `asyncio.to_thread`, never on the event loop.

Why zlib level 6 and not lzma: on the 38 RouterOS fixtures (1.97 MB) zlib-6 gives 5.8x at ~38 MB/s
and decompresses in ~6 ms; lzma preset 6 gives 6.7x (14 % smaller) at ~3.5 MB/s and decompresses
4x slower. Configs are small next to everything else a backup costs, so the cheaper codec wins.
The codec is stored per blob, so a better one can be added later without rewriting old rows.
"""

from __future__ import annotations

import hashlib
import zlib
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

from bot.core.errors import CorruptBlob

EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
ZLIB = "zlib"
ZLIB_LEVEL = 6


# Times are INTEGER microseconds since the epoch: exact round-trips of Python datetimes, and 6-7
# bytes per value instead of ~27 for ISO text (attempts, the most numerous rows, carry one each).
def to_db_time(at: datetime) -> int:
    """Microseconds since the Unix epoch; a naive datetime is a bug upstream, so it is refused."""
    if at.tzinfo is None or at.utcoffset() is None:
        raise ValueError(f"naive datetime {at!r}: backupbot stores only timezone-aware times")
    delta = at - EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def from_db_time(value: int) -> datetime:
    return EPOCH + timedelta(microseconds=value)


def from_db_time_or_none(value: int | None) -> datetime | None:
    return None if value is None else from_db_time(value)


def utc(at: datetime) -> datetime:
    """`at` as the store will hand it back (UTC, microsecond precision)."""
    return from_db_time(to_db_time(at))


@dataclass(frozen=True)
class PackedBlob:
    sha256: bytes  # of the raw bytes: the blob's address
    size: int  # raw bytes
    codec: str
    data: bytes


def pack(raw: bytes) -> PackedBlob:
    """Hash and compress raw export bytes (CPU-bound: call from a worker thread)."""
    return PackedBlob(hashlib.sha256(raw).digest(), len(raw), ZLIB, zlib.compress(raw, ZLIB_LEVEL))


def unpack(codec: str, data: bytes, sha256: bytes) -> bytes:
    """Decompress a blob and prove it is still the bytes that were stored (worker thread)."""
    if codec != ZLIB:
        raise CorruptBlob(f"unknown codec {codec!r}")
    try:
        raw = zlib.decompress(data)
    except zlib.error as exc:
        raise CorruptBlob(f"blob {sha256.hex()} does not decompress: {exc}") from exc
    if hashlib.sha256(raw).digest() != sha256:
        raise CorruptBlob(f"blob {sha256.hex()} decompresses to different bytes")
    return raw
