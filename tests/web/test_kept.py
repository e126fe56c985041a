"""bot.web.kept, called in this process as the CPU worker calls it: answers from the versions' blobs,
the same as Slack's diff of the redacted texts; Missing for versions it does not hold; values kept per
scope; texts made in the other worker taken once."""

from __future__ import annotations

import secrets
from pathlib import Path

from bot.backup.catalog import redacted_text
from bot.backup.offload import Parcel
from bot.routeros import diff as diffing
from bot.web import diffview, kept
from bot.web.configview import ConfigWindow
from bot.web.kept import Missing, Scope
from storage.codec import PackedBlob, StoredBlob, pack
from tests.helpers import FIXTURES

KEY = b"kept-test-key"
OLD = (FIXTURES / "seq-ccr1036-isp-1.rsc").read_bytes()
NEW = (FIXTURES / "seq-ccr1036-isp-2.rsc").read_bytes()


def stored(blob: PackedBlob, blob_id: int) -> StoredBlob:
    return StoredBlob(blob_id, blob.codec, blob.size, blob.sha256, blob.data, blob.base_id)


def chains() -> dict[int, list[StoredBlob]]:
    """Version 1 whole, version 2 a delta against it: as the store keeps a device's two versions."""
    old = [stored(pack(OLD), 1)]
    return {1: old, 2: [stored(pack(NEW, old), 2), *old]}


def scope() -> Scope:
    return Scope(secrets.token_hex(8), KEY)


def test_a_comparison_is_slacks_diff_of_the_redacted_texts_and_is_kept() -> None:
    mine = scope()
    assert kept.comparison(mine, {}, (1, 2), None, 0) == Missing((1, 2))
    compared = kept.comparison(mine, chains(), (1, 2), None, 0)
    assert isinstance(compared, kept.Compared)
    old, new = redacted_text(OLD, KEY), redacted_text(NEW, KEY)
    assert "<redacted:" in old and "<redacted:" in new
    diff = diffing.diff(old, new)
    ((_, plan),) = diffview.compare_lines([(1, diffing.display_lines(old)), (2, diffing.display_lines(new))])
    assert compared.pairs == (plan.counts(),)
    assert (plan.added, plan.removed, plan.hunks) == (diff.added, diff.removed, len(diff.hunks))
    spans = plan.parts[0]
    assert compared.items == {0: diffview.part_items({i: diff.hunks[i] for i in diffview.needed(spans)}, spans)}
    again = kept.comparison(mine, {}, (1, 2), 0, 0)  # kept: no blobs needed
    assert isinstance(again, kept.Compared) and again.items == compared.items
    assert kept.comparison(scope(), {}, (1, 2), None, 0) == Missing((1, 2))  # another store's ids: nothing


def test_lines_and_windows_of_a_version_made_for_a_comparison() -> None:
    mine = scope()
    kept.comparison(mine, chains(), (1, 2), None, 0)
    lines = diffing.display_lines(redacted_text(NEW, KEY))
    assert kept.lines(mine, {}, 2, 10, 5) == tuple(lines[10:15])
    assert kept.lines(mine, {}, 2, len(lines) - 2, 50) == tuple(lines[-2:])  # never past the end
    window = kept.window(mine, {}, 1, 0)
    assert isinstance(window, ConfigWindow)
    old_lines = diffing.display_lines(redacted_text(OLD, KEY))
    assert (window.total, window.start, window.lines) == (len(old_lines), 0, tuple(old_lines))
    assert window.sections and all(old_lines[s.line].startswith(s.path) for s in window.sections)
    assert kept.lines(scope(), {}, 2, 0, 5) == Missing((2,))


def test_a_normalized_line_is_found_on_the_view_pages_numbering_after_a_split_script() -> None:
    """A search numbers normalized lines; the View page numbers display lines (scripts split): the
    worker answers where each normalized line starts there from the lines it keeps."""
    raw = (FIXTURES / "seq-rb5009-vlan-1.rsc").read_bytes()
    mine = scope()
    assert kept.line_at(mine, {}, 7, 0) == Missing((7,))
    text = redacted_text(raw, KEY)
    normalized, lines = text.removesuffix("\n").split("\n"), diffing.display_lines(text)
    assert len(lines) > len(normalized)  # its script is split
    first = kept.line_at(mine, {7: [stored(pack(raw), 7)]}, 7, 0)
    found = [first, *(kept.line_at(mine, {}, 7, k) for k in range(1, len(normalized)))]  # kept
    assert {total for _, total in found} == {len(lines)}
    starts = [index for index, _ in found]
    assert starts == sorted(set(starts)) and starts[0] == 0
    assert all(normalized[k].startswith(lines[i]) for k, i in enumerate(starts))
    assert any(i > k for k, i in enumerate(starts)) and lines[starts[-1]] == normalized[-1]


def test_a_text_made_in_the_other_worker_is_taken_once() -> None:
    mine = scope()
    (parcel,) = kept.redacted([chains()[2]], KEY)
    assert Path(parcel.path).stat().st_mode & 0o077 == 0  # private, like the database
    kept.hold(mine, {1: chains()[1]})
    compared = kept.comparison(mine, {2: parcel}, (1, 2), None, 0)
    assert not Path(parcel.path).exists()
    assert compared == kept.comparison(scope(), chains(), (1, 2), None, 0)


def test_a_text_already_taken_is_missing_again(tmp_path: Path) -> None:
    """A call retried on a new worker after its first took the text: the version is asked for again."""
    mine = scope()
    kept.hold(mine, {1: chains()[1]})
    assert kept.comparison(mine, {2: Parcel(str(tmp_path / "taken"))}, (1, 2), None, 0) == Missing((2,))
