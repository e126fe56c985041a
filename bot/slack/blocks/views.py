"""PURE. The answers to /backup (usage, sites, a site's devices, a device's versions, search,
errors) and the App Home tab; handlers take them from bot.slack.blocks.

No I/O, no asyncio, no clock: `now` is passed in. User- and device-provided text is escaped.

Long lists never overflow and are never cut silently: a site with more devices than fit shows
the first ones in full (devices that need attention first), the rest in a compact listing,
and ends with "… and N more devices" naming the command that shows them.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

from bot.slack.blocks.ids import (
    BACKUP_DEVICE, BACKUP_SITE, COMPARE_SELECTED, DOWNLOAD_VERSION, OPEN_DEVICE, OPEN_WEB, PAGE_VERSIONS,
    SELECT_VERSIONS, VIEW_VERSION, device_value, page_value,
)
from bot.slack.blocks.kit import (
    MAX_BLOCKS, MAX_CHECKBOX_OPTIONS, MAX_HOME_BLOCKS, MAX_TEXT, Block, Message, actions, button, checkboxes,
    context, divider, esc, header, home, message, option, section, text_size, url_button,
)
from bot.slack.blocks.pack import UNLIMITED, Entry, Render, group, share_budget
from bot.slack.blocks.run import REASON_CHARS, failure
from bot.core.models import Device, DeviceStatus, Site, Status, Version
from bot.core.stale import stale_phrase
from bot.core.text import ago, plural, when

if TYPE_CHECKING:
    from bot.backup.catalog import SiteOverview

Stale = Callable[[DeviceStatus], bool] | Collection[tuple[str, str]]
MAX_SEARCH_RESULTS = 50  # listed at most; the rest are counted ("refine your search")
SEARCH_BUTTONS = 10  # the first matches get a "Versions" button each
LARGE_SITE_DETAILED = 10  # a site too big to show in full: devices needing attention shown in full

OPEN_IN_BROWSER = "Open in browser"


def open_in_browser(url: str) -> Block:
    """The URL button carrying the requester's own signed link (only in messages only they see)."""
    return url_button(OPEN_IN_BROWSER, OPEN_WEB, url)


def web_link(url: str, what: str) -> Message:
    """A short message holding only a link to the browser page of `what` (after a snippet, say)."""
    text = f"{what} in the browser (this link is yours: it opens for you only and expires soon)"
    return message(text, [section(esc(text), open_in_browser(url))])


USAGE = [
    ("sites", "every site: devices, last run, ok / changed / failed"),
    ("site-a", "a site's devices with their latest backup, and buttons to view, download, compare"),
    ("site-a core-1", "a device's versions, newest first: tick some and compare them"),
    ("site-a now", "back up every device of a site now"),
    ("site-a core-1 now", "back up one device now"),
    ("show 123", "backup 123 as text, passwords and keys redacted"),
    ("download 123", "the raw file of backup 123, sent to you privately (admins and download users)"),
    ("diff 120 123", "what changed between two backups"),
    ("diff site-a core-1", "the device's latest change"),
    ("search 10.0.0", "devices whose site, name or address contains the text"),
    ("grep winbox", "config lines containing the text in every latest backup you may see (-E regex, -i any case)"),
    ("grep --history \"block scanner\" site-a core-1", "when the matching lines appeared and went, version by version"),
    ("help", "this list"),
]


def usage(command: str = "/backup") -> Message:
    lines = "\n".join(f"`{esc(command)} {args}` — {what}" for args, what in USAGE)
    return message(f"{command}: config backups of the routers",
                   [section(f"*{esc(command)}* — config backups of the routers:\n{lines}")])


def error(text: str) -> Message:
    return message(esc(text), [section(f":warning: {esc(text)}")])


def version_header(version: Version) -> str:
    """One plain line (snippet title, initial comment) naming a version."""
    return (f"{version.site}/{version.device} #{version.id} · taken {when(version.first_seen)} UTC · "
            f"RouterOS {version.meta.ros_version or '?'}")


# --- sites -------------------------------------------------------------------------------------
def _site_line(o: SiteOverview, now: datetime, next_run: datetime | None = None) -> str:
    run = f"last run {when(o.last_run)} UTC ({ago(o.last_run, now)})" if o.last_run else "never run"
    mark = ":x:" if o.failed else ":white_check_mark:" if o.ok else ":grey_question:"
    never = f" · {o.never:,} never tried" if o.never else ""
    retired = f" · {o.retired:,} retired" if o.retired else ""
    upcoming = f" · next run {when(next_run)} UTC" if next_run is not None else ""
    return (f"{mark} *{esc(o.site.name)}* · {plural(len(o.site.devices), 'device')} · {run}{upcoming} · "
            f"{o.ok:,} ok · {o.changed:,} changed · {o.failed:,} failed{never}{retired}")


def _more_sites(n: int) -> str:
    return f"… and {plural(n, 'more site')} — use `/backup search TEXT`"


def sites_overview(overviews: Sequence[SiteOverview], now: datetime, web_url: str | None = None) -> Message:
    """One line per site, many lines per section; past the budget, "… and N more sites"; with
    `web_url`, an Open in browser button."""
    devices = sum(len(o.site.devices) for o in overviews)
    top = [header(f"Sites — {plural(len(overviews), 'site')}, {plural(devices, 'device')}")]
    hint = context("`/backup SITE` shows a site's devices · `/backup help` lists every command")
    if not overviews:
        return message("No sites to show here.", [section("No sites to show here.")])
    link = [actions(open_in_browser(web_url))] if web_url else []
    body = group(None, [Entry(_site_line(o, now)) for o in overviews], more=_more_sites,
                 blocks=MAX_BLOCKS - 2 - len(link), chars=MAX_TEXT - text_size([*top, hint, *link]))
    return message(f"{plural(len(overviews), 'site')}, {plural(devices, 'device')}", [*top, *body, hint, *link])


# --- devices -----------------------------------------------------------------------------------
def _stale_check(stale: Stale) -> Callable[[DeviceStatus], bool]:
    if callable(stale):
        return stale
    keys = set(stale)
    return lambda s: s.device.key in keys


def _failed(s: DeviceStatus) -> bool:
    return s.last_attempt is not None and s.last_attempt.status is Status.FAILED


def _retired(d: Device) -> str:
    return f"retired {when(d.retired_at)} UTC: no longer in the inventory source, not backed up" if d.retired_at else ""


def _problem(s: DeviceStatus, stale: bool, now: datetime) -> str | None:
    """Why a device needs attention, in plain words (escaped), or None (never for a retired device)."""
    if s.device.retired_at is not None:
        return None
    if _failed(s):
        assert s.last_attempt is not None
        return esc(failure(s.last_attempt.error_kind, s.last_attempt.reason), REASON_CHARS)
    if s.latest is None:
        return "never backed up"
    return stale_phrase(s.last_success_at, now) if stale else None


def _device_entry(s: DeviceStatus, stale: bool, now: datetime, *, with_site: bool) -> Entry:
    """A device: detail blocks (what its latest backup is, what went wrong, buttons) and a line."""
    d, v, a = s.device, s.latest, s.last_attempt
    name = esc(d.label if with_site else d.name)
    lines = [f"*{name}* · `{esc(d.host)}`" + (f" · :file_cabinet: {_retired(d)}" if d.retired_at else "")]
    if v is not None:
        lines.append(f"#{v.id} · taken {when(v.first_seen)} UTC ({ago(v.first_seen, now)}) · "
                     f"verified {when(v.last_verified)} ({ago(v.last_verified, now)}) · "
                     f"RouterOS {esc(v.meta.ros_version or '?')}")
    else:
        lines.append("never backed up" if a is None else "no backup yet")
    if a is not None and a.status is Status.FAILED:
        lines.append(f":x: last attempt {when(a.at)} UTC failed — "
                     f"{esc(failure(a.error_kind, a.reason), REASON_CHARS)}")
    if stale and v is not None:
        lines.append(f":warning: {stale_phrase(s.last_success_at, now)}")
    buttons = []
    if v is not None:
        buttons += [button("View", VIEW_VERSION, str(v.id)), button("Download", DOWNLOAD_VERSION, str(v.id)),
                    button("Compare", OPEN_DEVICE, device_value(d.site, d.name))]
    problem = _problem(s, stale, now)
    if problem is not None:
        buttons.append(button("Back up now", BACKUP_DEVICE, device_value(d.site, d.name)))
    detail = (section("\n".join(lines)), *([actions(*buttons)] if buttons else []))
    if problem is not None:
        return Entry(f":x: `{name}` — {problem}" if _failed(s) else f":warning: `{name}` — {problem}", detail)
    if d.retired_at is not None:
        return Entry(f"`{name}` #{v.id if v else '?'} (retired)", detail)
    return Entry(f"`{name}` #{v.id if v else '?'}", detail)


def site_devices(site: Site, statuses: Sequence[DeviceStatus], now: datetime, stale: Stale = (),
                 web_url: str | None = None) -> Message:
    """A site's devices with their latest backup or last failure, and buttons per device.

    All devices get full detail when they fit in one message; otherwise the devices that need
    attention come first (in full while room allows, then one line each), then the healthy
    ones as a packed list of names, then "… and N more devices".
    """
    is_stale = _stale_check(stale)
    flagged = {s.device.key: is_stale(s) for s in statuses}
    need = [s for s in statuses if _problem(s, flagged[s.device.key], now) is not None]
    active = [s for s in statuses if s.device.retired_at is None]
    failed = sum(map(_failed, active))
    retired = len(statuses) - len(active)
    summary = (f"{plural(len(active), 'device')} · {len(active) - len(need):,} backed up fine · "
               f"{failed:,} failed last time · {len(need) - failed:,} without a recent backup"
               + (f" · {retired:,} retired (kept to browse, not backed up)" if retired else ""))
    top = [header(f"{site.name} — {plural(len(active), 'device')}"),
           section(summary, button("Back up site now", BACKUP_SITE, site.name, style="primary"))]
    hint = context(f"`/backup {esc(site.name)} DEVICE` lists a device's versions · "
                   f"`/backup {esc(site.name)} DEVICE now` backs up one device")
    link = [actions(open_in_browser(web_url))] if web_url else []
    n_blocks, n_chars = MAX_BLOCKS - len(top) - 1 - len(link), MAX_TEXT - text_size([*top, hint, *link])

    def more(n: int) -> str:
        return f"… and {plural(n, 'more device')} (`/backup {esc(site.name)} DEVICE` shows one)"

    entries = {s.device.key: _device_entry(s, flagged[s.device.key], now, with_site=False) for s in statuses}
    body = group(None, list(entries.values()), blocks=UNLIMITED[0], chars=UNLIMITED[1], more=more,
                 max_detailed=len(statuses))
    if len(body) > n_blocks or text_size(body) > n_chars:
        keys = {s.device.key for s in need}
        lists = [("*Needs attention*", [entries[s.device.key] for s in need], LARGE_SITE_DETAILED, "\n"),
                 ("*Backed up fine:*", [e for k, e in entries.items() if k not in keys], 0, ", ")]

        def renderer(title: str, listed: list[Entry], detailed: int, sep: str) -> Render:
            return lambda nb, nc: group(title, listed, blocks=nb, chars=nc, more=more, max_detailed=detailed, sep=sep)

        shared = share_budget([renderer(*x) for x in lists if x[1]], blocks=n_blocks, chars=n_chars)
        body = [b for part in shared for b in part]
    return message(f"{site.name}: {summary}", [*top, *body, hint, *link])


def device_versions(device: Device, versions: Sequence[Version], *, total: int, page: int,
                    page_size: int = 10, now: datetime, web_url: str | None = None) -> Message:
    """One page of a device's versions, newest first, as checkboxes with Compare and paging (and,
    with `web_url`, Open in browser).

    Page 0 is the newest; PAGE_VERSIONS values carry the page to show ("SITE DEVICE PAGE").
    """
    if not 1 <= page_size <= MAX_CHECKBOX_OPTIONS or len(versions) > page_size:
        raise ValueError(f"{len(versions)} versions for a page of {page_size} (checkboxes hold {MAX_CHECKBOX_OPTIONS})")
    ref = device_value(device.site, device.name)
    top = [header(f"{device.label} — {plural(total, 'version')}")]
    retired = f" · :file_cabinet: {_retired(device)}" if device.retired_at else ""
    if not versions:
        text = f"No backups of *{esc(device.label)}*" + (" on this page." if page else " yet.") + retired
        backup = None if device.retired_at else button("Back up now", BACKUP_DEVICE, ref)
        return message(text, [*top, section(text, backup)])
    first = page * page_size + 1
    intro = (f"`{esc(device.host)}`{retired} · versions {first:,}–{first + len(versions) - 1:,} of {total:,}, "
             "newest first. Tick one to view it, or several to compare them (oldest first), then *Compare selected*.")
    options = [option(f"#{v.id} · {when(v.first_seen)} · {v.meta.ros_version or '?'}", str(v.id),
                      f"verified {when(v.last_verified)} ({ago(v.last_verified, now)}) · {v.size / 1024:.0f} KB")
               for v in versions]
    blocks: list[Block] = [*top, section(intro)]
    if page > 0:
        blocks.append(actions(button("← Newer", PAGE_VERSIONS, page_value(device.site, device.name, page - 1))))
    blocks.append(actions(checkboxes(SELECT_VERSIONS, options)))
    bottom = [button("Compare selected", COMPARE_SELECTED, ref, style="primary")]
    if first - 1 + len(versions) < total:
        bottom.append(button("Older →", PAGE_VERSIONS, page_value(device.site, device.name, page + 1)))
    if web_url:
        bottom.append(open_in_browser(web_url))
    blocks.append(actions(*bottom))
    return message(f"{device.label}: {plural(total, 'version')}", blocks)


def search_results(text: str, devices: Sequence[Device]) -> Message:
    """Matching devices (site, name, host): the first with a Versions button, at most 50 listed."""
    if not devices:
        reply = f"No device matches “{esc(text)}”. Try part of a site, device name or address."
        return message(reply, [section(reply)])
    title = f"{plural(len(devices), 'device')} match “{esc(text)}”:"
    entries = []
    for d in devices:
        line = f"`{esc(d.site)}` · *{esc(d.name)}* · `{esc(d.host)}`" + (" · retired" if d.retired_at else "")
        entries.append(Entry(f"{line} — `/backup {esc(d.site)} {esc(d.name)}`",
                             (section(line, button("Versions", OPEN_DEVICE, device_value(d.site, d.name))),)))
    body = group(title, entries, blocks=MAX_BLOCKS, chars=MAX_TEXT, max_detailed=SEARCH_BUTTONS,
                 max_items=MAX_SEARCH_RESULTS, more=lambda n: f"… and {n:,} more — refine your search")
    return message(title, body)


# --- App Home ----------------------------------------------------------------------------------
def app_home(overviews: Sequence[SiteOverview], failing: Sequence[DeviceStatus],
             stale: Sequence[DeviceStatus], now: datetime,
             next_runs: Mapping[str, datetime] | None = None) -> dict[str, Any]:
    """The Home tab: sites (with their next scheduled run and Back up site now), failing devices,
    stale devices (with buttons)."""
    upcoming = next_runs or {}
    failing_keys = {s.device.key for s in failing}
    stale_keys = {s.device.key for s in stale}
    stale = [s for s in stale if s.device.key not in failing_keys]  # shown once, under Failing
    top = [header("Config backups"),
           context(f"As of {when(now)} UTC · `/backup help` lists every command")]
    lists = [
        (f"*Sites ({len(overviews):,})*",
         [Entry(line, (section(line, button("Back up site now", BACKUP_SITE, o.site.name)),))
          for o in overviews for line in [_site_line(o, now, upcoming.get(o.site.name))]], "site", "`/backup sites`"),
        (f"*Failing ({len(failing):,})*" + ("" if failing else " — none :white_check_mark:"),
         [_device_entry(s, s.device.key in stale_keys, now, with_site=True) for s in failing],
         "failing device", "`/backup SITE`"),
        (f"*No recent good backup ({len(stale):,})*" + ("" if stale else " — none :white_check_mark:"),
         [_device_entry(s, True, now, with_site=True) for s in stale], "stale device", "`/backup SITE`"),
    ]
    def renderer(title: str, entries: list[Entry], noun: str, where: str) -> Render:
        return lambda nb, nc: group(title, entries, blocks=nb, chars=nc, max_detailed=len(entries),
                                    more=lambda n: f"… and {plural(n, 'more ' + noun)} (see {where})")

    blocks = list(top)
    # a divider before each list
    for body in share_budget([renderer(*x) for x in lists], blocks=MAX_HOME_BLOCKS - len(top) - len(lists),
                             chars=MAX_TEXT - text_size(top)):
        blocks += [divider(), *body]
    return home(blocks)
