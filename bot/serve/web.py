"""The two aiohttp applications `backupbot serve` listens with, and what each one answers.

    public  (--host/--port; HTTP mode only, since it is what faces the internet)
        POST /slack/events   Slack's requests, handed to Bolt, which verifies the signature
                             (401 otherwise) before any listener runs
        GET  /healthz        liveness only: 200 "ok" or 503 "unhealthy", nothing else
    admin   (--admin-host/--admin-port, 127.0.0.1:9090 by default; never for the internet)
        GET  /healthz/live   liveness as JSON: what a restart would fix
        GET  /healthz/ready  readiness: every check with its fields; 503 when a person is needed
        GET  /metrics        bot.serve.metrics.Metrics in Prometheus' text format

We own the `web.Application`s (Bolt's built-in server would own routes and lifecycle). What the
app holds while it runs is typed with `web.AppKey`; the resources themselves are tied to the
public app's life with `cleanup_ctx` in bot.serve.server, which registers their checks here. The admin
app shares the public app's registries, so both always show the same state.

Liveness (`add_live_check`) is sync predicates about the process itself: the event loop answers
the request, and the bot's own long-running tasks (deliverer, scheduler, Socket Mode watchdog)
are running. It never looks at Slack or the database: restarting does not fix either, and a
restart loop during a Slack outage is exactly what must not happen.
Readiness (`add_ready_check`) is named async checks, each returning a dict with at least `ok`.
Metrics refreshers (`add_metrics_refresher`) run before each scrape (gauges read from the
database, e.g. the outbox depth).

Slack's bodies are parsed here, not by Bolt (`slack_body`; docs/slack.md, section "Requests that
mention "payload""): Bolt's parser takes any form body containing the text "payload" for an interactive
request, so `/backup payload-lab` dispatched nothing.
"""

from __future__ import annotations

import asyncio
import json
import logging
import urllib.parse
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web
from slack_bolt.adapter.aiohttp import to_aiohttp_response
from slack_bolt.async_app import AsyncApp
from slack_bolt.request.async_request import AsyncBoltRequest

from bot.serve.metrics import Metrics

log = logging.getLogger(__name__)

LiveCheck = Callable[[], bool]
ReadyCheck = Callable[[], Awaitable[dict[str, Any]]]
Refresher = Callable[[], Awaitable[None]]

BOLT = web.AppKey("bolt", AsyncApp)
LIVE_CHECKS = web.AppKey("live_checks", dict[str, LiveCheck])
READY_CHECKS = web.AppKey("ready_checks", dict[str, ReadyCheck])
READY_TIMEOUT = 2.0  # a readiness check that takes longer counts as failing
METRICS = web.AppKey("metrics", Metrics)
METRICS_REFRESH = web.AppKey("metrics_refresh", list[Refresher])


def add_live_check(app: web.Application, name: str, check: LiveCheck) -> None:
    """Register `check` in liveness (call from a cleanup_ctx's startup part). Only what a restart fixes."""
    app[LIVE_CHECKS][name] = check


def add_ready_check(app: web.Application, name: str, check: ReadyCheck) -> None:
    """Register `check` under `name` in /healthz/ready (call from a cleanup_ctx's startup part)."""
    app[READY_CHECKS][name] = check


def add_metrics_refresher(app: web.Application, refresh: Refresher) -> None:
    """Run `refresh` before each /metrics scrape (call from a cleanup_ctx's startup part)."""
    app[METRICS_REFRESH].append(refresh)


# -- Slack's requests ------------------------------------------------------------------------------
def slack_body(raw: str, content_type: str) -> dict[str, Any]:
    """What Slack sent, decided by its form and never by its words. Raises ValueError if malformed.

    JSON (Events API) is the object itself. A form (slash commands, interactivity) is its fields,
    except that a `payload` FIELD holds an interactive request's JSON. Bolt's own parser asks
    whether the text "payload" occurs anywhere in the body instead, so a command such as
    `/backup payload-lab` came out empty and was answered 404. Keep this guard: see docs/slack.md,
    section "Requests that mention "payload"".
    """
    if not raw:
        return {}
    if content_type == "application/json":
        return _json_object(raw, "body")
    fields = dict(urllib.parse.parse_qsl(raw, keep_blank_values=True))
    if "payload" in fields:
        return _json_object(fields["payload"], "payload field")
    return fields


def _json_object(text: str, what: str) -> dict[str, Any]:
    try:
        value = json.loads(text)
    except ValueError:
        raise ValueError(f"the {what} is not valid JSON") from None
    if not isinstance(value, dict):
        raise ValueError(f"the {what} is not a JSON object")
    return value


def bolt_request(request: web.Request, raw: str, body: dict[str, Any]) -> AsyncBoltRequest:
    """A Bolt request carrying our parse of the body and the raw body Slack signed.

    Bolt takes a ready dict body only in its Socket Mode form, so the request is built that way and
    then switched back to HTTP with the raw body: the signature check (which Bolt skips only in
    Socket Mode) then runs over exactly the bytes Slack signed. (Bolt's lazy listeners re-parse the
    raw body with its own parser; backupbot has none.)
    """
    bolt_req = AsyncBoltRequest(body=body, query=request.query_string,
                                headers=request.headers, mode="socket_mode")  # type: ignore[arg-type]
    bolt_req.raw_body, bolt_req.mode = raw, "http"
    return bolt_req


async def slack_events(request: web.Request) -> web.Response:
    raw = await request.text()
    try:
        body = slack_body(raw, request.content_type)  # the "payload" guard: see slack_body
    except ValueError as exc:
        return web.Response(status=400, text=f"malformed Slack request: {exc}")
    bolt_response = await request.app[BOLT].async_dispatch(bolt_request(request, raw, body))
    return await to_aiohttp_response(bolt_response)


# -- health and metrics ----------------------------------------------------------------------------
def _live(app: web.Application) -> dict[str, Any]:
    checks = {name: bool(check()) for name, check in app[LIVE_CHECKS].items()}
    return {"ok": all(checks.values()), **checks}


async def public_healthz(request: web.Request) -> web.Response:
    """For a load balancer on the internet: liveness as one word, nothing about the inside."""
    ok = _live(request.app)["ok"]
    return web.Response(status=200 if ok else 503, text="ok" if ok else "unhealthy")


async def healthz_live(request: web.Request) -> web.Response:
    body = _live(request.app)
    return web.json_response(body, status=200 if body["ok"] else 503)


async def _run_check(name: str, check: ReadyCheck) -> dict[str, Any]:
    try:
        return await asyncio.wait_for(check(), READY_TIMEOUT)
    except TimeoutError:
        return {"ok": False, "error": f"no answer within {READY_TIMEOUT:.0f}s"}
    except Exception as exc:  # noqa: BLE001 - a failing check is an answer, not a 500
        log.warning("health check %s failed: %s", name, exc)
        return {"ok": False, "error": type(exc).__name__}


async def healthz_ready(request: web.Request) -> web.Response:
    checks = request.app[READY_CHECKS]
    results = await asyncio.gather(*(_run_check(n, c) for n, c in checks.items()))
    body: dict[str, Any] = dict(zip(checks, results))
    body["ok"] = all(r.get("ok") for r in results)
    return web.json_response(body, status=200 if body["ok"] else 503)


async def metrics(request: web.Request) -> web.Response:
    for refresh in request.app[METRICS_REFRESH]:
        try:
            await asyncio.wait_for(refresh(), READY_TIMEOUT)
        except Exception as exc:  # noqa: BLE001 - a stale gauge beats no metrics at all
            log.warning("metrics refresh failed: %s", type(exc).__name__)
    body, content_type = request.app[METRICS].render()
    return web.Response(body=body, headers={"Content-Type": content_type})


def build_web_app(*, slack_route: bool = True) -> web.Application:
    """The public app: routes and empty registries; bot.serve.server appends the cleanup contexts that
    fill BOLT and the checks. `slack_route=False` (Socket Mode) leaves /slack/events out."""
    app = web.Application()
    app[LIVE_CHECKS] = {}
    app[READY_CHECKS] = {}
    app[METRICS] = Metrics()
    app[METRICS_REFRESH] = []
    app.router.add_get("/healthz", public_healthz)
    if slack_route:
        app.router.add_post("/slack/events", slack_events)
    return app


def build_admin_app(public: web.Application) -> web.Application:
    """The admin app, reading the public app's registries (filled while the public app starts)."""
    admin = web.Application()
    admin[LIVE_CHECKS], admin[READY_CHECKS] = public[LIVE_CHECKS], public[READY_CHECKS]
    admin[METRICS], admin[METRICS_REFRESH] = public[METRICS], public[METRICS_REFRESH]
    admin.router.add_get("/healthz/live", healthz_live)
    admin.router.add_get("/healthz/ready", healthz_ready)
    admin.router.add_get("/metrics", metrics)
    return admin
