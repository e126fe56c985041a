"""bot.web.diffview, pure: rows and line numbers from real diffs, folds, parts, word highlights."""

from __future__ import annotations

from bot.routeros import diff as diffing
from bot.web import diffview
from bot.web.diffview import Change, Fold, HunkView, Same


def config(n: int, changes: dict[int, str] | None = None, drop: set[int] = frozenset(), extra: dict[int, list[str]] | None = None) -> str:
    out = ["/ip firewall address-list"]
    for k in range(n):
        if k in drop:
            continue
        out.append((changes or {}).get(k, f"add address=10.0.{k // 250}.{k % 250} list=customers"))
        out.extend((extra or {}).get(k, []))
    return "\n".join(out) + "\n"


def layout(old: str, new: str, old_id: int = 1, new_id: int = 2, budget: int = diffview.PART_ROWS) -> diffview.PairPlan:
    """The plan, with the Diff kept beside it for `items`."""
    diff = diffing.diff(old, new)
    plan = diffview.plan(diff, old_id, new_id, budget=budget)
    DIFFS[id(plan)] = diff
    return plan


DIFFS: dict[int, object] = {}


def items(plan: diffview.PairPlan, diff=None) -> list[diffview.Item]:
    """Every part's rows, made as the page makes them (one part at a time, from its hunks only)."""
    diff = diff or DIFFS[id(plan)]
    out: list[diffview.Item] = []
    for spans in plan.parts:
        out += diffview.part_items({i: diff.hunks[i] for i in diffview.needed(spans)}, spans)
    return out


def test_a_changed_line_becomes_a_pair_with_numbers_on_both_sides_and_folds_around_it() -> None:
    old = config(100)
    new = config(100, changes={50: "add address=10.0.0.250 list=blocked"}, extra={80: ["add address=192.0.2.1 list=x"]})
    plan = layout(old, new, 3, 7)
    assert (plan.old_id, plan.new_id, plan.added, plan.removed, plan.hunks) == (3, 7, 2, 1, 2)
    first_fold, hunk, middle, hunk2, last = items(plan)
    # line 1 is the section header; the change is at line 52 on both sides, 3 lines of context around it
    assert first_fold == Fold("p0f0", 0, 0, 48)
    assert isinstance(hunk, HunkView) and hunk.section == "/ip firewall address-list"
    assert hunk.ranges == "@@ -49,7 +49,7 @@"
    before, change, after = hunk.runs
    assert isinstance(before, Same) and next(before.numbered()) == (49, 49, old.splitlines()[48])
    assert isinstance(change, Change)
    assert [(s.no, s.text) for s in change.removed] == [(52, "add address=10.0.0.50 list=customers")]
    assert [(s.no, s.text) for s in change.added] == [(52, "add address=10.0.0.250 list=blocked")]
    assert isinstance(after, Same) and (after.old_no, after.new_no) == (53, 53)
    assert middle == Fold("p0f2", 55, 55, 24)  # lines 56..79 on both sides
    assert isinstance(hunk2, HunkView) and hunk2.ranges == "@@ -80,6 +80,7 @@"
    (added,) = [r for r in hunk2.runs if isinstance(r, Change)]
    assert added.removed == () and [(s.no, s.text) for s in added.added] == [(83, "add address=192.0.2.1 list=x")]
    assert last == Fold("p0f4", 85, 86, 16)
    assert (plan.old_lines, plan.new_lines) == (101, 102)
    assert last.new_start + last.size == plan.new_lines


def test_unequal_changes_pair_in_order_and_deletions_number_the_old_side() -> None:
    old = config(20)
    new = config(20, changes={5: "add address=203.0.113.5 list=x"}, drop={6, 7})
    (hunk,) = [i for i in items(layout(old, new)) if isinstance(i, HunkView)]
    (change,) = [r for r in hunk.runs if isinstance(r, Change)]
    pairs = [(a and a.no, b and b.no) for a, b in change.pairs()]
    assert pairs == [(7, 7), (8, None), (9, None)]
    same_after = hunk.runs[-1]
    assert isinstance(same_after, Same) and (same_after.old_no, same_after.new_no) == (10, 8)


def test_no_change_is_one_fold_of_everything_and_an_empty_side_has_no_fold() -> None:
    text = config(10)
    plan = layout(text, text)
    assert items(plan) == [Fold("p0f0", 0, 0, 11)] and plan.hunks == 0
    assert items(layout("", "")) == []


def test_big_diffs_come_in_parts_and_a_long_hunk_continues_in_the_next() -> None:
    old = config(3000)
    new = config(3000, changes={k: f"add address=198.51.100.{k % 250} list=moved{k}" for k in range(1000, 1700)})
    plan = layout(old, new, budget=300)
    diff = DIFFS[id(plan)]

    def rows(item: diffview.Item) -> int:  # in the unified layout
        if isinstance(item, Fold):
            return 1
        return 1 + sum(len(r.lines) if isinstance(r, Same) else len(r.removed) + len(r.added) for r in item.runs)

    for part in plan.parts:
        shown = diffview.part_items({i: diff.hunks[i] for i in diffview.needed(part)}, part)
        assert sum(map(rows, shown)) <= 300
    hunks = [i for i in items(plan) if isinstance(i, HunkView)]
    assert hunks[0].continued is False and all(h.continued for h in hunks[1:]) and len(hunks) > 4
    removed = [s.no for h in hunks for r in h.runs if isinstance(r, Change) for s in r.removed]
    added = [s.no for h in hunks for r in h.runs if isinstance(r, Change) for s in r.added]
    assert removed == added == list(range(1002, 1702))  # every changed line once, in order, across parts


def test_three_versions_give_two_pairs_oldest_first() -> None:
    edit = {2: "add address=1.1.1.1 list=x"}
    a, b, c = config(40), config(40, changes=edit), config(40, changes=edit, drop={35})
    (d1, first), (d2, second) = diffview.compare_lines([(k, diffing.display_lines(t)) for k, t in ((1, a), (2, b), (3, c))])
    assert (first.old_id, first.new_id, first.added, first.removed) == (1, 2, 1, 1)
    assert (second.old_id, second.new_id, second.added, second.removed) == (2, 3, 0, 1)
    folds = [i.key for plan, diff in ((first, d1), (second, d2)) for i in items(plan, diff) if isinstance(i, Fold)]
    assert folds == ["p0f1", "p1f0", "p1f2"]  # unique across the page's pairs


def test_word_pieces_mark_only_what_differs() -> None:
    old, new = diffview.word_pieces("add address=10.0.0.1 comment=office list=a", "add address=10.0.0.2 comment=lab list=a")
    assert old == (("add address=10.0.0.", False), ("1", True), (" comment=", False), ("office", True), (" list=a", False))
    assert new == (("add address=10.0.0.", False), ("2", True), (" comment=", False), ("lab", True), (" list=a", False))
    assert "".join(p for p, _ in old) == "add address=10.0.0.1 comment=office list=a"


def test_word_pieces_are_skipped_for_unrelated_or_huge_lines() -> None:
    assert diffview.word_pieces("add chain=input action=drop", "/system identity set name=core-9") is None
    assert diffview.word_pieces("x" * 1001, "x" * 1000 + "y") is None
    assert diffview.word_pieces("", "add a=1") is None


def test_with_words_fills_paired_lines_only() -> None:
    old = config(10)
    new = config(10, changes={3: "add address=10.0.0.33 list=customers"}, extra={3: ["add address=192.0.2.7 list=new"]})
    (marked,) = [i for i in items(layout(old, new)) if isinstance(i, HunkView)]  # part_items highlights words
    (change,) = [r for r in marked.runs if isinstance(r, Change)]
    assert change.removed[0].pieces == (("add address=10.0.0.", False), ("3", True), (" list=customers", False))
    assert change.added[0].pieces == (("add address=10.0.0.", False), ("33", True), (" list=customers", False))
    assert change.added[1].pieces is None  # an added line with no partner


def test_a_plan_is_small_and_a_part_needs_only_its_hunks() -> None:
    """The plan names lines by index (it crosses from the CPU worker whole); a part's rows are made
    from its own hunks alone."""
    old = config(3000)
    new = config(3000, changes={k: f"add address=198.51.100.{k} list=x" for k in range(0, 3000, 40)})
    plan = layout(old, new, budget=120)
    assert len(plan.parts) > 3 and plan.hunks == 75
    spans = plan.parts[2]
    wanted = diffview.needed(spans)
    assert 0 < len(wanted) < plan.hunks
    diff = DIFFS[id(plan)]
    rows = diffview.part_items({i: diff.hunks[i] for i in wanted}, spans)
    assert [r.ranges for r in rows if isinstance(r, HunkView)] == [diff.hunks[i].header.split(" @@")[0] + " @@"
                                                                 for i in wanted]
