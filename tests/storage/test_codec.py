"""storage.codec's blob encodings, directly: whole and delta blobs, chains, their bounds, and how
damage is reported. Pure functions on bytes; the store's use of them is tested in test_store*.py."""

from __future__ import annotations

import dataclasses
import hashlib
import zlib

import pytest

from storage.codec import (
    CHAIN_BYTES,
    FULL_EVERY,
    ZLIB,
    ZSTD,
    ZSTD_DELTA,
    CorruptBlob,
    PackedBlob,
    StoredBlob,
    compress,
    may_extend,
    pack,
    unpack_chain,
    unpack_chains,
)
from tests.helpers import FIXTURES

EXPORT = (FIXTURES / "seq-rb5009-vlan-1.rsc").read_bytes()


def stored(blob: PackedBlob, blob_id: int) -> StoredBlob:
    return StoredBlob(blob_id, blob.codec, blob.size, blob.sha256, blob.data, blob.base_id)


def edit(raw: bytes, k: int) -> bytes:
    """The export with one more address-list line, as a day's change would add."""
    return raw + b"/ip firewall address-list\r\nadd address=198.51.100.%d list=changed-%d\r\n" % (k % 250, k)


def build_chain(raws: list[bytes]) -> list[StoredBlob]:
    """Pack each export against the chain of the one before, as the store does; newest first."""
    chain: list[StoredBlob] = []
    for i, raw in enumerate(raws, start=1):
        blob = pack(raw, chain)
        chain = [stored(blob, i), *chain] if blob.base_id is not None else [stored(blob, i)]
    return chain


def test_a_delta_against_the_previous_version_is_tiny_and_reads_back_exactly() -> None:
    """A one-line change of a 15 KB export is stored in well under 1 % of its size, byte-exact."""
    first = pack(EXPORT)
    second = pack(edit(EXPORT, 1), [stored(first, 1)])
    assert (first.codec, first.depth, second.codec, second.base_id, second.depth) == (ZSTD, 0, ZSTD_DELTA, 1, 1)
    assert len(second.data) < len(EXPORT) // 100 < len(first.data)
    assert unpack_chain([stored(second, 2), stored(first, 1)]) == edit(EXPORT, 1)
    assert second.sha256 == hashlib.sha256(edit(EXPORT, 1)).digest()


def test_every_version_of_a_long_history_reads_back_and_every_hundredth_is_whole() -> None:
    """Chains restart whole at FULL_EVERY, so no read decodes more than FULL_EVERY blobs."""
    raws = [edit(EXPORT, k) for k in range(FULL_EVERY + 5)]
    chain: list[StoredBlob] = []
    for i, raw in enumerate(raws, start=1):
        blob = pack(raw, chain)
        assert blob.depth == (i - 1) % FULL_EVERY
        chain = [stored(blob, i), *chain] if blob.base_id is not None else [stored(blob, i)]
        assert unpack_chain(chain) == raw


def test_a_big_export_becomes_a_small_delta() -> None:
    """The window spans the whole base: one changed line in 6 MB is a delta of a few KB."""
    lines = [b"add address=10.%d.%d.%d comment=cust-%d list=customers\r\n" % (i >> 16, i >> 8 & 255, i & 255, i)
             for i in range(110_000)]
    big = b"".join(lines)
    changed = big.replace(lines[50_000], b"add address=192.0.2.1 list=blocked\r\n")
    first = pack(big)
    second = pack(changed, [stored(first, 1)])
    assert len(big) > 6_000_000 and len(second.data) < 20_000
    assert unpack_chain([stored(second, 2), stored(first, 1)]) == changed


def test_chains_stop_at_the_version_count_and_at_the_decode_budget() -> None:
    assert may_extend(FULL_EVERY - 2, 30_000) and not may_extend(FULL_EVERY - 1, 30_000)
    assert may_extend(0, CHAIN_BYTES // 2) and not may_extend(1, CHAIN_BYTES // 2)


def test_old_zlib_blobs_stay_readable_alone_and_as_the_end_of_a_chain() -> None:
    """Blobs written before schema 3 are whole zlib; a delta may sit on one."""
    old = StoredBlob(1, ZLIB, len(EXPORT), hashlib.sha256(EXPORT).digest(), zlib.compress(EXPORT, 6), None)
    assert unpack_chain([old]) == EXPORT
    new = pack(edit(EXPORT, 1), [old])
    assert (new.codec, new.base_id, new.depth) == (ZSTD_DELTA, 1, 1)
    assert unpack_chain([stored(new, 2), old]) == edit(EXPORT, 1)


def test_damage_in_the_middle_of_a_chain_is_reported_naming_the_damaged_blob() -> None:
    """Damage in blob 3 of 6 (zeroed, cut short, or a valid frame of other bytes): reading blob 6
    fails naming blob 3, and so does reading blob 3; the blobs below it still read."""
    raws = [edit(EXPORT, k) for k in range(6)]
    chain = build_chain(raws)  # chain[0] is blob 6, chain[3] is blob 3
    damaged_sha = chain[3].sha256.hex()
    other_bytes = compress(bytes(reversed(raws[2])))
    for data in (b"\x00" * len(chain[3].data), chain[3].data[:-3], other_bytes):
        broken = [*chain[:3], dataclasses.replace(chain[3], data=data), *chain[4:]]
        for wanted in (broken, broken[3:]):
            with pytest.raises(CorruptBlob, match=damaged_sha):
                unpack_chain(wanted)
    assert unpack_chain(chain[4:]) == raws[1]


def test_damage_a_read_does_not_depend_on_is_found_when_the_damaged_version_is_read() -> None:
    """Only the wanted bytes are hashed on the way up a chain. A damaged blob whose damage happens
    not to change a later version's bytes lets that version read back (proven by its own sha256),
    and is reported when its own version is read."""
    raws = [edit(EXPORT, k) for k in range(6)]
    chain = build_chain(raws)
    # A valid delta, but of other bytes: blob 3 now decodes to version 5's bytes. Versions 4-6 only
    # copy the shared export from it, so they still decode right.
    other = pack(raws[4], chain[4:])
    broken = [*chain[:3], dataclasses.replace(chain[3], data=other.data), *chain[4:]]
    assert unpack_chain(broken) == raws[5]
    with pytest.raises(CorruptBlob, match=f"blob {chain[3].sha256.hex()} decompresses to different bytes"):
        unpack_chain(broken[3:])


def test_chains_read_together_decode_a_shared_base_once_and_still_prove_each_version() -> None:
    """Two versions compared share the bottom of their chains: read together they give what each
    gives alone, in the order asked; damage above the shared part is still found, naming its blob."""
    raws = [edit(EXPORT, k) for k in range(5)]
    chain = build_chain(raws)  # chain[0] is version 5, chain[2] version 3
    assert unpack_chains([chain, chain[2:], chain[4:]]) == [raws[4], raws[2], raws[0]]
    assert unpack_chains([chain[2:], chain[2:]]) == [raws[2], raws[2]]
    damaged = [dataclasses.replace(chain[0], data=pack(raws[1], chain[1:]).data), *chain[1:]]
    with pytest.raises(CorruptBlob, match=f"blob {chain[0].sha256.hex()} decompresses to different bytes"):
        unpack_chains([chain[2:], damaged])
    with pytest.raises(CorruptBlob, match="broken, blob id 1 is missing"):
        unpack_chains([chain[2:], chain[:-1]])


def test_broken_chains_are_refused() -> None:
    """A missing base, a chain deeper than writers make, and a codec that contradicts its base."""
    chain = build_chain([edit(EXPORT, k) for k in range(4)])
    with pytest.raises(CorruptBlob, match="broken, blob id 1 is missing"):
        unpack_chain(chain[:-1])
    with pytest.raises(CorruptBlob, match="out of order"):
        unpack_chain([chain[0], chain[2], chain[3]])
    with pytest.raises(CorruptBlob, match="does not match its base"):
        unpack_chain([dataclasses.replace(chain[-1], codec=ZSTD_DELTA)])
    whole = chain[-1]
    too_deep = [dataclasses.replace(whole, id=i, base_id=i - 1 or None) for i in range(FULL_EVERY + 1, 0, -1)]
    with pytest.raises(CorruptBlob, match=f"deeper than {FULL_EVERY - 1} deltas"):
        unpack_chain(too_deep)


def test_a_frame_claiming_another_size_is_refused_before_it_is_decoded() -> None:
    """The size in the row bounds what is decoded: a damaged header cannot balloon memory."""
    blob = stored(pack(EXPORT), 1)
    with pytest.raises(CorruptBlob, match="does not hold"):
        unpack_chain([dataclasses.replace(blob, size=10)])
    old = StoredBlob(1, ZLIB, 10, blob.sha256, zlib.compress(EXPORT), None)
    with pytest.raises(CorruptBlob, match="not 10"):
        unpack_chain([old])


def test_a_damaged_base_chain_never_stops_a_new_version_from_being_stored() -> None:
    """pack falls back to a whole blob when the previous version does not decode."""
    base = stored(pack(EXPORT), 1)
    blob = pack(edit(EXPORT, 1), [dataclasses.replace(base, data=b"garbage")])
    assert (blob.codec, blob.base_id, blob.depth) == (ZSTD, None, 0)
    assert unpack_chain([stored(blob, 2)]) == edit(EXPORT, 1)


def test_unknown_codecs_are_refused() -> None:
    blob = dataclasses.replace(stored(pack(EXPORT), 1), codec="lz4")
    with pytest.raises(CorruptBlob, match="unknown codec 'lz4'"):
        unpack_chain([blob])
