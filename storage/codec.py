"""How values are encoded in the database: timestamps, and content-addressed config blobs.

Pure functions, no I/O. Packing and unpacking are CPU-bound on big configs, so the store runs them
with `asyncio.to_thread` (zstandard and zlib release the GIL while they work), never on the loop.

A blob is an export exactly as received, addressed by the sha256 of those bytes, in one of three
codecs (stored per blob, so no row is ever misread):

- "zlib": whole, zlib level 6. All backupbot wrote before schema 3; readable forever.
- "zstd": whole, zstandard.
- "zstd-delta": zstandard with the raw bytes of an earlier blob of the same device, its *base*, as a
  raw-content dictionary. Consecutive versions of a router share 90-99 % of their lines, so the
  delta of a typical daily change is ~100 bytes where the whole export takes ~6 KB.

A blob's *chain* is the blob, its base, the base's base ... down to a whole blob; its *depth* is the
number of deltas in it. Reading decodes the chain from the whole blob up and proves the result
against the sha256 before returning it, so a damaged blob anywhere in a chain is reported
(CorruptBlob, naming it), never returned. Chains are bounded in two ways: every FULL_EVERY-th
version is whole, and a chain never makes a reader decode more than CHAIN_BYTES.

Measured on the storage benchmark's data (benchmarks/storage_size.py: 100 routers, 10-40 KB
exports, ~10 % changed a day). A year is 3,797 versions: zlib-6 one by one 23.7 MB; whole zstd is no
smaller; as deltas 0.90 MB of data (0.60 MB of it the 100 first versions, whole; 1.22 MB as the
blobs table), against 1.64 MB for `git gc` of the same exports. Over three years (11,058 versions,
whole copies then at level 3) a whole copy every 50 versions took 2.79 MB, every 100 2.13 MB, every
200 1.55 MB, while decoding the deepest chain of a 36 KB export took 3 ms at depth 99 and 6.5 ms at
depth 199 on a loaded 2-core machine: FULL_EVERY = 100 keeps reads far inside 20 ms.
"""

from __future__ import annotations

import hashlib
import itertools
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

import zstandard

from bot.core.errors import CorruptBlob

EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)

ZLIB = "zlib"
ZSTD = "zstd"
ZSTD_DELTA = "zstd-delta"
# Deltas at a level whose match finder can index a big base: a 6 MB export against its predecessor
# takes 3.9 KB at level 9 but 754 KB at level 3. Whole copies at level 3: level 9 makes real exports
# 11 % smaller (the storage benchmark's file 2.32 MB instead of 2.37 MB, both within 1.5x git gc) but
# costs ~10 ms per MB more, and a fleet's first run compresses every export whole: at level 9 it took
# the first run's CPU from 1.4-1.6x to 2.0-2.2x the bare SSH loop's (benchmarks/backup_throughput.py).
LEVEL = 9
WHOLE_LEVEL = 3
FULL_EVERY = 100  # a chain holds at most 99 deltas (the module docstring says why 100)
# Raw bytes one read may decode. Per link, decoding costs ~30 us plus ~0.1 ms per MB (more once
# exports outgrow the CPU cache): 100 deltas of 1 MB decode in ~8 ms, 10 of 6 MB in ~16 ms.
CHAIN_BYTES = 64 * 2**20
# zstd decoders refuse windows over 2**27 unless told otherwise; a delta's window must span its base.
_MAX_WINDOW_LOG = 27


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
class StoredBlob:
    """One row of the blobs table, as read to decode it."""

    id: int
    codec: str
    size: int  # raw bytes
    sha256: bytes  # of the raw bytes: the blob's address
    data: bytes
    base_id: int | None  # the blob this one is a delta against


@dataclass(frozen=True)
class PackedBlob:
    """A new blob, ready to insert."""

    sha256: bytes
    size: int
    codec: str
    data: bytes
    base_id: int | None = None
    depth: int = 0  # deltas in its chain


def pack(raw: bytes, base: Sequence[StoredBlob] = (), base_raw: bytes | None = None) -> PackedBlob:
    """Hash and compress raw export bytes (CPU-bound: call from a worker thread).

    `base` is the chain of the device's previous version (base[0] that version's blob, each next
    one its base). The result is a delta against base[0] unless the chain is already as long as
    allowed (FULL_EVERY, CHAIN_BYTES) or does not decode: a damaged history never stops a new
    backup from being stored, whole. `base_raw`, if given, is taken for base[0]'s raw bytes
    instead of decoding the chain, once its sha256 proves it is.
    """
    sha256 = hashlib.sha256(raw).digest()
    if base and may_extend(len(base) - 1, max(len(raw), base[0].size)):
        if base_raw is None or hashlib.sha256(base_raw).digest() != base[0].sha256:
            try:
                base_raw = unpack_chain(base)
            except CorruptBlob:
                base_raw = None
        if base_raw is not None:
            return PackedBlob(sha256, len(raw), ZSTD_DELTA, compress(raw, base_raw), base[0].id, len(base))
    return PackedBlob(sha256, len(raw), ZSTD, compress(raw))


def may_extend(base_depth: int, size: int) -> bool:
    """Whether a delta may go on top of a blob at `base_depth` for exports of about `size` bytes."""
    return base_depth + 1 < FULL_EVERY and (base_depth + 2) * size <= CHAIN_BYTES


def compress(raw: bytes, base: bytes = b"") -> bytes:
    """zstd frame of `raw`, using `base` (if any) as a raw-content dictionary."""
    # The window must reach back over the whole base, or matches into it are lost.
    window_log = min(_MAX_WINDOW_LOG, max(zstandard.WINDOWLOG_MIN, (len(base) + len(raw)).bit_length()))
    params = zstandard.ZstdCompressionParameters.from_level(
        LEVEL if base else WHOLE_LEVEL, source_size=len(raw), dict_size=len(base), window_log=window_log,
        write_content_size=1, write_checksum=0, write_dict_id=0)  # the sha256 is our checksum
    return zstandard.ZstdCompressor(compression_params=params, dict_data=_dictionary(base)).compress(raw)


def unpack_chain(chain: Sequence[StoredBlob]) -> bytes:
    """The raw bytes of chain[0], decoded from the whole blob at the end of its chain up and proven
    against its sha256 (CPU-bound: call from a worker thread). chain[i + 1] is chain[i]'s base.

    Raises CorruptBlob if any blob is damaged or the chain is broken (a base missing, or a chain
    deeper than any writer makes).
    """
    _check_links(chain)
    raw = _decode(chain[-1], b"")
    for link in reversed(chain[:-1]):
        raw = _decode(link, raw)
    if hashlib.sha256(raw).digest() != chain[0].sha256:
        # Only the wanted bytes are hashed on the way up (a long chain of big exports would
        # otherwise hash them all); now walk up again, checking each, to name the damaged blob.
        raise _first_damaged(chain)
    return raw


def unpack_chains(chains: Sequence[Sequence[StoredBlob]]) -> list[bytes]:
    """unpack_chain of each chain, in one go: a blob whose bytes one chain proved is not decoded again
    for another. Two versions of a device compared usually share the bottom of their chains (the
    older is often the newer's base), so the newer costs its own deltas only."""
    known: dict[int, bytes] = {}  # blob id -> raw bytes proven against its sha256
    out: dict[int, bytes] = {}
    for index in sorted(range(len(chains)), key=lambda k: len(chains[k])):  # bases first
        chain = chains[index]
        _check_links(chain)
        below = next((k for k, link in enumerate(chain) if link.id in known), None)
        if below is None:
            raw = unpack_chain(chain)
        elif below:
            raw = known[chain[below].id]
            for link in reversed(chain[:below]):
                raw = _decode(link, raw)
            if hashlib.sha256(raw).digest() != chain[0].sha256:
                raise _first_damaged(chain)
        else:
            raw = known[chain[0].id]
        known[chain[0].id] = out[index] = raw
    return [out[k] for k in range(len(chains))]


def unpack_delta(blob: StoredBlob, base_raw: bytes) -> bytes:
    """The raw bytes of a delta blob whose base's raw bytes are known, proven against its sha256."""
    raw = _decode(blob, base_raw)
    if hashlib.sha256(raw).digest() != blob.sha256:
        raise CorruptBlob(f"blob {blob.sha256.hex()} decompresses to different bytes")
    return raw


def _check_links(chain: Sequence[StoredBlob]) -> None:
    if not chain:
        raise ValueError("an empty chain")
    for link, base in itertools.pairwise(chain):
        if link.base_id != base.id:
            raise CorruptBlob(f"blob {link.sha256.hex()}: its chain is out of order")
    if len(chain) > FULL_EVERY:
        raise CorruptBlob(f"blob {chain[0].sha256.hex()}: its chain is deeper than {FULL_EVERY - 1} deltas")
    if chain[-1].base_id is not None:
        raise CorruptBlob(f"blob {chain[0].sha256.hex()}: its chain is broken, blob id {chain[-1].base_id} is missing")


def _decode(link: StoredBlob, base: bytes) -> bytes:
    """One blob's bytes from its data and its base's raw bytes (unchecked)."""
    if (link.codec == ZSTD_DELTA) != (link.base_id is not None):
        raise CorruptBlob(f"blob {link.sha256.hex()}: codec {link.codec!r} does not match its base")
    try:
        if link.codec == ZLIB:
            inflater = zlib.decompressobj()
            raw = inflater.decompress(link.data, link.size + 1)  # bounded: a damaged header cannot balloon
        elif link.codec in (ZSTD, ZSTD_DELTA):
            if zstandard.frame_content_size(link.data) != link.size:
                raise CorruptBlob(f"blob {link.sha256.hex()}: its frame does not hold {link.size} bytes")
            raw = zstandard.ZstdDecompressor(dict_data=_dictionary(base)).decompress(link.data)
        else:
            raise CorruptBlob(f"blob {link.sha256.hex()}: unknown codec {link.codec!r}")
    except (zlib.error, zstandard.ZstdError) as exc:
        raise CorruptBlob(f"blob {link.sha256.hex()} does not decompress: {exc}") from exc
    if len(raw) != link.size:
        raise CorruptBlob(f"blob {link.sha256.hex()} decompresses to {len(raw)} bytes, not {link.size}")
    return raw


def _first_damaged(chain: Sequence[StoredBlob]) -> CorruptBlob:
    raw = b""
    for link in reversed(chain):
        raw = _decode(link, raw)
        if hashlib.sha256(raw).digest() != link.sha256:
            where = "" if link is chain[0] else f" (in the delta chain of blob {chain[0].sha256.hex()})"
            return CorruptBlob(f"blob {link.sha256.hex()} decompresses to different bytes{where}")
    raise AssertionError("unreachable: the chain decoded to the right bytes the second time")


def _dictionary(base: bytes) -> zstandard.ZstdCompressionDict | None:
    return zstandard.ZstdCompressionDict(base, dict_type=zstandard.DICT_TYPE_RAWCONTENT) if base else None
