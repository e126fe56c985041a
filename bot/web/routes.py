"""The handlers of the /ui/ application: one per page or action, each a few lines around bot.web.pages.

Who is asking comes only from the session cookie (`viewer`); a request without a usable session,
a link that cannot be used, or an id the viewer may not see is refused by bot.web.app's
middleware with a plain 403 page that says how to get a fresh link, and logged. Actions that
change something (back up now, log out) are POST with the session's CSRF token.
"""

from __future__ import annotations

import logging
from typing import Any

import aiohttp_jinja2
from aiohttp import web

from bot.core.errors import Refused, UserError
from bot.core.logs import log_event
from bot.web import links, pages, paths, sessions
from bot.web.pages import UiDeps, Viewer

log = logging.getLogger(__name__)


class WebUi:
    """The /ui/ application's state: the base URL and secret from the start, the pages' dependencies
    once the backend is up (bot.serve's cleanup context, or `demo --web`)."""

    def __init__(self, base_url: str, secret: bytes) -> None:
        self.base_url, self.secret = base_url, secret
        self._deps: UiDeps | None = None

    def start(self, deps: UiDeps) -> None:
        self._deps = deps

    @property
    def deps(self) -> UiDeps:
        if self._deps is None:
            raise web.HTTPServiceUnavailable(text="backupbot is starting")
        return self._deps


UI = web.AppKey("web_ui", WebUi)


def _ui(request: web.Request) -> tuple[WebUi, UiDeps]:
    """The application's state, and the pages' dependencies on the inventory in use now (one per
    request: a refreshed inventory reaches the next request, never half of one)."""
    ui = request.app[UI]
    return ui, ui.deps.pinned()


async def viewer(request: web.Request) -> Viewer:
    """The session's user; Refused without a live session."""
    ui, deps = _ui(request)
    session_id = request.cookies.get(sessions.COOKIE, "")
    if not session_id:
        raise Refused("you are not signed in here (no session): open a link from Slack first")
    session = await deps.store.session(session_id, deps.clock())
    if session is None:
        raise Refused("your session has ended (after 12 hours, or you logged out)")
    return Viewer(session.user, sessions.csrf_token(ui.secret, session_id))


def render(request: web.Request, template: str, context: dict[str, Any], who: Viewer | None,
           status: int = 200) -> web.Response:
    return aiohttp_jinja2.render_template(template, request, {**context, "viewer": who}, status=status)


def _int(request: web.Request, name: str, default: int = 0) -> int:
    value = request.query.get(name, "")
    if not value:
        return default
    if not value.isdigit():
        raise UserError(f"{name} must be a whole number, not {value[:20]!r}.")
    return int(value)


def _ids(request: web.Request) -> list[int]:
    values = request.query.getall("v", [])
    if not all(v.isdigit() for v in values):
        raise UserError("Backup ids are whole numbers.")
    return [int(v) for v in values]


async def _check_csrf(request: web.Request) -> Viewer:
    who = await viewer(request)
    form = await request.post()
    token = form.get(sessions.CSRF_FIELD)
    if not isinstance(token, str) or not sessions.csrf_ok(request.app[UI].secret,
                                                          request.cookies.get(sessions.COOKIE, ""), token):
        raise Refused("the form's token does not match your session (reload the page and try again)")
    return who


# -- signing in and out -------------------------------------------------------------------------------

async def open_link(request: web.Request) -> web.StreamResponse:
    """A signed link from Slack: check it, start a session for its user, go to its page."""
    ui, deps = _ui(request)
    now = deps.clock()
    link = links.verify(ui.secret, request.query.get("t", ""), now)
    links.check_not_logged_out(link, await deps.store.last_logout(link.user))
    session_id = sessions.new_session_id()
    await deps.store.create_session(session_id, link.user, now, now + sessions.LIFETIME)
    log_event(log, logging.INFO, "browser session started", user=link.user, site=link.site or "-")
    response = web.Response(status=303, headers={"Location": link.page})
    response.set_cookie(sessions.COOKIE, session_id, **sessions.cookie_options(ui.base_url))  # type: ignore[arg-type]
    return response


async def logout(request: web.Request) -> web.StreamResponse:
    _, deps = _ui(request)
    who = await _check_csrf(request)
    ended = await deps.store.log_out(who.user, deps.clock())
    log_event(log, logging.INFO, "logged out in the browser", user=who.user, sessions=ended)
    response = render(request, "message.html", {"title": "Logged out", "crumbs": [], "heading": "Logged out",
                                                "text": "Your browser sessions have ended, and the links Slack "
                                                        "gave you before now no longer open. To come back, "
                                                        "use Open in browser in Slack again."}, None)
    response.del_cookie(sessions.COOKIE, path=paths.ROOT + "/")
    return response


# -- pages --------------------------------------------------------------------------------------------

async def home(request: web.Request) -> web.StreamResponse:
    who = await viewer(request)
    return render(request, "home.html", await pages.home(_ui(request)[1], who), who)


async def site(request: web.Request) -> web.StreamResponse:
    who = await viewer(request)
    context = await pages.site(_ui(request)[1], who, request.match_info["site"], request.query.get("q", ""),
                               request.query.get("backup", ""))
    return render(request, "site.html", context, who)


async def backup_site(request: web.Request) -> web.StreamResponse:
    who = await _check_csrf(request)
    name = request.match_info["site"]
    flash = await pages.backup_site(_ui(request)[1], who, name)
    raise web.HTTPSeeOther(f"{paths.site(name)}?backup={flash}")


async def device(request: web.Request) -> web.StreamResponse:
    who = await viewer(request)
    context = await pages.device(_ui(request)[1], who, request.match_info["site"], request.match_info["device"],
                                 _int(request, "page"))
    return render(request, "device.html", context, who)


async def version(request: web.Request) -> web.StreamResponse:
    who = await viewer(request)
    if "line" in request.query:  # a search hit's line: the page of lines holding it, at its anchor
        raise web.HTTPSeeOther(await pages.version_line(_ui(request)[1], who, int(request.match_info["id"]),
                                                        _int(request, "line")))
    context = await pages.version(_ui(request)[1], who, int(request.match_info["id"]), _int(request, "at"))
    return render(request, "version.html", context, who)


async def search(request: web.Request) -> web.StreamResponse:
    who = await viewer(request)
    q = request.query
    form = pages.SearchForm(q.get("q", ""), q.get("re") == "1", q.get("i") == "1", q.get("site") or None,
                            q.get("device") or None)
    context, status = await pages.search(_ui(request)[1], who, form)
    return render(request, "search.html", context, who, status)


async def download(request: web.Request) -> web.StreamResponse:
    who = await viewer(request)
    name, raw = await pages.download(_ui(request)[1], who, int(request.match_info["id"]))
    return web.Response(body=raw, content_type="application/octet-stream",
                        headers={"Content-Disposition": f'attachment; filename="{name}"'})


async def lines(request: web.Request) -> web.StreamResponse:
    """Unchanged lines for a fold of the Compare page, as rows of both layouts (JSON)."""
    who = await viewer(request)
    same = await pages.unchanged_lines(_ui(request)[1], who, int(request.match_info["id"]), _int(request, "start"),
                                       _int(request, "count", pages.FOLD_STEP), _int(request, "old"))
    env = aiohttp_jinja2.get_env(request.app)
    rows = env.get_template("rows.html").module
    return web.json_response({"sbs": rows.sbs_same(same), "uni": rows.uni_same(same),  # type: ignore[attr-defined]
                              "count": len(same.lines)})


async def compare(request: web.Request) -> web.StreamResponse:
    who = await viewer(request)
    _, deps = _ui(request)
    ids = _ids(request)
    if len(set(ids)) == 1:  # one ticked on the device page: that is View
        raise web.HTTPSeeOther(paths.version(ids[0]))
    if "pair" in request.query:
        page = await pages.compare_part(deps, who, ids, _int(request, "pair"), _int(request, "part"))
        if request.query.get("fragment"):
            env = aiohttp_jinja2.get_env(request.app)
            rows = env.get_template("rows.html").module
            return web.json_response({"sbs": rows.sbs(page.items, page.new.id),  # type: ignore[attr-defined]
                                      "uni": rows.uni(page.items, page.new.id),  # type: ignore[attr-defined]
                                      "more": page.more})
        return render(request, "compare.html", pages.part_context(ids, page), who)
    return render(request, "compare.html", await pages.compare(deps, who, ids), who)


def add_routes(app: web.Application) -> None:
    app.router.add_get("/", home)
    app.router.add_get("/open", open_link)
    app.router.add_post("/logout", logout)
    app.router.add_get("/site/{site}", site)
    app.router.add_post("/site/{site}/backup", backup_site)
    app.router.add_get("/device/{site}/{device}", device)
    app.router.add_get(r"/version/{id:\d{1,18}}", version)
    app.router.add_get(r"/version/{id:\d{1,18}}/download", download)
    app.router.add_get(r"/version/{id:\d{1,18}}/lines", lines)
    app.router.add_get("/compare", compare)
    app.router.add_get("/search", search)
