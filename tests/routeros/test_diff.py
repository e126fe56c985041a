"""bot.routeros.diff over the real fixture sequences (tests/fixtures/routeros/SOURCES.md) and golden diffs.

Goldens live in tests/fixtures/expected/<seq>-<a>-<b>.diff. To regenerate after a deliberate
change: `UPDATE_GOLDEN=1 pytest tests/routeros/test_diff.py`, then READ every changed golden against
SOURCES.md before committing - a golden is a reviewed claim, not a snapshot.
"""

from __future__ import annotations

import bisect
import functools
import itertools
import os
import random
import re

import pytest

from bot.core.models import Diff
from bot.routeros.diff import _longest_increasing, compare, count_changes, diff, display_lines
from bot.routeros.export import normalize
from tests.helpers import EXPECTED, FIXTURES, walk_back_section


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
    assert_correct_patch(text(seq, a), text(seq, b), pair_diff(seq, a, b))


def assert_correct_patch(old_text: str, new_text: str, d: Diff) -> None:
    """The hunks turn the old display lines into the new ones; the counts are their +/- lines."""
    old, new = display_lines(old_text), display_lines(new_text)
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
    assert count_changes(old_text, new_text) == (d.added, d.removed)


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




def test_big_pair_anna() -> None:
    """The 300 KB anna pair (~2000 changed lines) diffs in full (speed: benchmarks/diff_speed.py)."""
    d = diff(text("anna", 1), text("anna", 2))
    assert d.added + d.removed > 2000


def test_one_megabyte_export() -> None:
    """A 1 MB export against a slightly changed copy (60 scattered edits) diffs to exactly those edits."""
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
    d = diff(old, new)
    assert (d.added, d.removed) == (40, 60)


def test_repeated_lines_diff_minimally() -> None:
    """30k identical lines (where difflib alone takes a minute) diff minimally."""
    lines = ["set 0 action=disk"] * 30_000
    changed = list(lines)
    changed[100], changed[20_000] = "set 0 action=memory", "set 9 action=echo"
    d = diff("\n".join(lines), "\n".join(changed))
    assert (d.added, d.removed) == (2, 2)


def test_tripled_export() -> None:
    """anna tripled (~1 MB, every line repeated 3 times) diffs to three times the single diff."""
    d = diff(text("anna", 1) * 3, text("anna", 2) * 3)
    single = pair_diff("anna", 1, 2)
    assert (d.added, d.removed) == (3 * single.added, 3 * single.removed)


# ------------------------------------------------------------------ section names of big diffs
# Hunk headers name their section from an index of section starts (routeros.Sections), no longer
# by walking back from each hunk; these compare it with walking back (tests.test_routeros'
# reference), on the lines diffed.


def change_start(hunk_lines: tuple[str, ...], old_start: int, new_start: int) -> tuple[str, int]:
    """Where a hunk's first change begins: ("old", i) for a pure deletion, else ("new", j)."""
    i, j = old_start, new_start
    k = 0
    while hunk_lines[k][0] == " ":
        i, j, k = i + 1, j + 1, k + 1
    if hunk_lines[k][0] == "+":
        return "new", j
    while k < len(hunk_lines) and hunk_lines[k][0] == "-":
        k += 1
    return ("new", j) if k < len(hunk_lines) and hunk_lines[k][0] == "+" else ("old", i)


def assert_sections_walk_back(old_text: str, new_text: str, d: Diff) -> None:
    old, new = display_lines(old_text), display_lines(new_text)
    for hunk in d.hunks:
        ranges = hunk.header.split()[1:3]
        starts = [int(r[1:].split(",")[0]) for r in ranges]
        lengths = [int(r.split(",")[1]) if "," in r else 1 for r in ranges]
        old_start, new_start = (s - 1 if n else s for s, n in zip(starts, lengths))
        side, at = change_start(hunk.lines, old_start, new_start)
        assert hunk.section == walk_back_section(old if side == "old" else new, at), hunk.header
        assert hunk.header.endswith(f" {hunk.section}") if hunk.section else hunk.header.endswith("@@")


def edited(rng: random.Random, lines: list[str], edits: int) -> list[str]:
    """`lines` with scattered edits: changed, deleted, inserted and moved lines."""
    out = list(lines)
    for _ in range(edits):
        roll, k = rng.random(), rng.randrange(len(out))
        if roll < 0.4:
            out[k] += " comment=edited"
        elif roll < 0.6:
            del out[k]
        elif roll < 0.9:
            out.insert(k, f"add address=192.0.2.{rng.randrange(255)} list=new")
        else:
            out.insert(rng.randrange(len(out)), out.pop(k))
    return out


@pytest.mark.parametrize(("seq", "a", "b"), PAIRS, ids=[f"{s}-{a}-{b}" for s, a, b in PAIRS])
def test_golden_sections_walk_back(seq: str, a: int, b: int) -> None:
    """Every hunk of every fixture pair names the section found by walking back from its change."""
    assert_sections_walk_back(text(seq, a), text(seq, b), pair_diff(seq, a, b))


@pytest.mark.parametrize("seed", range(12))
def test_random_edits_sections_and_patch(seed: int) -> None:
    """Random edits of real exports (terse, wrapped, with scripts): correct patch, counts, and each
    hunk's section as by walking back."""
    rng = random.Random(seed)
    name = rng.choice(sorted(FIXTURES.glob("*.rsc")))
    old = normalize(name.read_bytes())
    lines = old.splitlines()
    new = "\n".join(edited(rng, lines, rng.randrange(1, 40))) + "\n"
    d = diff(old, new, context=rng.choice((0, 1, 3)))
    assert_correct_patch(old, new, d)
    assert_sections_walk_back(old, new, d)


def test_big_section_hunks_name_their_section() -> None:
    """A 50,000-line address-list under one header, edited in 500 places, then a filter section:
    every hunk names the section its change begins in."""
    rng = random.Random(7)
    old_lines = ["/ip firewall address-list"]
    old_lines += [f"add address=10.{k >> 16 & 255}.{k >> 8 & 255}.{k & 255} list=l{k % 5}" for k in range(50_000)]
    old_lines += ["/ip firewall filter"] + [f"add chain=forward action=accept dst-port={k}" for k in range(200)]
    new_lines = edited(rng, old_lines[1:-201], 500)
    new_lines = [old_lines[0], *new_lines, "/ip firewall filter", *old_lines[-200:-100], "add chain=input", *old_lines[-100:]]
    old, new = "\n".join(old_lines) + "\n", "\n".join(new_lines) + "\n"
    d = diff(old, new)
    assert_correct_patch(old, new, d)
    assert_sections_walk_back(old, new, d)
    sections = [h.section for h in d.hunks]
    assert len(sections) > 300 and sections[-1] == "/ip firewall filter"
    assert set(sections[:-1]) == {"/ip firewall address-list"}


def test_hunk_in_wrapped_section() -> None:
    """A value changed on the continuation line of a wrapped entry: one hunk, named after the
    section whose header sits several wrapped entries above."""
    raw = (FIXTURES / "v6-hap-lite-951-verbose-wrapped.rsc").read_bytes()
    changed = raw.replace(b"64:D1:54:E7:9C:D7 mtu=1500 name=ether4", b"64:D1:54:E7:9C:D7 mtu=1400 name=ether4")
    assert changed != raw
    d = diff(normalize(raw), normalize(changed), context=0)
    assert [h.section for h in d.hunks] == ["/interface ethernet"]
    assert [ln[:40] for ln in d.hunks[0].lines] == ["-set [ find default-name=ether4 ] advert", "+set [ find default-name=ether4 ] advert"]


def test_hunk_before_any_section_and_across_two() -> None:
    """A change above the first menu line has no section (and a bare header); a hunk whose
    changes span two sections is named where its first change is; a deleted header names the
    old side."""
    old = "add x=1\nadd x=2\n/ip dns\nset servers=1.1.1.1\n/ip route\nadd gateway=10.0.0.1\nadd gateway=10.0.0.2\n"
    new = "add x=9\nadd x=2\n/ip dns\nset servers=9.9.9.9\n/ip route\nadd gateway=10.0.0.9\nadd gateway=10.0.0.2\n"
    d = diff(old, new, context=0)
    assert [(h.section, h.header) for h in d.hunks] == [
        (None, "@@ -1 +1 @@"),
        ("/ip dns", "@@ -4 +4 @@ /ip dns"),
        ("/ip route", "@@ -6 +6 @@ /ip route"),
    ]
    spanning = diff(old, new, context=1)
    assert [h.section for h in spanning.hunks] == [None]  # one hunk from line 1 to 7
    deleted = diff(old, old.replace("/ip route\n", ""), context=0)
    assert [h.header for h in deleted.hunks] == ["@@ -5 +4,0 @@ /ip route"]


def test_display_lines_like_splitlines_and_the_escape_rule() -> None:
    """display_lines against a plain reference on random texts of backslashes, `n`s, quotes and
    every kind of line break: the lines of str.splitlines(), each cut before an odd backslash run
    followed by `n`, later pieces indented by 4 spaces."""
    escape = re.compile(r"(?<!\\)(?:\\\\)*\\n")

    def reference(text: str) -> list[str]:
        out = []
        for line in text.splitlines():
            cuts = [0, *(m.end() - 2 for m in escape.finditer(line) if m.end() - 2 > 0)]
            pieces = [line[i:j] for i, j in itertools.pairwise([*dict.fromkeys(cuts), len(line)])]
            out += [pieces[0], *("    " + p for p in pieces[1:])]
        return out

    rng = random.Random(3)
    alphabet = ["\\", "\\", "n", "a", '"', " ", "\n", "\n", "\r", "\r\n", "\x0c", "\u2028", "/"]
    for _ in range(20_000):
        sample = "".join(rng.choice(alphabet) for _ in range(rng.randrange(0, 30)))
        assert display_lines(sample) == reference(sample), repr(sample)


def test_longest_increasing_is_the_textbook_one() -> None:
    """The bulk-stepped patience LIS picks exactly the subsequence the textbook loop picks
    (a different but equally long one would move hunks), on shuffled and nearly sorted input."""

    def textbook(values: list[int]) -> list[int]:
        tops: list[int] = []
        top_index: list[int] = []
        back = []
        for k, value in enumerate(values):
            pile = bisect.bisect_left(tops, value)
            back.append(top_index[pile - 1] if pile else -1)
            if pile == len(tops):
                tops.append(value)
                top_index.append(k)
            else:
                tops[pile], top_index[pile] = value, k
        chain, k = [], top_index[-1] if top_index else -1
        while k >= 0:
            chain.append(k)
            k = back[k]
        return chain[::-1]

    rng = random.Random(5)
    for _ in range(5_000):
        n = rng.randrange(1, 80)
        values = rng.sample(range(200), n) if rng.random() < 0.3 else list(range(n))
        for _ in range(rng.randrange(0, 6)):
            values.insert(rng.randrange(n), values.pop(rng.randrange(n)))
        picked = [k for start, stop in _longest_increasing(values) for k in range(start, stop)]
        assert picked == textbook(values), values
