"""Redaction of secret values in normalized RouterOS exports, for text others can read (Slack).

Each secret VALUE becomes `<redacted:xxxxxxxx>`, the first 8 hex digits of
HMAC-SHA256(key, value): a changed password still shows as a changed line, the same password
shows the same fingerprint, and without the key the value can be neither recovered nor
brute-forced from the fingerprint. Empty values (`password=""`) are left alone: nothing to
hide, and `""` -> `""` is informative.

Which properties and script variables are secret is data: one table entry per name rule, each
with its reason.
Pure: no I/O. Works on normalized (wrap-joined) text, so a value is never split across lines.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from typing import Final

# Name rules, each a regex for the WHOLE property name (v7 wifi prefixes such as `security.`
# and hyphenated prefixes such as `wpa2-pre-shared-` are allowed by _PREFIX).
SECRET_NAMES: Final[tuple[tuple[str, str], ...]] = (
    (r"password|passwd",
     "user/PPP/hotspot/PPPoE/L2TP/SSTP/OVPN/PPTP/e-mail/fetch passwords, SNMP auth/encryption, VRRP"),
    (r"secret",
     "PPP/RADIUS/IPsec identity `secret`, L2TP/EoIP/GRE `ipsec-secret`, nv2 sync secret"),
    (r"secrets", "RoMON `secrets` (a list of shared secrets)"),
    (r"passphrase",
     "wireless/wifi/CAPsMAN `passphrase` (incl. `security.passphrase`), certificate export passphrase"),
    (r"psk", "any `*-psk` pre-shared key"),
    (r"key",
     "WPA/WPA2 `*-pre-shared-key`, WireGuard `private-key`/`preshared-key`, OSPF `auth-key`/"
     "`authentication-key`, BGP `tcp-md5-key`, NTP `key`, management-protection-key"),
    (r"token", "API tokens (DDNS, bots) stored as properties"),
    (r"static-key-\d", "WEP static keys 0-3"),
)

# Names that match a rule above but hold nothing secret.
NOT_SECRET: Final[tuple[tuple[str, str], ...]] = (
    (r"public-key", "WireGuard/SSH public keys are meant to be shared"),
    (r"static-transmit-key", "names which WEP key slot to use (key-0..3), not a key"),
)

# Script variables (`:global TelegramToken "..."`, `:local FTPPass "..."`) declared inside
# `/system script ... source=` strings: names ending (any case) in one of these suffixes.
SECRET_VARIABLE_SUFFIXES: Final[tuple[tuple[str, str], ...]] = (
    (r"token", "bot/API tokens kept in script globals (e.g. `:global TelegramToken`)"),
    (r"pass|passwd|password", "FTP/DNS/user passwords kept in script locals (`:local FTPPass`)"),
    (r"secret|passphrase|psk|key", "the same secret kinds as properties, held in variables"),
)

_PREFIX = r"(?:[A-Za-z][\w.-]*[.-])?"  # `wpa2-pre-shared-`, `security.`, `ipsec-`, ...
_NAMES = "|".join(rx for rx, _ in SECRET_NAMES)
_EXCLUDED = "|".join(rx for rx, _ in NOT_SECRET)

# A property name starts a token: after whitespace, a quote, `;`, an opening bracket, the start
# of the text, or a script-source escape such as `\n`, `\r`, `\t`, `\_` (escaped space at a wrap).
_BOUNDARY = r'(?:(?<![^\s";\[({])|(?<=\\[nrt_]))'

# The value, in the three ways RouterOS prints it:
#  1. inside a quoted script source, a quoted value is an escaped quote `\"..\"` (or `\\\"..\\\"`
#     one level deeper); it ends at the same quote run not itself escaped (runs of 4k+q).
#  2. a plain quoted value `"..."` with backslash escapes.
#  3. unquoted: up to whitespace, a quote, `;`, a bracket, or an escape other than `\$`/`\?`/`\\`.
_VALUE = (
    r'(?P<q>(?:\\\\)*\\)"(?P<escaped>.*?)(?<!\\)(?:\\\\\\\\)*(?P=q)"'
    r'|"(?P<quoted>(?:\\.|[^"\\])*)"'
    r'|(?P<bare>(?:\\[$?\\]|[^\s"\\;\[\](){}])+)'
)

SECRET_PROPERTY: Final[re.Pattern[str]] = re.compile(
    _BOUNDARY + rf"(?P<name>(?!{_PREFIX}(?:{_EXCLUDED})=){_PREFIX}(?:{_NAMES}))=(?P<value>{_VALUE})"
)


_VARIABLE_SUFFIX = "|".join(rx for rx, _ in SECRET_VARIABLE_SUFFIXES)

# Only literal values are redacted: a quoted string (escaped inside the source) or a bare word;
# `[...]` and `(...)` are expressions that compute the value, not the value.
SECRET_VARIABLE: Final[re.Pattern[str]] = re.compile(
    rf":(?P<scope>global|local) (?P<name>\w*(?i:{_VARIABLE_SUFFIX})) (?P<value>{_VALUE})"
)


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
