"""The aiohttp web application: `POST /slack/events` (Bolt) next to `GET /healthz` and `GET /metrics`.

We own the `web.Application` (bolt's built-in server would own routes and lifecycle). The Slack
route hands the raw request to Bolt, which verifies the signature (401 otherwise) before any
listener runs. What the app holds while it runs is typed with `web.AppKey`; the resources
themselves are tied to the app's life with `cleanup_ctx` in bot.server.

Health is a registry of named async checks (`add_health_check`): each returns a dict with at least
`ok`. /healthz answers 200 when all are ok, 503 otherwise, with every check's fields.
/metrics renders the app's bot.metrics.Metrics in Prometheus' text format, after running the
registered refreshers (gauges read from the database at scrape time, e.g. the outbox depth).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web
from slack_bolt.adapter.aiohttp import to_aiohttp_response, to_bolt_request
from slack_bolt.async_app import AsyncApp

from bot.metrics import Metrics

log = logging.getLogger(__name__)

HealthCheck = Callable[[], Awaitable[dict[str, Any]]]

BOLT = web.AppKey("bolt", AsyncApp)
HEALTH_CHECKS = web.AppKey("health_checks", dict[str, HealthCheck])
HEALTH_TIMEOUT = 2.0  # a check that takes longer counts as failing
METRICS = web.AppKey("metrics", Metrics)
Refresher = Callable[[], Awaitable[None]]
METRICS_REFRESH = web.AppKey("metrics_refresh", list[Refresher])


def add_health_check(app: web.Application, name: str, check: HealthCheck) -> None:
    """Register `check` under `name` in /healthz (call from a cleanup_ctx's startup part)."""
    app[HEALTH_CHECKS][name] = check


async def slack_events(request: web.Request) -> web.Response:
    bolt = request.app[BOLT]
    bolt_response = await bolt.async_dispatch(await to_bolt_request(request))
    return await to_aiohttp_response(bolt_response)


async def _run_check(name: str, check: HealthCheck) -> dict[str, Any]:
    try:
        return await asyncio.wait_for(check(), HEALTH_TIMEOUT)
    except TimeoutError:
        return {"ok": False, "error": f"no answer within {HEALTH_TIMEOUT:.0f}s"}
    except Exception as exc:  # noqa: BLE001 - a failing check is an answer, not a 500
        log.warning("health check %s failed: %s", name, exc)
        return {"ok": False, "error": type(exc).__name__}


async def healthz(request: web.Request) -> web.Response:
    checks = request.app[HEALTH_CHECKS]
    results = await asyncio.gather(*(_run_check(n, c) for n, c in checks.items()))
    body: dict[str, Any] = dict(zip(checks, results))
    body["ok"] = all(r.get("ok") for r in results)
    return web.json_response(body, status=200 if body["ok"] else 503)


def add_metrics_refresher(app: web.Application, refresh: Refresher) -> None:
    """Run `refresh` before each /metrics scrape (call from a cleanup_ctx's startup part)."""
    app[METRICS_REFRESH].append(refresh)


async def metrics(request: web.Request) -> web.Response:
    for refresh in request.app[METRICS_REFRESH]:
        try:
            await asyncio.wait_for(refresh(), HEALTH_TIMEOUT)
        except Exception as exc:  # noqa: BLE001 - a stale gauge beats no metrics at all
            log.warning("metrics refresh failed: %s", type(exc).__name__)
    body, content_type = request.app[METRICS].render()
    return web.Response(body=body, headers={"Content-Type": content_type})


def build_web_app(*, slack_route: bool = True) -> web.Application:
    """Routes only; bot.server appends the cleanup contexts that fill BOLT and the health checks.

    `slack_route=False` (Socket Mode) leaves /slack/events out: events arrive over the socket.
    """
    app = web.Application()
    app[HEALTH_CHECKS] = {}
    app[METRICS] = Metrics()
    app[METRICS_REFRESH] = []
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/metrics", metrics)
    if slack_route:
        app.router.add_post("/slack/events", slack_events)
    return app
