"""Signed links into the browser pages, and the secret that signs them.

A link is `BASE_URL/ui/open?t=TOKEN`. The token names the Slack user it was made for, the site and
the page (path and parameters), when it was issued and when it expires (`web.link_minutes`,
default 15), and carries an HMAC-SHA256 of all that under BACKUPBOT_WEB_SECRET:

    bbw1.<base64url JSON payload>.<base64url HMAC-SHA256(secret, "bbw1." + payload)>

Anyone holding a valid link can open it until it expires (on the desktop, then on the phone), so
it is only ever shown to the user it names (an ephemeral Slack message or their DM). The fixed
prefix lets the log scrubber mask tokens wherever they would appear (bot.core.logs), e.g. in a
proxy's or aiohttp's access log line. Opening a link gives a session (bot.web.sessions); a link
issued before its user's last logout is refused (checked by the route: it needs the store).

The link only says who asked for which page: every page still checks, on every request, that the
session's user may see what it shows (bot.core.access).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from urllib.parse import urlencode

from bot.core import access
from bot.core.clock import Clock
from bot.core.errors import Refused, StartupError
from bot.core.live import LiveSettings
from bot.core.models import Settings, Version
from bot.routeros.grep import Query
from bot.web import paths

PREFIX = "bbw1"
SECRET_ENV = "BACKUPBOT_WEB_SECRET"
MIN_SECRET = 32  # characters: a short secret could be guessed from one link and its signature
_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


@dataclass(frozen=True)
class Link:
    user: str  # the Slack user the link was made for
    site: str | None  # the site the page shows (None: the list of sites)
    page: str  # path and query of the page, e.g. "/ui/compare?v=3&v=7"
    issued: datetime
    expires: datetime


def secret_from_env(env: Mapping[str, str]) -> bytes:
    """The signing secret; StartupError (serve exits 2) when it is missing or too short."""
    value = env.get(SECRET_ENV, "")
    if not value:
        raise StartupError(f"{SECRET_ENV} is not set: web.base_url turns on the browser pages, whose links it "
                           f"signs. Set it to a random string of at least {MIN_SECRET} characters "
                           "(e.g. the output of `openssl rand -base64 33`)")
    if len(value) < MIN_SECRET:
        raise StartupError(f"{SECRET_ENV} is too short ({len(value)} characters): use at least {MIN_SECRET} "
                           "random characters (e.g. the output of `openssl rand -base64 33`)")
    return value.encode("utf-8")


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _ms(at: datetime) -> int:
    return (at - _EPOCH) // timedelta(milliseconds=1)


def _signature(secret: bytes, signed: str) -> str:
    return _b64(hmac.new(secret, signed.encode("ascii"), hashlib.sha256).digest())


def sign(secret: bytes, link: Link) -> str:
    """The token for `link`."""
    payload = {"u": link.user, "s": link.site, "p": link.page, "i": _ms(link.issued), "e": _ms(link.expires)}
    signed = f"{PREFIX}.{_b64(json.dumps(payload, separators=(',', ':')).encode('utf-8'))}"
    return f"{signed}.{_signature(secret, signed)}"


def verify(secret: bytes, token: str, now: datetime) -> Link:
    """The link a token stands for; Refused (with the reason) if it is malformed, was not signed
    with this secret, was changed, or has expired. Never any other exception."""
    parts = token.split(".")
    if len(parts) != 3 or parts[0] != PREFIX or not parts[1] or not parts[2]:
        raise Refused("this link is not a backupbot link (it may have been cut short when copied)")
    signed = f"{parts[0]}.{parts[1]}"
    try:
        expected = _signature(secret, signed)
    except UnicodeEncodeError:
        raise Refused("this link is not a backupbot link") from None
    if not hmac.compare_digest(expected.encode("ascii"), parts[2].encode("utf-8", "replace")):
        raise Refused("this link's signature does not match: it was changed, or made by another backupbot")
    try:
        payload = json.loads(_unb64(parts[1]))
        link = Link(user=payload["u"], site=payload["s"], page=payload["p"],
                    issued=_EPOCH + timedelta(milliseconds=payload["i"]),
                    expires=_EPOCH + timedelta(milliseconds=payload["e"]))
    except (ValueError, KeyError, TypeError, binascii.Error, OverflowError):
        raise Refused("this link is not a backupbot link") from None
    if not (isinstance(link.user, str) and isinstance(link.page, str) and isinstance(link.site, (str, type(None)))
            and link.page.startswith(paths.ROOT + "/")):
        raise Refused("this link is not a backupbot link")
    if now >= link.expires:
        raise Refused("this link has expired")
    return link


def check_not_logged_out(link: Link, last_logout: datetime | None) -> None:
    """Refused if the user logged out after the link was issued (logging out voids older links)."""
    if last_logout is not None and link.issued <= last_logout:
        raise Refused("you logged out after this link was made")


class Linker:
    """Signed links to the pages, for the Slack user who asked; None where there is nothing to
    offer: the pages are off (no web.base_url) or the user may not see that site in the browser
    (as in the App Home: a site kept to its channels is open there only to the users it names)."""

    def __init__(self, settings: Settings | LiveSettings, secret: bytes, clock: Clock) -> None:
        self.live, self.secret, self.clock = LiveSettings.of(settings), secret, clock

    @property
    def settings(self) -> Settings:
        """The inventory in use now: a site the inventory source added gets its links at once."""
        return self.live.settings

    @property
    def enabled(self) -> bool:
        return self.settings.web.base_url is not None

    def url(self, user: str, site: str | None, page: str) -> str | None:
        """A link for `user` to `page` (of `site`), if they may see that site in the browser."""
        settings = self.settings  # one inventory for the whole decision
        base = settings.web.base_url
        if base is None:
            return None
        if site is not None:
            known = settings.sites.get(site)
            if known is None or not access.can_view(settings, known, user, None):
                return None
        now = self.clock()
        link = Link(user, site, page, now, now + timedelta(minutes=settings.web.link_minutes))
        return f"{base}{paths.open_link()}?{urlencode({'t': sign(self.secret, link)})}"

    def home(self, user: str) -> str | None:
        return self.url(user, None, paths.home())

    def site(self, user: str, site: str) -> str | None:
        return self.url(user, site, paths.site(site))

    def device(self, user: str, site: str, device: str) -> str | None:
        return self.url(user, site, paths.device(site, device))

    def version(self, user: str, version: Version) -> str | None:
        return self.url(user, version.site, paths.version(version.id))

    def compare(self, user: str, versions: Sequence[Version]) -> str | None:
        """A comparison of versions of one site (a link names one site; Slack compares one device)."""
        sites = {v.site for v in versions}
        if len(sites) != 1 or len(versions) < 2:
            return None
        return self.url(user, sites.pop(), paths.compare(sorted(v.id for v in versions)))

    def search(self, user: str, query: Query, site: str | None = None, device: str | None = None) -> str | None:
        """The search page with this query, over the fleet (the link names no site) or one site (or one
        of its devices). The page searches only what `user` may see in the browser when it opens."""
        page = paths.search(query.pattern, regex=query.regex, ignore_case=query.ignore_case, site=site,
                            device=device)
        return self.url(user, site, page)
