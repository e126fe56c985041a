"""bot.routeros.grep on real exports: which lines match, their numbers, sections and context (checked
against a plain line-by-line reference), redacted display, refused patterns, and blame over versions."""

from __future__ import annotations

import re
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from bot.core.errors import UserError
from bot.core.models import Version
from bot.routeros import export as routeros
from bot.routeros.grep import MAX_PATTERN, Hit, LineIndex, Query, blame, compile_query, scan
from bot.routeros.redact import redact
from bot.ssh.simulator import SimDevice
from tests.helpers import ALL, FIXTURES, walk_back_section

KEY = b"test-redaction-key"
TEXTS = {name: routeros.normalize((FIXTURES / name).read_bytes()) for name in ALL}

# Plain, regex and -i queries, including regexes that take each of scan()'s paths: a required
# literal (fast), none (the whole text), and constructs that must be tried line by line.
QUERIES = [
    Query("add"), Query("ADD", ignore_case=True), Query("winbox", ignore_case=True), Query("password="),
    Query(r"dst-port=\d+", regex=True), Query("^/ip", regex=True), Query(r"disabled=yes$", regex=True),
    Query(r"[0-9]+\.[0-9]+\.[0-9]+\.1\b", regex=True), Query("COMMENT=", regex=True, ignore_case=True),
    Query("a|b", regex=True), Query("x*", regex=True), Query(r"\s+$", regex=True),
    Query(r"\Aadd", regex=True), Query(r"(?<=chain=)input", regex=True), Query(r"^(?!add).*=", regex=True),
    Query(r"(?i)Interface", regex=True), Query("ä", ignore_case=True), Query(r"\\\"", regex=True),
    Query(r"address=\d+\.", regex=True), Query(r"\\s", regex=True), Query(r"=\S+ \S+=", regex=True),
    Query("é|ü", regex=True), Query(r"\bin", regex=True, ignore_case=True),
    Query(r"address=1[0-9]{2}\.[0-9]+\.[0-9]+\.7\b", regex=True),  # a common literal, few matches
    # Over the whole text these can match across a line break: each line found must be checked.
    Query(r"yes[^=]+add", regex=True), Query(r"(?s)yes.add", regex=True), Query(r"=\s*/", regex=True),
    Query(r"no\W+add", regex=True), Query(r"[^a-z]add", regex=True), Query(r"comment=[^ ]+ ", regex=True),
    Query(r"name=[a-z]+\d* ", regex=True), Query(r"comment=[^ \n]+ ", regex=True),  # ... and these cannot
]


def reference(text: str, query: Query) -> list[int]:
    """1-based numbers of the lines the query matches, one line at a time."""
    rx = re.compile(query.pattern if query.regex else re.escape(query.pattern),
                    re.IGNORECASE if query.ignore_case else 0)
    return [i + 1 for i, line in enumerate(text.splitlines()) if rx.search(line)]


def reference_spans(line: str, query: Query) -> tuple[tuple[int, int], ...]:
    """Where the query matches in one line, empty matches left out (nothing to highlight)."""
    rx = re.compile(query.pattern if query.regex else re.escape(query.pattern),
                    re.IGNORECASE if query.ignore_case else 0)
    return tuple(m.span() for m in rx.finditer(line) if m.end() > m.start())


@pytest.mark.parametrize("query", QUERIES, ids=[q.describe() for q in QUERIES])
def test_every_fixture_matches_like_a_line_by_line_search(query: Query) -> None:
    """Numbers, lines, sections (export.Sections' rule) and ±2 lines of context, on every fixture."""
    matcher = compile_query(query)
    for name, text in TEXTS.items():
        lines = text.splitlines()
        found = scan(text.encode(), matcher, spans=True)
        assert [h.number for h in found.hits] == reference(text, query), name
        assert scan(text.encode(), matcher).hits == tuple(replace(h, spans=()) for h in found.hits)  # only if asked
        assert found.count == len(found.hits)
        for hit in found.hits:
            i = hit.number - 1
            assert hit.line == lines[i]
            assert hit.section == walk_back_section(lines, i)
            assert hit.before == tuple(lines[max(i - 2, 0):i])
            assert hit.after == tuple(lines[i + 1:i + 3])
            assert hit.spans == reference_spans(lines[i], query)
            assert not hit.secret


def test_a_known_line_with_its_section_and_context() -> None:
    text = TEXTS["v6-hap-lite-951-compact-wrapped.rsc"]
    found = scan(text.encode(), compile_query(Query("dhcp_pool0")))
    assert [(h.number, h.section) for h in found.hits] == [(24, "/ip pool"), (26, "/ip dhcp-server")]
    assert found.hits[1] == Hit(
        26, "/ip dhcp-server", "add address-pool=dhcp_pool0 disabled=no interface=bridge lease-time=8h10m name=dhcp1",
        before=("add name=dhcp_pool0 ranges=192.168.1.10-192.168.1.254", "/ip dhcp-server"),
        after=("/user group",
               'set full policy="local,telnet,ssh,ftp,reboot,read,write,policy,test,winbox,password,web,sniff,'
               'sensitive,api,romon,dude,tikapp"'))
    marked = scan(text.encode(), compile_query(Query("dhcp_pool0")), spans=True).hits
    assert marked == tuple(replace(h, spans=s) for h, s in zip(found.hits, [((9, 19),), ((17, 27),)], strict=True))


def test_a_match_across_a_wrapped_line() -> None:
    """The export wraps `pas\\` / `    sword` and `channel-width=\\` / `    20/40mhz-XX`: the joined
    line matches, with the line number of the normalized config."""
    raw = (FIXTURES / "v6-hap-lite-951-compact-wrapped.rsc").read_bytes()
    assert b"winbox,pas\\\n    sword" in raw and b"channel-width=\\\n    20/40mhz-XX" in raw
    text = TEXTS["v6-hap-lite-951-compact-wrapped.rsc"]
    for query, section in [(Query("winbox,password,web"), "/user group"),
                           (Query(r"channel-width=20/40mhz-XX country=\w+", regex=True), "/interface wireless")]:
        (hit,) = scan(text.encode(), compile_query(query)).hits
        assert hit.section == section
        assert text.splitlines()[hit.number - 1] == hit.line


def test_lines_come_from_the_shown_text_and_a_match_inside_a_secret_is_marked() -> None:
    """Matched in the real text, shown from the redacted one, line for line: a line that matched
    only through a secret value is shown redacted and marked `secret`."""
    text = TEXTS["v6-hap-lite-951-compact-wrapped.rsc"]
    shown = redact(text, KEY)
    assert "benito10" in text and "benito10" not in shown
    (hit,) = scan(text.encode(), compile_query(Query("benito10")), shown=shown.encode(), spans=True).hits
    assert hit.secret and "benito10" not in hit.line and "<redacted:" in hit.line
    assert hit.spans == ()  # nothing in the shown line to highlight
    assert hit.before == tuple(shown.splitlines()[hit.number - 3:hit.number - 1])
    (plain,) = scan(text.encode(), compile_query(Query("supplicant-identity")), shown=shown.encode(), spans=True).hits
    assert not plain.secret and "<redacted:" in plain.line
    assert [plain.line[a:b] for a, b in plain.spans] == ["supplicant-identity"]
    # Many matching lines (the path that splits the config once): each shown from the redacted text.
    shown_lines = shown.splitlines()
    many = scan(text.encode(), compile_query(Query("=")), shown=shown.encode(), spans=True).hits
    assert len(many) > 32 and all(h.spans and h.line[h.spans[0][0]] == "=" for h in many)
    for h in many:
        assert h.line == shown_lines[h.number - 1] and h.after == tuple(shown_lines[h.number:h.number + 2])
    assert [h.number for h in many if h.secret] == []  # "=" is in the redacted lines too
    # Searching the redacted text itself: the secret cannot be found by guessing it.
    assert scan(shown.encode(), compile_query(Query("benito10"))).count == 0


def test_a_limit_lists_the_first_lines_and_counts_them_all() -> None:
    text = TEXTS["v6-ccr1072-isp-bgp.rsc"]
    everything = scan(text.encode(), compile_query(Query("add")))
    first = scan(text.encode(), compile_query(Query("add")), limit=3)
    assert first.count == everything.count > 3
    assert first.hits == everything.hits[:3]
    # Past the limit the lines are counted without being listed: a line holding the text twice counts once.
    doubled = "\n".join(f"add comment=x{i} list=x{i}" for i in range(1000)) + "\n"
    for name, data in (("doubled", doubled), *TEXTS.items()):
        for query in (Query("x"), Query("="), Query(r"x\d", regex=True), Query(r"=[^\n]", regex=True),
                      Query(r"x\d*\s", regex=True), Query("x*", regex=True), Query("$", regex=True)):
            for limit in (0, 1, 3):
                found = scan(data.encode(), compile_query(query), limit=limit)
                assert (found.count, len(found.hits)) == (len(reference(data, query)), min(limit, found.count)), name


def test_a_literal_is_found_however_common_its_rarest_byte_is_in_the_config() -> None:
    """`winbox` is looked for by its `x`, rare in exports; in a config full of x's (and X's, for
    -i) every line is still found, and only those."""
    text = ("add comment=" + "x" * 3000 + "\n" + "add name=ax-box\n" * 3000 + "add comment=\"winbox x WinBox\"\n"
            + "set XX=x\n" * 2000 + "/ip service\nset winbox port=8291\n")
    for query in (Query("winbox"), Query("WINBOX", ignore_case=True), Query("x winbox", ignore_case=True),
                  Query(r"win[a-z]ox", regex=True), Query(r"winbox\b", regex=True, ignore_case=True)):
        for limit in (None, 1):
            found = scan(text.encode(), compile_query(query), limit=limit)
            assert found.count == len(reference(text, query)) > 0, query
            assert [h.number for h in found.hits] == reference(text, query)[:limit], query


@pytest.mark.parametrize(("query", "message"), [
    (Query(""), "Search for what?"),
    (Query("x" * (MAX_PATTERN + 1)), f"at most {MAX_PATTERN} are allowed"),
    (Query("(a+", regex=True), "Not a valid regular expression: missing ), unterminated subpattern at position 0."),
    (Query("a\nb"), "can't contain a line break"),
])
def test_patterns_that_cannot_be_used_are_refused_with_a_reason(query: Query, message: str) -> None:
    with pytest.raises(UserError, match=re.escape(message)):
        compile_query(query)


def test_regex_prefix() -> None:
    assert Query.of(r"regex:dst-port=\d+") == Query(r"dst-port=\d+", regex=True)
    assert Query.of("regexp") == Query("regexp")


def versions_of(family: str, count: int) -> list[tuple[Version, str]]:
    start = datetime(2025, 3, 1, 2, 0, tzinfo=UTC)
    return [(Version(10 + i, "lab", family, start + timedelta(days=i), start + timedelta(days=i), 0, f"{i:064x}"),
             TEXTS[f"{family}-{i + 1}.rsc"]) for i in range(count)]


def test_blame_names_the_versions_a_line_appeared_and_went_in() -> None:
    """seq-rb5009-vlan: `list=TRUSTED` for ether7-Access came in the 2nd export and went in the 3rd;
    the `list=Admin` address entries came in the 2nd and stayed; the old DHCP pool range was there
    from the 1st and went in the 2nd."""
    history = versions_of("seq-rb5009-vlan", 3)
    v1, v2, v3 = (v for v, _ in history)
    matcher = compile_query(Query(r"ether7-Access list=TRUSTED|list=Admin|ranges=192\.168\.200\.", regex=True))
    lines = blame([(v, scan(text.encode(), matcher, context=0).hits) for v, text in history])
    spans = {x.line: [(s.since.id, s.until.id if s.until else None) for s in x.spans] for x in lines}
    assert spans == {
        "add name=dhcp_pool-server ranges=192.168.200.20-192.168.200.254": [(v1.id, v2.id)],
        "add name=dhcp_pool-server ranges=192.168.200.200-192.168.200.249": [(v2.id, None)],
        "add interface=ether7-Access list=TRUSTED": [(v2.id, v3.id)],
        "add address=192.168.99.20 list=Admin": [(v2.id, None)],
        "add address=192.168.99.21 list=Admin": [(v2.id, None)],
    }
    assert next(x.line for x in lines) == "add name=dhcp_pool-server ranges=192.168.200.20-192.168.200.254"
    latest = TEXTS["seq-rb5009-vlan-3.rsc"].splitlines()
    for line in lines:
        if line.spans[-1].until is None:
            assert latest[line.number - 1] == line.line
            assert line.section == walk_back_section(latest, line.number - 1)


def test_blame_follows_a_line_that_goes_and_comes_back() -> None:
    start = datetime(2025, 1, 1, tzinfo=UTC)
    vs = [Version(i, "s", "d", start + timedelta(days=i), start, 0, "0" * 64) for i in range(1, 5)]
    texts = ["/ip service\nset winbox disabled=yes\n", "/ip service\nset telnet disabled=yes\n",
             "/ip service\nset winbox disabled=yes\n", "/ip service\nset winbox disabled=yes\n"]
    matcher = compile_query(Query("winbox"))
    (line,) = blame([(v, scan(t.encode(), matcher).hits) for v, t in zip(vs, texts)])
    assert [(s.since.id, s.until.id if s.until else None) for s in line.spans] == [(1, 2), (3, None)]
    assert (line.section, line.number) == ("/ip service", 2)


def test_a_line_index_changes_no_answer() -> None:
    """A 1 MB config: matches deep in its 13,000-line address list, found with the LineIndex (line
    numbers from a checkpoint, the section from the header list) and without it, are the same."""
    text = routeros.normalize(SimDevice("big", size=1_000_000).export_text("/export show-sensitive"))
    data = text.encode()
    index = LineIndex.of(data)
    assert len(index.checkpoints) > 10 and LineIndex.decode(index.encode()) == index
    asked = []

    def load() -> LineIndex:
        asked.append(1)
        return index

    for query in (Query("cust-12345 "), Query("winbox"), Query(r"cust-1[0-9]{4} 19[0-9] ", regex=True),
                  Query("CUST-0000", ignore_case=True), Query("list=vpn-peers")):
        matcher = compile_query(query)
        assert scan(data, matcher, index=load) == scan(data, matcher), query
    assert asked  # it was used
    # An index of another text (a newer version) is not used.
    other = LineIndex.of(data + b"add x=1\n")
    assert scan(data, compile_query(Query("cust-12345 ")), index=lambda: other) == scan(
        data, compile_query(Query("cust-12345 ")))
    assert LineIndex.decode(b"not an index") is None
