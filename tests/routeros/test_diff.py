"""bot.routeros.diff over the real fixture sequences (tests/fixtures/routeros/SOURCES.md) and golden diffs.

Goldens live in tests/fixtures/expected/<seq>-<a>-<b>.diff. To regenerate after a deliberate
change: `UPDATE_GOLDEN=1 pytest tests/test_diffing.py`, then READ every changed golden against
SOURCES.md before committing - a golden is a reviewed claim, not a snapshot.
"""

from __future__ import annotations

import functools
import os
import random
import time

import pytest

from bot.routeros.diff import compare, count_changes, diff, display_lines
from bot.core.models import Diff
from bot.routeros.export import normalize
from tests.helpers import EXPECTED, FIXTURES


# sequence name (as in SOURCES.md) -> (fixture stem, number of exports)
SEQUENCES = {
    "capxl": ("seq-capxl", 4),
    "anna": ("seq-anna-rb5009", 2),
    "praze": ("seq-praze", 3),
    "tvroom": ("seq-tvroom", 2),
    "ccr1036-isp": ("seq-ccr1036-isp", 3),
    "sara-951": ("seq-sara-951", 2),
    "rb5009-vlan": ("seq-rb5009-vlan", 3),
    "rb5009-home": ("seq-rb5009-home", 2),
    "ccr2004-lab": ("seq-ccr2004-lab", 3),
}
PAIRS = [(seq, i, i + 1) for seq, (_, n) in SEQUENCES.items() for i in range(1, n)]

# (added, removed, section of each hunk) per pair, each checked by hand against SOURCES.md and
# the raw `diff` of the two files (which also shows the header date and wrapping, dropped here).
EXPECTED_CHANGES: dict[tuple[str, int, int], tuple[int, int, list[str]]] = {
    # 2 blank script lines added + 1 `\n` -> `\n\r` in /system script; no `# channel:`, no date
    ("capxl", 1, 2): (3, 1, ["/system script"] * 3),
    ("capxl", 2, 3): (0, 0, []),  # header date only
    ("capxl", 3, 4): (2, 2, ["/ip dns static"]),  # DNS entry + address-list IP .206 -> .204
    ("anna", 1, 2): (998, 1012, []),  # 7.20 -> 7.21: ~2000 lines; sections checked separately
    ("praze", 1, 2): (40, 13, ["/interface ethernet", "/ip firewall address-list"]),
    ("praze", 2, 3): (97, 89, ["/interface bridge"]),  # new hardware: nearly everything
    ("tvroom", 1, 2): (6, 2, ["/interface wifi"]),
    ("ccr1036-isp", 1, 2): (2, 0, ["/ip firewall nat"]),  # one dst-nat + src-nat pair added
    ("ccr1036-isp", 2, 3): (160, 45, [
        "/ip firewall nat", "/ip firewall nat", "/ip firewall nat", "/ip firewall nat",
        "/ip route", "/ppp secret", "/ppp secret", "/ppp secret", "/ppp secret",
    ]),
    ("sara-951", 1, 2): (7, 9, ["/interface ethernet", "/ip pool", "/ip address", "/ip firewall nat"]),
    ("rb5009-vlan", 1, 2): (25, 20, [
        "/interface list", "/ip pool", "/interface bridge port", "/interface list member",
        "/ip dhcp-server lease", "/ip firewall address-list", "/system ntp server",
    ]),
    ("rb5009-vlan", 2, 3): (10, 6, [
        "/interface bridge vlan", "/interface list member", "/ip address", "/ip dhcp-server lease",
        "/ip dns static", "/ip firewall filter",
    ]),
    ("rb5009-home", 1, 2): (2, 0, ["/user group"]),
    ("ccr2004-lab", 1, 2): (35, 34, ["/interface bridge", "/ip route"]),
    ("ccr2004-lab", 2, 3): (81, 47, ["/interface bridge"]),
}


@functools.cache
def text(seq: str, i: int) -> str:
    stem = SEQUENCES[seq][0]
    return normalize((FIXTURES / f"{stem}-{i}.rsc").read_bytes())


def pair_diff(seq: str, a: int, b: int) -> Diff:
    stem = SEQUENCES[seq][0]
    return diff(text(seq, a), text(seq, b), f"{stem}-{a}.rsc", f"{stem}-{b}.rsc")


def check_golden(name: str, actual: str) -> None:
    """Compare with tests/fixtures/expected/<name>; with UPDATE_GOLDEN=1, rewrite it instead."""
    path = EXPECTED / name
    if os.environ.get("UPDATE_GOLDEN") == "1":
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(actual, encoding="utf-8", newline="\n")
        return
    assert path.exists(), f"missing golden {path}; run with UPDATE_GOLDEN=1 and review it"
    assert actual == path.read_text(encoding="utf-8"), f"{name} differs from its golden"


def test_every_pair_is_covered() -> None:
    """Each consecutive pair of every SOURCES.md sequence has an expectation and a golden."""
    assert set(EXPECTED_CHANGES) == set(PAIRS)
    assert len(PAIRS) == 15


@pytest.mark.parametrize(("seq", "a", "b"), PAIRS, ids=[f"{s}-{a}-{b}" for s, a, b in PAIRS])
def test_golden_diff(seq: str, a: int, b: int) -> None:
    """The diff of each pair is exactly its reviewed golden, with the expected counts and sections."""
    d = pair_diff(seq, a, b)
    check_golden(f"{seq}-{a}-{b}.diff", d.text)
    added, removed, sections = EXPECTED_CHANGES[(seq, a, b)]
    assert (d.added, d.removed) == (added, removed)
    if sections:
        assert [h.section for h in d.hunks] == sections


@pytest.mark.parametrize(("seq", "a", "b"), PAIRS, ids=[f"{s}-{a}-{b}" for s, a, b in PAIRS])
def test_diff_is_a_correct_patch(seq: str, a: int, b: int) -> None:
    """Applying the hunks to the old text yields the new one, and the counts match the +/- lines."""
    old, new = display_lines(text(seq, a)), display_lines(text(seq, b))
    d = pair_diff(seq, a, b)
    out: list[str] = []
    consumed = 0
    for hunk in d.hunks:
        start = int(hunk.header.split()[1][1:].split(",")[0])
        length = int(hunk.header.split()[1].split(",")[1]) if "," in hunk.header.split()[1] else 1
        start = start if length == 0 else start - 1  # an empty range names the line before
        out.extend(old[consumed:start])
        consumed = start
        for line in hunk.lines:
            if line[0] in " -":
                assert old[consumed] == line[1:]
                consumed += 1
            if line[0] in " +":
                out.append(line[1:])
    out.extend(old[consumed:])
    assert out == new
    assert d.added == sum(ln.startswith("+") for h in d.hunks for ln in h.lines)
    assert d.removed == sum(ln.startswith("-") for h in d.hunks for ln in h.lines)
    assert count_changes(text(seq, a), text(seq, b)) == (d.added, d.removed)


def test_capxl_script_change_shows_only_script_lines() -> None:
    """capxl 1->2: only the script lines; the `# channel:` comment and the date never appear."""
    d = pair_diff("capxl", 1, 2)
    changed = [ln for h in d.hunks for ln in h.lines if ln[0] in "+-"]
    assert changed == ["+    \\n", "+    \\n", "-    \\n", "+    \\n\\r"]
    assert "channel" not in d.text and "RouterOS" not in d.text


def test_timestamp_only_change_is_empty() -> None:
    """capxl 2->3 changed only the header date: no hunks, empty text, zero counts."""
    d = pair_diff("capxl", 2, 3)
    assert d.empty and d.text == "" and (d.added, d.removed) == (0, 0)


def test_capxl_ip_change_is_exactly_two_lines() -> None:
    """capxl 3->4: exactly the static DNS entry and the address-list IP, under /ip dns static."""
    d = pair_diff("capxl", 3, 4)
    changed = [ln for h in d.hunks for ln in h.lines if ln[0] in "+-"]
    assert changed == [
        "-/ip dns static add address=46.39.51.206 name=ftpserver.org type=A",
        "+/ip dns static add address=46.39.51.204 name=ftpserver.org type=A",
        "-/ip firewall address-list add address=46.39.51.206 list=alist-nat-external-ip",
        "+/ip firewall address-list add address=46.39.51.204 list=alist-nat-external-ip",
    ]
    assert d.hunks[0].header == "@@ -48,9 +48,9 @@ /ip dns static"


def test_reflowed_line_is_shown_once_as_its_real_change() -> None:
    """rb5009-vlan 2->3: the `tagged=\\` line was re-flowed AND lost ether2-6; the diff shows the
    content change as one joined line, never the wrapping."""
    d = pair_diff("rb5009-vlan", 2, 3)
    changed = [ln for ln in d.hunks[0].lines if ln[0] in "+-"]
    assert changed == [
        "-add bridge=bridge tagged=bridge,ether2,ether3,ether4,ether5,ether6,sfp-sfpplus1 vlan-ids=99",
        "+add bridge=bridge tagged=bridge,sfp-sfpplus1 vlan-ids=99",
    ]
    assert "\\\n" not in d.text


def test_pure_rewrap_is_no_change() -> None:
    """A line wrapped differently (terminal width) but otherwise equal produces no diff."""
    wrapped = (FIXTURES / "seq-rb5009-vlan-2.rsc").read_bytes()
    unwrapped = wrapped.replace(b"tagged=\\\n    bridge,ether2", b"tagged=bridge,ether2")
    assert diff(normalize(wrapped), normalize(unwrapped)).empty


def test_anna_upgrade_sections() -> None:
    """anna 7.20 -> 7.21: hunk headers name sections in a terse export, incl. script bodies."""
    d = pair_diff("anna", 1, 2)
    sections = [h.section for h in d.hunks]
    assert sections[:3] == ["/interface bridge", "/ip dhcp-server", "/ip firewall layer7-protocol"]
    assert "/ip firewall address-list" in sections and sections[-1] == "/system script"
    assert all(h.header.endswith(f" {h.section}") for h in d.hunks)


def test_pure_deletion_names_the_old_section() -> None:
    """A hunk that only deletes names the section on the old side (the line no longer exists)."""
    old = "/ip dns\nset servers=1.1.1.1\n/ip dns static\nadd name=a address=1.1.1.1\n/system identity\nset name=r\n"
    new = "/ip dns\nset servers=1.1.1.1\n/system identity\nset name=r\n"
    d = diff(old, new, context=0)
    assert [h.header for h in d.hunks] == ["@@ -3,2 +2,0 @@ /ip dns static"]
    assert (d.added, d.removed) == (0, 2)


def test_identical_texts_have_no_hunks() -> None:
    """Identical inputs give an empty Diff (also for empty texts)."""
    same = text("tvroom", 1)
    assert diff(same, same).empty and diff("", "").empty
    assert count_changes(same, same) == (0, 0)


def test_diff_labels_and_context() -> None:
    """Labels head the text; `context` sets how many unchanged lines surround a change."""
    d = diff("/a\nx=1\ny=2\nz=3\n", "/a\nx=1\ny=3\nz=3\n", "old", "new", context=1)
    assert d.text == "--- old\n+++ new\n@@ -2,3 +2,3 @@ /a\n x=1\n-y=2\n+y=3\n z=3\n"


def test_compare_gives_consecutive_diffs() -> None:
    """compare() of 3 versions oldest first yields the 2 consecutive diffs, labelled."""
    texts = [(f"v{i}", text("capxl", i)) for i in (2, 3, 4)]
    diffs = compare(texts)
    assert [(d.old_label, d.new_label) for d in diffs] == [("v2", "v3"), ("v3", "v4")]
    assert diffs[0].empty and (diffs[1].added, diffs[1].removed) == (2, 2)
    assert compare(texts[:1]) == [] and compare([]) == []


def test_display_lines_split_script_sources_only() -> None:
    """Script sources split before each `\\n` escape (RouterOS' own layout); `\\\\n` is not split."""
    line = '/system script add name=s source=":local a 1\\r\\n:local b \\"c:\\\\\\\\new\\"\\n"'
    assert display_lines(line + "\n/ip dns\n") == [
        '/system script add name=s source=":local a 1\\r',
        '    \\n:local b \\"c:\\\\\\\\new\\"',
        '    \\n"',
        "/ip dns",
    ]


def timed(old: str, new: str) -> tuple[float, Diff]:
    start = time.perf_counter()
    d = diff(old, new)
    return time.perf_counter() - start, d


def test_speed_anna() -> None:
    """The 300 KB anna pair (~2000 changed lines) diffs well under a second."""
    elapsed, d = timed(text("anna", 1), text("anna", 2))
    assert d.added + d.removed > 2000
    assert elapsed < 1.0, elapsed


def test_speed_one_megabyte() -> None:
    """A 1 MB export against a slightly changed copy (60 scattered edits) diffs well under a second."""
    rng = random.Random(1)
    lines = [
        f"/ip firewall address-list add address=10.{i >> 16 & 255}.{i >> 8 & 255}.{i & 255} "
        f'comment="customer {i}" list=blocklist-{i % 7}'
        for i in range(11_500)
    ]
    changed = list(lines)
    edits = rng.sample(range(len(lines)), 60)
    for k in edits[:40]:
        changed[k] = changed[k].replace("customer", "client")
    for k in sorted(edits[40:], reverse=True):
        del changed[k]
    old, new = "\n".join(lines) + "\n", "\n".join(changed) + "\n"
    assert len(old) > 1_000_000
    elapsed, d = timed(old, new)
    assert (d.added, d.removed) == (40, 60)
    assert elapsed < 1.0, elapsed


def test_speed_repeated_lines() -> None:
    """30k identical lines (where difflib alone takes a minute) still diff fast and minimally."""
    lines = ["set 0 action=disk"] * 30_000
    changed = list(lines)
    changed[100], changed[20_000] = "set 0 action=memory", "set 9 action=echo"
    elapsed, d = timed("\n".join(lines), "\n".join(changed))
    assert (d.added, d.removed) == (2, 2)
    assert elapsed < 1.0, elapsed


def test_speed_tripled_export() -> None:
    """anna tripled (~1 MB, every line repeated 3 times) still diffs fast with a sane result."""
    elapsed, d = timed(text("anna", 1) * 3, text("anna", 2) * 3)
    single = pair_diff("anna", 1, 2)
    assert (d.added, d.removed) == (3 * single.added, 3 * single.removed)
    assert elapsed < 1.0, elapsed
