"""RouterOS export knowledge, as pure functions over text.

Owns: turning a raw `/export` into the normalized text that decides "changed" (`normalize`),
recognising an export that differs from a known one only in its header's date (`undated_hash`),
reading the header metadata (`parse_header`, `major_version`, `describe_meta_change`), choosing
the export command (`export_command`), refusing output that must not be stored as a backup
(`check_export`), and naming the menu section a line belongs to (`Sections`, `section_of`).
Redaction of secrets is bot.routeros.redact's.

No I/O, no asyncio, no clock. Every line that is dropped is dropped by one entry of a table
below, each with a one-line reason, in the style of Oxidized's `routeros.rb` post block: a new
noise line is one table entry plus one fixture.
"""

from __future__ import annotations

import hashlib
import operator
import re
from collections.abc import Sequence
from typing import Final

from bot.core.models import ExportMeta

__all__ = [
    "HEADER_RULES",
    "NOISE_RULES",
    "Sections",
    "check_and_normalize",
    "check_export",
    "describe_meta_change",
    "export_command",
    "major_version",
    "menu_path",
    "normalize",
    "parse_header",
    "release_major",
    "section_of",
    "undated_hash",
]

Rule = tuple[re.Pattern[str], str]

# Header lines: they describe the device or the moment of the export, not its configuration.
# They are dropped from the normalized text; parse_header() keeps what they say as metadata.
HEADER_RULES: Final[tuple[Rule, ...]] = (
    (re.compile(r"# [a-z]{3}/\d{2}/\d{4} \d{2}:\d{2}:\d{2} by RouterOS \S+.*"),
     "v6 / v7.1-7.9 export date: changes on every run (oxidized#2937)"),
    (re.compile(r"# \d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2} by RouterOS \S+.*"),
     "v7.10+ ISO export date, incl. 1970-01-02 on a clock never set (oxidized#2928, #3021)"),
    (re.compile(r"# RouterOS \d\S*"),
     "version line with no date (some scripts strip the date): metadata, not config"),
    (re.compile(r"# software id =.*"),
     "licence id: metadata (may be empty on CHR, trailing space on 7.10.1)"),
    (re.compile(r"# model =.*"), "board model: metadata"),
    (re.compile(r"# serial number =.*"), "board serial: metadata"),
    (re.compile(r"#"), "empty comment: the header separator, it carries nothing"),
    (re.compile(r"#\s+(?:routerboard|model|revision|serial-number|firmware-type|factory-firmware"
                r"|current-firmware|upgrade-firmware|board-name): .*"),
     "Oxidized's copy of `/system routerboard print` above the export (imported history): the board"),
    (re.compile(r"#\s+(?:channel|installed-version|latest-version|status): .*"),
     "Oxidized's copy of `/system package update print`: latest-version and status move with MikroTik's releases"),
)

# Comment lines RouterOS prints from the device's live STATE, not from its configuration.
# Keep stable config-ish ones (`# managed by CAPsMAN`, verbose `# disabled`, CHR's
# `#error exporting /ip/firewall/calea`, `# DHCP client can not run on slave ...`).
NOISE_RULES: Final[tuple[Rule, ...]] = (
    (re.compile(r"# inactive time"),
     "time-based firewall rule outside its window: flips with the time of day (oxidized#1138)"),
    (re.compile(r"# [Ii]nterface not active"),
     "dhcp-client/interface link down: flaps with the WAN link"),
    (re.compile(r"# \S+ not ready"),
     "interface (e.g. a tunnel) not up yet: link state (oxidized filter)"),
    (re.compile(r"# poe-out status: .*"),
     "PoE port state (short_circuit, voltage_on_poe-in, ...) (oxidized f9f3e758, 2f15a290)"),
    (re.compile(r"# received packet from \S+ bad format"),
     "intermittent VRRP/CARP collision notice (oxidized 36f4190b)"),
    (re.compile(r"# Firmware upgraded successfully.*"),
     "pending-reboot notice after a firmware upgrade; gone after the reboot"),
    (re.compile(r"# .*please restart the device.*"),
     "pending-restart notice for a setting; gone after the restart"),
    (re.compile(r"# channel: .*"),
     "CAPsMAN live channel/tx-power: moves by itself (seq-capxl-1 -> -2)"),
    (re.compile(r"# Warning: cpu not running at default frequency"),
     "CPU clock state (overclock/throttle), not config"),
)

_ANSI: Final = re.compile(r"\x1b\[[0-?]*[ -/]*[@-~]")
# A wrapped line ends in "\" and its continuation starts with exactly 4 spaces; RouterOS
# escapes a real leading space of a continuation as "\_", so the 4 spaces are never content.
# Joining with "" keeps the space before the "\" where there was one (notes §2c). Matched in the
# text before its lines are right-stripped, so blanks (a CR too) may follow the "\"; and a line of
# blanks only is no continuation (stripped, it does not start with the 4 spaces).
_WRAP: Final = re.compile(r"\\[^\S\n]*\n    (?=[^\S\n]*\S)")


_LONE_CR: Final = re.compile(rb"\r(?!\n)")
_ASCII_BREAKS: Final = (b"\x0b", b"\x0c", b"\x1c", b"\x1d", b"\x1e")  # str.splitlines ends lines there too
_FIRST_CHAR: Final = operator.itemgetter(slice(None, 1))


def _lines(raw: bytes | str) -> list[str]:
    """Decoded, ANSI-free, LF-only, wrap-joined, right-stripped lines (nothing dropped): what
    `"\\n".join(<the lines right-stripped>).replace("\\\\\\n    ", "").split("\\n")` gives.

    Whole-text C passes (a decode, one regex substitution, a split and a map) instead of a Python
    loop over lines: each holds the GIL for ~1 ms on a 1 MB export, which is what lets the SSH
    worker's event loop keep serving its sessions while check_and_normalize runs in a thread
    beside it (bot.ssh.collector); and normalizing a day's exports is most of that worker's CPU
    beyond SSH itself. The wraps are joined by one substitution in the text (_WRAP), not line by
    line: a big export wraps a third of its lines.
    """
    if isinstance(raw, bytes) and b"\x1b" not in raw and not _LONE_CR.search(raw):
        # What RouterOS sends: every CR ends a line, and rstrip removes it with the line's other
        # trailing blanks, exactly as turning CRLF into LF first would.
        text = raw.decode("utf-8", errors="replace")
        if raw.isascii() and not any(map(raw.__contains__, _ASCII_BREAKS)):
            # The same lines, faster: splitlines ends a line at CRLF as at LF (and at nothing else
            # in such a text), so there is no CR left for rstrip to copy each line without. It
            # drops the empty line after a last line end, which split keeps.
            joined = _WRAP.sub("", text)
            lines = list(map(str.rstrip, joined.splitlines()))
            if not joined or joined.endswith("\n"):
                lines.append("")
            return lines
    else:
        # RouterOS's CRLF first, on bytes where it is cheapest (CR and LF never occur inside a
        # UTF-8 sequence, so decoding after gives the same text).
        text = raw.replace(b"\r\n", b"\n").decode("utf-8", errors="replace") if isinstance(raw, bytes) \
            else raw.replace("\r\n", "\n")
        if "\x1b" in text:
            text = _ANSI.sub("", text)
        if "\r" in text:
            while "\r\n" in text:  # CR CR LF too: any run of CRs before a LF is one line end
                text = text.replace("\r\n", "\n")
            text = text.replace("\r", "\n")
    # Stripping after the joins strips each joined line where its last continuation ends.
    return list(map(str.rstrip, _WRAP.sub("", text).split("\n")))


_DROP_RULES: Final = HEADER_RULES + NOISE_RULES


def _dropped(line: str) -> bool:
    return line.startswith("#") and any(rx.fullmatch(line) for rx, _ in _DROP_RULES)


def normalize(raw: bytes | str) -> str:
    """The text that decides "changed": config lines only, joined, stable, ending in one LF."""
    return _normalized(_lines(raw))


def _normalized(lines: list[str]) -> str:
    kept = list(filter(None, lines))
    # Only comment lines can be dropped: look at those alone (they are few), found in a string of
    # every line's first character.
    firsts = "".join(map(_FIRST_CHAR, kept))
    dropped, at = [], firsts.find("#")
    while at >= 0:
        if _dropped(kept[at]):
            dropped.append(at)
        at = firsts.find("#", at + 1)
    for i in reversed(dropped):
        del kept[i]
    return "\n".join(kept) + "\n" if kept else ""


_VERSION_LINE: Final = re.compile(r"#(?: .*? by)? RouterOS (\d+(?:\.\d+)*\S*)(?: .*)?")
_META_LINE: Final = re.compile(r"# (software id|model|serial number) =(.*)")
_INSTALLED_LINE: Final = re.compile(r"#\s+installed-version: (\d+(?:\.\d+)*\S*)")  # Oxidized, when it cut the date line
_HEADER_SPAN: Final = 4096  # the header is 5 short lines; never scan a whole 1 MB export for it


def parse_header(text: str) -> ExportMeta:
    """Version, model, serial and software id from the leading comment block; None if absent."""
    found: dict[str, str | None] = {}
    version = None
    head = text[:_HEADER_SPAN]
    # A line starting with "/" is the first menu line: it ends the block, and no line before it
    # can continue onto it (a continuation starts with spaces). What follows it is never read.
    menu = head.find("\n/")
    for line in _lines(head if menu < 0 else head[:menu + 2]):
        if not line:
            continue
        if not line.startswith("#"):
            break  # the header is the leading run of comment lines
        if version is None and (m := _VERSION_LINE.fullmatch(line)):
            version = m.group(1)
        elif m := _META_LINE.fullmatch(line):
            found[m.group(1)] = m.group(2).strip() or None
        elif m := _INSTALLED_LINE.fullmatch(line):
            found.setdefault("installed", m.group(1))
    return ExportMeta(
        ros_version=version or found.get("installed"),
        model=found.get("model"),
        serial=found.get("serial number"),
        software_id=found.get("software id"),
    )


_RESOURCE_VERSION: Final = re.compile(r"^\s*(?:installed-)?version:\s*(\d+)\.", re.MULTILINE)
_HEADER_VERSION: Final = re.compile(r"^#(?: .*? by)? RouterOS (\d+)\.", re.MULTILINE)


def major_version(text: str) -> int | None:
    """Major RouterOS version from `/system resource print` output or an export header."""
    text = "\n".join(_lines(text))
    m = _RESOURCE_VERSION.search(text) or _HEADER_VERSION.search(text)
    return int(m.group(1)) if m else None


_RELEASE_MAJOR: Final = re.compile(r"(\d+)(?:\.\d|$)")


def release_major(version: str | None) -> int | None:
    """7 for "7.20.1" (a header's `ExportMeta.ros_version`); None if missing or garbled."""
    m = _RELEASE_MAJOR.match(version or "")
    return int(m.group(1)) if m else None


def export_command(major: int | None) -> str:
    """v7 hides secrets unless asked; v6 has no `show-sensitive` and answers it with an error
    (oxidized#2427 stored those errors as empty backups), so only ask for it on 7+."""
    return "/export show-sensitive" if major is not None and major >= 7 else "/export"


# What the RouterOS CLI answers instead of an export. Matched only at the start of a joined
# line, where a real export has a menu path, a command or a comment - never inside a script
# source or a quoted value, which always sit after `source=` on the same joined line.
_CLI_ERRORS: Final = ("bad command name", "expected end of command", "expected command name", "syntax error",
                       "no such item", "no such command", "input does not match any value", "invalid value",
                       "ambiguous value", "not enough permissions", "action timed out", "interrupted")
_CLI_ERROR: Final = re.compile(rf"(?:failure:|(?:{'|'.join(_CLI_ERRORS)})\b).*")
# Their first two characters: lines that start otherwise (nearly all) need no regex.
_CLI_ERROR_STARTS: Final = frozenset(["fa", *(error[:2] for error in _CLI_ERRORS)])
_FIRST_TWO: Final = operator.itemgetter(slice(None, 2))
_EXPORT_HEADER: Final = re.compile(r"#.* by RouterOS \d|# RouterOS \d")
_MENU_LINE: Final = re.compile(r"/[a-z][a-z0-9-]*(?:[ /][a-z0-9-]+)*(?: .*)?")
_QUOTED: Final = re.compile(r'"(?:\\.|[^"\\])*"')


def check_export(raw: bytes) -> str | None:
    """A short reason why this output must NOT be stored as a backup, or None if it may."""
    return _refusal(raw, _lines(raw))


def check_and_normalize(raw: bytes) -> tuple[str | None, str]:
    """`(check_export(raw), normalize(raw))` from one pass over the lines: every export collected
    needs both, and splitting a 1 MB export into lines is most of what either costs."""
    lines = _lines(raw)
    return _refusal(raw, lines), _normalized(lines)


# The date and time at the start of an export: either header format (HEADER_RULES), only where the
# line goes on with a version, so that the rule drops the whole line.
_DATED_START: Final = re.compile(rb"# (?:[a-z]{3}/\d{2}/\d{4}|\d{4}-\d{2}-\d{2}) \d{2}:\d{2}:\d{2}(?= by RouterOS \d)")


def undated_hash(raw: bytes) -> str | None:
    """sha256 (hex) of an export without the date and time its first line starts with; None if it
    does not start with one.

    Two exports with the same undated hash differ at most in those digits, which normalization
    drops with the line they are on (HEADER_RULES): so they normalize to the same text, pass or
    fail the same checks and have the same header. The daily export of an unchanged router is
    recognised by this one C-speed pass instead of being normalized again. The date's length is
    hashed too, so both texts also have the same length (check_export counts characters).
    """
    start = _DATED_START.match(raw)
    if start is None:
        return None
    digest = hashlib.sha256(b"%d\n" % start.end())
    digest.update(memoryview(raw)[start.end():])
    return digest.hexdigest()


def _refusal(raw: bytes, lines: list[str]) -> str | None:
    if not raw or raw.isspace():
        return "empty output"
    if _CLI_ERROR_STARTS.intersection(map(_FIRST_TWO, lines)):
        for line in lines:
            if line[:2] in _CLI_ERROR_STARTS and _CLI_ERROR.fullmatch(line):
                return f"RouterOS error: {line.strip()}"
    # Binary: NULs or >1% undecodable bytes. Normalizing neither adds nor drops a NUL or a U+FFFD,
    # so they are counted in the bytes where that is cheaper, and only ASCII cannot hold a U+FFFD.
    if b"\x00" in raw:
        return "not a RouterOS export"
    if not raw.isascii():
        text = "\n".join(lines)
        if text.count("\ufffd") > len(text) // 100:
            return "not a RouterOS export"
    if not any(_EXPORT_HEADER.fullmatch(line) or _MENU_LINE.fullmatch(line) for line in lines):
        return "not a RouterOS export"
    if not raw.rstrip(b" \t").endswith(b"\n"):
        return "export truncated"  # cut mid-line: RouterOS always ends with a newline
    last = next(line for line in reversed(lines) if line)
    if last.endswith("\\") or '"' in _QUOTED.sub("", last):
        return "export truncated"  # cut after a wrapped line or inside a quoted value
    return None


def _serials(old: str, new: str) -> str:
    """`E729… → HF30…`: enough to tell them apart, whole if the 4-char prefixes are the same."""
    if old[:4] == new[:4]:
        return f"{old} → {new}"
    return f"{old[:4]}… → {new[:4]}…"


def describe_meta_change(old: ExportMeta, new: ExportMeta) -> str | None:
    """A human note on what changed in the header (upgrade, hardware swap); None if nothing.

    Only values known on both sides are compared: a missing value is not a change.
    """
    notes = []
    if old.ros_version and new.ros_version and old.ros_version != new.ros_version:
        notes.append(f"RouterOS {old.ros_version} → {new.ros_version}")
    model_changed = bool(old.model and new.model and old.model != new.model)
    serial_changed = bool(old.serial and new.serial and old.serial != new.serial)
    if model_changed or serial_changed:
        model = f"{old.model} → {new.model}" if model_changed else new.model
        serial = f"serial {_serials(old.serial, new.serial)}" if old.serial and new.serial else None
        if model and serial_changed:
            notes.append(f"hardware replaced: {model} ({serial})")
        else:
            notes.append(f"hardware replaced: {model if model_changed else serial}")
    elif old.software_id and new.software_id and old.software_id != new.software_id:
        notes.append(f"software id {old.software_id} → {new.software_id}")
    return "; ".join(notes) or None


# Command verbs that end the menu path in a terse line (`/ip firewall filter add ...`).
_VERBS: Final = frozenset(
    ["add", "set", "remove", "unset", "move", "enable", "disable", "comment", "edit", "export", "import", "print",
     "reset"]
)


def menu_path(line: str) -> str:
    """`/ip firewall filter` from `/ip firewall filter add chain=input ...` (or the bare path)."""
    path: list[str] = []
    for word in line.split(" "):
        if word in _VERBS or "=" in word or word.startswith(("[", '"')):
            break
        path.append(word)
    return " ".join(path)


class Sections:
    """The menu path of any line of one export, from a single pass over its lines.

    A line belongs to the nearest line at or above it that starts with `/`. Looking that up by
    walking back over the lines from each hunk was quadratic: one `/ip firewall address-list`
    header can sit 50,000 lines above the hunks under it. Here the first character of every line
    is put in one string once (in C), and a lookup is `rfind("/")` in it, back to the previous
    lookup only: hunks come in order, so all lookups together scan the lines once.
    """

    def __init__(self, lines: Sequence[str]) -> None:
        self._lines = lines
        self._firsts: str | None = None  # made by the first lookup
        self._asked = -1  # the index of the previous lookup, and the header found for it
        self._header = -1
        self._names: dict[int, str] = {}

    def of(self, index: int) -> str | None:
        """The menu path that line `index` belongs to; an index past the end clamps to the last line."""
        index = min(index, len(self._lines) - 1)
        if index < 0:
            return None
        if self._firsts is None:
            firsts = "".join(map(_FIRST_CHAR, self._lines))
            if len(firsts) != len(self._lines):  # an empty line has no first character: keep places
                firsts = "".join(line[:1] or " " for line in self._lines)
            self._firsts = firsts
        since = self._asked + 1 if 0 <= self._asked <= index else 0
        header = self._firsts.rfind("/", since, index + 1)
        if header < 0 and since:
            header = self._header  # no header since the previous lookup: the same section
        self._asked, self._header = index, header
        if header < 0:
            return None
        if header not in self._names:
            self._names[header] = menu_path(self._lines[header])
        return self._names[header]


def section_of(lines: Sequence[str], index: int) -> str | None:
    """The menu path (e.g. `/ip firewall filter`) that normalized line `index` belongs to.

    One lookup; for many lookups in the same lines build one `Sections` and ask it.
    """
    return Sections(lines).of(index)
