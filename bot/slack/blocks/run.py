"""PURE. Messages about backup runs: started, the run summary (a scheduled slot's digest), the
host-key alert; and the plain-word phrases (failure kinds, ages, staleness) the other Slack views share.

A summary of 1,000 devices over 100 sites must still be one valid message: unchanged devices
are only counted; sites (when there are several, or one did not start), changed, new, failed
and stale devices are listed compactly (many per section) and the budget is shared fairly
between those lists, each ending "… and N more …" if cut. The fallback `text` (what
notifications show, and all that is posted if Slack refuses the blocks) is the title, then a
line per site and per change, failure and stale device, within MAX_FALLBACK, ending
"… and N more lines" if cut.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from datetime import datetime

from bot.slack.blocks.ids import OPEN_IN_BROWSER, SHOW_DIFF, pair_value, web_value
from bot.slack.blocks.kit import (
    MAX_BLOCKS,
    MAX_FALLBACK,
    MAX_TEXT,
    Block,
    Message,
    actions,
    button,
    context,
    esc,
    header,
    message,
    section,
    text_size,
)
from bot.slack.blocks.pack import Entry, Render, group, share_budget
from bot.core.models import Device, DeviceResult, RunSummary, Status
from bot.core.kinds import ErrorKind, Trigger
from bot.core.stale import stale_phrase
from bot.core.text import changes, plural, when

REASON_CHARS = 300  # a reason longer than this is shown clipped, with "…"
MAX_DIFF_BUTTONS = 10  # changed devices shown with their own "Show diff" button


def failure(kind: str | None, reason: str | None) -> str:
    """Plain words for a failed attempt (raw text: escape before use in mrkdwn)."""
    words = ErrorKind.words_for(kind)
    if not reason or reason.lower().startswith(words):
        return reason or words
    return f"{words}: {reason}"


def _seconds(seconds: float) -> str:
    if seconds < 60:
        return f"{seconds:.1f} s"
    return f"{int(seconds // 60)} min {int(seconds % 60)} s"


def backup_started(label: str, device_count: int, joined: bool) -> Message:
    """The immediate answer to `/backup SITE now`, or to a request that joined a running backup."""
    if joined:
        text = f"A backup of {esc(label)} is already running — you'll get its result."
    else:
        text = f":hourglass_flowing_sand: Backing up {esc(label)}: {plural(device_count, 'device')}…"
    return message(text, [section(text)])


def _sites(summary: RunSummary) -> list[str]:
    return sorted({r.device.site for r in summary.results} | {n.site for n in summary.not_started})


def _scope(summary: RunSummary) -> tuple[str, str]:
    """(what the run covered, the command that shows more)."""
    sites = _sites(summary)
    if len(summary.results) == 1 and not summary.not_started:
        return summary.results[0].device.label, f"/backup {summary.results[0].device.site}"
    if len(sites) == 1:
        return sites[0], f"/backup {sites[0]}"
    return plural(len(sites), "site"), "/backup sites"


def _changed(r: DeviceResult) -> Entry:
    old, new = (r.previous.id if r.previous else None), (r.version.id if r.version else None)
    ids = f"#{old} → #{new}" if old is not None else f"#{new}"
    parts = [f"`{esc(r.device.label)}` {ids}"]
    if r.added or r.removed:
        parts.append(f"`{changes(r.added, r.removed)}`")
    if r.note:
        parts.append(esc(r.note, REASON_CHARS))
    line = " · ".join(parts)
    if old is None or new is None or not (r.added or r.removed):  # header-only change: no diff to show
        return Entry(line, (section(line),))
    return Entry(f"{line} · `/backup diff {old} {new}`",
                 (section(line, button("Show diff", SHOW_DIFF, pair_value(old, new))),))


def _site_counts(counts: Counter[Status]) -> str:
    """"12 devices, 11 unchanged, 1 changed", or "12 devices, all unchanged"."""
    total = sum(counts.values())
    if counts[Status.UNCHANGED] == total:
        return f"{plural(total, 'device')}, all unchanged"
    parts = [f"{counts[st]:,} {st.value}" for st in (Status.UNCHANGED, Status.CHANGED, Status.NEW, Status.FAILED)
             if counts[st]]
    return ", ".join([plural(total, "device"), *parts])


def _site_lines(summary: RunSummary) -> list[tuple[str, str]]:
    """(mrkdwn, plain) line per site, when the summary is of several sites or names one that did
    not start (one site's line would only repeat the totals): those not started first, then those
    with failures, then with changes or new devices, then the rest; by name within each."""
    if len(_sites(summary)) < 2 and not summary.not_started:
        return []
    per: dict[str, Counter[Status]] = {}
    for r in summary.results:
        per.setdefault(r.device.site, Counter())[r.status] += 1

    def rank(site: str) -> tuple[int, str]:
        c = per[site]
        return (0 if c[Status.FAILED] else 1 if c[Status.CHANGED] or c[Status.NEW] else 2), site

    lines = [(f":x: `{esc(n.site)}` not started — {esc(n.reason, REASON_CHARS)}",
              f"{n.site}: not started — {esc(n.reason, REASON_CHARS)}")
             for n in sorted(summary.not_started, key=lambda n: n.site)]
    for site in sorted(per, key=rank):
        mark = ":x: " if per[site][Status.FAILED] else ""
        lines.append((f"{mark}`{esc(site)}` {_site_counts(per[site])}", f"{site}: {_site_counts(per[site])}"))
    return lines


def _groups(summary: RunSummary, stale: Sequence[tuple[Device, datetime | None]], now: datetime
            ) -> list[tuple[str, list[Entry], str, int, str]]:
    """(title, entries, noun for "… and N more", max detailed, separator) per non-empty list."""
    by = {st: [r for r in summary.results if r.status is st] for st in Status}
    sites = _site_lines(summary)
    groups = [
        (f"*Sites ({len(sites):,})*", [Entry(line) for line, _ in sites], "site", 0, "\n"),
        (f"*Changed ({len(by[Status.CHANGED]):,})*", [_changed(r) for r in by[Status.CHANGED]],
         "changed device", MAX_DIFF_BUTTONS, "\n"),
        (f"*New ({len(by[Status.NEW]):,})* — first backup:",
         [Entry(f"`{esc(r.device.label)}` #{r.version.id if r.version else '?'}") for r in by[Status.NEW]],
         "new device", 0, ", "),
        (f"*Failed ({len(by[Status.FAILED]):,})*",
         [Entry(f":x: `{esc(r.device.label)}` — {esc(failure(r.error_kind, r.reason), REASON_CHARS)}")
          for r in by[Status.FAILED]], "failed device", 0, "\n"),
        (f"*No recent good backup ({len(stale):,})*",
         [Entry(f":warning: `{esc(d.label)}` — {stale_phrase(last, now)}") for d, last in stale],
         "device without a recent backup", 0, "\n"),
    ]
    return [g for g in groups if g[1]]


def _fallback(title: str, summary: RunSummary, stale: Sequence[tuple[Device, datetime | None]],
              now: datetime) -> str:
    """The plain `text`: title, then a line per site (when several) and per change, failure and
    stale device, as many as MAX_FALLBACK holds, then how many lines were left out."""
    lines = [plain for _, plain in _site_lines(summary)]
    for r in summary.results:
        if r.status is Status.CHANGED:
            note = f"({esc(r.note or 'header only', REASON_CHARS)})"
            detail = changes(r.added, r.removed) if r.added or r.removed else note
            lines.append(f"changed: {r.device.label} {detail}")
        elif r.status is Status.FAILED:
            lines.append(f"failed: {r.device.label} — {esc(failure(r.error_kind, r.reason), REASON_CHARS)}")
    lines += [f"stale: {d.label} — {stale_phrase(last, now)}" for d, last in stale]
    text = esc(title)
    for i, line in enumerate(lines):
        rest = len(lines) - i
        more = f"\n… and {plural(rest, 'more line')}"
        if len(text) + 1 + len(line) + (len(more) if rest > 1 else 0) > MAX_FALLBACK:
            return text + more
        text += "\n" + line
    return text


def _open_for_presser(value: str) -> Block:
    """Open in browser for messages many read (a channel's): each presser is answered with their
    own signed link (handlers), never one person's link shown to all."""
    return button("Open in browser", OPEN_IN_BROWSER, value)


def run_summary(
    summary: RunSummary, *, stale: Sequence[tuple[Device, datetime | None]] = (),
    title: str | None = None, now: datetime, web: bool = False,
) -> Message:
    """Totals, then the sites (when several, or one did not start), changed (with Show diff),
    new, failed (with reasons) and stale devices; with `web` (web.base_url set), Open in browser
    (the site's page, or the list of sites)."""
    scope, hint = _scope(summary)
    counts = {st: summary.count(st) for st in Status}
    outcome = [plural(counts[st], st.value, st.value) for st in (Status.CHANGED, Status.NEW, Status.FAILED)
               if counts[st]]
    if summary.not_started:
        outcome.append(plural(len(summary.not_started), "site not started", "sites not started"))
    title = title or f"Backup of {scope} — {', '.join(outcome) or 'no changes'}"
    totals = (f"*{plural(len(summary.results), 'device')}* · {counts[Status.UNCHANGED]:,} unchanged · "
              f"{counts[Status.CHANGED]:,} changed · {counts[Status.NEW]:,} new · {counts[Status.FAILED]:,} failed"
              + (f" · {len(stale):,} stale" if stale else "") + "\n"
              f"{esc(Trigger.words_for(summary.trigger))} #{summary.run_id} · "
              f"{when(summary.started_at)} UTC, took "
              f"{_seconds((summary.finished_at - summary.started_at).total_seconds())}")
    blocks: list[Block] = [header(title), section(totals)]
    sites = _sites(summary)
    link = [actions(_open_for_presser(web_value("site", *sites) if len(sites) == 1 else "sites"))] if web else []
    groups = _groups(summary, stale, now)

    def renderer(g: tuple[str, list[Entry], str, int, str]) -> Render:
        head, entries, noun, detailed, sep = g
        return lambda n_blocks, n_chars: group(
            head, entries, blocks=n_blocks, chars=n_chars, max_detailed=detailed, sep=sep,
            more=lambda n: f"… and {plural(n, 'more ' + noun)} (see `{hint}`)")

    for body in share_budget([renderer(g) for g in groups], blocks=MAX_BLOCKS - len(blocks) - len(link),
                             chars=MAX_TEXT - text_size([*blocks, *link])):
        blocks.extend(body)
    return message(_fallback(title, summary, stale, now), [*blocks, *link])


def host_key_alert(device: Device, old_fingerprint: str, new_fingerprint: str) -> Message:
    """A device presented a different SSH host key: what changed and how an admin accepts it."""
    label = esc(device.label)
    text = (f"*{label}* (`{esc(device.host)}`) presented a different SSH host key. The router may have "
            "been reinstalled or replaced — or something is intercepting the connection.\n"
            f"*Old:* `{esc(old_fingerprint)}`\n*New:* `{esc(new_fingerprint)}`")
    action = ("Until the new key is accepted, backupbot refuses to connect and *nothing is stored for "
              f"this device*. If the change is expected, an admin runs "
              f"`backupbot trust {esc(device.site)} {esc(device.name)}` on the server.")
    return message(f"Host key changed for {label}: nothing is backed up until an admin accepts it",
                   [header(f":rotating_light: Host key changed: {device.label}"), section(text), section(action)])


def change_notice(result: DeviceResult, trigger: Trigger, run_id: int, web: bool = False) -> Message:
    """A change found by a run the channel gets no summary of (from Slack or the CLI): device,
    versions, +/- counts and Show diff, like a summary's line; the diff follows in the thread. With
    `web`, Open in browser (the comparison, or the new version when only its header changed)."""
    label = result.device.label
    origin = f"{esc(Trigger.words_for(trigger))} #{run_id}"
    if result.added or result.removed:
        origin += " · the redacted diff is in the thread"
    link: list[Block] = []
    if web and result.version is not None:
        value = (web_value("compare", result.previous.id, result.version.id) if result.previous is not None
                 else web_value("version", result.version.id))
        link = [actions(_open_for_presser(value))]
    return message(f"Config changed: {esc(label)}",
                   [header(f":pencil2: Config changed: {label}"), *_changed(result).detail, context(origin), *link])


def diff_note(old_id: int, new_id: int, why: str) -> Message:
    """Stands in for a diff that could not be rendered: where to get it instead."""
    text = (f"The diff #{old_id} → #{new_id} could not be attached ({esc(why, REASON_CHARS)}): "
            f"`/backup diff {old_id} {new_id}` shows it.")
    return message(text, [section(text)])
