"""PURE. Messages about backup runs: started, the run summary, the host-key alert; and the
plain-word phrases (failure kinds, ages, staleness) the other Slack views share.

A summary of 1,000 devices must still be one valid message: unchanged devices are only
counted; changed, new, failed and stale devices are listed compactly (many per section) and
the budget is shared fairly between those lists, each ending "… and N more …" if cut.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

from bot.blocks_ids import SHOW_DIFF, pair_value
from bot.blocks_kit import (
    MAX_BLOCKS,
    MAX_TEXT,
    Block,
    Message,
    button,
    context,
    esc,
    header,
    message,
    plural,
    section,
    text_size,
)
from bot.blocks_pack import Entry, fair_share, group
from bot.models import Device, DeviceResult, RunSummary, Status
from bot.terminal import changes, when

FAILURE_WORDS = {
    "auth": "authentication failed",
    "host_key": "host key changed",
    "timeout": "timed out",
    "unreachable": "unreachable",
    "dropped": "connection dropped",
    "invalid_output": "invalid output",
    "internal": "internal error",
}
TRIGGER_WORDS = {"schedule": "Scheduled run", "slack": "Run from Slack", "cli": "Run from the server",
                 "catch-up": "Catch-up run (a scheduled time was missed)",
                 "interrupted": "Run cut short by a restart"}
REASON_CHARS = 300  # a reason longer than this is shown clipped, with "…"
MAX_DIFF_BUTTONS = 10  # changed devices shown with their own "Show diff" button


def failure(kind: str | None, reason: str | None) -> str:
    """Plain words for a failed attempt (raw text: escape before use in mrkdwn)."""
    words = FAILURE_WORDS.get(kind or "", kind or "failed")
    if not reason or reason.lower().startswith(words):
        return reason or words
    return f"{words}: {reason}"


def span(delta: timedelta) -> str:
    minutes = max(int(delta.total_seconds() // 60), 0)
    if minutes < 60:
        return plural(minutes, "minute")
    if minutes < 48 * 60:
        return plural(minutes // 60, "hour")
    return plural(minutes // (24 * 60), "day")


def ago(at: datetime, now: datetime) -> str:
    return "just now" if now - at < timedelta(minutes=1) else f"{span(now - at)} ago"


def stale_phrase(last_success: datetime | None, now: datetime) -> str:
    return "never backed up" if last_success is None else f"no good backup for {span(now - last_success)}"


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


def _scope(summary: RunSummary) -> tuple[str, str]:
    """(what the run covered, the command that shows more)."""
    sites = sorted({r.device.site for r in summary.results})
    if len(summary.results) == 1:
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


def _groups(summary: RunSummary, stale: Sequence[tuple[Device, datetime | None]], now: datetime
            ) -> list[tuple[str, list[Entry], str, int, str]]:
    """(title, entries, noun for "… and N more", max detailed, separator) per non-empty list."""
    by = {st: [r for r in summary.results if r.status is st] for st in Status}
    groups = [
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


def run_summary(
    summary: RunSummary, *, stale: Sequence[tuple[Device, datetime | None]] = (),
    title: str | None = None, now: datetime,
) -> Message:
    """Totals, then changed (with Show diff), new, failed (with reasons) and stale devices."""
    scope, hint = _scope(summary)
    counts = {st: summary.count(st) for st in Status}
    outcome = [plural(counts[st], st.value, st.value) for st in (Status.CHANGED, Status.NEW, Status.FAILED)
               if counts[st]]
    title = title or f"Backup of {scope} — {', '.join(outcome) or 'no changes'}"
    totals = (f"*{plural(len(summary.results), 'device')}* · {counts[Status.UNCHANGED]:,} unchanged · "
              f"{counts[Status.CHANGED]:,} changed · {counts[Status.NEW]:,} new · {counts[Status.FAILED]:,} failed\n"
              f"{TRIGGER_WORDS.get(summary.trigger, esc(summary.trigger))} #{summary.run_id} · "
              f"{when(summary.started_at)} UTC, took "
              f"{_seconds((summary.finished_at - summary.started_at).total_seconds())}")
    blocks: list[Block] = [header(title), section(totals)]
    groups = _groups(summary, stale, now)

    def render(g: tuple[str, list[Entry], str, int, str], n_blocks: int, n_chars: int) -> list[Block]:
        head, entries, noun, detailed, sep = g
        return group(head, entries, blocks=n_blocks, chars=n_chars, max_detailed=detailed, sep=sep,
                     more=lambda n: f"… and {plural(n, 'more ' + noun)} (see `{hint}`)")

    full = [render(g, 10**6, 10**9) for g in groups]
    block_shares = fair_share([len(f) for f in full], MAX_BLOCKS - len(blocks))
    char_shares = fair_share([text_size(f) for f in full], MAX_TEXT - text_size(blocks))
    for g, f, nb, nc in zip(groups, full, block_shares, char_shares):
        blocks.extend(f if len(f) <= nb and text_size(f) <= nc else render(g, nb, nc))
    return message(f"{esc(title)}", blocks)


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


def change_notice(result: DeviceResult, trigger: str, run_id: int) -> Message:
    """A change found by a run the channel gets no summary of (from Slack or the CLI): device,
    versions, +/- counts and Show diff, like a summary's line; the diff follows in the thread."""
    label = result.device.label
    origin = f"{TRIGGER_WORDS.get(trigger, esc(trigger))} #{run_id}"
    if result.added or result.removed:
        origin += " · the redacted diff is in the thread"
    return message(f"Config changed: {esc(label)}",
                   [header(f":pencil2: Config changed: {label}"), *_changed(result).detail, context(origin)])


def diff_note(old_id: int, new_id: int, why: str) -> Message:
    """Stands in for a diff that could not be rendered: where to get it instead."""
    text = (f"The diff #{old_id} → #{new_id} could not be attached ({esc(why, REASON_CHARS)}): "
            f"`/backup diff {old_id} {new_id}` shows it.")
    return message(text, [section(text)])
