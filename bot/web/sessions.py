"""Browser sessions: what the cookie holds, how long it lasts, and the CSRF token of each session.

Opening a signed link (bot.web.links) makes a session for the link's user: a random id in a
cookie (HttpOnly, SameSite=Lax, Secure when the base URL is https, 12 hours, path /ui/), and its
sha256 in the database (storage.sessions), so logging out can end it. Forms that change something
(back up now, log out) carry a CSRF token: an HMAC of the session id under the web secret, so it
needs no storage and is worthless without the cookie it belongs to.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from datetime import timedelta

from bot.web import paths

COOKIE = "backupbot_session"
LIFETIME = timedelta(hours=12)
CSRF_FIELD = "csrf"


def new_session_id() -> str:
    return secrets.token_urlsafe(32)


def csrf_token(secret: bytes, session_id: str) -> str:
    return hmac.new(secret, b"csrf:" + session_id.encode("utf-8"), hashlib.sha256).hexdigest()


def csrf_ok(secret: bytes, session_id: str, token: str) -> bool:
    return hmac.compare_digest(csrf_token(secret, session_id).encode(), token.encode("utf-8", "replace"))


def cookie_options(base_url: str) -> dict[str, object]:
    """The cookie's attributes for aiohttp's `set_cookie`."""
    return {"max_age": int(LIFETIME.total_seconds()), "path": paths.ROOT + "/", "httponly": True,
            "samesite": "Lax", "secure": base_url.startswith("https://")}
