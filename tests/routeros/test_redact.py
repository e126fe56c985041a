"""bot.routeros.redact tries its regex only near secret names; this proves the output identical
to the plain whole-text substitution it replaced (kept below as the reference), byte for byte,
on every fixture and on random text made to hit the regex's corners."""

from __future__ import annotations

import random
import re

import pytest

from bot.core.secrets import SECRET_NAMES, SECRET_PROPERTY, SECRET_VARIABLE
from bot.routeros.export import normalize
from bot.routeros.redact import NAME_WORDS, fingerprint, redact
from tests.helpers import ALL, FIXTURES

KEY = b"differential-key"


def reference(text: str, key: bytes) -> str:
    """redact() as it was: both patterns substituted over the whole text."""

    def literal(m: re.Match[str]) -> str:
        return next(v for v in (m["escaped"], m["quoted"], m["bare"]) if v is not None)

    def property_value(m: re.Match[str]) -> str:
        value = literal(m)
        if not value:
            return m.group(0)
        return f"{m['name']}={fingerprint(value, key)}"

    def variable_value(m: re.Match[str]) -> str:
        value = literal(m)
        if not value or (m["bare"] is not None and value.startswith(("\\$", "$"))):
            return m.group(0)
        return f":{m['scope']} {m['name']} {fingerprint(value, key)}"

    return SECRET_VARIABLE.sub(variable_value, SECRET_PROPERTY.sub(property_value, text))


@pytest.mark.parametrize("name", ALL)
def test_identical_on_every_fixture(name: str) -> None:
    """Normalized, as redact is used, and raw too (CRs, wraps and headers left in)."""
    data = (FIXTURES / name).read_bytes()
    for text in (normalize(data), data.decode("utf-8", "replace")):
        assert redact(text, KEY) == reference(text, KEY)


# Pieces that meet the regex's corners: secret names alone, with prefixes, excluded ones, names run
# into other words, values bare, quoted, escaped inside script sources (one and two levels), with
# escapes that end or do not end a bare value, empty values, variables, boundaries of every kind,
# line ends inside quotes, and non-ASCII letters (which are name characters too).
PIECES = [
    "password", "passwd", "secret", "secrets", "passphrase", "psk", "key", "token", "static-key-0",
    "static-key-", "wpa2-pre-shared-key", "security.passphrase", "ipsec-secret", "auth-key", "public-key",
    "static-transmit-key", "private-key", "monkey", "tokens", "passwords", "xkey", "é", "ß", "key1",
    "=", "==", " ", "  ", "\t", "\n", '"', '\\"', '\\\\\\"', "\\", "\\n", "\\r", "\\t", "\\_", "\\$", "\\?",
    "\\\\", ";", "[", "]", "(", ")", "{", "}", ".", "-", "_", "$x", "hunter2", "s3cr3t", "a b",
    ":global ", ":local ", "TelegramToken", "FTPPass", "myKey", "x", "add ", "set ", "source=",
    '"', "0", "9", "password=", "key=", "secret=", "psk=", "token=", "static-key-1=", "-key=", ".passphrase=",
]


@pytest.mark.parametrize("seed", range(40))
def test_identical_on_random_text(seed: int) -> None:
    rng = random.Random(seed)
    for _ in range(150):
        text = "".join(rng.choice(PIECES) for _ in range(rng.randrange(1, 60)))
        assert redact(text, KEY) == reference(text, KEY), repr(text)


def test_identical_on_lines_that_look_like_exports() -> None:
    """Many random properties per line, in the shapes RouterOS prints them."""
    rng = random.Random(11)
    names = ["password", "name", "wpa2-pre-shared-key", "comment", "public-key", "secret", "key", "token",
             "static-key-2", "private-key", "passphrase", "list", "source"]
    values = ["x", '""', '"a b"', '"q\\"uote"', "$ref", "\\$ref", '\\"inner\\"', "[find]", "10.0.0.1", "é"]
    for _ in range(2000):
        props = " ".join(f"{rng.choice(names)}={rng.choice(values)}" for _ in range(rng.randrange(1, 8)))
        line = rng.choice(["add ", "set ", '/system script add source="', ':local myKey "v"; ']) + props
        assert redact(line, KEY) == reference(line, KEY), line


def test_a_long_run_of_name_characters_is_not_quadratic() -> None:
    """A 200,000-character token full of secret names is still one pass (and still identical)."""
    text = "x" + "key" * 66_667 + "=v password=p"
    assert redact(text, KEY) == reference(text, KEY)


def test_every_secret_name_rule_holds_a_word_redact_looks_for() -> None:
    """redact finds where secret names can be by NAME_WORDS: a name rule without one of them as plain
    text would go unseen."""
    for rx, _ in SECRET_NAMES:
        for alternative in rx.split("|"):
            assert any(word in alternative for word in NAME_WORDS), alternative
