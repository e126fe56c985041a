"""What the channel is told about a finished run: the outbox messages BackupService commits with
the run's end (`Announcer` is its `announce` hook); bot.slack.deliver posts them later.

The policy - who hears what and when: one digest per channel per scheduled slot, a change from
Slack or the CLI on its own, host-key alerts once per key, quiet sites, interrupted runs - is
docs/slack.md, "What the channel is told"; `run_messages` is that table as code, pure.

Building messages never breaks a run: a diff that cannot be rendered becomes a note saying which
command shows it. Payloads are bot.slack.blocks Messages ({"text", "blocks"}) or, for long diffs,
{"text", "file": {content, filename, title, snippet_type}}; a batch's replies name their parent by
its place in the batch (bot.core.messages.OutboxMessage).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any, Protocol

from bot.slack import blocks
from bot.core.kinds import Trigger
from bot.core.live import LiveSettings
from bot.core.messages import OutboxMessage
from bot.core.stale import is_stale
from bot.core.models import Attempt, Device, DeviceResult, Diff, NotStarted, RunSummary, Settings, Status, Version
from bot.backup.offload import cpu

log = logging.getLogger(__name__)

SUMMARY, DRIFT, CHANGE, HOST_KEY = "summary", "drift", "change", "host_key"


class NotifyStore(Protocol):
    async def last_successes(self, site: str | None = None) -> dict[tuple[str, str], datetime]: ...
    async def versions(
        self, site: str, device: str, limit: int = 20, before_id: int | None = None
    ) -> list[Version]: ...
    async def version(self, version_id: int) -> Version | None: ...


class Differ(Protocol):
    async def compare(self, version_ids: Sequence[int], redact: bool = False) -> list[Diff]: ...


@dataclass(frozen=True)
class Drift:
    """A change to show: its redacted diffs, or why they could not be made."""

    result: DeviceResult
    diffs: Sequence[Diff] = ()
    error: str | None = None


def channel_of(settings: Settings, site: str) -> str | None:
    s = settings.sites.get(site)
    return (s.channel if s is not None else None) or settings.slack.channel


def announced(summary: RunSummary) -> list[DeviceResult]:
    """The results this run recorded itself (not those of another run it joined)."""
    return [r for r in summary.results if r.run_id in (None, summary.run_id)]


def needs_diff(r: DeviceResult) -> bool:
    return (r.status is Status.CHANGED and r.previous is not None and r.version is not None
            and bool(r.added or r.removed))


# -- pure: messages from data -------------------------------------------------------------------
def drift_payload(drift: Drift) -> tuple[str, dict[str, Any]]:
    """(kind, payload) of a change's diff: inline blocks when short, else a diff snippet."""
    r = drift.result
    assert r.previous is not None and r.version is not None
    old, new = r.previous.id, r.version.id
    if drift.error is not None or not drift.diffs:
        return DRIFT, dict(blocks.diff_note(old, new, drift.error or "no differences"))
    inline = blocks.diff_inline(drift.diffs)
    if inline is not None:
        return DRIFT, dict(inline)
    name = f"{r.device.site}-{r.device.name}-{old}-{new}"
    text = f"Diff of {r.device.label} #{old} → #{new} (also: /backup diff {old} {new})"
    return DRIFT, {"text": text, "file": {"content": blocks.diff_text(drift.diffs), "filename": f"{name}.diff",
                                         "title": f"{r.device.label} #{old} → #{new}", "snippet_type": "diff"}}


def stale_of(results: Sequence[DeviceResult], last_successes: Mapping[tuple[str, str], datetime],
             now: datetime, after: timedelta) -> list[tuple[Device, datetime | None]]:
    """The devices that failed in this run and are stale (bot.core.stale)."""
    out = []
    for r in results:
        last = last_successes.get(r.device.key)
        if r.status is Status.FAILED and is_stale(True, last, now, after):
            out.append((r.device, last))
    return out


def worth_posting(settings: Settings, digest: RunSummary, stale: Sequence[object]) -> bool:
    """A digest is posted unless all its sites are quiet and it has nothing to tell."""
    sites = {r.device.site for r in digest.results} | {n.site for n in digest.not_started}
    if not all(settings.quiet(site) for site in sites):
        return True
    return bool(digest.not_started or stale or any(r.status is not Status.UNCHANGED for r in digest.results))


def run_messages(settings: Settings, summary: RunSummary, drifts: Mapping[tuple[str, str], Drift],
                 last_successes: Mapping[tuple[str, str], datetime]) -> list[OutboxMessage]:
    """Every message about `summary`, per channel, in the order the channel should see them.

    Negative parents point into this batch (-k = its k-th message), as OutboxMessage says.
    """
    by_channel: dict[str, list[DeviceResult]] = {}
    for r in summary.results:
        channel = channel_of(settings, r.device.site)
        if channel is not None:
            by_channel.setdefault(channel, []).append(r)
    skipped: dict[str, list[NotStarted]] = {}
    for n in summary.not_started:
        channel = channel_of(settings, n.site)
        if channel is not None:
            skipped.setdefault(channel, []).append(n)
            by_channel.setdefault(channel, [])
    own = {id(r) for r in announced(summary)}
    web = settings.web.base_url is not None  # Open in browser buttons (each presser gets their own link)
    batch: list[OutboxMessage] = []

    def add(channel: str, kind: str, payload: Mapping[str, Any], parent: int | None = None) -> int:
        batch.append(OutboxMessage(channel, kind, dict(payload), parent))
        return -len(batch)  # how a later message of this batch names this one

    for channel, results in by_channel.items():
        mine = [r for r in results if id(r) in own]
        changed = [r for r in mine if needs_diff(r) and r.device.key in drifts]
        if Trigger(summary.trigger).scheduled:
            part = replace(summary, results=tuple(results), not_started=tuple(skipped.get(channel, ())))
            stale = stale_of(results, last_successes, summary.finished_at, settings.stale_after)
            if worth_posting(settings, part, stale):
                parent = add(channel, SUMMARY, blocks.run_summary(part, stale=stale, now=summary.finished_at,
                                                                  web=web))
                for r in changed:
                    add(channel, *drift_payload(drifts[r.device.key]), parent=parent)
        else:  # every change, even one only in the header (a RouterOS upgrade): it is told only now
            for r in (r for r in mine if r.status is Status.CHANGED):
                parent = add(channel, CHANGE, blocks.change_notice(r, summary.trigger, summary.run_id, web=web))
                if r in changed:
                    add(channel, *drift_payload(drifts[r.device.key]), parent=parent)
        for r in mine:
            if r.key_change is not None and r.key_change.first_seen:
                add(channel, HOST_KEY, blocks.host_key_alert(r.device, r.key_change.old_fingerprint,
                                                             r.key_change.new_fingerprint))
    return batch


# -- async: gathering the data ------------------------------------------------------------------
class Announcer:
    """BackupService's `announce` hook: gathers diffs and last successes, then builds the messages
    (with the inventory in use when the run ends: a site's channel as it is then)."""

    def __init__(self, settings: Settings | LiveSettings, store: NotifyStore, differ: Differ) -> None:
        self.live, self.store, self.differ = LiveSettings.of(settings), store, differ

    @property
    def settings(self) -> Settings:
        return self.live.settings

    async def __call__(self, summary: RunSummary) -> list[OutboxMessage]:
        settings = self.settings  # one inventory for the whole message, however long the diffs take
        heard = [r for r in summary.results if channel_of(settings, r.device.site) is not None]
        if not heard and not any(channel_of(settings, n.site) for n in summary.not_started):
            return []
        drifts = {r.device.key: await self._drift(r) for r in announced(summary) if needs_diff(r)
                  and channel_of(settings, r.device.site) is not None}
        last: dict[tuple[str, str], datetime] = {}
        if Trigger(summary.trigger).scheduled:
            for site in sorted({r.device.site for r in heard}):
                last.update(await self.store.last_successes(site))
        # Rendering walks every diff line: off the event loop, like the diffing itself.
        return await cpu(run_messages, settings, summary, drifts, last)

    async def interrupted(self, run_id: int, started_at: datetime, attempts: Sequence[Attempt],
                          now: datetime) -> list[OutboxMessage]:
        """What a run that never finished (SIGTERM, crash) would have told the channel about the
        changes it did record: each on its own, like a run from Slack, so none goes unheard."""
        results = []
        for a in attempts:
            site = self.settings.sites.get(a.site)
            device = site.known(a.device) if site is not None else None
            if device is None or a.status is not Status.CHANGED or a.version_id is None:
                continue
            version = await self.store.version(a.version_id)
            previous = await self.store.versions(a.site, a.device, limit=1, before_id=a.version_id)
            results.append(DeviceResult(device, Status.CHANGED, version, previous[0] if previous else None,
                                        added=a.added, removed=a.removed, note=a.note, run_id=run_id))
        return await self(RunSummary(run_id, Trigger.INTERRUPTED, started_at, now, tuple(results)))

    async def _drift(self, r: DeviceResult) -> Drift:
        assert r.previous is not None and r.version is not None
        try:
            return Drift(r, await self.differ.compare([r.previous.id, r.version.id], redact=True))
        except Exception as exc:
            log.exception("diff for the announcement of %s failed", r.device.label)
            return Drift(r, error=f"{type(exc).__name__}")
