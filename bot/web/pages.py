"""What each page shows: gathered from the catalog and the store, authorized for the viewer.

Every function takes the `Viewer` (the session's Slack user) and checks bot.core.access for the
site it shows, on every call: a version id of a site the viewer may not see is Forbidden (403),
whatever link or URL led here. The browser is a private place, like a DM or the App Home (channel
None). Heavy work (redacting, diffing, word highlights) runs in the CPU worker through bot.web.texts
and bot.backup.offload; what is returned here is plain data for the templates, which only render.
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from bot.backup.catalog import Catalog
from bot.backup.grep import WEB_LINES, Grep, readings, targets
from bot.backup.service import BackupService
from bot.core import access
from bot.core.clock import Clock
from bot.core.errors import Busy, Forbidden, NotFound, UserError
from bot.core.kinds import Trigger
from bot.core.logs import log_event
from bot.core.models import Attempt, Device, DeviceStatus, Site, Status, Version
from bot.core.stale import stale_phrase
from bot.core.text import ago, changes, plural, when
from bot.routeros.export import describe_meta_change
from bot.routeros.grep import Query
from bot.slack import blocks
from bot.slack.blocks.run import failure
from bot.slack.tasks import TaskTracker
from bot.web import configview, diffview, paths, searchview
from bot.web.diffview import Item, PairCounts
from bot.web.kept import Compared
from bot.web.texts import Texts
from storage.sessions import WebSession

log = logging.getLogger(__name__)

PAGE_SIZE = 25  # versions per page of a device
FOLD_STEP = 50  # unchanged lines a fold opens at a time
MAX_LINES = 1000  # unchanged lines one request may fetch

Tell = Callable[[str, blocks.Message], Awaitable[None]]  # send a message to a Slack user's DM


class WebStore(Protocol):
    """The store's part the pages use (storage.store.Store): sessions, logouts, +/- counts."""

    async def recording_attempts(self, site: str, device: str, version_ids: Sequence[int]) -> dict[int, Attempt]: ...
    async def create_session(self, session_id: str, user: str, now: datetime, expires_at: datetime) -> None: ...
    async def session(self, session_id: str, now: datetime) -> WebSession | None: ...
    async def log_out(self, user: str, at: datetime) -> int: ...
    async def last_logout(self, user: str) -> datetime | None: ...


@dataclass
class UiDeps:
    """What the pages need, handed in by whoever serves them (bot.serve, or `demo --web`)."""

    catalog: Catalog
    store: WebStore
    service: BackupService
    grep: Grep
    tasks: TaskTracker
    clock: Clock
    tell: Tell | None = None  # None (the demo): a backup's result is only logged
    texts: Texts = field(init=False)

    def __post_init__(self) -> None:
        self.texts = Texts(self.catalog.store)

    def pinned(self) -> UiDeps:
        """These dependencies on the inventory in use now (bot.core.live), for one request: its access
        checks, what it shows and a backup it starts all see one inventory, whatever a refresh of the
        inventory source does meanwhile. The caches of texts are shared (a version never changes)."""
        request = copy.copy(self)
        request.catalog = self.catalog.pinned()
        return request


@dataclass(frozen=True)
class Viewer:
    user: str
    csrf: str


# -- authorization -----------------------------------------------------------------------------------

def visible_site(deps: UiDeps, viewer: Viewer, name: str) -> Site:
    site = deps.catalog.settings.sites.get(name)
    if site is None:
        raise NotFound(f'Unknown site "{name}".')
    if not access.can_view(deps.catalog.settings, site, viewer.user, None):
        raise Forbidden(f"You may not see {name} in the browser.")
    return site


async def visible_version(deps: UiDeps, viewer: Viewer, version_id: int) -> tuple[Version, Site]:
    version = await deps.catalog.version(version_id)  # NotFound: "No backup with id N."
    try:
        site = visible_site(deps, viewer, version.site)
    except NotFound:
        raise NotFound(f"No backup with id {version_id}.") from None
    except Forbidden:
        raise Forbidden(f"Backup #{version_id} belongs to a site you may not see.") from None
    return version, site


def can_download(deps: UiDeps, viewer: Viewer, site: Site) -> bool:
    return access.can_download(deps.catalog.settings, site, viewer.user)


# -- home and site -----------------------------------------------------------------------------------

async def home(deps: UiDeps, viewer: Viewer) -> dict[str, Any]:
    settings = deps.catalog.settings
    visible = {s.name for s in access.visible_sites(settings, viewer.user, None)}
    overviews = [o for o in await deps.catalog.sites() if o.site.name in visible]
    now = deps.clock()
    rows = [{"name": o.site.name, "href": paths.site(o.site.name), "devices": len(o.site.devices),
             "last_run": f"{when(o.last_run)} UTC ({ago(o.last_run, now)})" if o.last_run else "never run",
             "ok": o.ok, "changed": o.changed, "failed": o.failed, "never": o.never, "retired": o.retired}
            for o in overviews]
    return {"title": "Sites", "crumbs": [], "sites": rows}


def _device_row(deps: UiDeps, viewer: Viewer, site: Site, s: DeviceStatus, now: datetime) -> dict[str, Any]:
    """A device of the site page. A retired one (the inventory source no longer lists it) says so
    instead of what would need attention: it is never backed up again, so neither its last failure
    nor its age is news; its backups stay one click away."""
    v, a = s.latest, s.last_attempt
    retired = s.device.retired_at
    stale = deps.catalog.is_stale(s)
    return {
        "name": s.device.name, "host": s.device.host, "href": paths.device(site.name, s.device.name),
        "latest": None if v is None else {
            "id": v.id, "href": paths.version(v.id), "taken": f"{when(v.first_seen)} UTC",
            "taken_ago": ago(v.first_seen, now), "verified": f"{when(v.last_verified)} UTC",
            "verified_ago": ago(v.last_verified, now), "ros": v.meta.ros_version or "?"},
        "retired": None if retired is None else f"{when(retired)} UTC",
        "failure": None if retired is not None or a is None or a.status is not Status.FAILED else {
            "at": f"{when(a.at)} UTC", "ago": ago(a.at, now), "reason": failure(a.error_kind, a.reason)},
        "stale": stale_phrase(s.last_success_at, now) if stale else None,
        "never": a is None,
    }


async def site(deps: UiDeps, viewer: Viewer, name: str, query: str = "", flash: str = "") -> dict[str, Any]:
    found = visible_site(deps, viewer, name)
    statuses = await deps.catalog.device_statuses(found.name)
    needle = query.strip().lower()
    shown = [s for s in statuses if needle in s.device.name.lower() or needle in s.device.host.lower()]
    now = deps.clock()
    result = ("The result will be sent to you in Slack." if deps.tell is not None
              else "Reload this page in a moment to see the result.")
    retired = sum(s.device.retired_at is not None for s in statuses)
    flashes = {"started": f"Backing up {found.name}: {plural(len(found.devices), 'device')}… {result}",
               "joined": f"A backup of {found.name} is already running. {result}",
               "busy": "backupbot is busy; please try again in a minute."}
    return {"title": found.name, "crumbs": [(found.name, None)], "site": found.name,
            "backup_action": paths.backup_site(found.name), "search_action": paths.site(found.name),
            "grep_action": paths.search(),
            "query": query, "total": len(statuses), "flash": flashes.get(flash), "can_backup": bool(found.devices),
            "retired": retired,
            "devices": [_device_row(deps, viewer, found, s, now) for s in shown]}


async def backup_site(deps: UiDeps, viewer: Viewer, name: str) -> str:
    """Start (or join) a backup of the site; its summary goes to the viewer's Slack DM as from
    `/backup SITE now`. Returns the flash to show ("started", "joined", "busy")."""
    found = visible_site(deps, viewer, name)
    devices = deps.catalog.backup_targets(found.name)  # never a retired device; UserError if none is left
    joined = deps.service.busy(devices)

    async def tell(message: blocks.Message) -> None:
        if deps.tell is None:
            log_event(log, logging.INFO, "backup from the browser finished (no Slack to tell)", user=viewer.user,
                      site=found.name, text=message["text"])
            return
        await deps.tell(viewer.user, message)

    async def run() -> None:
        summary = await deps.service.run(devices, Trigger.WEB)
        statuses = await deps.catalog.device_statuses(found.name)
        stale = [(s.device, s.last_success_at) for s in statuses if deps.catalog.is_stale(s)]
        await tell(blocks.run_summary(summary, stale=stale, now=deps.clock()))

    async def failed(exc: BaseException) -> None:
        text = str(exc) if isinstance(exc, UserError) else (
            f"The backup of {found.name} you started in the browser failed ({type(exc).__name__}); "
            "it has been logged for the operators.")
        await tell(blocks.error(text))

    try:
        deps.tasks.spawn(run(), name=f"web backup {found.name} ({viewer.user})", on_error=failed)
    except Busy:
        return "busy"
    log_event(log, logging.INFO, "backup started from the browser", user=viewer.user, site=found.name,
              devices=len(devices), joined=joined)
    return "joined" if joined else "started"


# -- device --------------------------------------------------------------------------------------------

def _change_text(attempt: Attempt | None) -> str:
    if attempt is None:
        return ""
    if attempt.status is Status.NEW:
        return "first backup"
    text = changes(attempt.added, attempt.removed)
    return f"{text} · {attempt.note}" if attempt.note else text


async def device(deps: UiDeps, viewer: Viewer, site_name: str, name: str, page: int = 0) -> dict[str, Any]:
    found = visible_site(deps, viewer, site_name)
    dev: Device = deps.catalog.device(found.name, name)
    total = await deps.catalog.count_versions(found.name, dev.name)
    last_page = max(0, (total - 1) // PAGE_SIZE)
    page = min(max(page, 0), last_page)
    shown = (await deps.catalog.versions(found.name, dev.name, limit=(page + 1) * PAGE_SIZE))[page * PAGE_SIZE:]
    recorded = await deps.store.recording_attempts(found.name, dev.name, [v.id for v in shown])
    now = deps.clock()
    downloads = can_download(deps, viewer, found)
    rows = [{"id": v.id, "href": paths.version(v.id), "taken": f"{when(v.first_seen)} UTC",
             "taken_ago": ago(v.first_seen, now), "verified": f"{when(v.last_verified)} UTC",
             "ros": v.meta.ros_version or "?", "model": v.meta.model or "",
             "changes": _change_text(recorded.get(v.id)),
             "download": paths.download(v.id) if downloads else None} for v in shown]
    first = page * PAGE_SIZE + 1
    return {"title": dev.label, "crumbs": [(found.name, paths.site(found.name)), (dev.name, None)],
            "device": dev.name, "host": dev.host, "site": found.name, "total": total, "versions": rows,
            "retired": f"{when(dev.retired_at)} UTC" if dev.retired_at else None,
            "range": f"{first:,}–{first + len(rows) - 1:,} of {total:,}" if rows else "",
            "newer": paths.device(found.name, dev.name, page - 1) if page > 0 else None,
            "older": paths.device(found.name, dev.name, page + 1) if page < last_page else None,
            "compare_action": paths.compare_form(), "grep_action": paths.search()}


# -- one version ---------------------------------------------------------------------------------------

async def version(deps: UiDeps, viewer: Viewer, version_id: int, at: int = 0) -> dict[str, Any]:
    found, found_site = await visible_version(deps, viewer, version_id)
    config = await deps.texts.window(found.id, at)
    start, stop = config.start, config.start + len(config.lines)
    starts = {s.line for s in config.sections}
    toc = [{"path": s.path, "count": s.count, "line": s.line + 1,
            "href": f"#L{s.line + 1}" if start <= s.line < stop else f"{paths.version(found.id, s.line)}#L{s.line + 1}"}
           for s in config.sections]
    previous = await deps.catalog.versions(found.site, found.device, limit=1, before_id=found.id)
    meta = found.meta
    return {"title": f"{found.site}/{found.device} #{found.id}",
            "crumbs": [(found.site, paths.site(found.site)), (found.device, paths.device(found.site, found.device)),
                       (f"#{found.id}", None)],
            "version": {"id": found.id, "taken": f"{when(found.first_seen)} UTC",
                        "verified": f"{when(found.last_verified)} UTC", "ros": meta.ros_version or "?",
                        "model": meta.model or "?", "lines": config.total},
            "download": paths.download(found.id) if can_download(deps, viewer, found_site) else None,
            "previous": paths.compare([previous[0].id, found.id]) if previous else None,
            "toc": toc, "start": start,
            "rows": [(n + 1, line, n in starts) for n, line in enumerate(config.lines, start)],
            "earlier": paths.version(found.id, start - configview.WINDOW) if start > 0 else None,
            "later": paths.version(found.id, stop) if stop < config.total else None,
            "window": f"lines {start + 1:,}–{stop:,} of {config.total:,}"}


async def version_line(deps: UiDeps, viewer: Viewer, version_id: int, number: int) -> str:
    """Where line `number` of the version (1-based, as a search numbers it) is on the View page: the
    page of lines that holds it, at its anchor (a script split on the page moves the lines after it)."""
    found, _ = await visible_version(deps, viewer, version_id)
    index, total = await deps.texts.line_at(found.id, number - 1)
    if not 1 <= number <= total:
        raise UserError(f"Backup #{found.id} has no line {number:,}.")
    index = min(index, total - 1)
    start, _ = configview.window(total, index)
    return f"{paths.version(found.id, start)}#L{index + 1}"


async def download(deps: UiDeps, viewer: Viewer, version_id: int) -> tuple[str, bytes]:
    """(file name, the raw export with its secrets): admins and the site's download_users only."""
    found, found_site = await visible_version(deps, viewer, version_id)
    access.require_download(deps.catalog.settings, found_site, viewer.user)
    raw = await deps.catalog.raw(found.id)
    log_event(log, logging.INFO, "raw config downloaded in the browser", user=viewer.user, site=found.site,
              device=found.device, version=found.id)
    return f"{found.site}-{found.device}-{found.first_seen:%Y%m%d-%H%M}.rsc", raw


async def unchanged_lines(deps: UiDeps, viewer: Viewer, version_id: int, start: int, count: int,
                          old_start: int) -> diffview.Same:
    """Lines [start, start + count) of a version (redacted), numbered from old_start on the other
    side: what a fold of the Compare page opens."""
    found, _ = await visible_version(deps, viewer, version_id)
    if start < 0 or count < 1 or old_start < 0:
        raise UserError("Which lines? start, count and old must be whole numbers, count at least 1.")
    lines = await deps.texts.lines(found.id, start, min(count, MAX_LINES))
    return diffview.Same(old_start + 1, start + 1, lines)


# -- searching the configs ----------------------------------------------------------------------------

@dataclass(frozen=True)
class SearchForm:
    """The search page's query string: q, re=1, i=1, site, device."""

    pattern: str = ""
    regex: bool = False
    ignore_case: bool = False
    site: str | None = None
    device: str | None = None


async def search(deps: UiDeps, viewer: Viewer, form: SearchForm) -> tuple[dict[str, Any], int]:
    """(the search page, its HTTP status). The latest backups of the devices the viewer may see (of
    the site, of the device), as /backup grep searches them (bot.backup.grep: the same killable
    child processes and time limit): a site is searched with its secrets only for those who may
    download it, its redacted text for everyone else; lines are always shown redacted. Retired
    devices are left out unless one is searched by name. A pattern that cannot be used, or one too
    slow, is told on the page (400), with the form kept as typed."""
    settings = deps.catalog.settings
    if form.device and not form.site:
        raise UserError("A device is searched within its site: give the site too (site=SITE&device=DEVICE).")
    site = visible_site(deps, viewer, form.site) if form.site else None
    device = deps.catalog.device(site.name, form.device) if site is not None and form.device else None
    crumbs: list[tuple[str, str | None]] = []
    if site is not None:
        crumbs.append((site.name, paths.site(site.name)))
    if site is not None and device is not None:
        crumbs.append((device.name, paths.device(site.name, device.name)))
    crumbs.append(("search", None))
    context: dict[str, Any] = {
        "title": "Search configs", "crumbs": crumbs, "form": form,
        "sites": [s.name for s in access.visible_sites(settings, viewer.user, None)],
        "scope": device.label if device is not None else site.name if site is not None else None,
        "wider": paths.search(form.pattern, regex=form.regex, ignore_case=form.ignore_case,
                              site=site.name if device is not None and site is not None else None),
        "error": None, "view": None, "limit": WEB_LINES}
    if not form.pattern:
        return context, 200
    query = Query.of(form.pattern, regex=form.regex, ignore_case=form.ignore_case)
    scope = targets(settings, readings(settings, viewer.user, None), site.name if site else None,
                    device.name if device else None)
    try:
        result = await deps.grep.search(query, scope, limit=WEB_LINES, spans=True)
    except UserError as exc:  # a pattern that can't be used, or one too slow
        return {**context, "error": str(exc)}, 400
    # Never the pattern: it may be a password someone checks for.
    log_event(log, logging.INFO, "searched the configs in the browser", user=viewer.user,
              site=site.name if site else "-", devices=len(scope), matched=len(result.devices))
    return {**context, "view": searchview.search_view(result, WEB_LINES)}, 200


# -- comparisons ---------------------------------------------------------------------------------------

@dataclass(frozen=True)
class PairPage:
    index: int
    title: str
    old: Version
    new: Version
    layout: PairCounts
    note: str | None
    part: int
    items: tuple[Item, ...]
    more: str | None  # the next part, if any

    @property
    def counts(self) -> str:
        return changes(self.layout.added, self.layout.removed)


async def compare_versions(deps: UiDeps, viewer: Viewer, ids: Sequence[int]) -> list[Version]:
    wanted = sorted(set(ids))
    if len(wanted) < 2:
        raise UserError("Pick at least two backups to compare.")
    found = [(await visible_version(deps, viewer, i))[0] for i in wanted]
    return sorted(found, key=lambda v: (v.first_seen, v.id))


def _label(v: Version) -> str:
    return f"#{v.id} ({when(v.first_seen)} UTC, RouterOS {v.meta.ros_version or '?'})"


def _pair_page(versions: Sequence[Version], compared: Compared, index: int, part: int) -> PairPage:
    layout = compared.pairs[index]
    old, new = versions[index], versions[index + 1]
    part = diffview.shown_part(layout.parts, part)
    device = new.device if old.device == new.device else f"{old.device} → {new.device}"
    more = (paths.compare([v.id for v in versions], pair=index, part=part + 1)
            if part + 1 < layout.parts else None)
    return PairPage(index, f"{new.site}/{device} {_label(old)} → {_label(new)}", old, new, layout,
                    describe_meta_change(old.meta, new.meta), part, compared.items[index], more)


async def compare(deps: UiDeps, viewer: Viewer, ids: Sequence[int]) -> dict[str, Any]:
    """Each consecutive pair of the versions, oldest first: the first part of each."""
    versions = await compare_versions(deps, viewer, ids)
    compared = await deps.texts.compare(versions)
    return _compare_context(versions, [_pair_page(versions, compared, k, 0) for k in range(len(compared.pairs))])


async def compare_part(deps: UiDeps, viewer: Viewer, ids: Sequence[int], pair: int, part: int) -> PairPage:
    versions = await compare_versions(deps, viewer, ids)
    if not 0 <= pair < len(versions) - 1:
        raise UserError(f"There is no pair {pair} in this comparison.")
    return _pair_page(versions, await deps.texts.compare(versions, pair, part), pair, part)


def _compare_context(versions: Sequence[Version], pairs: Sequence[PairPage]) -> dict[str, Any]:
    first = versions[-1]
    same_device = len({(v.site, v.device) for v in versions}) == 1
    crumbs: list[tuple[str, str | None]] = [(first.site, paths.site(first.site))]
    if same_device:
        crumbs.append((first.device, paths.device(first.site, first.device)))
    crumbs.append(("compare " + " ".join(f"#{v.id}" for v in versions), None))
    return {"title": "Compare " + ", ".join(f"#{v.id}" for v in versions), "crumbs": crumbs, "pairs": pairs,
            "ids": [v.id for v in versions], "fold_step": FOLD_STEP}


def part_context(versions_ids: Sequence[int], page: PairPage) -> dict[str, Any]:
    """One part of one pair on a page of its own (the fallback of "Show more changes" without JS)."""
    return {"title": f"Compare, part {page.part + 1}", "crumbs": [], "pairs": [page], "ids": list(versions_ids),
            "fold_step": FOLD_STEP}
