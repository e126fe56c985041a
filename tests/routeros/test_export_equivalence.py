"""check_and_normalize, normalize and check_export are written for speed (C-level passes over a
day's exports); this proves them identical to the plain line-by-line version they replaced (kept
below as the reference) on every fixture, on the simulator's exports and on random bytes made to
hit every rule: CRs alone and in runs, ANSI codes, wrapped lines, trailing blanks of every kind,
NULs, invalid UTF-8, header and noise comments, CLI errors, cut lines and quotes."""

from __future__ import annotations

import random
import re

import pytest

from bot.routeros import export as routeros
from bot.ssh.simulator import SimDevice
from tests.helpers import ALL, FIXTURES

_ANSI = re.compile(r"\x1b\[[0-?]*[ -/]*[@-~]")
_WRAP = "\\\n    "


def reference_lines(raw: bytes | str) -> list[str]:
    if isinstance(raw, bytes):
        text = raw.replace(b"\r\n", b"\n").decode("utf-8", errors="replace")
    else:
        text = raw.replace("\r\n", "\n")
    if "\x1b" in text:
        text = _ANSI.sub("", text)
    if "\r" in text:
        while "\r\n" in text:
            text = text.replace("\r\n", "\n")
        text = text.replace("\r", "\n")
    text = "\n".join([line.rstrip() for line in text.split("\n")])
    return text.replace(_WRAP, "").split("\n")


def reference_normalized(lines: list[str]) -> str:
    kept = [line for line in lines if line and not routeros._dropped(line)]
    return "\n".join(kept) + "\n" if kept else ""


def reference_refusal(raw: bytes, lines: list[str]) -> str | None:
    if not raw.strip():
        return "empty output"
    for line in lines:
        if routeros._CLI_ERROR.fullmatch(line):
            return f"RouterOS error: {line.strip()}"
    text = "\n".join(lines)
    if "\x00" in text or text.count("\ufffd") > len(text) // 100:
        return "not a RouterOS export"
    if not any(routeros._EXPORT_HEADER.fullmatch(line) or routeros._MENU_LINE.fullmatch(line) for line in lines):
        return "not a RouterOS export"
    if not raw.rstrip(b" \t").endswith(b"\n"):
        return "export truncated"
    last = next(line for line in reversed(lines) if line)
    if last.endswith("\\") or '"' in routeros._QUOTED.sub("", last):
        return "export truncated"
    return None


def reference_header(text: str) -> object:
    found: dict[str, str | None] = {}
    version = None
    for line in reference_lines(text[:4096]):
        if not line:
            continue
        if not line.startswith("#"):
            break
        if version is None and (m := routeros._VERSION_LINE.fullmatch(line)):
            version = m.group(1)
        elif m := routeros._META_LINE.fullmatch(line):
            found[m.group(1)] = m.group(2).strip() or None
    return routeros.ExportMeta(version, found.get("model"), found.get("serial number"), found.get("software id"))


def assert_same(raw: bytes) -> None:
    lines = reference_lines(raw)
    expected = (reference_refusal(raw, lines), reference_normalized(lines))
    assert routeros._lines(raw) == lines
    assert routeros.check_and_normalize(raw) == expected
    assert (routeros.check_export(raw), routeros.normalize(raw)) == expected
    text = raw.decode("utf-8", "replace")
    assert routeros.normalize(text) == reference_normalized(reference_lines(text))
    assert routeros.parse_header(text) == reference_header(text)


@pytest.mark.parametrize("name", ALL)
def test_identical_on_every_fixture(name: str) -> None:
    data = (FIXTURES / name).read_bytes()
    assert_same(data)
    assert_same(data.replace(b"\r\n", b"\n"))  # as saved by an editor
    assert_same(data.replace(b"\r\n", b"\r\r\n"))  # CR runs
    assert_same(data[: len(data) // 2])  # cut mid-way


@pytest.mark.parametrize(("version", "size"), [("7.20.1", 3_000), ("6.49.7", 40_000), ("7.20.1", 300_000)])
def test_identical_on_the_simulators_exports(version: str, size: int) -> None:
    device = SimDevice("r1", ros_version=version, size=size)
    for command in ("/export", "/export show-sensitive", "/export terse"):
        assert_same(device.export_text(command))
    device.change(3)
    assert_same(device.export_text("/export"))


PIECES = [b"/ip address", b"add address=10.0.0.1/24", b"set name=x", b"\\", b"    ", b"   ", b"\t", b" ", b"\r",
          b"\n", b"\r\n", b"\r\r\n", b"\x1b[1m", b"\x1b[0;31m", b"\x1b", b"\x0b", b"\x0c", b"\x1c", b"\x1d", b"\x1e", b"\x1f",
          b"\x00",
          b"\xe9", b"\xe2\x82", b"\xef\xbf\xbd", b"\xc2\xa0", b"\xe2\x80\x83", b"#", b"# inactive time",
          b"# 2024-01-02 03:04:05 by RouterOS 7.15", b"# software id = AB-CD", b"# channel: 5180", b"# kept",
          b"failure: x", b"bad command name export (line 1 column 2)", b"interrupted", b"invalid value for x",
          b"fa", b"in", b"no", b'"', b'comment="a b"', b"source=\"", b"\\_", b"x", b"/system script",
          b"# model = RB5009", b"# serial number = X1", b"\n/", b"\n    /", b"/"]


@pytest.mark.parametrize("seed", range(30))
def test_identical_on_random_bytes(seed: int) -> None:
    rng = random.Random(seed)
    for _ in range(300):
        assert_same(b"".join(rng.choice(PIECES) for _ in range(rng.randrange(0, 50))))


def test_identical_on_random_wrapped_exports() -> None:
    """Long runs of wrapped lines, continuations of continuations, blank and space-only lines."""
    rng = random.Random(5)
    shapes = [b"add a=1 \\\r\n    b=2\r\n", b"add a=1\\\r\n    b=2 \\\r\n    c=3\r\n", b"    \r\n", b"\\\r\n",
              b"add x=\\\r\n        y\r\n", b"add x=1 \\  \r\n    y=2\r\n", b"/ip firewall filter\r\n", b"\r\n",
              b"add x=\\\r\n    \\\r\n    z\r\n", b"add \\\r\n\r\n    w\r\n"]
    for _ in range(2000):
        assert_same(b"# 2024-01-02 03:04:05 by RouterOS 7.15\r\n"
                    + b"".join(rng.choice(shapes) for _ in range(rng.randrange(1, 30))))
