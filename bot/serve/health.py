"""What readiness (`GET /healthz/ready` on the admin listener) says about `backupbot serve`, and when
it turns unhealthy (503): when a person is needed. (Liveness is bot.serve.web's, and never looks at
Slack or the database.)

    database   the store answers; last run (any trigger) and its age.
    scheduler  running; each site's next slot and when its last scheduled run started.
               Unhealthy: stopped, or a site with a schedule whose last scheduled run started
               more than SCHEDULE_OVERDUE (26 h) ago and none is running now: a day's slot plus
               two hours for jitter and a long run. A fresh install records its start as the
               baseline, so it is not overdue on day one.
    outbox     pending messages, the oldest one's age, the failing ones with Slack's error, the
               given-up ones. Unhealthy: the deliverer task is not running, or the oldest pending
               message is older than OUTBOX_STUCK (15 min): long enough for rate limits and a short
               Slack outage, short enough that a channel the bot was removed from is noticed the
               same morning.
    inventory  (with an `inventory:` source) where the devices in use come from (the source, its last
               good list kept in the database, or the config file only), when that list was read,
               the last error and since when reads fail, a fetch held back and how to accept it.
               Unhealthy: a fetch is held back (a person must accept it), or the source has failed
               for more than INVENTORY_FAILING (15 min, as Slack: one failed read is not news).
               Devices are never dropped from the schedule for a failed read either way.
    slack      whether Slack accepted the bot token (state accepted / unreachable / refused, since
               when, the last error, checks so far, the next one) and who the bot is once known.
               Unhealthy: the token was refused, or Slack has been unreachable since start-up for
               more than SLACK_UNREACHABLE (15 min, as the outbox: a blip at boot is not news).
    git        (with a `git:` mirror) its HEAD, the last good sync, the last push and their errors.
               Unhealthy: the last sync or the last push failed (each is retried after the next run;
               a person should look before the mirror falls further behind).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from typing import Any

from bot.core.clock import Clock
from bot.slack.deliver import Deliverer
from bot.inventory.refresh import FROM_FILE, Refresher
from bot.backup.scheduler import Scheduler, site_schedule
from bot.interop.mirror import GitMirror
from bot.slack.link import SlackLink
from storage.store import Store

SCHEDULE_OVERDUE = timedelta(hours=26)
OUTBOX_STUCK = timedelta(minutes=15)
SLACK_UNREACHABLE = timedelta(minutes=15)
INVENTORY_FAILING = timedelta(minutes=15)

Check = Callable[[], Awaitable[dict[str, Any]]]


def _age(now: datetime, at: datetime | None) -> float | None:
    return None if at is None else round((now - at).total_seconds(), 1)


def database(store: Store, clock: Clock) -> Check:
    async def check() -> dict[str, Any]:
        last = await store.last_run()
        return {"ok": True, "last_run": last.started_at.isoformat() if last else None,
                "last_run_age_s": _age(clock(), last.started_at if last else None),
                "last_run_trigger": last.trigger if last else None}
    return check


def scheduler(sched: Scheduler, store: Store, clock: Clock) -> Check:
    async def check() -> dict[str, Any]:
        now = clock()
        last: dict[str, str | None] = {}
        overdue: list[str] = []
        settings = sched.settings  # the inventory in use (it changes when the source is refreshed)
        for site in settings.sites:
            at = await store.last_scheduled(site)
            last[site] = at.isoformat() if at else None
            times, _ = site_schedule(settings, site)
            if times and at is not None and now - at > SCHEDULE_OVERDUE and site not in sched.busy_sites:
                overdue.append(site)
        jobs = len(sched.aps.get_jobs()) if sched.aps is not None and sched.running else 0
        return {"ok": sched.running and not overdue, "running": sched.running, "jobs": jobs,
                "busy": sorted(sched.busy_sites), "overdue": overdue, "last_scheduled": last,
                "next_runs": {s: at.isoformat() for s, at in sched.next_runs().items()}}
    return check


def outbox(store: Store, deliverer: Deliverer, clock: Clock) -> Check:
    async def check() -> dict[str, Any]:
        now = clock()
        status = await store.outbox_status()
        oldest = _age(now, status.oldest_created_at)
        stuck = oldest is not None and oldest > OUTBOX_STUCK.total_seconds()
        body: dict[str, Any] = {
            "ok": deliverer.running and not stuck, "deliverer_running": deliverer.running, "depth": status.depth,
            "oldest_age_s": oldest, "stuck": stuck, "delivered": deliverer.delivered,
            "failing": [{"id": i.id, "channel": i.channel, "kind": i.kind, "attempts": i.attempts,
                         "error": i.last_error, "retry_in_s": _age(i.next_attempt_at, now)} for i in status.failing],
            "given_up": status.given_up,
        }
        if status.last_given_up is not None:
            g = status.last_given_up
            body["last_given_up"] = {"id": g.id, "channel": g.channel, "kind": g.kind, "error": g.last_error}
        return body
    return check


def slack(link: SlackLink, clock: Clock) -> Check:
    async def check() -> dict[str, Any]:
        now = clock()
        body: dict[str, Any] = {"ok": link.state == "accepted", "state": link.state,
                                "since": link.since.isoformat() if link.since else None, "checks": link.checks}
        if link.state == "unreachable":
            down = _age(now, link.since) or 0.0
            body.update(ok=down <= SLACK_UNREACHABLE.total_seconds(), unreachable_for_s=down,
                        next_check_in_s=_age(link.next_check_at, now) if link.next_check_at else None)
        if link.error is not None:
            body["error"] = link.error
        if link.identity is not None:
            body.update(team=link.identity.team, team_id=link.identity.team_id,
                        bot_user_id=link.identity.user_id, bot_id=link.identity.bot_id)
        return body
    return check


def git(mirror: GitMirror) -> Check:
    async def check() -> dict[str, Any]:
        return mirror.health()
    return check


def inventory(refresher: Refresher, clock: Clock) -> Check:
    async def check() -> dict[str, Any]:
        now, s = clock(), refresher.status
        failing_for = _age(now, s.failing_since)
        ok = s.state == "ok" or (s.state == "failing" and (failing_for or 0.0) <= INVENTORY_FAILING.total_seconds())
        body: dict[str, Any] = {
            "ok": ok, "source": s.source, "state": s.state, "using": s.using,
            "devices_from_source": s.devices, "list_read_at": s.list_read_at.isoformat() if s.list_read_at else None,
            "list_age_s": _age(now, s.list_read_at), "overrides": s.overrides,
            "last_attempt": s.last_attempt_at.isoformat() if s.last_attempt_at else None,
            "next_refresh_in_s": _age(s.next_attempt_at, now) if s.next_attempt_at else None,
        }
        if s.state != "ok":
            body.update(failing_since=s.failing_since.isoformat() if s.failing_since else None,
                        failing_for_s=failing_for, failures=s.failures)
        if s.error is not None:
            body["error"] = s.error
        if s.held_back is not None:
            body.update(held_back=s.held_back, accept_with="backupbot inventory --apply")
        if s.using == FROM_FILE and s.state != "ok":
            body["note"] = "no list from the source yet: only the devices in the config file are backed up"
        return body
    return check
