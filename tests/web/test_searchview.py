"""bot.web.searchview, pure: a real search of real exports as the search page shows it: runs of lines
under their sections, the matches marked, links to the View page, and what was not listed counted."""

from __future__ import annotations

from datetime import UTC, datetime

from bot.backup.grepresult import DeviceHits, GrepResult
from bot.core.models import ExportMeta, Version
from bot.routeros import export as routeros
from bot.routeros.grep import Query, compile_query, scan
from bot.web import searchview
from tests.helpers import FIXTURES

TAKEN = datetime(2026, 3, 1, 2, 0, tzinfo=UTC)
TEXT = routeros.normalize((FIXTURES / "v6-hap-lite-951-compact-wrapped.rsc").read_bytes())
LINES = TEXT.splitlines()


def version(n: int, device: str) -> Version:
    return Version(n, "site-a", device, TAKEN, TAKEN, 1000, "ab" * 32, ExportMeta("6.49.7"))


def searched(query: Query, limit: int | None = None, version_id: int = 7, device: str = "gw-1") -> DeviceHits:
    found = scan(TEXT.encode(), compile_query(query), limit=limit, spans=True)
    return DeviceHits(version(version_id, device), found.count, found.hits)


def test_pieces_mark_the_matches_and_ignore_spans_the_line_does_not_have() -> None:
    assert searchview.pieces("add chain=input dst-port=8291", [(4, 9), (25, 29)]) == (
        ("add ", False), ("chain", True), ("=input dst-port=", False), ("8291", True))
    assert searchview.pieces("abc", []) == (("abc", False),)
    assert searchview.pieces("abc", [(0, 3)]) == (("abc", True),)
    assert searchview.pieces("abc", [(1, 9), (2, 2)]) == (("abc", False),)  # not in the line: unmarked
    assert searchview.pieces("", []) == (("", False),)


def test_runs_of_lines_under_their_sections_with_links_to_each_line() -> None:
    device = searched(Query("dhcp_pool0"))  # lines 24 (/ip pool) and 26 (/ip dhcp-server): one run
    view = searchview.search_view(GrepResult(Query("dhcp_pool0"), (device,), 3, 0, device.count), 500)
    assert (view.counts, view.searched, view.what) == ("1 device, 2 lines", "the latest backups of 3 devices",
                                                       "“dhcp_pool0”")
    assert view.incomplete is None and view.more == () and not view.secret
    (shown,) = view.shown
    assert (shown.label, shown.version_id, shown.taken, shown.ros, shown.lines) == (
        "site-a/gw-1", 7, "2026-03-01 02:00 UTC", "6.49.7", "2 matching lines")
    assert shown.device_href == "/ui/device/site-a/gw-1" and shown.version_href == "/ui/version/7"
    (run,) = shown.runs
    assert [r.number for r in run.rows] == list(range(22, 29))
    assert ["".join(t for t, _ in r.pieces) for r in run.rows] == LINES[21:28]
    assert [r.number for r in run.rows if r.hit] == [24, 26]
    assert all(r.href == f"/ui/version/7?line={r.number}" for r in run.rows)
    assert run.label is None and run.rows[2].pieces[1] == ("dhcp_pool0", True)  # /ip pool's head is in the run
    assert LINES[22] == "/ip pool"
    assert shown.narrow is None


def test_a_run_far_into_its_section_is_named_above_it() -> None:
    query = Query("name=vlan481")  # line 14: its section's head (line 11) is not among lines 12-16
    device = searched(query)
    (shown,) = searchview.search_view(GrepResult(query, (device,), 1, 0, device.count), 500).shown
    (run,) = shown.runs
    assert run.label == "/interface vlan" and [r.number for r in run.rows] == [12, 13, 14, 15, 16]
    assert run.rows[3].pieces == (("/interface list", False),)  # the next section's head, after the hit


def test_what_is_not_listed_is_counted_and_reachable() -> None:
    """A search listing 5 lines: the first device shows them, the second none; each says how many it
    has, and the second links to a search of itself, since its lines would all fit on a page."""
    query = Query("add")
    first = searched(query, limit=5, version_id=7, device="gw-1")
    second = DeviceHits(version(8, "gw-2"), 12, ())
    total = first.count + second.count
    view = searchview.search_view(GrepResult(query, (first, second), 2, 0, total), 500)
    assert view.counts == f"2 devices, {total} lines" and view.listed == 5 and view.lines == total
    assert view.incomplete == (f"The first 5 of {total} matching lines are shown; every one is counted. "
                               "Narrow the pattern, or search one site or device, to see the others.")
    (shown,) = view.shown
    (more,) = view.more
    assert (shown.listed, shown.count) == (5, first.count) and first.count > 5
    assert shown.narrow == "/ui/search?q=add&site=site-a&device=gw-1"
    assert (more.label, more.count, more.listed, more.runs) == ("site-a/gw-2", 12, 0, ())
    assert more.narrow == "/ui/search?q=add&site=site-a&device=gw-2"
    # with more lines than a page lists, a search of the device alone would be cut too: no such link
    tight = searchview.search_view(GrepResult(query, (first, second), 2, 0, total), 10)
    assert tight.shown[0].narrow is None and tight.more[0].narrow is None
