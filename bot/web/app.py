"""The /ui/ application: routes, templates, static files, security headers, refusals.

`build_ui` returns an aiohttp application to mount at /ui (bot.serve mounts it on the public
listener; `demo --web` serves it alone). Every response it gives carries a strict
Content-Security-Policy (only this server's own script, styles and images; no inline script or
style; no framing), `X-Content-Type-Options: nosniff` and `Referrer-Policy: no-referrer` (a signed
link must never reach another site in a Referer), and pages are not cached (they hold configs).

Errors never show a traceback: a refusal (Refused, Forbidden) is a 403 page saying how to get a
fresh link (`/backup SITE` in Slack), an unknown id or page a 404, a request that makes no sense a
400, anything else a 500 page; each refusal and each failure is logged (scrubbed).
"""

from __future__ import annotations

import logging
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path

import aiohttp_jinja2
import jinja2
from aiohttp import web

from bot.core.errors import Forbidden, NotFound, UserError
from bot.core.logs import log_event
from bot.web import paths, routes
from bot.web.routes import UI, WebUi

log = logging.getLogger(__name__)

HERE = Path(__file__).parent
CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; "
       "form-action 'self'; base-uri 'none'; frame-ancestors 'none'")
HEADERS = {"Content-Security-Policy": CSP, "X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer",
           "X-Frame-Options": "DENY"}

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def _problem(request: web.Request, status: int, heading: str, text: str) -> web.Response:
    """A plain page: what went wrong and, for a refusal, how to get a fresh link (naming the site
    of the URL when it is a configured one)."""
    try:
        settings = request.app[UI].deps.catalog.settings
    except web.HTTPException:  # still starting
        settings = None
    name = request.match_info.get("site", "")
    site = name if settings is not None and name in settings.sites else "SITE"
    minutes = settings.web.link_minutes if settings is not None else 15
    return aiohttp_jinja2.render_template(
        "problem.html", request, {"title": heading, "crumbs": [], "heading": heading, "text": text, "site": site,
                                  "minutes": minutes, "status": status, "viewer": None}, status=status)


def _secure(request: web.Request, response: web.StreamResponse) -> None:
    response.headers.update(HEADERS)
    static = request.path.startswith(paths.static(""))
    response.headers["Cache-Control"] = "no-cache" if static else "no-store"


@web.middleware
async def guard(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Refusals and errors as plain pages, and the security headers on every response."""
    try:
        response = await handler(request)
    except Forbidden as exc:  # Refused included: a link or session that cannot be used
        log_event(log, logging.WARNING, "browser request refused", reason=str(exc), path=request.path)
        response = _problem(request, 403, "You can't open this page", str(exc))
    except NotFound as exc:
        response = _problem(request, 404, "Not found", str(exc))
    except UserError as exc:
        response = _problem(request, 400, "That request makes no sense here", str(exc))
    except web.HTTPNotFound:
        response = _problem(request, 404, "Not found", "There is no such page.")
    except web.HTTPException as exc:  # redirects, 405, 503 while starting: as they are
        _secure(request, exc)
        raise
    except Exception as exc:
        log.exception("browser page failed: %s", request.path)
        response = _problem(request, 500, "Something went wrong on our side",
                            f"{type(exc).__name__}; it has been logged for the operators.")
    _secure(request, response)
    return response


def build_ui(base_url: str, secret: bytes) -> web.Application:
    """The /ui/ application; its pages answer once `app[UI].start(deps)` has been called."""
    app = web.Application(middlewares=[guard])
    app[UI] = WebUi(base_url, secret)
    env = aiohttp_jinja2.setup(app, loader=jinja2.FileSystemLoader(HERE / "templates"),
                               autoescape=jinja2.select_autoescape(default=True, default_for_string=True),
                               undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True)
    env.globals.update(paths=paths)
    routes.add_routes(app)
    app.router.add_static("/static/", HERE / "static", show_index=False, follow_symlinks=False)
    return app


@asynccontextmanager
async def serving(sock: socket.socket, ui: web.Application) -> AsyncIterator[None]:
    """The /ui/ application alone on a bound socket (`demo --web`), "/" redirecting to its home."""

    async def root(_: web.Request) -> web.StreamResponse:
        raise web.HTTPFound(paths.home())

    app = web.Application()
    app.router.add_get("/", root)
    app.add_subapp(paths.ROOT, ui)
    runner = web.AppRunner(app, handle_signals=False, access_log=None)
    await runner.setup()
    try:
        await web.SockSite(runner, sock).start()
        yield
    finally:
        await runner.cleanup()
