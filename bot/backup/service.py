"""The use case: back up a set of devices and record what happened.

`BackupService.run` collects devices with bounded concurrency (one failure never stops the
others), decides new / changed / unchanged on the normalized form, and records every attempt.
A device already being backed up is joined, never collected twice at once, so a manual
request during a scheduled run waits for that run's result instead of starting another.

The service depends on two small Protocols, not on asyncssh or SQL.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import replace
from datetime import datetime
from typing import Protocol

from bot.routeros import diff as diffing
from bot.routeros import export as routeros
from bot.core.clock import Clock, utcnow
from bot.core.errors import CollectError, CorruptBlob, HostKeyChanged
from bot.core.kinds import ErrorKind, Trigger
from bot.core.messages import OutboxMessage
from bot.backup.offload import cpu
from bot.core.models import (
    Attempt,
    Device,
    DeviceResult,
    DeviceState,
    Export,
    ExportMeta,
    HostKey,
    KeyChange,
    KnownConfig,
    NotStarted,
    RunSummary,
    Settings,
    Status,
    Version,
)

log = logging.getLogger(__name__)

# Builds the outbox messages (summaries, alerts) committed together with the run's end.
MessagesFor = Callable[[RunSummary], Awaitable[Sequence[OutboxMessage]]]


class Collecting(Protocol):
    async def collect(self, device: Device, trusted: HostKey | None, ros_major: int | None = None,
                      known: KnownConfig | None = None) -> Export: ...


class RunStore(Protocol):
    """The part of storage.store.Store that recording a run needs."""

    async def start_run(self, trigger: Trigger, at: datetime, scope: str) -> int: ...
    async def finish_run(self, run_id: int, at: datetime, outbox: Sequence[OutboxMessage] = ()) -> None: ...
    async def device_state(self, site: str, device: str) -> DeviceState: ...
    async def raw(self, version_id: int) -> bytes: ...
    async def add_version(
        self, run_id: int, site: str, device: str, at: datetime, raw: bytes, norm_hash: str,
        meta: ExportMeta, status: Status, added: int, removed: int, note: str | None,
        *, previous_raw: bytes | None = None, undated_hash: str | None = None,
    ) -> Version: ...
    async def confirm_version(
        self, run_id: int, site: str, device: str, at: datetime, version_id: int, note: str | None = None,
        *, undated_hash: str | None = None,
    ) -> Version: ...
    async def record_failure(
        self, run_id: int, site: str, device: str, at: datetime, kind: str, reason: str
    ) -> Attempt: ...
    async def trust_host_key(self, site: str, device: str, key: str, fingerprint: str) -> None: ...
    async def set_pending_host_key(self, site: str, device: str, key: str, fingerprint: str) -> None: ...


def _reporter(on_result: Callable[[DeviceResult], None]) -> Callable[[asyncio.Future[DeviceResult]], None]:
    """A done-callback that hands a device's result to `on_result` (not a failure or a cancellation)."""
    def report(future: asyncio.Future[DeviceResult]) -> None:
        if not future.cancelled() and future.exception() is None:
            on_result(future.result())
    return report


def _changes(old_raw: bytes, new_raw: bytes) -> tuple[int, int]:
    return diffing.count_changes(routeros.normalize(old_raw), routeros.normalize(new_raw))


class BackupService:
    def __init__(
        self,
        settings: Settings,
        collector: Collecting,
        store: RunStore,
        clock: Clock = utcnow,
        *,
        announce: MessagesFor | None = None,
        observe: Callable[[RunSummary], None] | None = None,
    ) -> None:
        """`announce` builds the messages (summaries, alerts) committed with each run's end;
        `observe` sees every finished run (metrics)."""
        self.settings = settings
        self.collector = collector
        self.store = store
        self.clock = clock
        self.announce = announce
        self.observe = observe
        self._slots = asyncio.Semaphore(settings.concurrency)
        self._inflight: dict[tuple[str, str], asyncio.Future[DeviceResult]] = {}

    def _forget(self, key: tuple[str, str], _task: object) -> None:
        self._inflight.pop(key, None)

    def busy(self, devices: Sequence[Device]) -> bool:
        """True if any of these devices is being backed up right now."""
        return any(d.key in self._inflight for d in devices)

    async def run(
        self,
        devices: Sequence[Device],
        trigger: Trigger,
        *,
        on_result: Callable[[DeviceResult], None] | None = None,
        not_started: Sequence[NotStarted] = (),
    ) -> RunSummary:
        """Back up `devices` once; devices already in flight are joined, not collected again.

        `not_started`: sites the caller meant this run to cover but could not start (the
        scheduler's busy sites); they are carried into the summary, so its messages tell them.
        """
        started = self.clock()
        run_id: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        owned: list[asyncio.Task[DeviceResult]] = []
        waits: list[asyncio.Future[DeviceResult]] = []
        # Registered before the first await, so a request arriving a moment later joins these.
        for device in devices:
            fut = self._inflight.get(device.key)
            if fut is None:
                task = asyncio.create_task(self._backup(run_id, device), name=f"backup {device.label}")
                self._inflight[device.key] = task
                task.add_done_callback(functools.partial(self._forget, device.key))
                owned.append(task)
                fut = task
            if on_result is not None:
                fut.add_done_callback(_reporter(on_result))
            waits.append(fut)
        gathered = asyncio.gather(*waits)
        try:
            run_id.set_result(await self.store.start_run(trigger, started, ",".join(sorted({d.site for d in devices}))))
            # shield: a caller that gives up (a cancelled Slack task) must not kill a run others joined
            results = await asyncio.shield(gathered)
        except BaseException:
            run_id.cancel()
            for task in owned:
                task.cancel()
            # Nobody awaits the gather any more: retrieve its outcome so asyncio does not log it.
            gathered.add_done_callback(lambda f: f.cancelled() or f.exception())
            raise
        summary = RunSummary(run_id.result(), trigger, started, self.clock(), tuple(results), tuple(not_started))
        await self._finish(summary)
        if self.observe is not None:
            try:
                self.observe(summary)
            except Exception:
                log.exception("observing run %d failed", summary.run_id)
        return summary

    async def _finish(self, summary: RunSummary) -> None:
        """Record the run's end with its messages; a notification that cannot be built is logged
        and left out, never a reason to leave the run unfinished."""
        outbox: Sequence[OutboxMessage] = ()
        if self.announce is not None:
            try:
                outbox = await self.announce(summary)
            except Exception:
                log.exception("building the messages of run %d failed; the run is recorded without them",
                              summary.run_id)
        try:
            await self.store.finish_run(summary.run_id, summary.finished_at, outbox)
        except ValueError:  # a malformed message (checked before anything is written)
            log.exception("the messages of run %d are malformed; the run is recorded without them", summary.run_id)
            await self.store.finish_run(summary.run_id, summary.finished_at, ())

    async def _backup(self, run_started: asyncio.Future[int], device: Device) -> DeviceResult:
        run_id = await run_started
        t0 = time.monotonic()
        trusted: HostKey | None = None
        try:
            async with self._slots:
                trusted, latest, known = await self.store.device_state(device.site, device.name)
                # The last stored header's version picks the export command without asking.
                major = routeros.release_major(latest.meta.ros_version) if latest else None
                export = await self.collector.collect(device, trusted, major, known)
            if trusted is None:
                await self.store.trust_host_key(device.site, device.name, export.host_key, export.host_key_fingerprint)
            result = await self._record(run_id, device, export, latest)
        except CollectError as exc:
            key_change = None
            if isinstance(exc, HostKeyChanged):
                # Compared before recording it: a key already pending was announced by an earlier run.
                first_seen = trusted is None or trusted.pending_fingerprint != exc.new_fingerprint
                key_change = KeyChange(exc.old_fingerprint, exc.new_fingerprint, first_seen)
                await self.store.set_pending_host_key(device.site, device.name, exc.new_key, exc.new_fingerprint)
            await self.store.record_failure(run_id, device.site, device.name, self.clock(), exc.kind, exc.reason)
            log.warning("backup failed device=%s kind=%s reason=%r", device.label, exc.kind, exc.reason)
            result = DeviceResult(device, Status.FAILED, error_kind=exc.kind, reason=exc.reason,
                                  key_change=key_change)
        except Exception as exc:
            log.exception("backup crashed device=%s", device.label)
            reason = f"internal error: {type(exc).__name__}"
            await self.store.record_failure(run_id, device.site, device.name, self.clock(), ErrorKind.INTERNAL, reason)
            result = DeviceResult(device, Status.FAILED, error_kind=ErrorKind.INTERNAL, reason=reason)
        return replace(result, duration=time.monotonic() - t0, run_id=run_id)

    async def _record(self, run_id: int, device: Device, export: Export, latest: Version | None) -> DeviceResult:
        """`latest` was read before collecting; this device is collected by one task at a time.
        The export arrives checked and hashed (bot.ssh.collector): only a changed one costs CPU here."""
        at = self.clock()
        site, name, undated = device.site, device.name, export.undated_hash
        if latest is None:
            version = await self.store.add_version(
                run_id, site, name, at, export.raw, export.norm_hash, export.meta, Status.NEW, 0, 0, None,
                undated_hash=undated)
            return DeviceResult(device, Status.NEW, version=version)
        if export.recognised:  # the collector saw the latest config again, header and all
            version = await self.store.confirm_version(run_id, site, name, at, latest.id, undated_hash=undated)
            return DeviceResult(device, Status.UNCHANGED, version=version, previous=latest)
        note = routeros.describe_meta_change(latest.meta, export.meta)
        added = removed = 0
        old_raw = None
        same = latest.hash == export.norm_hash
        if not same:
            try:
                old_raw = await self.store.raw(latest.id)
            except CorruptBlob as exc:
                # Counting lines needs the old config; storing the new one does not (it goes in whole).
                log.error("device=%s: version %d is unreadable, changed lines not counted: %s", device.label,
                          latest.id, exc)
                damaged = f"previous version #{latest.id} is damaged, changed lines not counted"
                note = f"{note}; {damaged}" if note else damaged
            else:
                added, removed = await cpu(_changes, old_raw, export.raw)
                # No line differs: the stored hash may predate a new noise rule.
                same = added == removed == 0
        if same:  # and the header agrees, unless there is a note
            if note is None:
                version = await self.store.confirm_version(run_id, site, name, at, latest.id, undated_hash=undated)
                return DeviceResult(device, Status.UNCHANGED, version=version, previous=latest)
            note += ", config unchanged"
        version = await self.store.add_version(
            run_id, site, name, at, export.raw, export.norm_hash, export.meta, Status.CHANGED, added, removed, note,
            previous_raw=old_raw, undated_hash=undated)
        return DeviceResult(device, Status.CHANGED, version=version, previous=latest,
                            added=added, removed=removed, note=note)

