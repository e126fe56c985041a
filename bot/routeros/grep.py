"""Searching normalized RouterOS configs line by line (like `grep -n -C2`), and the history of the
matching lines across a device's versions ("blame"). PURE: bytes in, hits out; no I/O.

What matches: a line that contains the pattern (plain text, the default), or in which the regular
expression (Python `re`, `-E` or a `regex:` prefix) matches somewhere; `-i` ignores case. A line is a
line of the normalized config (bot.routeros.export.normalize): wrapped lines are joined, so a match
is never split across a `\\` continuation, and line numbers are those `backupbot show ID` prints.
`^` and `$` are the line's start and end; nothing matches across lines.

Speed (benchmarks/grep_speed.py): a fleet search reads every device's latest config, hundreds of
MB, so the work per byte has to be C's, as in grep, and Python's only per line found:
- a plain pattern, and a regex with a run of literal characters every match must contain
  (`dst-port=\\d+,8291` must contain `dst-port=`; groups and exact repeats count: `(x{2})` is
  `xx`), is looked for in the UTF-8 text: by memchr for its byte rarest in RouterOS exports (the
  `x` of `winbox`; both cases of it with -i), as GNU grep does, until that byte proves common in
  the config; then by bytes.find, or re's own scan when the literal's first byte is rare. Only
  the lines found are decoded and, for a regex, matched by `re`. With -i a candidate is compared
  lowercased, or the text lowercased when that is needed (exact when it is ASCII: RouterOS escapes
  other bytes in exports).
- a regex that starts with a literal found in many lines (`address=10\\.1[0-9]{2}`), and any other
  regex, runs over the whole text at once (MULTILINE). A match found so is the line's own if no
  match of the regex can hold a line break (`in_line`: no `\\s`, `[^x]`, `(?s).`); otherwise its
  line is matched again on its own. A regex whose result could depend on the neighbouring lines
  (\\A, \\Z, lookarounds, atomic groups, possessive repeats) is tried on every line instead:
  slower, never wrong.
- past the lines listed, the rest are counted in one call in C: the literal's occurrences, or the
  matches of `(?:REGEX)[^\\n]*\\n?` (one per line) for an `in_line` regex.

Python's `re` cannot be interrupted: a pattern that backtracks catastrophically (`(a+)+$` against a
long line of "a"s) runs practically forever. Callers run scan() in a process they can kill
(bot.backup.grepworker); this module only bounds the pattern's length.
"""

from __future__ import annotations

import bisect
import functools
import itertools
import json
import operator
import re
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Final, Generic, TypeVar

from bot.core.errors import UserError
from bot.core.models import Version
from bot.routeros.export import Sections, menu_path

__all__ = [
    "CONTEXT",
    "MAX_PATTERN",
    "Found",
    "Hit",
    "LineHistory",
    "LineIndex",
    "Matcher",
    "Query",
    "Span",
    "blame",
    "compile_query",
    "scan",
]

MAX_PATTERN: Final = 200  # characters: a search is typed, and a long regex is a slow one
CONTEXT: Final = 2  # lines shown either side of a matching line
_MIN_LITERAL: Final = 3  # bytes: a shorter required literal finds too many candidate lines to pay
REGEX_PREFIX: Final = "regex:"

Text = TypeVar("Text", str, bytes)  # a config, decoded or not
Spans = tuple[tuple[int, int], ...]  # (start, end) of each match in a line


@dataclass(frozen=True)
class Query:
    """What to look for. `regex:` in front of the pattern is the same as regex=True."""

    pattern: str
    regex: bool = False
    ignore_case: bool = False

    @classmethod
    def of(cls, text: str, *, regex: bool = False, ignore_case: bool = False) -> Query:
        if text.startswith(REGEX_PREFIX):
            return cls(text[len(REGEX_PREFIX):], True, ignore_case)
        return cls(text, regex, ignore_case)

    def describe(self) -> str:
        """`“winbox”`, `regex “dst-port=\\d+”`, with `(ignoring case)` when -i."""
        kind = "regex " if self.regex else ""
        case = " (ignoring case)" if self.ignore_case else ""
        return f"{kind}“{self.pattern}”{case}"


@dataclass(frozen=True)
class Matcher:
    """A compiled Query (compile_query): how scan() finds its lines."""

    query: Query
    regex: re.Pattern[str]  # matches a line (also run over a whole text: MULTILINE)
    literal: bytes | None  # every matching line contains these bytes (lowercase if `fold`)
    fold: bool  # `literal` is compared ignoring ASCII case
    exact: bool  # finding `literal` in a line is the match (plain text): no `re` needed
    line_safe: bool  # a search over the whole text finds every matching line (see module doc)
    bregex: re.Pattern[bytes] | None  # the same on bytes, for ASCII texts (see _bytes_regex)
    # Each match of `bregex` over a whole text lies within one line, which therefore matches: no
    # line found so needs checking, and `counter` counts the matching lines from a line's start on.
    in_line: bool = False
    counter: re.Pattern[bytes] | None = None
    prefix: bool = False  # the regex starts with `literal`: re's own search looks for it, as quickly
    rare: int = -1  # where in `literal` its byte least common in RouterOS exports is, if that is rare
    twice: re.Pattern[bytes] | None = None  # a line that holds `literal` twice (plain text)


def compile_query(query: Query) -> Matcher:
    """The Matcher for `query`; UserError with a clear message for a pattern that can't be used."""
    pattern = query.pattern
    if not pattern:
        raise UserError("Search for what? Give a pattern: plain text, or a regular expression with -E.")
    if len(pattern) > MAX_PATTERN:
        raise UserError(f"The pattern is {len(pattern):,} characters long; at most {MAX_PATTERN} are allowed.")
    if "\n" in pattern or "\r" in pattern:
        raise UserError("A pattern is matched against one line at a time: it can't contain a line break.")
    flags = re.MULTILINE | (re.IGNORECASE if query.ignore_case else 0)
    if not query.regex:
        literal = pattern.encode()
        fold = query.ignore_case
        if fold and not literal.isascii():
            literal_or_none: bytes | None = None  # non-ASCII case folding is re's job
        else:
            literal_or_none = literal.lower() if fold else literal
        escaped = re.escape(pattern)
        twice = (re.compile(re.escape(literal_or_none) + b"[^\n]*" + re.escape(literal_or_none))
                 if literal_or_none is not None else None)
        bregex = _bytes_regex(escaped, flags)
        return Matcher(query, re.compile(escaped, flags), literal_or_none, fold,
                       exact=literal_or_none is not None, line_safe=True, bregex=bregex, in_line=True,
                       counter=_counter(escaped, flags, bregex), twice=twice, rare=_rarest(literal_or_none, fold))
    try:
        regex = re.compile(pattern, flags)
    except re.error as exc:
        where = f" at position {exc.pos}" if exc.pos is not None else ""
        raise UserError(f"Not a valid regular expression: {exc.msg}{where}.") from None
    except (OverflowError, RecursionError):
        raise UserError("The regular expression is too complex.") from None
    literal_, fold, line_safe, in_line, prefix = _analyse(pattern, flags)
    bregex = _bytes_regex(pattern, flags)
    return Matcher(query, regex, literal_, fold, exact=False, line_safe=line_safe, bregex=bregex,
                   in_line=in_line, counter=_counter(pattern, flags, bregex) if in_line else None, prefix=prefix,
                   rare=_rarest(literal_, fold))


# The bytes of RouterOS exports, most common first, down to one in 1,000 (counted in the exports
# of tests/fixtures/routeros, normalized): a byte not here is rare in any config.
_COMMON: Final = b' etsanrdoicl=\\-pm1.20f":guhy\nwb/9$v36A784PNSC,;k5EDTRMI()LBxUF[]O}{GH!q'
_RARE_RANK: Final = 24  # a byte less common than the 24 most common ones may be rare in a config


def _rarest(literal: bytes | None, fold: bool) -> int:
    """Where in `literal` its least common byte is (both cases of it if `fold`); -1 if even that
    one is one of the most common (or there is no literal)."""
    if not literal:
        return -1

    def rank(byte: int) -> int:
        forms = {bytes([byte]), bytes([byte]).upper()} if fold else {bytes([byte])}
        return min(len(_COMMON) if (at := _COMMON.find(form)) < 0 else at for form in forms)

    ranks = [rank(b) for b in literal]
    best = max(range(len(literal)), key=ranks.__getitem__)
    return best if ranks[best] >= _RARE_RANK and (fold or len(literal) > 1) else -1


def _counter(pattern: str, flags: int, bregex: re.Pattern[bytes] | None) -> re.Pattern[bytes] | None:
    """A match, the rest of its line and its line break: one match per matching line, so
    len(findall) counts them in C. None where the pattern can't be wrapped (global inline flags
    such as `(?i)` must stay at the start)."""
    if bregex is None:
        return None
    try:
        return re.compile(b"(?:" + pattern.encode() + b")[^\n]*\n?", flags)
    except re.error:
        return None


# `\s` and `\S` are the only classes that differ between str and bytes patterns on ASCII text: str's
# `\s` also matches the ASCII separators \x1c-\x1f. (`\w`, `\d`, `\b` and case folding differ only on
# non-ASCII characters.) An escaped backslash before the "s" is a literal backslash.
_WHITESPACE_CLASS: Final = re.compile(r"(?<!\\)(?:\\\\)*\\[sS]")


def _bytes_regex(pattern: str, flags: int) -> re.Pattern[bytes] | None:
    """The pattern compiled for bytes, when it matches an ASCII text exactly as the str pattern
    matches its decoded text; None otherwise (the text is then decoded)."""
    if not pattern.isascii() or _WHITESPACE_CLASS.search(pattern):
        return None
    try:
        return re.compile(pattern.encode(), flags)
    except re.error:  # e.g. a str-only escape such as \N{...}
        return None


# Constructs that can make a match at a place in a line depend on the lines around it, when the
# pattern runs over a whole text (re's parse tree names them).
_UNSAFE: Final = frozenset({"ASSERT", "ASSERT_NOT", "ATOMIC_GROUP", "POSSESSIVE_REPEAT",
                            "AT_BEGINNING_STRING", "AT_END_STRING"})


def _analyse(pattern: str, flags: int) -> tuple[bytes | None, bool, bool, bool, bool]:
    """(required literal, whether it folds case, whether the pattern is line-safe, whether no match
    of it can hold a line break, whether it starts with the literal), from re's own parser. The
    parser is internal to `re`: if it is missing or changes shape, the answer is the slow and
    always-right one (no literal, not line-safe, may hold a line break)."""
    try:
        from re import _parser  # type: ignore[attr-defined]

        tree = _parser.parse(pattern, flags)
        fold = bool(tree.state.flags & re.IGNORECASE)
        runs: list[str] = []
        runs.append(_literal_runs(tree, runs, ""))
        safe = not any(name in _UNSAFE for name in _nodes(tree))
        in_line = safe and _no_line_break(tree, tree.state.flags)
    except Exception:  # noqa: BLE001 - an internal API: any surprise means "use the slow path"
        return None, False, False, False, False
    best = max(runs, key=lambda r: len(r.encode()))
    literal = best.encode()
    if len(literal) < _MIN_LITERAL or (fold and not literal.isascii()):
        return None, fold, safe, in_line, False
    return (literal.lower() if fold else literal), fold, safe, in_line, best is runs[0]


def _literal_runs(items: Iterable[tuple[object, Any]], runs: list[str], run: str) -> str:
    """Runs of characters every match has one after the other: `run` goes on with the leading
    literal characters of `items`, each run a non-literal ends is added to `runs`, and the run still
    open at their end is returned. A group is its contents (unless it changes flags, such as
    `(?i:...)`), and `x{4}` is `xxxx`."""
    for op, arg in items:
        name = str(op)
        if name == "LITERAL":
            run += chr(arg)
        elif name == "SUBPATTERN" and not arg[1] and not arg[2]:
            run = _literal_runs(arg[3], runs, run)
        elif (name in ("MAX_REPEAT", "MIN_REPEAT") and arg[0] >= 1 and len(arg[2]) == 1
              and str(arg[2][0][0]) == "LITERAL"):
            run += chr(arg[2][0][1]) * min(arg[0], MAX_PATTERN)
            if arg[0] != arg[1]:  # more may follow: what comes next is not right after these
                runs.append(run)
                run = ""
        else:
            runs.append(run)
            run = ""
    return run


_NEWLINE: Final = 10
# Classes (`\s`, `\D`, ...) that hold a line break; any other name is taken to hold one too.
_NO_BREAK_CATEGORIES: Final = frozenset({"CATEGORY_DIGIT", "CATEGORY_WORD", "CATEGORY_NOT_SPACE",
                                         "CATEGORY_NOT_LINEBREAK"})
_BREAK_CATEGORIES: Final = frozenset({"CATEGORY_SPACE", "CATEGORY_LINEBREAK"})
_ZERO_WIDTH: Final = frozenset({"AT", "GROUPREF"})  # a back reference repeats a group checked itself


def _no_line_break(items: Iterable[tuple[object, Any]], flags: int) -> bool:
    """Whether no match of this (parsed) pattern can contain a line break. Only what is known to be
    safe counts as safe: anything else (an opcode this does not know) answers False."""
    for op, arg in items:
        name = str(op)
        if name == "LITERAL":
            ok = arg != _NEWLINE
        elif name == "NOT_LITERAL":
            ok = arg == _NEWLINE
        elif name == "ANY":
            ok = not flags & re.DOTALL
        elif name == "IN":
            ok = _set_without_break(arg)
        elif name in ("MAX_REPEAT", "MIN_REPEAT"):
            ok = _no_line_break(arg[2], flags)
        elif name == "BRANCH":
            ok = all(_no_line_break(branch, flags) for branch in arg[1])
        elif name == "SUBPATTERN":
            _, add, remove, sub = arg
            ok = _no_line_break(sub, (flags | add) & ~remove)
        elif name == "GROUPREF_EXISTS":
            _, yes, no = arg
            ok = _no_line_break(yes, flags) and (no is None or _no_line_break(no, flags))
        else:
            ok = name in _ZERO_WIDTH
        if not ok:
            return False
    return True


def _set_without_break(items: Iterable[tuple[object, Any]]) -> bool:
    """Whether a character set (`[...]`, `[^...]`) leaves out the line break."""
    negate, holds = False, False
    for op, arg in items:
        name = str(op)
        if name == "NEGATE":
            negate = True
        elif name == "LITERAL":
            holds = holds or arg == _NEWLINE
        elif name in ("RANGE", "RANGE_UNI_IGNORE"):
            holds = holds or arg[0] <= _NEWLINE <= arg[1]
        elif name == "CATEGORY":
            if str(arg) in _BREAK_CATEGORIES:
                holds = True
            elif str(arg) not in _NO_BREAK_CATEGORIES:
                return False
        else:
            return False
    return holds if negate else not holds


def _nodes(node: object) -> Iterator[str]:
    """The names of every opcode and constant in a parse tree, sub-patterns included."""
    if type(node).__name__ == "_NamedIntConstant":
        yield str(node)
        return
    items = getattr(node, "data", node)
    if isinstance(items, (list, tuple)):
        for item in items:
            yield from _nodes(item)


# --- scanning -------------------------------------------------------------------------------------

CHECKPOINT: Final = 1 << 16  # bytes between the line numbers a LineIndex keeps


@dataclass(frozen=True)
class LineIndex:
    """Where a config's lines are, so that a match deep in a 1 MB config needs neither counting the
    lines above it nor walking back to its section's header: the line number at about every
    CHECKPOINT bytes, and where each section header ("/...") starts. Made once per file kept for
    searching (bot.backup.textcache); a search uses it only for the config it was made of (`size`)."""

    size: int
    checkpoints: tuple[tuple[int, int], ...]  # (offset of a line's start, its 0-based number)
    headers: tuple[int, ...]  # offsets of the lines that start with "/"

    @classmethod
    def of(cls, data: bytes) -> LineIndex:
        headers = [0] if data[:1] == b"/" else []
        pos = data.find(b"\n/")
        while pos >= 0:
            headers.append(pos + 1)
            pos = data.find(b"\n/", pos + 1)
        checkpoints, start, number = [(0, 0)], 0, 0
        while (nxt := data.find(b"\n", start + CHECKPOINT)) >= 0 and nxt + 1 < len(data):
            number += data.count(b"\n", start, nxt + 1)
            start = nxt + 1
            checkpoints.append((start, number))
        return cls(len(data), tuple(checkpoints), tuple(headers))

    def encode(self) -> bytes:
        return json.dumps({"size": self.size, "checkpoints": self.checkpoints, "headers": self.headers}).encode()

    @classmethod
    def decode(cls, raw: bytes | None) -> LineIndex | None:
        """None for anything but a well-formed index (the search then reads the text itself)."""
        try:
            d = json.loads(raw or b"")
            return cls(int(d["size"]), tuple((int(a), int(b)) for a, b in d["checkpoints"]),
                       tuple(int(h) for h in d["headers"]))
        except (ValueError, KeyError, TypeError):
            return None

    def line_before(self, pos: int) -> tuple[int, int]:
        """(offset, number) of the last checkpoint at or before `pos`."""
        return self.checkpoints[max(bisect.bisect_right(self.checkpoints, (pos, 1 << 62)) - 1, 0)]

    def header_at(self, pos: int) -> int:
        """The offset of the last header line starting at or before `pos`; -1 if none."""
        i = bisect.bisect_right(self.headers, pos)
        return self.headers[i - 1] if i else -1


Index = Callable[[], "LineIndex | None"]  # loads the LineIndex of the text searched, when it pays


@dataclass(frozen=True)
class Hit:
    """One matching line: 1-based number, RouterOS section (`/ip firewall filter`), the line and
    up to CONTEXT lines either side. `secret`: the line matched only in the real text, inside a value
    the shown (redacted) line hides. `spans` (when scan was asked for them): where the pattern matches
    in the line shown, for a page to highlight (none when `secret`; empty matches left out)."""

    number: int
    section: str | None
    line: str
    before: tuple[str, ...] = ()
    after: tuple[str, ...] = ()
    secret: bool = False
    spans: Spans = ()


@dataclass(frozen=True)
class Found:
    """One config searched: how many lines match, and the first of them in detail."""

    count: int
    hits: tuple[Hit, ...]


def _decode(piece: bytes) -> str:
    return piece.decode("utf-8", errors="replace")


def scan(data: bytes, matcher: Matcher, *, shown: bytes | None = None, limit: int | None = None,
         context: int = CONTEXT, index: Index | None = None, spans: bool = False) -> Found:
    """Every line of `data` (a normalized config, UTF-8) that `matcher` matches: how many, and the
    first `limit` of them (all if None) with their section and `context` lines either side. The
    lines given back come from `shown` when given: the same config as it may be shown (redacted),
    line for line. `index` loads data's LineIndex; it is called only for a match far into it."""
    lines_at = _Lazy(index, len(data)) if index is not None else None
    if matcher.exact and not matcher.fold and matcher.literal is not None:  # plain text: the bytes are all it takes
        itself = functools.partial(_same, data)
        find = _finder(data, matcher, matcher.literal, itself)
        first = find(0)
        if first < 0:
            return _NONE  # most configs, for most searches
        count, places = _lines(data, b"\n", find, None, limit, _literal_counter(itself, matcher), lines_at, first)
        return Found(count, tuple(_details(data, b"\n", b"/", places, matcher, shown, context, _decode, lines_at,
                                           spans)))
    ascii_text = data.isascii()
    bregex = matcher.bregex if ascii_text else None
    if matcher.literal is not None and (not matcher.fold or ascii_text):
        # With -i, the literal is looked for in the text lowercased (exact: RouterOS escapes any byte
        # that is not ASCII), made only if it is needed.
        hay = functools.cache(data.lower) if matcher.fold else functools.partial(_same, data)
        find = _finder(data, matcher, matcher.literal, hay)
        first = find(0)
        if first < 0:
            return _NONE  # most configs, for most searches
        if matcher.exact:
            count, places = _lines(data, b"\n", find, None, limit, _literal_counter(hay, matcher), lines_at, first)
        elif (matcher.prefix and not matcher.fold and bregex is not None and matcher.line_safe
              and _common(data, matcher.literal)):
            # The literal is in many lines (`address=`): re's search finds it and checks the rest in C.
            # The whole text by the regex, from the line the literal is first in (no match is before it).
            at = _searcher(data, bregex)
            count, places = _lines(data, b"\n", at, None if matcher.in_line else bregex.search, limit,
                                   _regex_counter(data, matcher, bregex), lines_at, at(data.rfind(b"\n", 0, first) + 1))
        else:
            regex = matcher.regex
            check: Callable[[bytes], object] = (
                bregex.search if bregex is not None else lambda line: regex.search(_decode(line)))
            at, verify = _adaptive(data, find, check, bregex if matcher.line_safe else None, matcher.in_line)
            count, places = _lines(data, b"\n", at, verify, limit, _regex_counter(data, matcher, bregex), lines_at,
                                   first)
        return Found(count, tuple(_details(data, b"\n", b"/", places, matcher, shown, context, _decode, lines_at,
                                           spans)))
    if bregex is not None and matcher.line_safe:
        count, places = _lines(data, b"\n", _searcher(data, bregex), None if matcher.in_line else bregex.search,
                               limit, _regex_counter(data, matcher, bregex), lines_at)
        return Found(count, tuple(_details(data, b"\n", b"/", places, matcher, shown, context, _decode, lines_at,
                                           spans)))
    text = _decode(data)
    at_ = _searcher(text, matcher.regex) if matcher.line_safe else (lambda pos: pos)
    same = lines_at if ascii_text else None  # byte offsets are character offsets only in ASCII
    count, places_ = _lines(text, "\n", at_, matcher.regex.search, limit, index=same)
    return Found(count, tuple(_details(text, "\n", "/", places_, matcher, shown, context, str, same, spans)))


_NONE: Final = Found(0, ())


class _Lazy:
    """A LineIndex loaded on first need, and only if it describes the text searched."""

    def __init__(self, load: Index, size: int) -> None:
        self._load, self._size = load, size
        self._index: LineIndex | None = None
        self._loaded = False

    def __call__(self) -> LineIndex | None:
        if not self._loaded:
            self._loaded = True
            index = self._load()
            self._index = index if index is not None and index.size == self._size else None
        return self._index


_SAMPLE: Final = 2048  # bytes of a config looked at to tell how common a byte or the literal is in it
_RARE: Final = 64  # a byte rarer than one in this many is rare


def _sample(hay: bytes) -> tuple[int, int]:
    """(start, end) of up to _SAMPLE bytes in the middle of a text."""
    low = max(len(hay) // 2 - _SAMPLE // 2, 0)
    return low, min(low + _SAMPLE, len(hay))


def _literal_finder(hay: bytes, literal: bytes) -> Callable[[int], int]:
    """Where `literal` next occurs in `hay`, from a position on (-1: nowhere). bytes.find skips
    ahead on the literal's last byte and is quick for a long literal; re's own scan for a literal
    (its first byte, then the rest) is up to twice as quick when that first byte is rare in the
    text (`winbox`, `,8291`): which one is decided by counting that byte in the middle of the text."""
    if len(literal) > 1:
        low, high = _sample(hay)
        if hay.count(literal[:1], low, high) * _RARE < high - low:
            return _searcher(hay, _literal_regex(literal))
    return functools.partial(hay.find, literal)


def _same(data: bytes) -> bytes:
    return data


def _finder(data: bytes, matcher: Matcher, literal: bytes, hay: Callable[[], bytes]) -> Callable[[int], int]:
    """Where the literal next occurs in `data` (`hay()`: the text it is looked for in; with -i,
    lowercased)."""
    if matcher.rare < 0:
        return _literal_finder(hay(), literal)
    return _rare_byte_finder(data, literal, matcher.rare, matcher.fold, lambda: _literal_finder(hay(), literal))


_GIVE_UP: Final = 2048  # bytes: more than one false candidate in this many, and a rare byte is not


def _rare_byte_finder(data: bytes, literal: bytes, rare: int, fold: bool,
                      otherwise: Callable[[], Callable[[int], int]]) -> Callable[[int], int]:
    """Where `literal` next occurs, found as GNU grep does: memchr (bytes.find of one byte) for its
    rarest byte, then a look at the bytes around it; with -i, for both cases of that byte. Quicker
    than any search for the whole literal when that byte is as rare in the text as the export's
    byte counts say; when it is not (a false candidate every 2 KB), `otherwise()` takes over."""
    size = len(literal)
    byte = literal[rare:rare + 1]
    forms = sorted({byte, byte.upper()}) if fold else [byte]
    nearest = dict.fromkeys(forms, -2)  # the next place of each form, as last looked up (-1: no more)
    find, startswith = data.find, data.startswith
    failed = 0
    instead: Callable[[int], int] | None = None

    def candidate(pos: int) -> int:
        best = -1
        for form in forms:
            at = nearest[form]
            if at == -1:
                continue
            if at < pos:
                at = nearest[form] = find(form, pos)
                if at < 0:
                    continue
            if best < 0 or at < best:
                best = at
        return best

    def at(pos: int) -> int:
        nonlocal failed, instead
        if instead is not None:
            return instead(pos)
        place = candidate(pos + rare)
        while place >= 0:
            start = place - rare
            if (data[start:start + size].lower() == literal) if fold else startswith(literal, start):
                return start
            failed += 1
            if failed > 8 and failed * _GIVE_UP > place:
                instead = otherwise()
                return instead(start + 1)
            place = candidate(place + 1)
        return -1

    return at


def _common(hay: bytes, literal: bytes) -> bool:
    """Whether `literal` is in the middle of the text more than once per 2 KB (more candidate lines
    than checking each in Python pays for)."""
    low, high = _sample(hay)
    return hay.count(literal, low, high) * 2048 > high - low


@functools.lru_cache(maxsize=8)
def _literal_regex(literal: bytes) -> re.Pattern[bytes]:
    return re.compile(re.escape(literal))


def _searcher(src: Text, regex: re.Pattern[Text]) -> Callable[[int], int]:
    """The start of the next match over the whole text (a candidate: its line is then checked)."""
    search = regex.search

    def at(pos: int) -> int:
        m = search(src, pos)
        return -1 if m is None else m.start()

    return at


_TRIAL: Final = 64  # candidate lines looked at before deciding whether the literal is worth it


def _adaptive(data: bytes, find: Callable[[int], int], check: Callable[[bytes], object],
              bregex: re.Pattern[bytes] | None, in_line: bool,
              ) -> tuple[Callable[[int], int], Callable[[bytes], bool]]:
    """Candidates from the required literal (`find`), checked by the regex line by line; when most of
    the first _TRIAL fail (a literal as common as `address=`) and the regex can run over the whole
    text, the rest of the text is searched by the regex itself, in C, and only its matches are
    checked (none need be if the matcher is `in_line`). Once switched, it stays so: checks that pass
    because the regex found them say nothing about the literal."""
    tried = passed = 0
    search = bregex.search if bregex is not None else None
    switched = False

    def at(pos: int) -> int:
        nonlocal switched
        if not switched and search is not None and tried >= _TRIAL and passed * 4 < tried:
            switched = True
        if switched:
            m = search(data, pos)  # type: ignore[misc]
            return -1 if m is None else m.start()
        return find(pos)

    def verify(line: bytes) -> bool:
        nonlocal tried, passed
        if switched and in_line:
            return True
        tried += 1
        ok = check(line) is not None
        passed += ok
        return ok

    return at, verify


_COUNT_BY_LINES: Final = 256  # more occurrences than this left: count line by line, in C


def _literal_counter(text: Callable[[], bytes], matcher: Matcher) -> Callable[[int], int]:
    """How many lines from `pos` on contain the literal (once the lines listed are enough): as many
    as it occurs, unless a line has it twice (then the lines are split and counted). `text()`: the
    text it is looked for in."""
    literal = matcher.literal
    twice = matcher.twice
    assert literal is not None and twice is not None

    def count(pos: int) -> int:
        hay = text()
        occurrences = hay.count(literal, pos)
        if 0 < occurrences <= _COUNT_BY_LINES:
            return -1  # few: the caller's loop is quicker
        if not occurrences or twice.search(hay, pos) is None:
            return occurrences
        return sum(map(operator.contains, hay[pos:].split(b"\n"), itertools.repeat(literal)))

    return count


def _regex_counter(data: bytes, matcher: Matcher, bregex: re.Pattern[bytes] | None) -> Callable[[int], int] | None:
    """How many lines from `pos` (a line's start) on match, in one call in C: each match of the
    matcher's `counter` is one matching line. Its last try is at the end of the text, after the
    final line break: a match there is on no line."""
    counter = matcher.counter
    if counter is None or bregex is None or not data.endswith(b"\n"):
        return None

    def count(pos: int) -> int:
        return len(counter.findall(data, pos)) - (counter.match(data, len(data)) is not None)

    return count


def _lines(src: Text, nl: Text, at: Callable[[int], int], verify: Callable[[Text], object] | None,
           limit: int | None, rest: Callable[[int], int] | None = None, index: Index | None = None,
           first: int | None = None) -> tuple[int, list[tuple[int, int, int]]]:
    """(matching lines, [(0-based number, start, end) of the first `limit`]): each candidate's line
    is checked once, then the search goes on from the next line. `rest(pos)` may count the matching
    lines from pos on at once, when no more are listed (-1: it declines). `first`: at(0), if known."""
    size = len(src)
    stop = size if src.endswith(nl) else size + 1  # a match after the final newline is on no line
    count, pos, number, counted = 0, 0, 0, 0
    places: list[tuple[int, int, int]] = []
    while pos < stop:
        if rest is not None and limit is not None and len(places) >= limit:
            more = rest(pos)
            if more >= 0:
                return count + more, places
            rest = None
        if first is not None:
            found, first = first, None
        else:
            found = at(pos)
        if found < 0 or found >= stop:
            break
        start = src.rfind(nl, 0, found) + 1
        end = src.find(nl, found)
        if end < 0:
            end = size
        if verify is None or verify(src[start:end]):
            count += 1
            if limit is None or len(places) < limit:
                if index is not None and start - counted > CHECKPOINT and (known := index()) is not None:
                    offset, at_number = known.line_before(start)
                    if offset > counted:
                        number, counted = at_number, offset
                number += src.count(nl, counted, start)
                counted = start
                places.append((number, start, end))
        pos = end + 1
    return count, places


_DENSE: Final = 32  # more matching lines than this in one config: split it into lines once


def _details(src: Text, nl: Text, slash: Text, places: list[tuple[int, int, int]], matcher: Matcher,
             shown: bytes | None, context: int, text: Callable[[Text], str], index: Index | None = None,
             spans: bool = False) -> Iterator[Hit]:
    marks = _marker(matcher, spans)
    if len(places) > _DENSE:
        yield from _dense_details(text(src), places, matcher, shown, context, marks)
        return
    section = _SectionFinder(src, nl, slash, text, index)
    cursor = _Cursor(shown) if shown is not None else None
    for number, start, end in places:
        line = text(src[start:end])
        if cursor is None:
            before, after = _around(src, nl, start, end, context, text)
            yield Hit(number + 1, section.at(start), line, before, after, spans=marks(line))
            continue
        lines = [cursor.line(n) for n in range(max(number - context, 0), number + context + 1)]
        own = min(number, context)
        visible = lines[own]
        if visible is None:
            raise ValueError(f"the shown text has no line {number + 1}: it must match the searched one line for line")
        # Matched in the real text but not in what is shown: the match is inside a hidden value.
        where = marks(visible)
        secret = not where and visible != line and matcher.regex.search(visible) is None
        yield Hit(number + 1, section.at(start), visible, tuple(x for x in lines[:own] if x is not None),
                  tuple(x for x in lines[own + 1:] if x is not None), secret, where)


def _dense_details(src: str, places: list[tuple[int, int, int]], matcher: Matcher, shown: bytes | None,
                   context: int, marks: Callable[[str], Spans]) -> Iterator[Hit]:
    """_details for many lines of one config: every line split once, sections from export.Sections."""
    lines = src.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    sections = Sections(lines)
    visible = lines if shown is None else _decode(shown).split("\n")
    if visible is not lines and visible and visible[-1] == "":
        visible.pop()
    if len(visible) < len(lines):
        raise ValueError("the shown text has fewer lines than the searched one: they must match line for line")
    search = matcher.regex.search
    for number, _, _ in places:
        line = lines[number]
        own = visible[number]
        where = marks(own)
        secret = not where and own is not line and own != line and search(own) is None
        first = number - context if number > context else 0
        yield Hit(number + 1, sections.of(number), own, tuple(visible[first:number]),
                  tuple(visible[number + 1:number + 1 + context]), secret, where)


def _marker(matcher: Matcher, spans: bool) -> Callable[[str], Spans]:
    """Where the pattern matches in a listed line (when asked: run here, in the killable child,
    never where a slow pattern could hold up the bot), or nothing."""
    finditer = matcher.regex.finditer

    def marks(line: str) -> Spans:
        return tuple(m.span() for m in finditer(line) if m.end() > m.start())

    return marks if spans else lambda _: ()


def _around(src: Text, nl: Text, start: int, end: int, context: int,
            text: Callable[[Text], str]) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """The `context` lines before the line [start, end) and after it: each side found in the text,
    then decoded and split at once."""
    first = start
    for _ in range(context):
        if first == 0:
            break
        first = src.rfind(nl, 0, first - 1) + 1
    last = end
    for _ in range(context):
        if last + 1 >= len(src):
            break
        nxt = src.find(nl, last + 1)
        last = len(src) if nxt < 0 else nxt
    before = tuple(text(src[first:start - 1]).split("\n")) if first < start else ()
    after = tuple(text(src[end + 1:last]).split("\n")) if last > end else ()
    return before, after


class _SectionFinder(Generic[Text]):
    """The menu path of the line starting at `start`: the nearest line at or above it that starts with
    "/" (bot.routeros.export.Sections' rule), found with rfind back to the previous lookup only, since
    lookups come in order: all of them together read the text once."""

    def __init__(self, src: Text, nl: Text, slash: Text, text: Callable[[Text], str],
                 index: Index | None = None) -> None:
        self._index = index
        self._src: Text = src
        self._nl: Text = nl
        self._slash: Text = slash
        self._header_mark: Text = nl + slash
        self._text: Callable[[Text], str] = text
        self._since = 0
        self._header = -1
        self._names: dict[int, str] = {}

    def at(self, start: int) -> str | None:
        src = self._src
        if src[start:start + 1] == self._slash:
            header = start
        elif self._index is not None and start - self._since > CHECKPOINT and (known := self._index()) is not None:
            header = known.header_at(start)  # instead of walking back through a long section
        else:
            found = src.rfind(self._header_mark, self._since, start)
            if found >= 0:
                header = found + 1
            elif self._since == 0:
                header = 0 if src[:1] == self._slash else -1
            else:
                header = self._header
        self._since, self._header = start, header
        if header < 0:
            return None
        if header not in self._names:
            end = src.find(self._nl, header)
            self._names[header] = menu_path(self._text(src[header:end if end >= 0 else len(src)]))
        return self._names[header]


class _Cursor:
    """Lines of a UTF-8 text by number, walking from the previous one (asked for mostly in order)."""

    def __init__(self, data: bytes) -> None:
        self._data = data
        self._number, self._start = 0, 0

    def line(self, number: int) -> str | None:
        data = self._data
        while self._number < number:
            nxt = data.find(b"\n", self._start)
            if nxt < 0 or nxt + 1 >= len(data):
                return None
            self._number, self._start = self._number + 1, nxt + 1
        while self._number > number:
            self._start = data.rfind(b"\n", 0, self._start - 1) + 1
            self._number -= 1
        end = data.find(b"\n", self._start)
        return _decode(data[self._start:end if end >= 0 else len(data)])


# --- history ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Span:
    """A line was in every version from `since` up to (not including) `until`; None: still there."""

    since: Version
    until: Version | None


@dataclass(frozen=True)
class LineHistory:
    """One distinct matching line across a device's versions (its text as shown)."""

    line: str
    section: str | None
    spans: tuple[Span, ...]
    number: int  # its line number in the last version that has it


def blame(history: Sequence[tuple[Version, Sequence[Hit]]]) -> list[LineHistory]:
    """When each matching line appeared and disappeared, from each version's hits, oldest version
    first. A line is known by its text: an edited line is one that went and another that came."""
    since: dict[str, Version] = {}
    spans: dict[str, list[Span]] = {}
    first: dict[str, tuple[int, int]] = {}  # where a line was first seen: (version index, number)
    last: dict[str, Hit] = {}
    for index, (version, hits) in enumerate(history):
        present: dict[str, Hit] = {}
        for hit in hits:
            present.setdefault(hit.line, hit)
        for line, hit in present.items():
            since.setdefault(line, version)
            first.setdefault(line, (index, hit.number))
            last[line] = hit
        for line in [x for x in since if x not in present]:
            spans.setdefault(line, []).append(Span(since.pop(line), version))
    for line, version in since.items():
        spans.setdefault(line, []).append(Span(version, None))
    return [LineHistory(line, last[line].section, tuple(spans[line]), last[line].number)
            for line in sorted(first, key=first.__getitem__)]
