"""bot.web.configview, pure: sections of real exports, terse runs, windows of long configs."""

from __future__ import annotations

import itertools

from bot.routeros import diff as diffing
from bot.routeros import export as routeros
from bot.web import configview
from bot.web.configview import Section
from tests.helpers import FIXTURES


def test_sections_of_a_real_export_cover_its_lines_in_order() -> None:
    text = routeros.normalize((FIXTURES / "seq-rb5009-vlan-1.rsc").read_bytes())
    lines = diffing.display_lines(text)  # what the View page numbers (kept in the CPU worker)
    assert len(lines) > len(text.splitlines())  # its script is split where RouterOS breaks it
    sections = configview.outline(lines)
    assert [s.path for s in sections][:3] == ["/interface bridge", "/interface ethernet", "/interface vlan"]
    assert all(lines[s.line].startswith(s.path) for s in sections)
    assert sum(s.count for s in sections) == len(lines) - sections[0].line
    assert all(a.line + a.count == b.line for a, b in itertools.pairwise(sections))


def test_a_terse_export_is_one_section_per_run_of_the_same_menu() -> None:
    lines = ["/ip address add address=10.0.0.1/24 interface=ether1", "/ip address add address=10.0.1.1/24 interface=ether2",
             "/ip route add gateway=10.0.0.254", "/ip address add address=10.0.2.1/24 interface=ether3"]
    assert configview.outline(lines) == (Section(0, "/ip address", 2), Section(2, "/ip route", 1),
                                         Section(3, "/ip address", 1))


def test_windows_step_through_a_long_config() -> None:
    assert configview.window(12_000, 0, 5000) == (0, 5000)
    assert configview.window(12_000, 7321, 5000) == (5000, 10_000)
    assert configview.window(12_000, 11_999, 5000) == (10_000, 12_000)
    assert configview.window(12_000, 99_999, 5000) == (10_000, 12_000)
    assert configview.window(0, 5, 5000) == (0, 0)


def test_a_normalized_line_number_maps_to_its_display_line_on_every_fixture() -> None:
    """A search hit names a normalized line (as `backupbot show` numbers them); on the View page
    scripts are split, so the numbers part after the first script: each normalized line is found
    where its display lines start, and the lines split are exactly the ones display_lines splits."""
    split_somewhere = 0
    for path in sorted(FIXTURES.glob("*.rsc")):
        text = routeros.normalize(path.read_bytes())
        lines, splits = diffing.display_cut(text)  # as the CPU worker keeps them (bot.web.kept)
        assert lines == diffing.display_lines(text) and splits == diffing.display_splits(text), path.name
        parts = configview.parting(splits)
        normalized = text.split("\n")[:-1] if text.endswith("\n") else text.split("\n")
        starts = [configview.display_index(parts, k) for k in range(len(normalized))]
        assert starts == sorted(set(starts)), path.name  # one display line each, in order
        for k, line in enumerate(normalized):
            end = starts[k + 1] if k + 1 < len(starts) else len(lines)
            shown = lines[starts[k]:end]
            assert shown[0] + "".join(piece.removeprefix("    ") for piece in shown[1:]) == line, (path.name, k)
        assert end == len(lines)
        split_somewhere += bool(splits)
    assert split_somewhere  # the fixtures hold scripts with line breaks


def test_line_breaks_other_than_newline_split_as_display_lines_does() -> None:
    text = 'add name=a\x0csource=":put 1\\r\\n:put 2"\nadd name=b\n'
    lines, splits = diffing.display_cut(text)
    assert lines == diffing.display_lines(text)
    parts = configview.parting(splits)
    assert lines[configview.display_index(parts, 1)] == "add name=b"
    assert parts == ((0, 2),)
