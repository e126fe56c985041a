"""`backupbot serve`: build everything, serve Slack over HTTP or Socket Mode, stop gracefully.

`create_app` returns the aiohttp application with every resource tied to its life by a cleanup
context, started in this order and stopped in reverse:

    backend      SQLite store, the inventory (read from its source  (ready: database, git)
                 once, bot.inventory), BackupService, Catalog, git mirror
    slack        one aiohttp ClientSession, the Web API clients,  (ready: slack)
                 auth.test (bot.slack.link: a refused token stops start-up, an unreachable
                 Slack does not; it is asked again in the background)
    tasks        TaskTracker for work after the ack               (drained on shutdown)
    bolt         AsyncApp with every listener registered, authorized by bot.slack.link
    deliverer    the outbox deliverer (bot.slack.deliver)          (ready: outbox; live)
    scheduler    one run per daily slot, catch-up at start-up     (ready: scheduler; live)
    web          only with web.base_url: the /ui/ pages (bot.web) get the backend, the tracker and
                 a way to tell a user in Slack (their DM)
    inventory    with an `inventory:` source: read it again every  (ready: inventory; live)
                 `inventory.refresh`; the scheduler re-plans
    socket mode  only with --socket-mode: handler + watchdog      (ready: socket_mode; live)

So on shutdown the socket stops taking requests first; the scheduler starts nothing new and gives
its runs in flight `run_grace` seconds before cancelling them (a cancelled device writes nothing:
its transaction rolls back, and the run stays unfinished until the next start marks it
interrupted); the deliverer finishes the post in progress and leaves the rest queued; running
tasks get `drain_timeout` seconds to finish (they still have Slack and the database), and only
then are the HTTP session and the database closed. SIGTERM and SIGINT trigger that shutdown.

`serve` listens twice (bot.serve.web): the public listener answers POST /slack/events (HTTP mode), the
browser pages under /ui/ (with web.base_url; in Socket Mode they alone open the public listener) and
a bare GET /healthz; the admin listener (127.0.0.1:9090 by default) answers /healthz/live,
/healthz/ready and /metrics. /metrics serves bot.serve.metrics.Metrics: runs are observed as they finish,
last good backups are loaded at start-up, the outbox depth is read at every scrape.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import sys
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass

import aiohttp
from aiohttp import web
from slack_bolt.async_app import AsyncApp
from slack_sdk.web.async_client import AsyncWebClient

import handlers
from bot.serve import health
from bot.app import Backend, open_backend
from bot.core.clock import Clock, utcnow
from bot.ssh.collector import Collector
from bot.slack.deliver import Deliverer, Tuning
from bot.core.kinds import Trigger
from bot.core.logs import log_event
from bot.core.messages import OutboxMessage
from bot.core.models import NotStarted, RunSummary, Settings
from bot.backup.scheduler import Scheduler, next_runs
from bot.core.errors import BackupbotError, StartupError
from bot.slack.client import Credentials, build_client, post_to_dm
from bot.slack.link import Recheck, SlackLink, bolt_authorize
from bot.slack import blocks
from bot.slack.socket_mode import SocketModeRunner, Watchdog
from bot.slack.tasks import LIMIT as TASK_LIMIT
from bot.slack.tasks import TaskTracker
from bot.serve.listen import Listen
from bot.serve.web import (
    BOLT,
    METRICS,
    add_live_check,
    add_metrics_refresher,
    add_ready_check,
    build_admin_app,
    build_web_app,
)
from bot.web import links, paths
from bot.web.app import build_ui
from bot.web.links import Linker
from bot.web.pages import UiDeps
from bot.web.routes import UI
from handlers.deps import Deps

log = logging.getLogger(__name__)

EXIT_OK, EXIT_STARTUP = 0, 2

BACKEND = web.AppKey("backend", Backend)
SLACK_SESSION = web.AppKey("slack_session", aiohttp.ClientSession)  # the one HTTP session all clients share
SLACK_CLIENT = web.AppKey("slack_client", AsyncWebClient)
# The same client without the SDK's own retries: a retried post could be a second post. The
# deliverer retries itself, after checking whether the first attempt landed; so does SlackLink.
DELIVERY_CLIENT = web.AppKey("delivery_client", AsyncWebClient)
DELIVERER = web.AppKey("deliverer", Deliverer)
SCHEDULER = web.AppKey("scheduler", Scheduler)
SLACK_LINK = web.AppKey("slack_link", SlackLink)  # the token's state, and the bot's identity once known
TASKS = web.AppKey("tasks", TaskTracker)
SOCKET = web.AppKey("socket_mode", SocketModeRunner)
WEB_UI = web.AppKey("web_ui", web.Application)  # the /ui/ sub-application, when web.base_url is set
INVENTORY = web.AppKey("inventory", asyncio.Task[None])  # the refresh loop

# A resource tied to the app's life (aiohttp's cleanup_ctx): set up before `yield`, torn down after.
CleanupContext = Callable[[web.Application], AsyncIterator[None]]


@dataclass(frozen=True)
class Options:
    """Knobs tests and benchmarks turn; the defaults are production's."""

    clock: Clock = utcnow
    collector: Collector | None = None
    task_limit: int = TASK_LIMIT
    drain_timeout: float = 30.0
    socket_mode: Watchdog = Watchdog()  # noqa: RUF009 - a frozen dataclass: one shared default is fine
    delivery: Tuning = Tuning()  # noqa: RUF009 - frozen, as above
    run_grace: float = 5.0  # at shutdown, scheduled runs in flight get this long before being cancelled
    slack_recheck: Recheck = Recheck()  # noqa: RUF009 - frozen, as above


SETTINGS = web.AppKey("settings", Settings)
CREDENTIALS = web.AppKey("credentials", Credentials)
OPTIONS = web.AppKey("options", Options)


def create_app(settings: Settings, credentials: Credentials, *, socket_mode: bool = False,
               options: Options = Options(), web_secret: bytes | None = None) -> web.Application:
    """The public app, with each resource tied to its life in the order the module docstring gives.
    With web.base_url set, `web_secret` (BACKUPBOT_WEB_SECRET, bot.web.links) signs the pages' links."""
    app = build_web_app(slack_route=not socket_mode)
    app[SETTINGS], app[CREDENTIALS], app[OPTIONS] = settings, credentials, options
    contexts: list[CleanupContext] = [backend_ctx, slack_ctx, tasks_ctx, bolt_ctx, deliverer_ctx, scheduler_ctx,
                                      inventory_ctx]
    if settings.web.base_url is not None:
        if web_secret is None:
            raise StartupError(f"web.base_url is set but {links.SECRET_ENV} is not")
        ui = build_ui(settings.web.base_url, web_secret)
        app.add_subapp(paths.ROOT, ui)
        app[WEB_UI] = ui
        contexts.insert(contexts.index(bolt_ctx), web_ctx)
    if socket_mode:
        contexts.append(socket_ctx)
    app.cleanup_ctx.extend(contexts)
    return app


def _observer(app: web.Application) -> Callable[[RunSummary], None]:
    """BackupService's `observe`: metrics, and the deliverer woken for the messages just committed."""

    def observe(summary: RunSummary) -> None:
        app[METRICS].observe_run(summary)
        deliverer = app.get(DELIVERER)
        if deliverer is not None:
            deliverer.wake()

    return observe


async def backend_ctx(app: web.Application) -> AsyncIterator[None]:
    """Store, service, catalog and git mirror (bot.app); runs left unfinished are closed; ready: database, git."""
    options, metrics = app[OPTIONS], app[METRICS]
    async with open_backend(app[SETTINGS], clock=options.clock, collector=options.collector,
                            observe=_observer(app)) as backend:
        if backend.inventory_note is not None:
            log_event(log, logging.WARNING, "serve starts without a fresh inventory", note=backend.inventory_note)
        await close_unfinished_runs(backend, options.clock)
        app[BACKEND] = backend
        # Only devices in the inventory: a retired or removed one must not set off a staleness alert.
        active = {d.key for d in backend.settings.devices()}
        metrics.load_last_successes({k: at for k, at in (await backend.store.last_successes()).items() if k in active})

        def forget_gone(old: Settings, new: Settings) -> None:
            for site, device in {d.key for d in old.devices()} - {d.key for d in new.devices()}:
                metrics.forget(site, device)

        backend.live.subscribe(forget_gone)

        async def outbox_depth() -> None:
            metrics.set_outbox_depth(await backend.store.outbox_depth())

        add_ready_check(app, "database", health.database(backend.store, options.clock))
        if backend.mirror is not None:
            add_ready_check(app, "git", health.git(backend.mirror))
            backend.mirror.kick()  # catch up on what happened while serve was down
        add_metrics_refresher(app, outbox_depth)
        yield


async def slack_ctx(app: web.Application) -> AsyncIterator[None]:
    """One HTTP session, the Web API clients and the token check (bot.slack.link); ready: slack."""
    credentials, options = app[CREDENTIALS], app[OPTIONS]
    async with aiohttp.ClientSession() as session:
        app[SLACK_SESSION] = session
        app[SLACK_CLIENT] = build_client(credentials, session)
        app[DELIVERY_CLIENT] = build_client(credentials, session, rate_limit_retries=0,
                                            server_error_retries=0, connection_retries=0)
        link = SlackLink(app[DELIVERY_CLIENT], recheck=options.slack_recheck, clock=options.clock)
        await link.start()  # StartupError if the token is refused; Slack unreachable is not one
        app[SLACK_LINK] = link
        add_ready_check(app, "slack", health.slack(link, options.clock))
        try:
            yield
        finally:
            await link.stop()


async def tasks_ctx(app: web.Application) -> AsyncIterator[None]:
    """The TaskTracker for work after the ack; drained on shutdown."""
    options = app[OPTIONS]
    tracker = TaskTracker(limit=options.task_limit)
    app[TASKS] = tracker
    yield
    finished, cancelled = await tracker.drain(options.drain_timeout)
    if finished or cancelled:
        log.info("shutdown: %d task(s) finished, %d cancelled", finished, cancelled)


async def bolt_ctx(app: web.Application) -> AsyncIterator[None]:
    """Bolt with every listener registered (handlers), authorized by the SlackLink."""
    credentials, options, backend = app[CREDENTIALS], app[OPTIONS], app[BACKEND]
    # process_before_response=True: Bolt awaits the listener and answers when it returns, instead of
    # running it as an untracked future and polling every 10 ms for the ack. Safe here because
    # every listener only parses, authorizes, acks and hands the rest to the TaskTracker (no Slack
    # or database call before it returns). Measured (benchmarks/ack_latency.py, 2 CPUs, backup
    # running): ack p50 15.7 -> 3.3 ms, p99 138 -> 79 ms.
    # Bolt's client has no token: given one, Bolt calls auth.test on the first request (failing
    # while Slack is unreachable). It authorizes each request from the SlackLink instead.
    live = backend.live
    bolt = AsyncApp(client=build_client(credentials, app[SLACK_SESSION], with_token=False),
                    authorize=bolt_authorize(app[SLACK_LINK], credentials.bot_token),
                    signing_secret=credentials.signing_secret or "",
                    process_before_response=True, logger=logging.getLogger("slack_bolt"))
    ui = app.get(WEB_UI)
    linker = Linker(live, ui[UI].secret, options.clock) if ui is not None else None
    handlers.register(bolt, Deps(live=live, catalog=backend.catalog, service=backend.service,
                                 grep=backend.grep, tasks=app[TASKS], clock=options.clock,
                                 next_runs=lambda: next_runs(live.settings, options.clock()), web=linker))
    app[BOLT] = bolt
    yield


async def web_ctx(app: web.Application) -> AsyncIterator[None]:
    """The browser pages (bot.web): the backend, the task tracker, and a user's DM for results."""
    backend, client = app[BACKEND], app[SLACK_CLIENT]

    async def tell(user: str, message: blocks.Message) -> None:
        await post_to_dm(client, user, message)

    app[WEB_UI][UI].start(UiDeps(catalog=backend.catalog, store=backend.store, service=backend.service,
                                 grep=backend.grep, tasks=app[TASKS], clock=app[OPTIONS].clock, tell=tell))
    yield


async def deliverer_ctx(app: web.Application) -> AsyncIterator[None]:
    """The outbox deliverer (bot.slack.deliver); ready: outbox; live: deliverer."""
    options, store = app[OPTIONS], app[BACKEND].store
    deliverer = Deliverer(store, app[DELIVERY_CLIENT], options.clock, metrics=app[METRICS], tuning=options.delivery)
    deliverer.start()
    app[DELIVERER] = deliverer
    add_ready_check(app, "outbox", health.outbox(store, deliverer, options.clock))
    add_live_check(app, "deliverer", lambda: deliverer.running)
    try:
        yield
    finally:
        await deliverer.stop()


async def scheduler_ctx(app: web.Application) -> AsyncIterator[None]:
    """One run per daily slot, the catch-up at start-up (bot.backup.scheduler); ready and live: scheduler."""
    options, backend = app[OPTIONS], app[BACKEND]

    async def run_sites(sites: tuple[str, ...], trigger: Trigger, not_started: tuple[NotStarted, ...]) -> RunSummary:
        settings = backend.settings  # the devices as they are now; the run keeps them to its end
        devices = [d for site in sites if site in settings.sites for d in settings.devices(site)]
        return await backend.service.run(devices, trigger, not_started=not_started)

    scheduler = Scheduler(backend.live, run_sites, backend.store, options.clock)
    await scheduler.start()
    app[SCHEDULER] = scheduler
    add_ready_check(app, "scheduler", health.scheduler(scheduler, backend.store, options.clock))
    add_live_check(app, "scheduler", lambda: scheduler.running)
    try:
        yield
    finally:
        await scheduler.stop(grace=options.run_grace)


async def inventory_ctx(app: web.Application) -> AsyncIterator[None]:
    """With an `inventory:` source: refresh it on schedule (bot.inventory.refresh); ready: inventory."""
    refresher = app[BACKEND].refresher
    if refresher is None:
        yield
        return
    task = asyncio.create_task(refresher.run(), name="inventory refresh")
    app[INVENTORY] = task
    add_ready_check(app, "inventory", health.inventory(refresher, app[OPTIONS].clock))
    add_live_check(app, "inventory", lambda: not task.done())
    try:
        yield
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


async def socket_ctx(app: web.Application) -> AsyncIterator[None]:
    """Socket Mode (--socket-mode only): the handler and its watchdog; ready: socket_mode."""
    credentials = app[CREDENTIALS]
    assert credentials.app_token is not None  # Credentials.from_env checked it
    runner = SocketModeRunner(app[BOLT], credentials.app_token, app[SLACK_CLIENT], watchdog=app[OPTIONS].socket_mode)
    await runner.start()  # StartupError if the app token is refused; Slack unreachable is not one
    app[SOCKET] = runner
    add_ready_check(app, "socket_mode", runner.status)
    add_live_check(app, "socket_watchdog", lambda: runner.watching)
    try:
        yield
    finally:
        await runner.stop()


async def close_unfinished_runs(backend: Backend, clock: Clock) -> None:
    """Runs a previous process left unfinished are marked interrupted, each together with the
    messages about the changes it recorded (bot.slack.notify), so the channel still hears of them
    (not of an import's: that is history, told to nobody)."""
    for run in await backend.store.unfinished_runs():
        attempts = await backend.store.run_attempts(run.id)
        now = clock()
        messages: list[OutboxMessage] = []
        try:
            if run.trigger != Trigger.IMPORT:
                messages = await backend.announce.interrupted(run.id, run.started_at, attempts, now)
        except Exception:
            log.exception("announcing the changes of interrupted run %d failed", run.id)
            messages = []
        if await backend.store.interrupt_run(run.id, now, messages):
            log_event(log, logging.WARNING, "run left unfinished by a previous process marked interrupted",
                      run_id=run.id, trigger=run.trigger, attempts=len(attempts), messages=len(messages))


PUBLIC_ROUTES = "public: POST /slack/events, GET /healthz"
WEB_ROUTES = "GET /ui/ (browser pages)"
ADMIN_ROUTES = "admin: GET /healthz/live, /healthz/ready, /metrics"


def serve(settings: Settings, env: Mapping[str, str], *, listen: Listen = Listen(), socket_mode: bool = False) -> int:
    """Run until SIGTERM/SIGINT. Exit 2 with one clear line when Slack cannot be used as configured
    (a variable missing, a token refused) or a port cannot be listened on."""
    try:
        credentials = Credentials.from_env(env, socket_mode=socket_mode)
        web_secret = links.secret_from_env(env) if settings.web.base_url is not None else None
    except StartupError as exc:
        print(f"backupbot serve: {exc}", file=sys.stderr)
        return EXIT_STARTUP
    return asyncio.run(_serve(settings, credentials, listen, socket_mode, web_secret))


async def _serve(settings: Settings, credentials: Credentials, listen: Listen, socket_mode: bool,
                 web_secret: bytes | None) -> int:
    app = create_app(settings, credentials, socket_mode=socket_mode, web_secret=web_secret)
    pages = settings.web.base_url is not None
    public = web.AppRunner(app, handle_signals=False)
    try:
        await public.setup()  # runs every cleanup context's start-up part
    except BackupbotError as exc:  # Slack refused a token, the database is too new, ...
        print(f"backupbot serve: {exc}", file=sys.stderr)
        await public.cleanup()
        return EXIT_STARTUP
    admin = web.AppRunner(build_admin_app(app), handle_signals=False)
    await admin.setup()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    sites = [(admin, listen.admin_host, listen.admin_port, ADMIN_ROUTES, "--admin-host/--admin-port")]
    if socket_mode and not pages:  # Slack is reached over the WebSocket: nothing needs to face the internet
        print("backupbot serve: Socket Mode: no public listener", file=sys.stderr, flush=True)
    elif socket_mode:  # only the browser pages (and the bare liveness) face the team's network
        sites.insert(0, (public, listen.host, listen.port, f"public: {WEB_ROUTES}, GET /healthz", "--host/--port"))
    else:
        routes = f"{PUBLIC_ROUTES}, {WEB_ROUTES}" if pages else PUBLIC_ROUTES
        sites.insert(0, (public, listen.host, listen.port, routes, "--host/--port"))
    try:
        for runner, host, port, routes, option in sites:
            try:
                await web.TCPSite(runner, host, port).start()
            except OSError as exc:
                print(f"backupbot serve: cannot listen on {host}:{port} ({exc.strerror or exc}); choose another"
                      f" with {option}", file=sys.stderr)
                return EXIT_STARTUP
            print(f"backupbot serve: listening on http://{host}:{port} ({routes})", file=sys.stderr, flush=True)
        await stop.wait()
        print("backupbot serve: shutting down", file=sys.stderr, flush=True)
    finally:
        await admin.cleanup()
        await public.cleanup()
    return EXIT_OK
