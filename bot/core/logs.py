"""Structured logs, one line per event, with every secret scrubbed before anything is written.

`configure_logging` installs one handler on the root logger: a `ScrubFilter` (masks Slack tokens,
`password=`-style values, Authorization/Bearer headers and every literal given to `register_secret`
in the message, the fields and the exception text) and a formatter that writes
`ts=… level=… logger=… event="…" key=value …` or one JSON object per line. Signed browser links
(`bbw1.…`, bot.web.links) are masked too: one is a session for whoever reads it; so is the query of
the browser's search page (`/ui/search?…`), which may be a password someone searched for. Fields come from
`extra={"fields": {...}}` or `log_event(logger, level, event, **fields)`. An exception is rendered
as its repr (with its cause); at DEBUG the traceback is added, still escaped onto the one line.
A field whose NAME is secret-like (the names of bot.core.secrets' table: password, signing_secret,
bot_token, *key, ...) is masked whole. The entry point registers SLACK_BOT_TOKEN,
SLACK_SIGNING_SECRET and every router password, so even an f-string leak is masked.
"""

from __future__ import annotations

import json
import logging
import re
import sys
import traceback
from collections.abc import Callable
from datetime import datetime, timezone
from typing import Any, Literal, TextIO

from bot.core.secrets import NOT_SECRET, SECRET_NAMES, SECRET_PROPERTY

MASK = "***"
MIN_SECRET_LENGTH = 4  # shorter registered values would mask ordinary words all over the log
NOISY = {"asyncssh": logging.WARNING, "apscheduler": logging.WARNING}  # INFO per connection / per job

_NAMES = "|".join(rx for rx, _ in SECRET_NAMES)  # the redaction table's names, not a second list
_NOT_NAMES = "|".join(rx for rx, _ in NOT_SECRET)
_KEY = rf"(?:[\w.-]*[._-])?(?:{_NAMES})"  # password, signing_secret, bot_token, security.passphrase
_SECRET_KEY = re.compile(_KEY, re.IGNORECASE)
_PUBLIC_KEY = re.compile(rf"(?:[\w.-]*[._-])?(?:{_NOT_NAMES})", re.IGNORECASE)


def _property(m: re.Match[str]) -> str:
    empty = not (m["escaped"] or m["quoted"] or m["bare"])  # `password=""`: nothing to hide
    return m[0] if empty else f"{m['name']}={MASK}"


_PATTERNS: tuple[tuple[re.Pattern[str], Callable[[re.Match[str]], str]], ...] = (
    (re.compile(r"\b(xox[abposr]|xapp)-[A-Za-z0-9-]+"), lambda m: f"{m[1]}-{MASK}"),
    # a signed browser link (bot.web.links), e.g. in an access log's request line
    (re.compile(r"\b(bbw1)\.[A-Za-z0-9_-]+(?:\.[A-Za-z0-9_-]*)?"), lambda m: f"{m[1]}.{MASK}"),
    # the browser's search page: its query may be a password someone checks for (/backup grep's pattern)
    (re.compile(r"(/ui/search\?)[^\s\"']+"), lambda m: m[1] + MASK),
    (re.compile(r"(?i)\b(authorization[\"']?\s*[:=]\s*[\"']?)(?:(?:bearer|basic|token)\s+)?[^\s\"',;]+"),
     lambda m: m[1] + MASK),
    (re.compile(r"(?i)\b(bearer\s+)[A-Za-z0-9._~+/-]+=*"), lambda m: m[1] + MASK),
    # dict reprs and JSON: 'password': 'x', "signing_secret": "x"
    (re.compile(rf"""(?i)(\b{_KEY}["']?\s*:\s*)(["'])(?:\\.|(?!\2).)+\2"""),
     lambda m: f"{m[1]}{m[2]}{MASK}{m[2]}"),
    (SECRET_PROPERTY, _property),  # name=value, the same pattern the export redaction uses
)
_registered: set[str] = set()
_literal: re.Pattern[str] | None = None


def register_secret(value: str | None) -> None:
    """Mask `value` (and its repr/JSON-escaped forms) wherever it appears in any later log line."""
    global _literal
    if not value or len(value) < MIN_SECRET_LENGTH or value in _registered:
        return  # (the SSH worker registers each device's password with every collection)
    _registered.update({value, repr(value)[1:-1], json.dumps(value)[1:-1]})
    ordered = sorted(_registered, key=len, reverse=True)  # longest first: no partial leftovers
    _literal = re.compile("|".join(map(re.escape, ordered)))


def scrub(text: str) -> str:
    """`text` with every known secret shape and every registered secret masked."""
    if _literal is not None:
        text = _literal.sub(MASK, text)
    for pattern, replace in _PATTERNS:
        text = pattern.sub(replace, text)
    return text


def _scrub_value(key: str, value: Any) -> Any:
    name = key.replace("_", "-")
    if _SECRET_KEY.fullmatch(name) and not _PUBLIC_KEY.fullmatch(name) and value not in (None, ""):
        return MASK
    if value is None or isinstance(value, (bool, int, float)):
        return value
    return scrub(value.isoformat() if isinstance(value, datetime) else str(value))


def _render_exception(exc_info: Any, with_traceback: bool) -> str:
    exc = exc_info[1]
    if with_traceback:
        return "".join(traceback.format_exception(exc)).rstrip()
    cause = exc.__cause__ if exc.__cause__ is not None else None if exc.__suppress_context__ else exc.__context__
    return f"{exc!r} <- {cause!r}" if cause is not None else repr(exc)


class ScrubFilter(logging.Filter):
    """Rewrites each record in place so that nothing after it can see a secret."""

    def __init__(self, with_traceback: bool = False) -> None:
        super().__init__()
        self.with_traceback = with_traceback

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # noqa: BLE001 - a malformed logging call must not crash its caller
            message = f"{record.msg} {record.args!r}"
        record.msg, record.args = scrub(message), ()
        fields = getattr(record, "fields", None)
        record.fields = {str(k): _scrub_value(str(k), v) for k, v in fields.items()} if isinstance(fields, dict) else {}
        if record.exc_info and record.exc_info[1] is not None:
            record.exc_text = _render_exception(record.exc_info, self.with_traceback)
        if record.exc_text:
            record.exc_text = scrub(record.exc_text)
        if record.stack_info:
            record.stack_info = scrub(record.stack_info)
        return True


_BARE = re.compile(r"[A-Za-z0-9_.:/@+,*<>-]+")


class LineFormatter(logging.Formatter):
    """One line per record: `kv` (logfmt-like) or `json`."""

    def __init__(self, fmt: Literal["kv", "json"] = "kv") -> None:
        super().__init__()
        if fmt not in ("kv", "json"):
            raise ValueError(f"log format must be 'kv' or 'json', not {fmt!r}")
        self.fmt = fmt

    def format(self, record: logging.LogRecord) -> str:
        ts = datetime.fromtimestamp(record.created, timezone.utc).isoformat(timespec="milliseconds")
        out: dict[str, Any] = {"ts": ts.replace("+00:00", "Z"), "level": record.levelname.lower(),
                               "logger": record.name, "event": record.getMessage()}
        for key, value in (getattr(record, "fields", None) or {}).items():
            out[key if key not in out else f"{key}_"] = value
        if record.exc_text:
            out["exc"] = record.exc_text
        if record.stack_info:
            out["stack"] = record.stack_info
        if self.fmt == "json":
            return json.dumps(out, ensure_ascii=False, default=str)
        return " ".join(f"{k}={_kv_value(v, k == 'event')}" for k, v in out.items())


def _kv_value(value: Any, quote: bool) -> str:
    if value is None or isinstance(value, bool):
        return json.dumps(value)
    text = str(value)
    if not quote and _BARE.fullmatch(text):
        return text
    return json.dumps(text, ensure_ascii=False)  # quotes, and escapes newlines onto one line


def log_event(logger: logging.Logger, level: int, event: str, *, exc_info: Any = None, **fields: Any) -> None:
    """Log `event` with structured `fields` (scrubbed like everything else)."""
    logger.log(level, event, exc_info=exc_info, extra={"fields": fields}, stacklevel=2)


def configure_logging(
    level: int | str = logging.INFO, stream: TextIO | None = None, fmt: Literal["kv", "json"] = "kv"
) -> logging.Handler:
    """Route every logger through one scrubbing, single-line handler on the root; idempotent."""
    numeric = logging.getLevelName(level.upper()) if isinstance(level, str) else level
    if not isinstance(numeric, int):
        raise ValueError(f"unknown log level {level!r}")
    handler = logging.StreamHandler(stream if stream is not None else sys.stderr)
    handler.addFilter(ScrubFilter(with_traceback=numeric <= logging.DEBUG))
    handler.setFormatter(LineFormatter(fmt))
    handler._backupbot = True  # type: ignore[attr-defined]
    root = logging.getLogger()
    for old in [h for h in root.handlers if getattr(h, "_backupbot", False)]:
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(numeric)
    for name, quiet in NOISY.items():
        logging.getLogger(name).setLevel(quiet)
    return handler
