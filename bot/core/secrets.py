"""Which names hold secrets, in one place: RouterOS property and script-variable names (each rule
with its reason), how a `name=value` is recognised, and which environment variables are secret.

bot.routeros.redact replaces these values in exports posted to Slack; bot.core.logs masks them in
every log line; the CLI registers the environment's secret variables with the log scrubber.
Pure data and regular expressions: no I/O.
"""

from __future__ import annotations

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

# Environment variables whose values are credentials (Slack's tokens, the ${VAR}s a config expands
# into router passwords): masked in every log line.
SECRET_ENV: Final[re.Pattern[str]] = re.compile(r"TOKEN|SECRET|PASSW|PASSPHRASE|(^|_)KEY$|CREDENTIAL", re.IGNORECASE)
