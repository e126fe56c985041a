"""bot.routeros and bot.routeros.redact against the 38 real exports in tests/fixtures/routeros (see SOURCES.md)."""

from __future__ import annotations

import functools
import random
import re

import pytest

from bot.core.models import ExportMeta
from bot.routeros import export as routeros
from bot.routeros.redact import fingerprint, redact
from tests.helpers import ALL, FIXTURES, secrets_in, walk_back_section
from bot.routeros.export import (
    Sections,
    check_export,
    describe_meta_change,
    export_command,
    major_version,
    normalize,
    parse_header,
    section_of,
    undated_hash,
)

KEY = b"test-key-0123456789"

# Two files as published lack the final newline (saved through an editor, not streamed from the
# device). check_export treats a missing final newline as truncation - see test_missing_final_newline.
NO_FINAL_NEWLINE = {"seq-sara-951-1.rsc", "v6-rb750r2-relitto-wrapped.rsc"}


def raw(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


@functools.cache
def norm(name: str) -> str:
    return normalize(raw(name))


def test_all_fixtures_present() -> None:
    """The suite runs over the 38 fixtures SOURCES.md lists, not over whatever happens to exist."""
    assert len(ALL) == 38


# ---------------------------------------------------------------------------------- normalize

# Written independently of routeros' tables: what must never survive normalization.
HEADER_OR_STATE = re.compile(
    r"#.* by RouterOS .*|# RouterOS \d.*|# software id =.*|# model =.*|# serial number =.*"
    r"|# inactive time|# [Ii]nterface not active|# \S+ not ready|# poe-out status:.*"
    r"|# received packet from .* bad format|# Firmware upgraded successfully.*"
    r"|.*please restart the device.*|# channel: .*|# Warning: cpu not running.*"
)


@pytest.mark.parametrize("name", ALL)
def test_normalize_invariants(name: str) -> None:
    """Normalized text is idempotent, LF-only, right-stripped, joined, headerless and state-free."""
    text = norm(name)
    assert normalize(text) == text
    assert "\r" not in text
    assert text.endswith("\n") and not text.endswith("\n\n")
    for line in text.splitlines():
        assert line == line.rstrip(), line
        assert line, "no blank lines"
        assert not line.endswith("\\"), line[-80:]
        assert not line.startswith("    "), "continuations are joined"
        assert not HEADER_OR_STATE.fullmatch(line), line


def test_normalize_accepts_str_and_bytes_alike() -> None:
    """normalize(bytes) decodes as UTF-8; a str input gives the same result."""
    data = raw("v7-hap-ax3-wifi.rsc")
    assert normalize(data) == normalize(data.decode("utf-8"))


def test_normalize_replaces_undecodable_bytes() -> None:
    """Invalid UTF-8 is replaced, not fatal (errors='replace')."""
    assert normalize(b"/system identity\r\nset name=caf\xe9\r\n") == "/system identity\nset name=caf\ufffd\n"


def test_timestamp_only_change_is_no_change() -> None:
    """seq-capxl-2 -> -3 differ only in the header date: the famous false alarm must not fire."""
    assert raw("seq-capxl-2.rsc") != raw("seq-capxl-3.rsc")
    assert norm("seq-capxl-2.rsc") == norm("seq-capxl-3.rsc")


def test_channel_comment_is_dropped() -> None:
    """seq-capxl-1 -> -2: the live CAPsMAN channel moved 5180 -> 5220; that is not a config change."""
    assert b"# channel: 5180" in raw("seq-capxl-1.rsc")
    assert b"# channel: 5220" in raw("seq-capxl-2.rsc")
    assert "# channel:" not in norm("seq-capxl-1.rsc") + norm("seq-capxl-2.rsc")


@pytest.mark.parametrize(
    ("name", "kept"),
    [
        ("v7-chr-terse.rsc", "#error exporting /ip/firewall/calea"),
        ("v7-chr-terse.rsc", "#error exporting /interface/bridge/calea"),
        ("seq-capxl-1.rsc", "# managed by CAPsMAN"),
        ("seq-praze-1.rsc", "# managed by CAPsMAN"),
        ("v6-hap-lite-951-verbose-wrapped.rsc", "# disabled"),
        ("v7-hap-ax3-wifi.rsc", "# DHCP client can not run on slave or passthrough interface!"),
    ],
)
def test_config_comments_are_kept(name: str, kept: str) -> None:
    """Comments that are part of the config (or stable) stay: dropping them would hide changes."""
    assert kept in norm(name).splitlines()


@pytest.mark.parametrize(
    ("name", "dropped"),
    [
        ("v7-chr-terse.rsc", "# tunnel-mikrotik not ready"),
        ("v6-ccr1009-sunny.rsc", "# Firmware upgraded successfully, please reboot for changes to take effect!"),
        ("seq-praze-2.rsc", "# Warning: cpu not running at default frequency"),
        ("seq-praze-1.rsc", "# channel: 2452/20-Ce/gn(20dBm), SSID: praze, CAPsMAN forwarding"),
    ],
)
def test_state_comments_in_fixtures_are_dropped(name: str, dropped: str) -> None:
    """Each state comment actually present in a fixture is in the raw export and gone after."""
    assert dropped.encode() in raw(name)
    assert dropped not in norm(name)


# One example line per noise rule: a new rule needs a new example here (and ideally a fixture).
NOISE_EXAMPLES = [
    "# inactive time",
    "# Interface not active",
    "# tunnel-mikrotik not ready",
    "# poe-out status: short_circuit",
    "# poe-out status: voltage_on_poe-in",
    "# received packet from 10.0.0.2 bad format",
    "# Firmware upgraded successfully, please reboot for changes to take effect!",
    "# wlan1 country change - please restart the device in order to apply the new setting",
    "# channel: 5220/20-Ce/ac/P(15dBm), SSID: WiFi 5Ghz PRIVATE, CAPsMAN forwarding",
    "# Warning: cpu not running at default frequency",
]


def test_every_noise_rule_has_an_example_and_a_reason() -> None:
    """The noise table stays data: each entry a compiled regex, a reason, and a covering example."""
    for rx, reason in routeros.NOISE_RULES + routeros.HEADER_RULES:
        assert isinstance(rx, re.Pattern) and reason.strip()
    for rx, reason in routeros.NOISE_RULES:
        assert any(rx.fullmatch(example) for example in NOISE_EXAMPLES), reason


@pytest.mark.parametrize("noise", NOISE_EXAMPLES)
def test_noise_line_inserted_into_real_export_changes_nothing(noise: str) -> None:
    """A state comment appearing above a config line (as RouterOS prints it) is not a change."""
    lines = raw("seq-rb5009-home-1.rsc").split(b"\r\n")
    at = lines.index(b"/ip dhcp-client") + 1
    noisy = b"\r\n".join([*lines[:at], noise.encode(), *lines[at:]])
    assert normalize(noisy) == norm("seq-rb5009-home-1.rsc")


@pytest.mark.parametrize(
    "header",
    [
        "# 2024-01-02 12:34:56 by RouterOS 7.13",
        "# jan/02/2024 12:34:56 by RouterOS 6.49",
        "# RouterOS 6.48.1",
        "# 1970-01-02 00:05:12 by RouterOS 7.13.2",
        "# software id = ",
        "# software id = AB12-CD34 ",
        "# model = RB5009UPr+S+",
        "# serial number = HCY086PZ6XZ",
        # Oxidized's copies of `/system routerboard print` and `/system package update print`
        "#        routerboard: yes",
        "#              model: RB5009UPr+S+",
        "#      serial-number: HCY086PZ6XZ",
        "#   current-firmware: 7.18.2",
        "#  installed-version: 7.18.2",
        "#     latest-version: 7.19",
        "#             status: New version is available",
    ],
)
def test_header_variants_are_dropped(header: str) -> None:
    """Every header form in the fixtures and notes is metadata, never part of the config."""
    body = "/system identity\r\nset name=r1\r\n"
    assert normalize(f"{header}\r\n#\r\n{body}") == "/system identity\nset name=r1\n"


def test_ansi_codes_and_stray_cr_are_removed() -> None:
    """Colour codes (interactive sessions) and bare CRs never reach the normalized text."""
    assert normalize(b"\x1b[m\x1b[36m/ip dns\x1b[m\r\r\nset servers=1.1.1.1 \r\n") == (
        "/ip dns\nset servers=1.1.1.1\n"
    )


WRAPPED = (
    "/ip address\r\n"
    "add address=192.168.88.1/24 comment=defconf interface=bridge network=\\\r\n"
    "    192.168.88.0\r\n"
    "/ip firewall filter\r\n"
    'add action=drop chain=input comment="defconf: drop all not coming from LAN" \\\r\n'
    "    in-interface-list=!LAN\r\n"
    "/system script\r\n"
    'add name=s source="/tool fetch url=\\"http://x\\" check-certificate=yes\\\r\n'
    '    \\_dst-path=a.pem;\\r\\\r\n'
    '    \\n:log info \\"ok\\""\r\n'
)


def test_wrapped_lines_are_joined_keeping_the_space_before_the_backslash() -> None:
    """Wraps after `=`, after a space and inside a quoted script source all join exactly (notes §2c)."""
    assert normalize(WRAPPED).splitlines() == [
        "/ip address",
        "add address=192.168.88.1/24 comment=defconf interface=bridge network=192.168.88.0",
        "/ip firewall filter",
        'add action=drop chain=input comment="defconf: drop all not coming from LAN" in-interface-list=!LAN',
        "/system script",
        'add name=s source="/tool fetch url=\\"http://x\\" check-certificate=yes'
        '\\_dst-path=a.pem;\\r\\n:log info \\"ok\\""',
    ]


def test_reflowed_line_normalizes_equal() -> None:
    """seq-rb5009-vlan: a `tagged=\\` wrap re-flowed onto one line is the same config."""
    wrapped = raw("seq-rb5009-vlan-2.rsc")
    assert b"tagged=\\\n    bridge,ether2" in wrapped
    unwrapped = wrapped.replace(b"tagged=\\\n    bridge,ether2", b"tagged=bridge,ether2")
    assert normalize(unwrapped) == normalize(wrapped)


def test_terse_script_sources_are_joined() -> None:
    """Terse exports still continue script sources with `\\`: each script becomes one line."""
    lines = norm("seq-capxl-1.rsc").splitlines()
    scripts = [ln for ln in lines if ln.startswith("/system script add ")]
    assert scripts and all(ln.count('source="') == 1 and ln.endswith('"') for ln in scripts)


def test_verbose_and_compact_exports_differ_but_both_parse() -> None:
    """Same device, verbose vs compact: different export modes, so different text; both valid."""
    verbose, compact = "v6-hap-lite-951-verbose-wrapped.rsc", "v6-hap-lite-951-compact-wrapped.rsc"
    assert norm(verbose) != norm(compact)
    assert parse_header(raw(verbose).decode()).serial == parse_header(raw(compact).decode()).serial
    assert check_export(raw(verbose)) is None and check_export(raw(compact)) is None


# ---------------------------------------------------------------------------------- metadata

# (version, model) per file, copied from SOURCES.md's table; serial/software id spot-checked below.
SOURCES_TABLE = {
    "v6-6.34-no-model-eoip-pptp.rsc": ("6.34", None),
    "v6-ccr1009-sunny.rsc": ("6.47.8", "CCR1009-7G-1C-1S+"),
    "v6-ccr1072-isp-bgp.rsc": ("6.48.1", "CCR1072-1G-8S+"),
    "v6-hap-ac-rb962-mikrouter-terse.rsc": ("6.47.6", "RouterBOARD 962UiGS-5HacT2HnT"),
    "v6-hap-lite-951-compact-wrapped.rsc": ("6.49.7", "951Ui-2HnD"),
    "v6-hap-lite-951-verbose-wrapped.rsc": ("6.49.7", "951Ui-2HnD"),
    "v6-rb1100ahx2-isp-hotspot.rsc": ("6.49.7", "1100AHx2"),
    "v6-rb1100hx2-ver-6.48.rsc": ("6.48", "1100Hx2"),
    "v6-rb750r2-relitto-wrapped.rsc": ("6.49.2", "RouterBOARD 750 r2"),
    "v6-wap-ac-livingroom-terse.rsc": ("6.49.6", "RouterBOARD wAP G-5HacT2HnD"),
    "v7-audience-wireless-olddate.rsc": ("7.1.5", "RBD25G-5HPacQD2HPnD"),
    "v7-chr-terse.rsc": ("7.10", None),
    "v7-crs328-switch-olddate.rsc": ("7.1.5", "CRS328-24P-4S+"),
    "v7-hap-ax3-wifi.rsc": ("7.20.6", "C53UiG+5HPaxD2HPaxD"),
    "seq-anna-rb5009-1.rsc": ("7.20", "RB5009UPr+S+"),
    "seq-anna-rb5009-2.rsc": ("7.21", "RB5009UPr+S+"),
    "seq-capxl-1.rsc": ("7.20.1", "RBcAPGi-5acD2nD"),
    "seq-capxl-2.rsc": ("7.20.1", "RBcAPGi-5acD2nD"),
    "seq-capxl-3.rsc": ("7.20.1", "RBcAPGi-5acD2nD"),
    "seq-capxl-4.rsc": ("7.20.1", "RBcAPGi-5acD2nD"),
    "seq-ccr1036-isp-1.rsc": ("6.48.4", "CCR1036-8G-2S+"),
    "seq-ccr1036-isp-2.rsc": ("6.48.4", "CCR1036-8G-2S+"),
    "seq-ccr1036-isp-3.rsc": ("6.48.4", "CCR1036-8G-2S+"),
    "seq-ccr2004-lab-1.rsc": ("6.49.18", "CCR2004-1G-12S+2XS"),
    "seq-ccr2004-lab-2.rsc": ("7.19.3", "CCR2004-1G-12S+2XS"),
    "seq-ccr2004-lab-3.rsc": ("7.19.4", "CCR2004-1G-12S+2XS"),
    "seq-praze-1.rsc": ("6.48.3", "RBD53iG-5HacD2HnD"),
    "seq-praze-2.rsc": ("7.11.2", "RBD53iG-5HacD2HnD"),
    "seq-praze-3.rsc": ("7.12", "L009UiGS-2HaxD"),
    "seq-rb5009-home-1.rsc": ("7.20.6", "RB5009UPr+S+"),
    "seq-rb5009-home-2.rsc": ("7.20.6", "RB5009UPr+S+"),
    "seq-rb5009-vlan-1.rsc": ("7.1.5", "RB5009UG+S+"),
    "seq-rb5009-vlan-2.rsc": ("7.1.5", "RB5009UG+S+"),
    "seq-rb5009-vlan-3.rsc": ("7.1.5", "RB5009UG+S+"),
    "seq-sara-951-1.rsc": ("6.49.7", "951Ui-2HnD"),
    "seq-sara-951-2.rsc": ("6.49.7", "951Ui-2HnD"),
    "seq-tvroom-1.rsc": ("7.18.2", "RBD53iG-5HacD2HnD"),
    "seq-tvroom-2.rsc": ("7.18.2", "RBD53iG-5HacD2HnD"),
}


@pytest.mark.parametrize("name", ALL)
def test_parse_header_matches_sources_table(name: str) -> None:
    """Version (as printed, e.g. `6.48`, `7.20`) and model of every fixture, as SOURCES.md lists them."""
    meta = parse_header(raw(name).decode("utf-8"))
    assert (meta.ros_version, meta.model) == SOURCES_TABLE[name]
    assert major_version(raw(name).decode("utf-8")) == int(SOURCES_TABLE[name][0].split(".")[0])


@pytest.mark.parametrize(
    ("name", "meta"),
    [
        ("v6-rb1100hx2-ver-6.48.rsc", ExportMeta("6.48", "1100Hx2", "3E6A022B53BA", "88M7-GN1W")),
        ("v7-chr-terse.rsc", ExportMeta("7.10", None, None, None)),  # empty `# software id = `
        ("v6-6.34-no-model-eoip-pptp.rsc", ExportMeta("6.34", None, None, "AV0M-FY62")),
        ("seq-praze-3.rsc", ExportMeta("7.12", "L009UiGS-2HaxD", "HF309260XJZ", "KQWQ-JVBP")),
        ("seq-anna-rb5009-2.rsc", ExportMeta("7.21", "RB5009UPr+S+", "HCY086PZ6XZ", "IA5H-12KT")),
    ],
)
def test_parse_header_edge_cases(name: str, meta: ExportMeta) -> None:
    """6.48 without patch, CHR without model/serial and with an empty software id, 6.34 without model."""
    assert parse_header(raw(name).decode("utf-8")) == meta


def test_parse_header_tolerates_undated_and_epoch_headers() -> None:
    """`# RouterOS 6.48.1` (date stripped) and a 1970 clock still give the version; trailing space ok."""
    assert parse_header("# RouterOS 6.48.1\n# software id = AB12-CD34 \n/ip dns\n") == ExportMeta(
        "6.48.1", None, None, "AB12-CD34"
    )
    assert parse_header("# 1970-01-02 00:05:12 by RouterOS 7.13.2\r\n/ip dns\r\n").ros_version == "7.13.2"
    assert parse_header("/ip dns\nset servers=1.1.1.1\n") == ExportMeta()


@pytest.mark.parametrize(
    ("text", "major"),
    [
        ("                   uptime: 1w2d\r\n                  version: 7.13.2 (stable)\r\n", 7),
        ("version: 6.49.7 (long-term)\n", 6),
        ("  installed-version: 7.21\n", 7),
        ("# 2024-01-02 12:34:56 by RouterOS 7.13\n# software id = X\n", 7),
        ("# jan/02/2024 12:34:56 by RouterOS 6.49\n", 6),
        ("# RouterOS 6.48.1\n", 6),
        ("bad command name resource (line 1 column 9)", None),
        ("", None),
    ],
)
def test_major_version(text: str, major: int | None) -> None:
    """Major version from `/system resource print` (any indent, CRLF) or from an export header."""
    assert major_version(text) == major


def test_export_command_only_asks_v7_for_secrets() -> None:
    """`show-sensitive` on 6.x is an error that once produced empty backups (oxidized#2427)."""
    assert export_command(7) == export_command(8) == "/export show-sensitive"
    assert export_command(6) == export_command(None) == "/export"


def test_describe_meta_change() -> None:
    """Upgrades and hardware swaps get a human note; identical or unknown metadata gets None."""
    praze = [parse_header(raw(f"seq-praze-{i}.rsc").decode()) for i in (1, 2, 3)]
    assert describe_meta_change(praze[0], praze[1]) == "RouterOS 6.48.3 → 7.11.2"
    assert describe_meta_change(praze[1], praze[2]) == (
        "RouterOS 7.11.2 → 7.12; hardware replaced: RBD53iG-5HacD2HnD → L009UiGS-2HaxD "
        "(serial E729… → HF30…)"
    )
    anna = [parse_header(raw(f"seq-anna-rb5009-{i}.rsc").decode()) for i in (1, 2)]
    assert describe_meta_change(anna[0], anna[1]) == "RouterOS 7.20 → 7.21"
    assert describe_meta_change(anna[1], anna[1]) is None
    assert describe_meta_change(ExportMeta(), anna[1]) is None
    rma = ExportMeta("7.20", "RB5009UPr+S+", "HCY0000", "AAAA-BBBB")
    assert describe_meta_change(anna[1], rma) == (
        "RouterOS 7.21 → 7.20; hardware replaced: RB5009UPr+S+ (serial HCY086PZ6XZ → HCY0000)"
    )


# ---------------------------------------------------------------------------------- undated_hash

# Written apart from routeros' own pattern: a header date in either format, then a version.
DATED = re.compile(rb"# (?:[a-z]{3}/\d{2}/\d{4}|\d{4}-\d{2}-\d{2}) \d{2}:\d{2}:\d{2}(?= by RouterOS \d)")


def redate(data: bytes, rng: random.Random) -> bytes:
    """`data` with other digits (and month) in its header's date, in the same format."""
    stamp = DATED.match(data)
    assert stamp is not None
    other = bytes(rng.choice(b"0123456789") if c in b"0123456789" else c for c in stamp[0])
    if other[2:3].isalpha():
        other = other[:2] + rng.choice([b"jan", b"feb", b"dec"]) + other[5:]
    return other + data[stamp.end():]


def judged(data: bytes) -> tuple[object, ...]:
    """Everything the service decides from an export's bytes."""
    return normalize(data), check_export(data), parse_header(data.decode("utf-8", "replace"))


def test_undated_hash_is_the_same_for_the_famous_timestamp_only_change() -> None:
    """seq-capxl-2 -> -3 differ only in the header date: recognised without normalizing."""
    assert undated_hash(raw("seq-capxl-2.rsc")) == undated_hash(raw("seq-capxl-3.rsc")) is not None
    assert undated_hash(raw("seq-capxl-1.rsc")) != undated_hash(raw("seq-capxl-2.rsc"))  # a dropped comment differs


@pytest.mark.parametrize("name", ALL)
def test_undated_hash_sees_through_the_date_and_nothing_else(name: str) -> None:
    """Every fixture with a dated header has an undated hash; another date keeps it and changes
    nothing the service decides; any other byte changed after the date changes it."""
    data = raw(name)
    digest = undated_hash(data)
    assert (digest is None) == (DATED.match(data) is None)
    if digest is None:
        return
    rng = random.Random(name)
    for _ in range(5):
        other = redate(data, rng)
        assert undated_hash(other) == digest
        assert judged(other) == judged(data)
    start = DATED.match(data).end()  # type: ignore[union-attr]
    for pos in rng.sample(range(start, len(data)), 20):
        assert undated_hash(data[:pos] + bytes([data[pos] ^ 1]) + data[pos + 1:]) != digest


@pytest.mark.parametrize("header", [
    b"# 2024-01-02 03:04:05 by RouterOS 7.15\r\n",  # both formats, with CRLF or LF
    b"# jan/02/2024 03:04:05 by RouterOS 6.49.7\n",
    b"# 2024-01-02 03:04:05 by RouterOS 7.15",  # the body goes on with the first line
])
def test_same_undated_hash_means_same_judgement_on_random_bodies(header: bytes) -> None:
    """Bodies made to trip normalization (CRs, ANSI codes, wraps, trailing blanks, control and
    invalid bytes, quotes, CLI error words) judge the same under any date of the same format."""
    pieces = [b"/ip address", b"add address=10.0.0.1/24 comment=\"a b\"", b"\\", b"    ", b"\r", b"\x1b[1m",
              b" ", b"\t", b"\x1c", b"\xe9", b"\x00", b'"', b"failure: x", b"# inactive time", b"#", b"\n",
              b"\r\n", b"set name=x", b"\xef\xbf\xbd"]
    rng = random.Random(7)
    for _ in range(300):
        body = b"".join(rng.choice(pieces) for _ in range(rng.randrange(0, 40)))
        data = header + body
        digest = undated_hash(data)
        assert digest is not None
        other = redate(data, rng)
        assert undated_hash(other) == digest
        assert judged(other) == judged(data)


@pytest.mark.parametrize("data", [
    b"/ip address\r\nadd address=10.0.0.1/24\r\n",  # no header at all
    b"# RouterOS 7.15\r\n/ip address\r\n",  # a version line without a date
    b"# 2024-01-02 03:04:05 by RouterOS x\r\n",  # not a version: the line would be kept, date and all
    b"# 2024-01-02 03:04:05 by RouterOS  7.15\r\n",
    b"\xef\xbb\xbf# 2024-01-02 03:04:05 by RouterOS 7.15\r\n",  # not at the very start
])
def test_no_undated_hash_where_the_date_is_not_dropped_with_its_line(data: bytes) -> None:
    assert undated_hash(data) is None


def test_the_two_date_formats_never_share_an_undated_hash() -> None:
    """A v6 date is one character longer than an ISO one: the same rest gives another hash."""
    rest = b" by RouterOS 7.15\r\n/ip address\r\n"
    assert undated_hash(b"# 2024-01-02 03:04:05" + rest) != undated_hash(b"# jan/02/2024 03:04:05" + rest)


# ---------------------------------------------------------------------------------- check_export


@pytest.mark.parametrize("name", ALL)
def test_every_fixture_is_accepted(name: str) -> None:
    """No real export is refused - not even those whose scripts contain `failure:` or `syntax error`.

    The two files published without a final newline get it back first; see the next test."""
    data = raw(name)
    if name in NO_FINAL_NEWLINE:
        data += b"\n"
    assert check_export(data) is None


def test_missing_final_newline() -> None:
    """RouterOS ends every export with a newline; without it the stream was cut, so it is refused.

    Exactly two fixtures lack it (files saved by an editor, not device output)."""
    assert {n for n in ALL if not raw(n).endswith(b"\n")} == NO_FINAL_NEWLINE
    for name in NO_FINAL_NEWLINE:
        assert check_export(raw(name)) == "export truncated"


def test_error_words_inside_scripts_are_not_errors() -> None:
    """CLI error words inside script sources or comments - even at the start of a wrapped
    continuation line - are content, not the device's answer."""
    assert b'    \\n    :error \\"\\\\\\$SECRET: bad command\\"' in raw("seq-capxl-1.rsc")
    export = (
        b"# 2024-01-02 12:34:56 by RouterOS 7.13\r\n"
        b"/system script\r\n"
        b'add comment="syntax error (line 1 column 5)" name=s source=":log info \\"start\\"\\\r\n'
        b"    \\nfailure: would be an error at column 0\\\r\n"
        b'    expected end of command (line 1 column 9)"\r\n'
    )
    assert check_export(export) is None


def cut_mid_line(data: bytes) -> bytes:
    at = len(data) // 2
    while data[at : at + 1] in (b"\n", b"\r") or data[at - 1 : at] in (b"\n", b"\r"):
        at += 1
    return data[:at]


def cut_after_continuation(data: bytes) -> bytes:
    match = re.search(rb"\\\r?\n", data[len(data) // 2 :])
    assert match
    return data[: len(data) // 2 + match.end()]


@pytest.mark.parametrize(
    ("output", "reason"),
    [
        (b"", "empty output"),
        (b" \r\n\t\r\n", "empty output"),
        (b"expected end of command (line 1 column 9)", "RouterOS error: expected end of command (line 1 column 9)"),
        (b"bad command name show-sensitive (line 1 column 9)\r\n",
         "RouterOS error: bad command name show-sensitive (line 1 column 9)"),
        (b"syntax error (line 1 column 5)\r\n", "RouterOS error: syntax error (line 1 column 5)"),
        (b"failure: not enough permissions\r\n", "RouterOS error: failure: not enough permissions"),
        (b"no such item (4)\r\n", "RouterOS error: no such item (4)"),
        (b"input does not match any value of value-name\r\n",
         "RouterOS error: input does not match any value of value-name"),
        (random.Random(7).randbytes(4096), "not a RouterOS export"),
        (b"Welcome to Ubuntu 22.04.3 LTS\n\n$ \n", "not a RouterOS export"),
        (b"\x00\x01/ip dns\n\x00" * 50, "not a RouterOS export"),
        (cut_mid_line(raw("seq-ccr1036-isp-1.rsc")), "export truncated"),
        (cut_mid_line(raw("seq-anna-rb5009-1.rsc")), "export truncated"),
        (cut_after_continuation(raw("seq-ccr1036-isp-1.rsc")), "export truncated"),
        (cut_after_continuation(raw("seq-capxl-1.rsc")), "export truncated"),
        (b'# 2024-01-02 12:34:56 by RouterOS 7.13\n/system identity\nset name="r1\n', "export truncated"),
    ],
    ids=[
        "empty", "whitespace", "end-of-command", "bad-command", "syntax", "failure", "no-such-item",
        "no-match", "random-bytes", "shell-banner", "binary-with-nuls", "cut-mid-line-wrapped",
        "cut-mid-line-terse", "cut-after-backslash-wrapped", "cut-after-backslash-terse",
        "unterminated-quote",
    ],
)
def test_check_export_refuses(output: bytes, reason: str) -> None:
    """Output that must not be stored as a backup is refused with a specific, short reason."""
    assert check_export(output) == reason


def test_error_after_partial_export_is_refused() -> None:
    """An error line at top level (not inside a value) refuses the export even after good lines."""
    data = raw("seq-tvroom-1.rsc") + b"failure: interrupted\n"
    assert check_export(data) == "RouterOS error: failure: interrupted"


# ---------------------------------------------------------------------------------- section_of


def test_section_of_wrapped_export() -> None:
    """Wrapped/verbose style: the menu path is the nearest preceding line starting with `/`."""
    lines = norm("seq-ccr1036-isp-2.rsc").splitlines()
    at = next(i for i, ln in enumerate(lines) if 'comment="CSR DESA BUNGKO"' in ln)
    assert section_of(lines, at) == "/ip firewall nat"
    assert section_of(lines, 0) == "/interface ethernet"


def test_section_of_terse_export() -> None:
    """Terse style: the path words before the verb; a bare path line (terse too) still counts."""
    lines = norm("seq-capxl-4.rsc").splitlines()
    at = next(i for i, ln in enumerate(lines) if "name=ftpserver.org" in ln)
    assert section_of(lines, at) == "/ip dns static"
    at = next(i for i, ln in enumerate(lines) if ln.startswith("/interface ethernet set [ find"))
    assert section_of(lines, at) == "/interface ethernet"
    at = next(i for i, ln in enumerate(lines) if ln.startswith("set caps-man-addresses="))
    assert lines[at - 1] == "/interface wireless cap" and section_of(lines, at) == "/interface wireless cap"


def test_section_of_edges() -> None:
    """No preceding path gives None; an index past the end clamps to the last line."""
    assert section_of(["# note", "add x=1"], 1) is None
    assert section_of(["/ip service set telnet disabled=yes"], 5) == "/ip service"
    assert section_of([], 0) is None


def synthetic_sections(rng: random.Random, sizes: list[int]) -> list[str]:
    """Sections of the given sizes: a header line (bare or terse, sometimes with a blank line
    before it) and `add` lines, some continuing on an indented line as wrapped script pieces do."""
    menus = ["/ip firewall address-list", "/ip firewall filter", "/ip dhcp-server lease", "/queue simple",
             "/system script", "/ip dns static"]
    lines = ["# leading comment", "add x=0"]  # lines above any section
    for size in sizes:
        menu = rng.choice(menus)
        if rng.random() < 0.2:
            lines.append("")
        lines.append(menu if rng.random() < 0.7 else f"{menu} add list=x address=10.0.0.{rng.randrange(255)}")
        for k in range(size):
            lines.append(f"add address=10.{k >> 8 & 255}.{k & 255}.1 list=l{k % 7}")
            if rng.random() < 0.05:
                lines.append("    \\n:log info x")
    return lines


def test_sections_match_walking_back_on_every_fixture() -> None:
    """Every line of every real export gets the same section from the index as by walking back."""
    for name in ALL:
        lines = norm(name).splitlines()
        index = Sections(lines)
        assert [index.of(i) for i in range(len(lines) + 2)] == [walk_back_section(lines, i) for i in range(len(lines) + 2)], name


@pytest.mark.parametrize("seed", range(20))
def test_sections_match_walking_back_on_random_lookups(seed: int) -> None:
    """Lookups in order (as hunks come), repeated, backwards and past the end, in big and small
    sections, above the first section and on blank lines, all agree with walking back."""
    rng = random.Random(seed)
    lines = synthetic_sections(rng, [rng.choice((0, 1, 3, 40, 2000)) for _ in range(rng.randrange(1, 12))])
    picks = sorted(rng.randrange(-2, len(lines) + 3) for _ in range(300))
    picks += picks[-5:] + rng.sample(picks, 50)  # the same again, then out of order
    index = Sections(lines)
    assert [index.of(i) for i in picks] == [walk_back_section(lines, i) for i in picks]


def test_sections_in_one_big_section() -> None:
    """50,000 lines under one header: every lookup far below it still names it, and a line of the
    next section names the next one."""
    lines = ["/ip firewall address-list"] + [f"add address=10.0.{k >> 8 & 255}.{k & 255} list=big" for k in range(50_000)]
    lines += ["/ip firewall filter", "add chain=input action=drop"]
    index = Sections(lines)
    assert {index.of(k) for k in range(0, 50_001, 97)} == {"/ip firewall address-list"}
    assert index.of(50_001) == index.of(50_002) == "/ip firewall filter"
    assert index.of(40_000) == "/ip firewall address-list"  # backwards after a later lookup


def test_sections_empty_and_blank() -> None:
    """No lines, only blank lines, and a blank line between sections."""
    assert Sections([]).of(0) is None
    assert Sections(["", ""]).of(1) is None
    index = Sections(["/ip dns", "set servers=1.1.1.1", "", "/ip route", "add gateway=10.0.0.1"])
    assert [index.of(i) for i in range(5)] == ["/ip dns", "/ip dns", "/ip dns", "/ip route", "/ip route"]


# ---------------------------------------------------------------------------------- redaction

# Counts of non-empty values per SOURCES.md where it counts config-level properties only.
SOURCES_COUNTS = {
    "v6-rb1100ahx2-isp-hotspot.rsc": 187,
    "seq-ccr1036-isp-1.rsc": 123,
    "seq-ccr1036-isp-3.rsc": 126,
    "v6-rb1100hx2-ver-6.48.rsc": 2,
    "v6-6.34-no-model-eoip-pptp.rsc": 1,
    "seq-sara-951-1.rsc": 2,  # wpa-pre-shared-key + wpa2-pre-shared-key
    "v6-hap-lite-951-verbose-wrapped.rsc": 2,
}


def test_independent_secret_finder_agrees_with_sources() -> None:
    """The test's own secret finder counts what SOURCES.md counts, so it can judge redact()."""
    for name, count in SOURCES_COUNTS.items():
        assert len(secrets_in(norm(name))[0]) == count, name


WITH_SECRETS = [n for n in ALL if secrets_in(norm(n))[0]]


def test_fixtures_with_secrets_are_found() -> None:
    """Every fixture SOURCES.md marks `YES` has secrets for the redaction test to look for."""
    assert set(WITH_SECRETS) >= {
        "v6-6.34-no-model-eoip-pptp.rsc", "v6-hap-ac-rb962-mikrouter-terse.rsc",
        "v6-hap-lite-951-compact-wrapped.rsc", "v6-hap-lite-951-verbose-wrapped.rsc",
        "v6-rb1100ahx2-isp-hotspot.rsc", "v6-rb1100hx2-ver-6.48.rsc", "v6-wap-ac-livingroom-terse.rsc",
        "v7-chr-terse.rsc", "seq-anna-rb5009-1.rsc", "seq-capxl-1.rsc", "seq-ccr1036-isp-1.rsc",
        "seq-sara-951-1.rsc",
    }


@pytest.mark.parametrize("name", WITH_SECRETS)
def test_redact_leaves_no_secret_value(name: str) -> None:
    """No secret value (4+ chars) survives redaction, except where the same string is also a
    non-secret part of the config (e.g. a PPP secret whose password equals its name)."""
    text = norm(name)
    values, rest = secrets_in(text)
    redacted = redact(text, KEY)
    for value in {v for v in values if len(v) >= 4}:
        assert redacted.count(value) <= rest.count(value), value
    assert "<redacted:" in redacted


def test_redact_keeps_everything_else() -> None:
    """Redaction rewrites only lines holding secrets; every other line is byte-identical."""
    for name in ("v6-rb1100ahx2-isp-hotspot.rsc", "seq-capxl-1.rsc"):
        text = norm(name)
        lines, redacted = text.splitlines(), redact(text, KEY).splitlines()
        assert len(lines) == len(redacted)
        for before, after in zip(lines, redacted):
            if before != after:
                assert secrets_in(before)[0] or re.search(r"(?i)key=|token", before), before[:120]
        assert sum(b != a for b, a in zip(lines, redacted)) <= len(secrets_in(text)[0]) + 10


def fp(value: str, key: bytes = KEY) -> str:
    return fingerprint(value, key)


def test_fingerprint_tracks_changes_and_same_values() -> None:
    """A changed password shows a different fingerprint, the same one the same; the key matters."""
    a = redact("/ppp secret\nadd name=u1 password=hunter22\nadd name=u2 password=hunter22\n", KEY)
    b = redact("/ppp secret\nadd name=u1 password=hunter23\n", KEY)
    fingerprints = re.findall(r"<redacted:([0-9a-f]{8})>", a + b)
    assert fingerprints[0] == fingerprints[1] != fingerprints[2]
    assert redact("password=hunter22", b"other key") != redact("password=hunter22", KEY)
    assert f"password={fp('hunter22')}" in a


def test_fixture_shared_passwords_share_a_fingerprint() -> None:
    """In ccr1036-isp, PPP secrets with the same password show the same fingerprint."""
    text = norm("seq-ccr1036-isp-3.rsc")
    pairs = re.findall(r"name=(\S+) password=(\S+)", text)
    redacted = dict(re.findall(r"name=(\S+) password=(<redacted:\w+>)", redact(text, KEY)))
    by_password: dict[str, set[str]] = {}
    for user, password in pairs:
        by_password.setdefault(password, set()).add(redacted[user])
    assert all(len(fps) == 1 for fps in by_password.values())
    assert len({next(iter(f)) for f in by_password.values()}) == len(by_password)


@pytest.mark.parametrize(
    ("line", "secret"),
    [
        ("/user add name=bob password=hunter22 group=full", "hunter22"),
        ('/ppp secret add name=u password="p w\\"q" service=pppoe', 'p w\\"q'),
        ("/ip hotspot user add name=h password=hspass1", "hspass1"),
        ("/interface pppoe-client add name=isp user=u password=pppoepw1", "pppoepw1"),
        ("/interface l2tp-client add connect-to=1.2.3.4 name=l2 password=l2tppw1 user=u", "l2tppw1"),
        ("/interface sstp-client add connect-to=1.2.3.4 name=s password=sstppw1 user=u", "sstppw1"),
        ("/interface ovpn-client add connect-to=1.2.3.4 name=o password=ovpnpw1 user=u", "ovpnpw1"),
        ("/interface pptp-client add connect-to=1.2.3.4 name=p password=pptppw1 user=u", "pptppw1"),
        ("/interface wireless security-profiles add name=p wpa-pre-shared-key=wpapsk11", "wpapsk11"),
        ("/interface wireless security-profiles add name=p wpa2-pre-shared-key=wpa2psk1", "wpa2psk1"),
        ("/interface wifi security add name=s passphrase=wifipass1", "wifipass1"),
        ('/interface wifi set [ find default-name=wifi1 ] security.passphrase="dotted pass" .ssid=x', "dotted pass"),
        ("/caps-man security add name=s passphrase=capspass1", "capspass1"),
        ("/ip ipsec identity add peer=p secret=ipsecsec1", "ipsecsec1"),
        ("/interface l2tp-server server set enabled=yes ipsec-secret=l2tpsec1 use-ipsec=yes", "l2tpsec1"),
        ("/interface wireguard peers add interface=wg preshared-key=\"psk+/=\" public-key=\"pub=\"", "psk+/="),
        ("/snmp community add name=c authentication-password=snmpauth1 security=private", "snmpauth1"),
        ("/snmp community add name=c encryption-password=snmpenc1", "snmpenc1"),
        ("/radius add address=10.0.0.1 secret=radsec1 service=ppp", "radsec1"),
        ("/interface vrrp add interface=e1 name=v password=vrrppw1", "vrrppw1"),
        ("/routing ospf interface-template add auth=md5 auth-key=ospfkey1 interfaces=e1", "ospfkey1"),
        ("/routing ospf interface add authentication-key=ospfkey2 interface=e1", "ospfkey2"),
        ("/routing bgp connection add name=b tcp-md5-key=bgpmd5k1", "bgpmd5k1"),
        ('/interface wireguard add listen-port=13231 name=wg private-key="aGVsbG8gd29ybGQ="', "aGVsbG8gd29ybGQ="),
        ("/tool e-mail set address=smtp.example.com password=mailpw11 user=me", "mailpw11"),
        ('/system script add name=f source="/tool fetch url=\\"ftp://h/f\\" user=u '
         'password=\\"fetchpw1\\" upload=yes"', "fetchpw1"),
        ('/system script add name=f source=":local a 1\\r\\n/tool fetch user=u password=fetchpw2;\\r\\n"', "fetchpw2"),
        ('/system script add name=t source=":global TelegramToken \\"123456:ABCdef\\"\\r\\n:local x 1"',
         "123456:ABCdef"),
        ('/system script add name=t source="\\n:local GoogleDNSPassword \\"p3cM5Ao\\"\\r\\n"', "p3cM5Ao"),
        ("/ip cloud advanced set api-token=tok12345", "tok12345"),
        ("/tool romon set enabled=yes secrets=romonsec1", "romonsec1"),
        ("/interface wireless security-profiles set [ find default=yes ] static-key-0=wepkey01", "wepkey01"),
    ],
)
def test_redact_each_secret_kind(line: str, secret: str) -> None:
    """Each secret kind the brief lists is replaced by its keyed fingerprint, nothing else changes."""
    token = next(t for t in (f'\\"{secret}\\"', f'"{secret}"', secret) if t in line)
    assert redact(line, KEY) == line.replace(token, fp(secret), 1)


@pytest.mark.parametrize(
    "line",
    [
        '/interface wireguard peers add interface=wg public-key="cGVlcg==" allowed-address=0.0.0.0/0',
        "/ip ssh set host-key-size=4096 host-key-type=ed25519",
        "/certificate add name=ca key-size=2048 key-usage=key-cert-sign",
        "/interface wireless security-profiles add name=p authentication-types=wpa2-psk allow-sharedkey=no",
        "/interface wireless security-profiles set [ find default=yes ] static-transmit-key=key-0",
        "/ppp secret add name=u1 password=\"\" profile=default",
        "/user add name=admin group=full",
        '/system script add name=s source=":local pass \\"\\"\\r\\n:local halfPass [:pick \\$p 0 4]"',
        '/system script add name=s source="/tool fetch user=u password=\\"\\" url=x"',
        "/snmp community set [ find default=yes ] authentication-password=\"\"",
    ],
)
def test_redact_leaves_non_secrets_and_empty_values(line: str) -> None:
    """public-key, key-size, name=, empty values (`password=""`) and expressions are untouched."""
    assert redact(line, KEY) == line


def test_secret_names_have_one_home() -> None:
    """bot.routeros.redact redacts with bot.core.secrets' pattern, the one the log scrubber uses too."""
    from bot.core import logs, secrets
    from bot.routeros import redact as redact_module

    assert redact_module.SECRET_PROPERTY is secrets.SECRET_PROPERTY is logs.SECRET_PROPERTY
    assert secrets.SECRET_PROPERTY.search("x password=abcd")


def test_oxidized_header_gives_the_version_its_date_line_lost() -> None:
    """Oxidized drops the export's date line (so its history has no version there) but keeps
    `/system package update print` above it: the version is read from `installed-version`."""
    raw = b"#  installed-version: 6.48.3\n#     latest-version: 6.49.18\n# software id = AB12-CD34\n#\n" \
          b"# model = RBD53iG-5HacD2HnD\n/system identity\nset name=r1\n"
    assert parse_header(raw.decode()) == ExportMeta("6.48.3", "RBD53iG-5HacD2HnD", None, "AB12-CD34")
    dated = raw.replace(b"# software", b"# 2024-01-02 12:34:56 by RouterOS 7.12\n# software")
    assert parse_header(dated.decode()).ros_version == "7.12"  # the export's own header line wins
