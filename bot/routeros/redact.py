"""Redaction of secret values in normalized RouterOS exports, for text others can read (Slack).

Each secret VALUE becomes `<redacted:xxxxxxxx>`, the first 8 hex digits of
HMAC-SHA256(key, value): a changed password still shows as a changed line, the same password
shows the same fingerprint, and without the key the value can be neither recovered nor
brute-forced from the fingerprint. Empty values (`password=""`) are left alone: nothing to
hide, and `""` -> `""` is informative.

Which properties and script variables are secret is data, kept in bot.core.secrets (one table
entry per name rule, each with its reason) and shared with the log scrubber.
Pure: no I/O. Works on normalized (wrap-joined) text, so a value is never split across lines.

Speed: SECRET_PROPERTY tried at every character of a big export costs ~65 ns a character (0.6 s
for 100,000 lines), and almost every attempt fails. A property match can only start in the run of
name characters right before an occurrence of one of the secret names, so those occurrences are
found first (one fast literal search per word of NAME_WORDS), and the very same regex is tried only at
the positions of those runs, left to right, as `re.sub` would: the output is identical
(tests/routeros/test_redact.py proves it against the whole-text substitution).
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Callable, Iterator

from bot.core.secrets import SECRET_PROPERTY, SECRET_VARIABLE

# Where a secret name can be: every match of a name rule (bot.core.secrets.SECRET_NAMES) holds one
# of these words, at its start or after more name characters (`static-key-0` holds `key`), so the
# run of name characters that ends at a word holds the match's start. One literal search per word,
# which re does at C speed (all of them as one alternation it would not); fewer words than rules
# (`pass` finds `password`, `passwd` and `passphrase`, `secret` finds `secrets` too), so fewer passes
# over a big export. tests/routeros/test_redact.py checks that every rule holds one.
NAME_WORDS = ("pass", "secret", "psk", "key", "token")
_NAME_WORDS = tuple(re.compile(word) for word in NAME_WORDS)


def fingerprint(value: str, key: bytes) -> str:
    """`<redacted:xxxxxxxx>`: keyed, so equal values match and the value stays unrecoverable."""
    digest = hmac.new(key, value.encode("utf-8"), hashlib.sha256).hexdigest()
    return f"<redacted:{digest[:8]}>"


def _literal(m: re.Match[str]) -> str:
    return next(v for v in (m["escaped"], m["quoted"], m["bare"]) if v is not None)


def redact(text: str, key: bytes) -> str:
    """Replace every secret value in normalized export text with its keyed fingerprint."""

    def property_value(m: re.Match[str]) -> str:
        value = _literal(m)
        if not value:
            return m.group(0)  # `password=""`: nothing to hide
        return f"{m['name']}={fingerprint(value, key)}"

    def variable_value(m: re.Match[str]) -> str:
        value = _literal(m)
        if not value or (m["bare"] is not None and value.startswith(("\\$", "$"))):
            return m.group(0)  # empty, or a reference to another variable
        return f":{m['scope']} {m['name']} {fingerprint(value, key)}"

    # SECRET_VARIABLE starts with a literal ":", which re already searches for at C speed.
    return SECRET_VARIABLE.sub(variable_value, _sub_properties(property_value, text))


def _sub_properties(replace: Callable[[re.Match[str]], str], text: str) -> str:
    """`SECRET_PROPERTY.sub(replace, text)`, trying the pattern only where a match can start.

    A match's name is `[\\w.-]` characters ending in a name rule's match, which holds a word of
    NAME_WORDS (starting at some `hit`), so it starts in the run of such characters that ends at
    `hit`. Every such position is tried once, in increasing order, after the end of the previous
    match: exactly the positions `re.sub` would find a match at, and in its order. (More hits than
    matches cost only tries.)
    """
    out: list[str] = []
    done = 0  # end of the last replacement: text before it is copied or replaced already
    tried = -1  # positions up to here were tried (or lie inside a replaced match)
    for hit in _name_hits(text):
        if hit <= tried:
            continue
        start = hit
        while start > tried + 1 and _is_name_char(text[start - 1]):
            start -= 1
        for at in range(start, hit + 1):
            found = SECRET_PROPERTY.match(text, at)
            if found is not None:
                out += (text[done:at], replace(found))
                done = found.end()
                tried = done - 1
                break
        else:
            tried = hit
    if not out:
        return text
    out.append(text[done:])
    return "".join(out)


def _is_name_char(char: str) -> bool:
    """`[\\w.-]` as re matches it on str: Unicode letters and digits, `_`, `.`, `-`."""
    return char.isalnum() or char in "_.-"


def _name_hits(text: str) -> Iterator[int]:
    """Every position where a NAME_WORDS word starts, in increasing order (overlaps included)."""
    hits: set[int] = set()
    for word in _NAME_WORDS:
        found = word.search(text)
        while found is not None:
            hits.add(found.start())
            found = word.search(text, found.start() + 1)
    return iter(sorted(hits))
