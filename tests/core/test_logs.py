"""Structured logging: one line per event, kv or JSON, and no secret ever reaches the output."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import pytest

from bot.core.logs import MASK, NOISY, configure_logging, log_event, register_secret, scrub

TOKEN = "xoxb-1234567890-0987654321-AbCdEfGhIjKlMnOp"
APP_TOKEN = "xapp-1-A0123-4567-abcdef0123"
ROUTER_PASSWORD = "Rout3r-Pa55!"
SIGNING_SECRET = "8f14e45fceea167a5a36dedd4bea2543"


@pytest.fixture(autouse=True)
def restore_logging() -> Iterator[None]:
    """configure_logging changes process-wide state: put the root and quieted loggers back after each test."""
    loggers = [logging.getLogger(), *map(logging.getLogger, NOISY)]
    saved = [(lg, lg.handlers[:], lg.level) for lg in loggers]
    yield
    for lg, handlers, level in saved:
        lg.handlers[:] = handlers
        lg.setLevel(level)


def capture(level: int | str = "INFO", fmt: str = "kv") -> io.StringIO:
    buf = io.StringIO()
    configure_logging(level, buf, fmt)  # type: ignore[arg-type]
    return buf


@pytest.fixture
def out() -> io.StringIO:
    return capture()


def lines(buf: io.StringIO) -> list[str]:
    return buf.getvalue().splitlines()


def test_tokens_passwords_headers_and_registered_secrets_are_masked(out: io.StringIO) -> None:
    """A Slack token, password=, Authorization header and a registered literal leaked by an f-string: all masked."""
    register_secret(ROUTER_PASSWORD)
    log = logging.getLogger("backupbot.test")
    log.info("posting with %s and %s", TOKEN, APP_TOKEN)
    log.warning(f"ssh login failed for admin using {ROUTER_PASSWORD}")
    log.info("export line: /user add name=bk password=hunter2 group=read")
    log.info("request headers %s", {"Authorization": f"Bearer {TOKEN}", "password": "hunter2"})
    log_event(log, logging.INFO, "config loaded", password="hunter2", signing_secret="abc123", site="riga")
    text = out.getvalue()
    for secret in (TOKEN, APP_TOKEN, ROUTER_PASSWORD, "hunter2", "abc123", TOKEN.split("-", 1)[1]):
        assert secret not in text
    assert "xoxb-" + MASK in text and "password=" + MASK in text and "group=read" in text
    assert f"signing_secret={MASK} site=riga" in text


def test_signed_browser_links_are_masked(out: io.StringIO) -> None:
    """A signed link in a request line (aiohttp's access log) would let a log reader in: masked."""
    token = "bbw1.eyJ1IjoiVTBBTElDRTAwMSJ9.QmFzZTY0U2lnbmF0dXJl_-x"
    logging.getLogger("aiohttp.access").info('127.0.0.1 "GET /ui/open?t=%s HTTP/1.1" 303', token)
    text = out.getvalue()
    assert token.split(".", 1)[1] not in text and "QmFzZTY0" not in text
    assert "/ui/open?t=bbw1." + MASK in text


def test_the_search_pages_query_is_masked(out: io.StringIO) -> None:
    """Someone checking where a leaked password is configured searches for it: never in the log."""
    logging.getLogger("aiohttp.access").info('127.0.0.1 "GET /ui/search?q=Hunter2-Secret&i=1&site=hq HTTP/1.1" 200')
    text = out.getvalue()
    assert "Hunter2" not in text and "site=hq" not in text
    assert f"GET /ui/search?{MASK} HTTP/1.1" in text


def test_exception_messages_and_causes_are_masked_on_one_line(out: io.StringIO) -> None:
    """An exception whose message (and cause) carries secrets is rendered as one masked line."""
    register_secret(SIGNING_SECRET)
    log = logging.getLogger("backupbot.test")
    try:
        try:
            raise OSError(f"bad signature for {SIGNING_SECRET}")
        except OSError as exc:
            raise RuntimeError(f"auth failed\npassword={ROUTER_PASSWORD} token {TOKEN}") from exc
    except RuntimeError:
        log.exception("slack call failed")
    (line,) = lines(out)
    assert SIGNING_SECRET not in line and ROUTER_PASSWORD not in line and TOKEN not in line
    assert 'event="slack call failed"' in line and "exc=\"RuntimeError(" in line and "<- OSError(" in line
    assert "Traceback" not in line, "no traceback above DEBUG"


def test_debug_adds_the_traceback_escaped_onto_the_same_line() -> None:
    """At DEBUG the traceback is included, its newlines escaped, still masked."""
    buf = capture(logging.DEBUG)
    try:
        raise ValueError(f"leaked {TOKEN}")
    except ValueError:
        logging.getLogger("t").debug("oops", exc_info=True)
    (line,) = lines(buf)
    assert "Traceback (most recent call last):\\n" in line and TOKEN not in line


def test_one_line_per_event_with_typed_fields(out: io.StringIO) -> None:
    """Newlines in messages and fields are escaped; fields are key=value, quoted only when needed."""
    log = logging.getLogger("backupbot.scheduler")
    log_event(log, logging.WARNING, "run skipped\nreally", site="riga", reason="a run is in progress", n=3,
              ok=False, note=None)
    (line,) = lines(out)
    assert line.startswith("ts=") and " level=warning logger=backupbot.scheduler " in line
    assert 'event="run skipped\\nreally" site=riga reason="a run is in progress" n=3 ok=false note=null' in line


def test_json_mode_emits_one_parseable_object_per_line() -> None:
    """fmt="json": every line is a JSON object with ts, level, logger, event and the fields, masked."""
    buf = capture("info", fmt="json")
    log = logging.getLogger("backupbot.test")
    log_event(log, logging.INFO, "backup finished", site="riga", changed=2, bot_token=TOKEN)
    log.error('multi\nline "quoted" %s', TOKEN)
    first, second = (json.loads(line) for line in lines(buf))
    assert first["event"] == "backup finished" and first["level"] == "info" and first["logger"] == "backupbot.test"
    assert (first["site"], first["changed"], first["bot_token"]) == ("riga", 2, MASK)
    assert second["event"] == 'multi\nline "quoted" xoxb-' + MASK


def test_configure_is_idempotent_and_quiets_noisy_libraries(out: io.StringIO) -> None:
    """Calling configure_logging twice leaves one handler; asyncssh INFO chatter is dropped."""
    configure_logging("INFO", out)
    logging.getLogger("asyncssh").info("Opening SSH connection to 10.0.0.1")
    logging.getLogger("asyncssh").warning("Connection lost")
    logging.getLogger("backupbot.test").info("once")
    text = out.getvalue()
    assert "Opening SSH" not in text and "Connection lost" in text and text.count("event=\"once\"") == 1
    with pytest.raises(ValueError):
        configure_logging("LOUD", out)


def test_scrub_keeps_harmless_text_and_empty_values() -> None:
    """Only secrets are masked: ordinary key=value pairs and empty passwords are left alone."""
    assert scrub('site=riga device=r1 kind=host_key password=""') == 'site=riga device=r1 kind=host_key password=""'
    assert scrub("Authorization: Basic dXNlcjpwYXNz") == "Authorization: " + MASK


def test_a_malformed_logging_call_is_still_logged_and_masked(out: io.StringIO) -> None:
    """Wrong %-args do not raise into the caller; the line is still written, secrets masked."""
    logging.getLogger("t").info("two args %s %s", TOKEN)
    (line,) = lines(out)
    assert "two args" in line and TOKEN not in line
