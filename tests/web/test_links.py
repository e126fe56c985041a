"""bot.web.links and bot.web.sessions, pure: signing, tampering, expiry, another secret, logouts,
and who gets a link at all."""

from __future__ import annotations

import base64
import json
from datetime import datetime, timedelta, timezone
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest

from bot.core.errors import Refused, StartupError
from bot.core.models import Settings, Site, SlackSettings, Version, WebSettings
from bot.routeros.grep import Query
from bot.web import links, sessions
from bot.web.links import Link, Linker

SECRET = b"s" * 32
T0 = datetime(2025, 3, 10, 8, 0, tzinfo=timezone.utc)
LINK = Link("U0ALICE001", "hq", "/ui/compare?v=3&v=7", T0, T0 + timedelta(minutes=15))


def test_a_signed_link_verifies_as_itself_until_it_expires() -> None:
    token = links.sign(SECRET, LINK)
    assert token.startswith("bbw1.") and token.count(".") == 2
    assert links.verify(SECRET, token, T0) == LINK
    assert links.verify(SECRET, token, T0 + timedelta(minutes=14, seconds=59)) == LINK
    with pytest.raises(Refused, match="expired"):
        links.verify(SECRET, token, T0 + timedelta(minutes=15))


def test_another_secret_is_refused() -> None:
    with pytest.raises(Refused, match="signature"):
        links.verify(b"t" * 32, links.sign(SECRET, LINK), T0)


def _payload(token: str) -> dict:
    part = token.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))


def _with_payload(token: str, payload: dict) -> str:
    prefix, _, sig = token.split(".")
    body = base64.urlsafe_b64encode(json.dumps(payload).encode()).rstrip(b"=").decode()
    return f"{prefix}.{body}.{sig}"


@pytest.mark.parametrize("change", [{"u": "U0MALLORY1"}, {"s": "branch"}, {"p": "/ui/version/99"},
                                    {"e": 9_999_999_999_999}])
def test_a_changed_payload_is_refused(change: dict) -> None:
    """Another user, site, page or a later expiry: the signature no longer matches."""
    token = links.sign(SECRET, LINK)
    forged = _with_payload(token, {**_payload(token), **change})
    with pytest.raises(Refused, match="signature"):
        links.verify(SECRET, forged, T0)


@pytest.mark.parametrize("token", ["", "bbw1", "bbw1..", "x.y.z", "bbw1.e30.", "bbw1.!!!.AAAA", "bbw1.é.ü",
                                   "bbw1.a.b.c", "Bearer abc"])
def test_garbage_is_refused_cleanly(token: str) -> None:
    with pytest.raises(Refused):
        links.verify(SECRET, token, T0)


@pytest.mark.parametrize("payload", [[1, 2], "text", {"u": "U1"}, {"u": 1, "s": None, "p": "/ui/", "i": 0, "e": 9e12},
                                     {"u": "U1", "s": None, "p": "https://evil.example/", "i": 0, "e": 9e12},
                                     {"u": "U1", "s": None, "p": "/ui/", "i": 0, "e": 1e300}])
def test_a_well_signed_but_malformed_payload_is_refused(payload: object) -> None:
    """Even with the right secret (a bug elsewhere, or a leaked secret), only well-formed links to /ui/ pages pass."""
    body = base64.urlsafe_b64encode(json.dumps(payload).encode()).rstrip(b"=").decode()
    signed = f"bbw1.{body}"
    token = f"{signed}.{links._signature(SECRET, signed)}"
    with pytest.raises(Refused):
        links.verify(SECRET, token, T0)


def test_links_issued_before_a_logout_are_refused() -> None:
    links.check_not_logged_out(LINK, None)
    links.check_not_logged_out(LINK, T0 - timedelta(seconds=1))
    with pytest.raises(Refused, match="logged out"):
        links.check_not_logged_out(LINK, T0)
    with pytest.raises(Refused, match="logged out"):
        links.check_not_logged_out(LINK, T0 + timedelta(minutes=1))


def test_the_secret_comes_from_the_environment_and_must_be_long() -> None:
    assert links.secret_from_env({"BACKUPBOT_WEB_SECRET": "x" * 32}) == b"x" * 32
    with pytest.raises(StartupError, match="BACKUPBOT_WEB_SECRET is not set"):
        links.secret_from_env({})
    with pytest.raises(StartupError, match=r"too short \(31 characters\)"):
        links.secret_from_env({"BACKUPBOT_WEB_SECRET": "x" * 31})


def _settings(base_url: str | None = "https://bot.example.com") -> Settings:
    sites = {"hq": Site("hq", ()), "vault": Site("vault", (), allowed_users=frozenset({"U0ALICE001"})),
             "ops": Site("ops", (), allowed_channels=frozenset({"C0OPS00001"}))}
    return Settings(Path("x.db"), sites, slack=SlackSettings(admins=frozenset({"U0ADMIN001"})),
                    web=WebSettings(base_url=base_url, link_minutes=5))


def _token(url: str) -> str:
    parts = urlsplit(url)
    assert f"{parts.scheme}://{parts.netloc}{parts.path}" == "https://bot.example.com/ui/open"
    return parse_qs(parts.query)["t"][0]


def test_the_linker_signs_links_to_pages_for_users_who_may_see_them() -> None:
    linker = Linker(_settings(), SECRET, lambda: T0)
    link = links.verify(SECRET, _token(linker.site("U0BOB00001", "hq")), T0)
    assert (link.user, link.site, link.page, link.expires) == ("U0BOB00001", "hq", "/ui/site/hq", T0 + timedelta(minutes=5))
    assert links.verify(SECRET, _token(linker.device("U0BOB00001", "hq", "core-1")), T0).page == "/ui/device/hq/core-1"
    v3 = Version(3, "hq", "core-1", T0, T0, 10, "0" * 64)
    v7 = Version(7, "hq", "core-1", T0, T0, 10, "0" * 64)
    assert links.verify(SECRET, _token(linker.compare("U0BOB00001", [v7, v3])), T0).page == "/ui/compare?v=3&v=7"
    assert links.verify(SECRET, _token(linker.version("U0BOB00001", v3)), T0).page == "/ui/version/3"
    assert links.verify(SECRET, _token(linker.home("U0BOB00001")), T0).site is None
    assert linker.site("U0BOB00001", "vault") is None  # not one of its allowed_users
    assert linker.site("U0ALICE001", "vault") is not None
    assert linker.site("U0BOB00001", "ops") is None  # kept to its channels: the browser is private, like a DM
    assert linker.site("U0ADMIN001", "ops") is not None
    assert linker.site("U0BOB00001", "nowhere") is None
    assert Linker(_settings(None), SECRET, lambda: T0).site("U0ADMIN001", "hq") is None  # pages off


def test_a_search_link_names_its_query_and_scope() -> None:
    linker = Linker(_settings(), SECRET, lambda: T0)
    fleet = links.verify(SECRET, _token(linker.search("U0BOB00001", Query("allow ssh"))), T0)
    assert (fleet.user, fleet.site, fleet.page) == ("U0BOB00001", None, "/ui/search?q=allow+ssh")
    scoped = links.verify(SECRET, _token(linker.search("U0BOB00001", Query.of("regex:dst-port=\\d+&x", ignore_case=True),
                                                       "hq", "core-1")), T0)
    assert scoped.site == "hq"
    assert scoped.page == "/ui/search?q=dst-port%3D%5Cd%2B%26x&re=1&i=1&site=hq&device=core-1"
    assert parse_qs(urlsplit(scoped.page).query) == {"q": ["dst-port=\\d+&x"], "re": ["1"], "i": ["1"], "site": ["hq"],
                                                     "device": ["core-1"]}
    assert linker.search("U0BOB00001", Query("x"), "vault") is None  # a site they may not see: no link
    assert linker.search("U0BOB00001", Query("x"), "ops") is None
    assert Linker(_settings(None), SECRET, lambda: T0).search("U0ADMIN001", Query("x")) is None  # pages off


def test_csrf_tokens_belong_to_their_session() -> None:
    token = sessions.csrf_token(SECRET, "session-a")
    assert sessions.csrf_ok(SECRET, "session-a", token)
    assert not sessions.csrf_ok(SECRET, "session-b", token)
    assert not sessions.csrf_ok(b"t" * 32, "session-a", token)
    assert not sessions.csrf_ok(SECRET, "session-a", "")
    assert sessions.cookie_options("https://bot.example.com")["secure"] is True
    assert sessions.cookie_options("http://127.0.0.1:8080")["secure"] is False
