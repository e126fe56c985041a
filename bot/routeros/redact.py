"""Redaction of secret values in normalized RouterOS exports, for text others can read (Slack).

Each secret VALUE becomes `<redacted:xxxxxxxx>`, the first 8 hex digits of
HMAC-SHA256(key, value): a changed password still shows as a changed line, the same password
shows the same fingerprint, and without the key the value can be neither recovered nor
brute-forced from the fingerprint. Empty values (`password=""`) are left alone: nothing to
hide, and `""` -> `""` is informative.

Which properties and script variables are secret is data, kept in bot.core.secrets (one table
entry per name rule, each with its reason) and shared with the log scrubber.
Pure: no I/O. Works on normalized (wrap-joined) text, so a value is never split across lines.
"""

from __future__ import annotations

import hashlib
import hmac
import re

from bot.core.secrets import SECRET_PROPERTY, SECRET_VARIABLE


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

    return SECRET_VARIABLE.sub(variable_value, SECRET_PROPERTY.sub(property_value, text))
