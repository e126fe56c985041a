"""`backupbot serve`: build everything, serve Slack over HTTP or Socket Mode, stop gracefully.

`create_app` returns the aiohttp application with every resource tied to its life by a cleanup
context, started in this order and stopped in reverse:

    backend      SQLite store, BackupService, Catalog            (health: database)
    slack        one aiohttp ClientSession, the Web API client, auth.test
    tasks        TaskTracker for work after the ack               (drained on shutdown)
    bolt         AsyncApp with every listener registered
    deliverer    the outbox deliverer (bot.deliver)                (health: outbox)
    scheduler    daily runs per site, catch-up at start-up        (health: scheduler)
    background   anything else in BACKGROUND_CONTEXTS / Options.background
    socket mode  only with --socket-mode: handler + watchdog      (health: socket_mode)

So on shutdown the socket stops taking requests first; the scheduler starts nothing new and gives
its runs in flight `run_grace` seconds before cancelling them (a cancelled device writes nothing:
its transaction rolls back, and the run stays unfinished until the next start marks it
interrupted); the deliverer finishes the post in progress and leaves the rest queued; running
tasks get `drain_timeout` seconds to finish (they still have Slack and the database), and only
then are the HTTP session and the database closed. SIGTERM and SIGINT trigger that shutdown.

GET /metrics serves bot.metrics.Metrics: runs are observed as they finish, last good backups are
loaded at start-up, the outbox depth is read at every scrape.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import sys
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field

import aiohttp
from aiohttp import web
from slack_bolt.async_app import AsyncApp
from slack_sdk.web.async_client import AsyncWebClient

import handlers
from bot import health
from bot.app import Backend, open_backend
from bot.backup import Clock, utcnow
from bot.collector import Collector
from bot.deliver import Deliverer, Tuning
from bot.logs import log_event
from bot.models import NotStarted, RunSummary, Settings
from bot.scheduler import Scheduler, next_runs
from bot.slack_client import BotIdentity, Credentials, StartupError, build_client, check_token
from bot.socket_mode import SocketModeRunner, check_app_token
from bot.tasks import TaskTracker
from bot.web import BOLT, METRICS, add_health_check, add_metrics_refresher, build_web_app
from handlers.deps import Deps

log = logging.getLogger(__name__)

EXIT_OK, EXIT_STARTUP = 0, 2

BACKEND = web.AppKey("backend", Backend)
SLACK_CLIENT = web.AppKey("slack_client", AsyncWebClient)
# The same client without the SDK's own retries: a retried post could be a second post. The
# deliverer retries itself, after checking whether the first attempt landed.
DELIVERY_CLIENT = web.AppKey("delivery_client", AsyncWebClient)
DELIVERER = web.AppKey("deliverer", Deliverer)
SCHEDULER = web.AppKey("scheduler", Scheduler)
IDENTITY = web.AppKey("identity", BotIdentity)
TASKS = web.AppKey("tasks", TaskTracker)
SOCKET = web.AppKey("socket_mode", SocketModeRunner)

CleanupContext = Callable[[web.Application], AbstractAsyncContextManager[None]]
# More background jobs (besides the deliverer and the scheduler): they start after Bolt and the
# task tracker, and stop before tasks are drained.
BACKGROUND_CONTEXTS: list[CleanupContext] = []


@dataclass(frozen=True)
class Options:
    """Knobs tests and benchmarks turn; the defaults are production's."""

    clock: Clock = utcnow
    collector: Collector | None = None
    task_limit: int = 200
    drain_timeout: float = 30.0
    socket_ping_interval: float = 10.0
    watchdog_interval: float = 15.0
    watchdog_stale_after: float = 60.0
    background: Sequence[CleanupContext] = field(default_factory=tuple)
    delivery: Tuning = Tuning()  # noqa: RUF009 - a frozen dataclass: one shared default is fine
    run_grace: float = 5.0  # at shutdown, scheduled runs in flight get this long before being cancelled


def create_app(settings: Settings, credentials: Credentials, *, socket_mode: bool = False,
               options: Options = Options()) -> web.Application:
    app = build_web_app(slack_route=not socket_mode)
    metrics = app[METRICS]

    def observe(summary: RunSummary) -> None:
        metrics.observe_run(summary)
        deliverer = app.get(DELIVERER)
        if deliverer is not None:
            deliverer.wake()  # the run's messages were just committed

    async def backend_ctx(app: web.Application) -> AsyncIterator[None]:
        async with open_backend(settings, clock=options.clock, collector=options.collector,
                                observe=observe) as backend:
            await close_unfinished_runs(backend, options.clock)
            app[BACKEND] = backend
            metrics.load_last_successes(await backend.store.last_successes())

            async def outbox_depth() -> None:
                metrics.set_outbox_depth(await backend.store.outbox_depth())

            add_health_check(app, "database", health.database(backend.store, options.clock))
            add_metrics_refresher(app, outbox_depth)
            yield

    async def slack_ctx(app: web.Application) -> AsyncIterator[None]:
        async with aiohttp.ClientSession() as session:
            client = build_client(credentials, session)
            app[IDENTITY] = await check_token(client)
            app[SLACK_CLIENT] = client
            app[DELIVERY_CLIENT] = build_client(credentials, session, rate_limit_retries=0,
                                                server_error_retries=0, connection_retries=0)
            yield

    async def tasks_ctx(app: web.Application) -> AsyncIterator[None]:
        tracker = TaskTracker(limit=options.task_limit)
        app[TASKS] = tracker
        yield
        finished, cancelled = await tracker.drain(options.drain_timeout)
        if finished or cancelled:
            log.info("shutdown: %d task(s) finished, %d cancelled", finished, cancelled)

    async def bolt_ctx(app: web.Application) -> AsyncIterator[None]:
        backend = app[BACKEND]
        # process_before_response=True: Bolt awaits the listener and answers when it returns, instead of
        # running it as an untracked future and polling every 10 ms for the ack. Safe here because
        # every listener only parses, authorizes, acks and hands the rest to the TaskTracker (no Slack
        # or database call before it returns). Measured (benchmarks/ack_latency.py, 2 CPUs, backup
        # running): ack p50 15.7 -> 3.3 ms, p99 138 -> 79 ms.
        bolt = AsyncApp(client=app[SLACK_CLIENT], signing_secret=credentials.signing_secret or "",
                        process_before_response=True, logger=logging.getLogger("slack_bolt"))
        handlers.register(bolt, Deps(settings=settings, catalog=backend.catalog, service=backend.service,
                                     tasks=app[TASKS], clock=options.clock,
                                     next_runs=lambda: next_runs(settings, options.clock())))
        app[BOLT] = bolt
        yield

    async def deliverer_ctx(app: web.Application) -> AsyncIterator[None]:
        store = app[BACKEND].store
        deliverer = Deliverer(store, app[DELIVERY_CLIENT], options.clock, metrics=metrics, tuning=options.delivery)
        deliverer.start()
        app[DELIVERER] = deliverer
        add_health_check(app, "outbox", health.outbox(store, deliverer, options.clock))
        try:
            yield
        finally:
            await deliverer.stop()

    async def scheduler_ctx(app: web.Application) -> AsyncIterator[None]:
        backend = app[BACKEND]

        async def run_sites(sites: tuple[str, ...], trigger: str, not_started: tuple[NotStarted, ...]) -> RunSummary:
            devices = [d for site in sites for d in settings.devices(site)]
            return await backend.service.run(devices, trigger, not_started=not_started)

        scheduler = Scheduler(settings, run_sites, backend.store, options.clock)
        await scheduler.start()
        app[SCHEDULER] = scheduler
        add_health_check(app, "scheduler", health.scheduler(settings, scheduler, backend.store, options.clock))
        try:
            yield
        finally:
            await scheduler.stop(grace=options.run_grace)

    async def socket_ctx(app: web.Application) -> AsyncIterator[None]:
        assert credentials.app_token is not None  # Credentials.from_env checked it
        await check_app_token(app[SLACK_CLIENT], credentials.app_token)
        runner = SocketModeRunner(app[BOLT], credentials.app_token, app[SLACK_CLIENT],
                                  ping_interval=options.socket_ping_interval, interval=options.watchdog_interval,
                                  stale_after=options.watchdog_stale_after)
        await runner.start()
        app[SOCKET] = runner
        add_health_check(app, "socket_mode", runner.status)
        try:
            yield
        finally:
            await runner.stop()

    contexts: list[CleanupContext] = [backend_ctx, slack_ctx, tasks_ctx, bolt_ctx]  # type: ignore[list-item]
    contexts += [deliverer_ctx, scheduler_ctx]  # type: ignore[list-item]
    contexts += [*BACKGROUND_CONTEXTS, *options.background]
    if socket_mode:
        contexts.append(socket_ctx)  # type: ignore[arg-type]
    app.cleanup_ctx.extend(contexts)
    return app


async def close_unfinished_runs(backend: Backend, clock: Clock) -> None:
    """Runs a previous process left unfinished are marked interrupted, each together with the
    messages about the changes it recorded (bot.notify), so the channel still hears of them."""
    for run in await backend.store.unfinished_runs():
        attempts = await backend.store.run_attempts(run.id)
        now = clock()
        try:
            messages = await backend.announce.interrupted(run.id, run.started_at, attempts, now)
        except Exception:
            log.exception("announcing the changes of interrupted run %d failed", run.id)
            messages = []
        if await backend.store.interrupt_run(run.id, now, messages):
            log_event(log, logging.WARNING, "run left unfinished by a previous process marked interrupted",
                      run_id=run.id, trigger=run.trigger, attempts=len(attempts), messages=len(messages))


def serve(settings: Settings, env: Mapping[str, str], *, port: int = 3000, host: str = "0.0.0.0",
          socket_mode: bool = False) -> int:
    """Run until SIGTERM/SIGINT. Exit 2 with one clear line when Slack cannot be used as configured."""
    try:
        credentials = Credentials.from_env(env, socket_mode=socket_mode)
    except StartupError as exc:
        print(f"backupbot serve: {exc}", file=sys.stderr)
        return EXIT_STARTUP
    return asyncio.run(_serve(settings, credentials, host, port, socket_mode))


async def _serve(settings: Settings, credentials: Credentials, host: str, port: int, socket_mode: bool) -> int:
    runner = web.AppRunner(create_app(settings, credentials, socket_mode=socket_mode), handle_signals=False)
    try:
        await runner.setup()  # runs every cleanup context's start-up part
    except StartupError as exc:
        print(f"backupbot serve: {exc}", file=sys.stderr)
        await runner.cleanup()
        return EXIT_STARTUP
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    try:
        site = web.TCPSite(runner, host, port)
        try:
            await site.start()
        except OSError as exc:
            print(f"backupbot serve: cannot listen on {host}:{port} ({exc.strerror or exc})", file=sys.stderr)
            return EXIT_STARTUP
        mode = "Socket Mode (and /healthz)" if socket_mode else "POST /slack/events and GET /healthz"
        print(f"backupbot serve: listening on http://{host}:{port} ({mode})", file=sys.stderr, flush=True)
        await stop.wait()
        print("backupbot serve: shutting down", file=sys.stderr, flush=True)
    finally:
        await runner.cleanup()
    return EXIT_OK
