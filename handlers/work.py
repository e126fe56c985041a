"""What a /backup command or a button does once it has been acknowledged.

Shared by commands.py and actions.py, so a button and the matching command behave the same.
Every function authorizes before it reads anything it will show: a version id is looked up,
its site taken, and access checked for that site (a forged button value naming another site's
version is refused). Only redacted text is ever posted where others can read it; raw exports go
only to the requester's DM, and only with download rights.
"""

from __future__ import annotations

import contextlib
import difflib
from collections.abc import Sequence
from datetime import datetime

from bot.core import access
from bot.slack import blocks
from bot.backup.grep import SLACK_LINES, Reading
from bot.backup.grepresult import history_text, result_text, title
from bot.core.kinds import Trigger
from bot.core.errors import NotFound, UserError
from bot.core.models import Device, DeviceStatus, Diff, Site, Version
from bot.routeros.grep import Query
from bot.backup.offload import cpu
from handlers.deps import Deps
from handlers.replies import Reply

PAGE_SIZE = 10  # one checkbox group holds at most 10 options


class Requester:
    """Who asked, and from where (channel is None in the App Home)."""

    def __init__(self, user: str, channel: str | None) -> None:
        self.user, self.channel = user, channel


# -- names and access ---------------------------------------------------------------------------
def site_for(deps: Deps, who: Requester, name: str) -> Site:
    """The named site if the requester may see it; unknown names suggest only sites they may see."""
    site = deps.settings.sites.get(name)
    if site is None:
        visible = [s.name for s in access.visible_sites(deps.settings, who.user, who.channel)]
        raise NotFound(f'Unknown site "{name}".', difflib.get_close_matches(name, visible, n=3, cutoff=0.5))
    access.require_view(deps.settings, site, who.user, who.channel)
    return site


def device_for(deps: Deps, who: Requester, site_name: str, name: str) -> Device:
    """The named device (active or retired: its history may be browsed) if the requester may see its site."""
    site = site_for(deps, who, site_name)
    return deps.catalog.device(site.name, name)


def backup_targets(deps: Deps, who: Requester, site_name: str, name: str | None = None) -> list[Device]:
    """What backing up the site (or one device) takes, if the requester may see it; never a retired device."""
    site = site_for(deps, who, site_name)
    return deps.catalog.backup_targets(site.name, name)


async def viewable_version(deps: Deps, who: Requester, version_id: int) -> Version:
    """The version, if the requester may see its site (checked on the version's own site)."""
    version = await deps.catalog.version(version_id)
    site = deps.settings.sites.get(version.site)
    if site is None:
        raise NotFound(f"No backup with id {version_id}.")
    access.require_view(deps.settings, site, who.user, who.channel)
    return version


def stale_of(deps: Deps, statuses: Sequence[DeviceStatus]) -> list[tuple[Device, datetime | None]]:
    return [(s.device, s.last_success_at) for s in statuses if deps.catalog.is_stale(s)]


# -- listings -----------------------------------------------------------------------------------
async def sites(deps: Deps, who: Requester, reply: Reply) -> None:
    visible = {s.name for s in access.visible_sites(deps.settings, who.user, who.channel)}
    overviews = [o for o in await deps.catalog.sites() if o.site.name in visible]
    web_url = deps.web.home(who.user) if deps.web is not None else None
    await reply.send(blocks.sites_overview(overviews, deps.clock(), web_url=web_url))


async def site(deps: Deps, who: Requester, reply: Reply, site: Site) -> None:
    statuses = await deps.catalog.device_statuses(site.name)
    web_url = deps.web.site(who.user, site.name) if deps.web is not None else None
    await reply.send(blocks.site_devices(site, statuses, deps.clock(), deps.catalog.is_stale, web_url=web_url))


async def versions(deps: Deps, who: Requester, reply: Reply, device: Device, page: int = 0,
                   *, replace: bool = False) -> None:
    """One page (0 = newest) of the device's versions, with checkboxes and Compare selected."""
    total = await deps.catalog.count_versions(device.site, device.name)
    last_page = max(0, (total - 1) // PAGE_SIZE)
    page = min(max(page, 0), last_page)
    # The store pages by id (keyset); a page number is the newest (page+1)*PAGE_SIZE, sliced.
    newest = await deps.catalog.versions(device.site, device.name, limit=(page + 1) * PAGE_SIZE)
    shown = newest[page * PAGE_SIZE:]
    web_url = deps.web.device(who.user, device.site, device.name) if deps.web is not None else None
    await reply.send(blocks.device_versions(device, shown, total=total, page=page, page_size=PAGE_SIZE,
                                            now=deps.clock(), web_url=web_url), replace=replace)


async def search(deps: Deps, who: Requester, reply: Reply, text: str) -> None:
    visible = {s.name for s in access.visible_sites(deps.settings, who.user, who.channel)}
    found = [d for d in deps.catalog.search(text) if d.site in visible]
    await reply.send(blocks.search_results(text, found))


# -- searching config text ---------------------------------------------------------------------
async def grep(deps: Deps, who: Requester, reply: Reply, query: Query, devices: Sequence[tuple[Device, Reading]],
               *, history: bool, site: str | None = None, device: str | None = None) -> None:
    """The result in a message when it fits; otherwise the first devices and the counts, and the
    whole result as a file: where the request came from, or only to the requester's DM when a line
    matched inside a secret value (others reading it would learn about that secret). The answer
    (the requester's alone) carries Open in browser: the search page with the same query and scope
    (not for --history, which the page does not do)."""
    result = (await deps.grep.history(query, devices) if history
              else await deps.grep.search(query, devices, limit=SLACK_LINES))
    web_url = deps.web.search(who.user, query, site, device) if deps.web is not None and not history else None
    inline = blocks.grep_inline(result)
    if inline is None:
        text = await cpu(history_text, result) if history else await cpu(result_text, result)
        name = blocks.grep_file_name(query, history)
        await reply.upload(content=text, filename=name, title=title(result), snippet_type="text", dm=result.secret)
        inline = blocks.grep_summary(result, name, private=result.secret)
    if web_url is not None:
        with contextlib.suppress(ValueError):  # no room for one more block: the link follows on its own
            inline, web_url = blocks.with_actions(inline, blocks.open_in_browser(web_url)), None
    await reply.send(inline)
    if web_url is not None:
        await reply.send(blocks.web_link(web_url, f"grep {query.describe()}"))


# -- one version, diffs -------------------------------------------------------------------------
async def show(deps: Deps, who: Requester, reply: Reply, version_id: int) -> None:
    """The version's config, secrets redacted, as a snippet where the request came from."""
    version = await viewable_version(deps, who, version_id)
    text = await deps.catalog.redacted_config(version.id)
    await reply.upload(content=text, filename=f"{version.site}-{version.device}-{version.id}-redacted.rsc",
                       title=blocks.version_header(version), snippet_type="text")
    web_url = deps.web.version(who.user, version) if deps.web is not None else None
    if web_url is not None:  # the snippet is for the conversation; the link is for the requester only
        await reply.send(blocks.web_link(web_url, f"{version.site}/{version.device} #{version.id}"))


def download_name(version: Version) -> str:
    return f"{version.site}-{version.device}-{version.first_seen:%Y%m%d-%H%M}.rsc"


async def download(deps: Deps, who: Requester, reply: Reply, version_id: int) -> None:
    """The raw export (secrets included) to the requester's DM: admins and download_users only."""
    version = await deps.catalog.version(version_id)
    site = deps.settings.sites.get(version.site)
    if site is None:
        raise NotFound(f"No backup with id {version_id}.")
    access.require_download(deps.settings, site, who.user)
    raw = await deps.catalog.raw(version.id)
    name = download_name(version)
    await reply.upload(content=raw, filename=name, title=f"{blocks.version_header(version)} (raw, with secrets)",
                       dm=True)
    if reply.channel is not None:  # from the App Home the file itself is the answer, in the DM
        await reply.send(_note(f"Sent *{name}* to our direct messages (it contains secrets: keep it there)."))


async def diff(deps: Deps, who: Requester, reply: Reply, version_ids: Sequence[int]) -> None:
    """Consecutive pairs of the versions, oldest first, redacted: inline if short, else a diff snippet."""
    ids = sorted(set(version_ids))
    if len(ids) < 2:
        raise UserError("Pick at least two backups to compare.")
    versions = [await viewable_version(deps, who, version_id) for version_id in ids]
    web_url = deps.web.compare(who.user, versions) if deps.web is not None else None
    await _send_diffs(reply, await deps.catalog.compare(ids, redact=True), "-".join(map(str, ids)), web_url)


async def latest_change(deps: Deps, who: Requester, reply: Reply, device: Device) -> None:
    diffs = await deps.catalog.latest_change(device.site, device.name, redact=True)
    recent = await deps.catalog.versions(device.site, device.name, limit=2)
    web_url = deps.web.compare(who.user, recent) if deps.web is not None else None
    await _send_diffs(reply, diffs, f"{device.site}-{device.name}-latest", web_url)


async def compare_selected(deps: Deps, who: Requester, reply: Reply, version_ids: Sequence[int]) -> None:
    if not version_ids:
        raise UserError("Tick one or more versions first, then press Compare selected.")
    if len(set(version_ids)) == 1:
        await show(deps, who, reply, version_ids[0])
    else:
        await diff(deps, who, reply, version_ids)


async def _send_diffs(reply: Reply, diffs: Sequence[Diff], name: str, web_url: str | None = None) -> None:
    """Inline when short (with the requester's Open in browser link), else a diff snippet for the
    conversation and the link to the requester alone."""
    # Rendering walks every diff line (a diff of two 1 MB exports is ~20k lines): off the event
    # loop, like the diffing itself, so acks for other requests are not held up.
    inline = await cpu(blocks.diff_inline, diffs)
    if inline is not None:
        if web_url is not None:
            with contextlib.suppress(ValueError):  # no room for one more block: the link follows on its own
                inline, web_url = blocks.with_actions(inline, blocks.open_in_browser(web_url)), None
        await reply.send(inline)
    else:
        text = await cpu(blocks.diff_text, diffs)
        await reply.upload(content=text, filename=f"{name}.diff", title=f"Changes {name}", snippet_type="diff")
    if web_url is not None:
        await reply.send(blocks.web_link(web_url, f"Changes {name}"))


# -- the browser --------------------------------------------------------------------------------
async def open_in_browser(deps: Deps, who: Requester, reply: Reply, kind: str, parts: Sequence[str]) -> None:
    """Open in browser pressed on a channel message (value parsed by blocks.parse_web): the
    presser's own link, if they may see that site."""
    if deps.web is None:
        raise UserError("The browser pages are not turned on (web.base_url in backupbot.yml).")
    url: str | None
    what: str
    if kind == "sites":
        url, what = deps.web.home(who.user), "Your sites"
    elif kind == "site":
        found = site_for(deps, who, parts[0])
        url, what = deps.web.site(who.user, found.name), found.name
    else:
        versions = [await viewable_version(deps, who, int(p)) for p in parts]
        if kind == "version":
            first = versions[0]
            url, what = deps.web.version(who.user, first), f"{first.site}/{first.device} #{first.id}"
        else:
            url, what = deps.web.compare(who.user, versions), f"Changes {'-'.join(parts)}"
    if url is None:
        raise UserError("That site can be opened in the browser only by the people its configuration names "
                        "(allowed_users); ask in one of its channels instead.")
    await reply.send(blocks.web_link(url, what))


# -- backups ------------------------------------------------------------------------------------
async def backup(deps: Deps, who: Requester, reply: Reply, devices: Sequence[Device]) -> None:
    """Run (or join) the backup of `devices`, then answer with its summary."""
    summary = await deps.service.run(devices, Trigger.SLACK)
    statuses: list[DeviceStatus] = []
    wanted = {d.key for d in devices}
    for site_name in sorted({d.site for d in devices}):
        statuses += [s for s in await deps.catalog.device_statuses(site_name) if s.device.key in wanted]
    await reply.send(blocks.run_summary(summary, stale=stale_of(deps, statuses), now=deps.clock()))


def _note(text: str) -> blocks.Message:
    return {"text": text, "blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": text}}]}
