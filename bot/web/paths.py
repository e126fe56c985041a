"""PURE. The URL path of every browser page; links, templates and routes all take them from here.

Site and device names are single words of letters, digits, `-`, `_` and `.` (bot.config), and ids
are integers, so paths need no escaping beyond what `quote` does for safety.
"""

from __future__ import annotations

from collections.abc import Iterable
from urllib.parse import quote, urlencode

ROOT = "/ui"


def home() -> str:
    return f"{ROOT}/"


def open_link() -> str:
    """Where a signed link lands: it is exchanged for a session, then redirected to its page."""
    return f"{ROOT}/open"


def logout() -> str:
    return f"{ROOT}/logout"


def site(name: str, query: str | None = None) -> str:
    path = f"{ROOT}/site/{quote(name, safe='')}"
    return f"{path}?{urlencode({'q': query})}" if query else path


def backup_site(name: str) -> str:
    return f"{ROOT}/site/{quote(name, safe='')}/backup"


def device(site_name: str, name: str, page: int = 0) -> str:
    path = f"{ROOT}/device/{quote(site_name, safe='')}/{quote(name, safe='')}"
    return f"{path}?page={page}" if page else path


def version(version_id: int, at: int = 0) -> str:
    """The View page; `at` is the first line shown (0-based) when a config is too long for one page."""
    return f"{ROOT}/version/{version_id}" + (f"?at={at}" if at else "")


def version_line(version_id: int, number: int) -> str:
    """Line `number` (1-based, as a search numbers the normalized config) of the View page: answered
    with a redirect to the page of lines that holds it, at its anchor."""
    return f"{ROOT}/version/{version_id}?{urlencode({'line': number})}"


def download(version_id: int) -> str:
    return f"{ROOT}/version/{version_id}/download"


def lines(version_id: int) -> str:
    """Unchanged lines of a version, fetched when a fold of a comparison is opened."""
    return f"{ROOT}/version/{version_id}/lines"


def compare_form() -> str:
    """Where the device page's form sends the ticked versions (`v=ID` each)."""
    return f"{ROOT}/compare"


def compare(version_ids: Iterable[int], *, pair: int | None = None, part: int | None = None) -> str:
    params: list[tuple[str, int]] = [("v", i) for i in version_ids]
    if pair is not None and part is not None:
        params += [("pair", pair), ("part", part)]
    return f"{ROOT}/compare?{urlencode(params)}"


def search(pattern: str = "", *, regex: bool = False, ignore_case: bool = False, site: str | None = None,
           device: str | None = None) -> str:
    """The search page: the latest backups of the sites the viewer may see (of `site`, of `device`)."""
    params = [("q", pattern)] if pattern else []
    params += [("re", "1")] if regex else []
    params += [("i", "1")] if ignore_case else []
    params += [("site", site)] if site else []
    params += [("device", device)] if site and device else []
    return f"{ROOT}/search" + (f"?{urlencode(params)}" if params else "")


def static(name: str) -> str:
    return f"{ROOT}/static/{name}"
