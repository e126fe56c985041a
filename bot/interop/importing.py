"""Importing history (`backupbot import oxidized|files`): source files matched to configured devices,
each snapshot checked and normalized as a live backup is, and stored as versions where the
normalized text changed, dated when the source first saw it.

The rules, and why:
- A file belongs to the configured device named like it (case-insensitive), else to the one whose
  `host` it is named after (Oxidized nodes are often named by address). Configured means the
  inventory in use: the config file merged with the inventory source's devices (NetBox, CSV: the
  CLI reads the source first); a retired device only when no active one has the name. A file matching no device,
  several devices, or a device another file also matches is skipped and listed, never guessed at.
- A snapshot is refused (listed, never stored) when `check_export` refuses it, exactly as a live
  backup would be, with one exception: a missing final newline is accepted, because files kept in git
  often lost it (editors, Ansible's `routeros_command`); live backups keep refusing a cut export.
- Versions only where the normalized text changed (or the header says the router was upgraded or
  replaced, as for live backups): Oxidized's commits that only moved a date collapse into the
  version before them, whose "last verified" becomes the last such commit.
- Appending only. The store takes a device's highest version id as its latest, so imported
  versions must be newer than everything it already has: only snapshots after the device's latest
  "last verified" are stored. History older than that is counted, reported per device and left
  out (never inserted behind newer versions). A device without versions takes its whole history.
  This also makes an import idempotent: a second run finds everything at or before what the first
  one stored, and stores nothing.
- One run with trigger `import` records it: each version's attempt is dated when the source first
  saw it (an "unchanged" attempt marks the last time it saw it again). Nothing is posted to Slack:
  it is history, and the channel heard of none of it when it happened.
- The versions of all devices are written in date order, so that the ids of an import, like those
  of live backups, follow time (the git mirror commits an import's versions date by date).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

from bot.backup.offload import cpu
from bot.core.clock import Clock, utcnow
from bot.core.kinds import Trigger
from bot.core.models import Device, ExportMeta, Settings, Status, Version
from bot.interop.planning import Planned, Skipped, Timeline, examine, match_files
from bot.interop.sources import Snapshot, Source, SourceFile
from bot.routeros import diff as diffing
from bot.routeros import export as routeros


class ImportStore(Protocol):
    """The part of storage.store.Store an import needs."""

    async def start_run(self, trigger: Trigger, at: datetime, scope: str) -> int: ...
    async def finish_run(self, run_id: int, at: datetime) -> None: ...
    async def interrupt_run(self, run_id: int, at: datetime) -> bool: ...
    async def versions(self, site: str, device: str, limit: int = 20, before_id: int | None = None
                       ) -> list[Version]: ...
    async def count_versions(self, site: str, device: str) -> int: ...
    async def latest_version(self, site: str, device: str) -> Version | None: ...
    async def raw(self, version_id: int) -> bytes: ...
    async def add_version(
        self, run_id: int, site: str, device: str, at: datetime, raw: bytes, norm_hash: str,
        meta: ExportMeta, status: Status, added: int, removed: int, note: str | None,
    ) -> Version: ...
    async def confirm_version(
        self, run_id: int, site: str, device: str, at: datetime, version_id: int, note: str | None = None
    ) -> Version: ...


# -- the import -------------------------------------------------------------------------------------


@dataclass
class DeviceImport:
    """What became, or would become, of one device's source file."""

    device: Device
    file: SourceFile
    timeline: Timeline
    refused: list[tuple[Snapshot, str]] = field(default_factory=list)
    stored: int = 0  # versions written (0 in a dry run)
    interrupted: str | None = None  # why writing stopped part-way

    @property
    def all_refused(self) -> bool:
        return bool(self.refused) and len(self.refused) == len(self.file.snapshots)


@dataclass
class ImportReport:
    source: str
    dry_run: bool
    devices: list[DeviceImport]
    skipped: list[Skipped]
    run_id: int | None = None

    @property
    def problems(self) -> bool:
        """Something the user asked for did not get in: a refused file, history older than the store's,
        or writing stopped for a device."""
        return any(d.all_refused or d.timeline.older or d.interrupted for d in self.devices)

    @property
    def versions(self) -> int:
        return sum(len(d.timeline.new) for d in self.devices)


# (phase "reading"/"storing", done, total, devices refused (reading) or stopped (storing) so far)
Progress = Callable[[str, int, int, int], None]


class Importer:
    def __init__(self, settings: Settings, store: ImportStore, clock: Clock = utcnow,
                 progress: Progress | None = None) -> None:
        self.settings, self.store, self.clock = settings, store, clock
        self.progress = progress or (lambda *_: None)

    async def run(self, source: Source, *, site: str | None = None, site_from_group: bool = False,
                  dry_run: bool = False) -> ImportReport:
        files = await source.files()
        matched, skipped = match_files(files, self.settings, site=site, site_from_group=site_from_group)
        report = ImportReport(source.description, dry_run, [], skipped)
        refused = 0
        for i, (device, file) in enumerate(matched):
            self.progress("reading", i, len(matched), refused)
            result = await self._read(source, device, file)
            refused += result.all_refused
            report.devices.append(result)
        self.progress("reading", len(matched), len(matched), refused)
        if not dry_run and report.versions:
            await self._write(source, report)
        return report

    async def _read(self, source: Source, device: Device, file: SourceFile) -> DeviceImport:
        count = await self.store.count_versions(device.site, device.name)
        stored = await self.store.versions(device.site, device.name, limit=count) if count else []
        result = DeviceImport(device, file, Timeline(stored))
        previous_text: str | None = None
        for snap in sorted(file.snapshots, key=lambda s: s.at):
            ex = await cpu(examine, await source.read(snap.ref))
            if ex.refusal is not None:
                result.refused.append((snap, ex.refusal))
                continue
            planned = result.timeline.add(snap, ex)
            if planned is None:
                continue
            if previous_text is None and result.timeline.latest is not None:
                previous_text = await cpu(routeros.normalize, await self.store.raw(result.timeline.latest.id))
            if previous_text is not None and previous_text != ex.normalized:
                planned.added, planned.removed = await cpu(diffing.count_changes, previous_text, ex.normalized)
            previous_text = ex.normalized
        return result

    async def _write(self, source: Source, report: ImportReport) -> None:
        """Every planned version, all devices in date order, in one run."""
        order = {id(d): i for i, d in enumerate(report.devices)}
        queue = sorted(((d, p) for d in report.devices for p in d.timeline.new),
                       key=lambda item: (item[1].snapshot.at, order[id(item[0])]))
        sites = ",".join(sorted({d.device.site for d in report.devices if d.timeline.new}))
        run_id = report.run_id = await self.store.start_run(Trigger.IMPORT, self.clock(), sites)
        latest = {id(d): d.timeline.latest.id if d.timeline.latest else None for d in report.devices}
        try:
            for done, (d, planned) in enumerate(queue):
                self.progress("storing", done, len(queue), self._stopped(report))
                if d.interrupted is None:
                    await self._store(source, run_id, d, planned, latest)
            self.progress("storing", len(queue), len(queue), self._stopped(report))
        except BaseException:
            await self.store.interrupt_run(run_id, self.clock())
            raise
        await self.store.finish_run(run_id, self.clock())

    @staticmethod
    def _stopped(report: ImportReport) -> int:
        return sum(d.interrupted is not None for d in report.devices)

    async def _store(self, source: Source, run_id: int, d: DeviceImport, planned: Planned,
                     latest: dict[int, int | None]) -> None:
        device = d.device
        now = await self.store.latest_version(device.site, device.name)
        if (now.id if now else None) != latest[id(d)]:
            # A backup stored a version since this import read the device: what follows would land
            # behind it. Stop here for this device; another import run appends the rest after it.
            d.interrupted = "a backup stored a newer version meanwhile; run the import again for the rest"
            return
        raw = await source.read(planned.snapshot.ref)
        if hashlib.sha256(raw).hexdigest() != planned.raw_sha256:
            d.interrupted = f"{planned.snapshot.label} changed while it was being imported"
            return
        version = await self.store.add_version(
            run_id, device.site, device.name, planned.snapshot.at, raw, planned.norm_hash, planned.meta,
            planned.status, planned.added, planned.removed, planned.note)
        if planned.last_seen > planned.snapshot.at:
            await self.store.confirm_version(run_id, device.site, device.name, planned.last_seen, version.id)
        latest[id(d)] = version.id
        d.stored += 1

