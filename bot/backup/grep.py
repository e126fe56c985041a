"""The use case "ask the fleet": search the latest backup of every device someone may see, and the
history of the matching lines across a device's versions (`--history`). The CLI and Slack ask here;
a browser page can too: `Grep.search` and `Grep.history` return plain data (bot.backup.grepresult,
which also renders it as text).

Who may see what is the caller's decision (`readings`: bot.core.access, for Slack and the browser
pages; the CLI is run by whoever holds the database). The caller passes the devices to search, each
with how its text is read:
- Reading.REAL: with its secrets (the CLI; in Slack and the browser, admins and the site's download_users);
- Reading.REDACTED: secrets replaced by their fingerprints BEFORE matching, so a secret can neither
  be shown nor found by guessing it (everyone else).
Lines come back as they may be shown: redacted, unless `show_secrets` (the CLI). A device that is
not passed is never read: it is neither in the results nor counted.

How it is fast and safe: every latest config is kept decompressed, and redacted where needed, in
files with a line index (bot.backup.textcache; made on first need, never stale); the devices'
latest versions are read again only when a version was added. The matching runs in child
processes (bot.backup.grepworker), one per core up to PROCESSES, each on a run of the devices;
they are kept between searches (bot.backup.greppool: `close` stops them), and any that must be
started are started before the database is read, so their start-up overlaps it. Each has a time
limit and is killed when it is over, so a catastrophic regex costs seconds, not the bot. The event
loop only waits on pipes, and reads only the hits it keeps: a run after the first may list lines
the earlier ones crowd out of the `limit`. At most SEARCHES_AT_ONCE searches run at a time; others
wait their turn.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import marshal
import math
import os
import shutil
from collections.abc import AsyncIterator, Collection, Iterator, Mapping, Sequence
from enum import StrEnum
from typing import Any, Final, Protocol

from bot.backup.greppool import Child, Pool
from bot.backup.textcache import Files, Kind, TextCache
from bot.core import access
from bot.core.errors import UserError
from bot.core.models import Device, Settings, Version
from bot.backup.grepresult import DeviceHistory, DeviceHits, GrepResult, HistoryResult
from bot.routeros.grep import CONTEXT, Hit, Query, blame, compile_query

log = logging.getLogger(__name__)

SLACK_LINES: Final = 5_000  # matching lines listed in Slack's file (every one is counted)
CLI_LINES: Final = 100_000  # ... printed by the CLI
WEB_LINES: Final = 500  # ... shown on the browser's search page, with ±2 lines each
HISTORY_LINES: Final = 1_000  # matching lines a version may have for --history to follow them
SEARCHES_AT_ONCE: Final = 2
PROCESSES: Final = max(1, min(os.cpu_count() or 1, 4))  # child processes one search is split over
Found = dict[int, tuple[int, tuple[Hit, ...]]]  # the children's findings: {entry key: (matching lines, hits)}
Entry = tuple[int, str, str | None]  # a child's work: (key, the file matched, the file shown if another one)
# A child may take TIME_LIMIT seconds plus one per SCAN_RATE bytes it reads: a normal search of a
# 10,000-router fleet (~600 MB) takes 1-4 s, a catastrophic regex forever; this tells them apart.
TIME_LIMIT: Final = 10.0
SCAN_RATE: Final = 20e6
_BATCH_VERSIONS: Final = 1_000  # --history: versions written and matched per child process


class Reading(StrEnum):
    """How a device's config is searched (see the module docstring)."""

    REAL = "real"
    REDACTED = "redacted"


class GrepStore(Protocol):
    """The part of storage.store.Store a search needs."""

    async def latest_versions(self, site: str | None = None) -> dict[tuple[str, str], Version]: ...
    async def newest_version_id(self) -> int: ...
    async def versions(
        self, site: str, device: str, limit: int = 20, before_id: int | None = None
    ) -> list[Version]: ...
    async def count_versions(self, site: str, device: str) -> int: ...
    async def raw(self, version_id: int) -> bytes: ...
    async def instance_key(self) -> bytes: ...


def readings(settings: Settings, user: str, channel: str | None) -> dict[str, Reading]:
    """The sites `user` may see from `channel` (None: the App Home, the browser), each searched with
    its secrets only if they may download it: otherwise its redacted text is searched, so a secret
    can't be found by guessing it."""
    return {s.name: Reading.REAL if access.can_download(settings, s, user) else Reading.REDACTED
            for s in access.visible_sites(settings, user, channel)}


def targets(settings: Settings, readings: Mapping[str, Reading], site: str | None = None,
            device: str | None = None) -> list[tuple[Device, Reading]]:
    """The devices of the sites in `readings` (of `site`, and named `device`, if given), in inventory
    order, each with its site's reading. Pass one snapshot of the inventory (bot.core.live): a device
    the inventory source added is searched once it has a backup.

    Retired devices (gone from the inventory source) are left out of a search of the fleet or of a
    site: their configs no longer run anywhere, and "which routers still allow X" must not name a
    router that was taken out. One named with its site is searched (its history stays searchable)."""
    if site is not None and device is not None and site in settings.sites:
        named = settings.sites[site].known(device)
        return [(named, readings[site])] if named is not None and site in readings else []
    return [(d, readings[d.site]) for d in settings.devices(site, device) if d.site in readings]


class Grep:
    def __init__(self, store: GrepStore, cache: TextCache, *, time_limit: float = TIME_LIMIT,
                 scan_rate: float = SCAN_RATE, processes: int = PROCESSES) -> None:
        self.store = store
        self.cache = cache
        self.time_limit = time_limit
        self.scan_rate = scan_rate
        self.processes = processes
        self._slots = asyncio.Semaphore(SEARCHES_AT_ONCE)
        self._pool = Pool(keep=processes * SEARCHES_AT_ONCE)
        # Every device's latest version, as of the newest version id then, and the files known to be
        # there for it: reading 10,000 rows costs a search 0.1-0.2 s, asking whether any version
        # was added since costs one index seek. (A file removed since is found missing and made again.)
        self._latest: tuple[int, dict[tuple[str, str], Version]] = (-1, {})
        self._ensured: tuple[int, frozenset[tuple[int, Kind]]] = (-1, frozenset())

    # --- the latest backups --------------------------------------------------------------------

    async def search(self, query: Query, devices: Sequence[tuple[Device, Reading]], *, show_secrets: bool = False,
                     limit: int | None = SLACK_LINES, spans: bool = False) -> GrepResult:
        """Search the latest backup of each device; UserError for a bad pattern or one too slow.
        `spans`: each listed line says where it matches (Hit.spans), for the browser to highlight."""
        compile_query(query)  # a bad pattern is told before anything is read
        # Children not kept from an earlier search start first: their ~0.1 s start-up overlaps
        # reading the database.
        async with self._slots, self._lease(min(self.processes, max(len(devices), 1))) as children:
            newest, latest = await self._latest_versions()
            jobs = [(latest[d.key], reading) for d, reading in devices if d.key in latest]
            wanted = [(v, _kinds(r, show_secrets)) for v, r in jobs]
            if self._ensured[0] == newest and {(v.id, k) for v, kinds in wanted for k in kinds} <= self._ensured[1]:
                files, made = self.cache.files(wanted), 0
            else:
                files, made = await self.cache.ensure(wanted)
                known = self._ensured[1] if self._ensured[0] == newest else frozenset()
                self._ensured = (newest, known | frozenset(files))
            entries = [_entry(i, v, r, show_secrets, files) for i, (v, r) in enumerate(jobs)]
            results, missing = await self._match(query, entries, sum(v.size for v, _ in jobs), limit=limit,
                                                 children=children, spans=spans)
            if missing:
                # Pruned meanwhile by a search in another process that had seen a newer version of
                # those devices: made again, and searched once more.
                again = [jobs[key] for key in missing]
                made += (await self.cache.ensure([(v, _kinds(r, show_secrets)) for v, r in again]))[1]
                listed = sum(len(hits) for _, hits in results.values())
                more, gone = await self._match(query, [e for e in entries if e[0] in set(missing)],
                                               sum(v.size for v, _ in again),
                                               limit=None if limit is None else max(limit - listed, 0), spans=spans)
                if gone:
                    raise RuntimeError(f"grep cache files vanished twice during one search: {gone[:5]}")
                results |= more
        if made:
            removed = await self.cache.prune([v.id for v in latest.values()])
            log.info("grep cache: made the files of %d versions, removed %d old ones", made, removed)
        found = tuple(DeviceHits(jobs[key][0], count, hits) for key, (count, hits) in sorted(results.items()))
        return GrepResult(query, found, len(jobs), len(devices) - len(jobs), sum(d.count for d in found))

    async def _latest_versions(self) -> tuple[int, dict[tuple[str, str], Version]]:
        """(the newest version id, every device's latest version), read again only when a version
        was added since the last time."""
        newest = await self.store.newest_version_id()
        if newest != self._latest[0]:
            self._latest = (newest, await self.store.latest_versions())
        return self._latest

    @contextlib.asynccontextmanager
    async def _lease(self, count: int) -> AsyncIterator[list[Child]]:
        """Children for one search; those it did not use go back to the pool."""
        children = await self._pool.lease(count)
        try:
            yield children
        finally:
            for child in children:
                await self._pool.give_back(child)

    async def close(self) -> None:
        """Stop the child processes kept for the next search."""
        await self._pool.close()

    async def _match(self, query: Query, entries: list[Entry], size: int, *, limit: int | None,
                     each: int | None = None, context: int = CONTEXT, children: list[Child] | None = None,
                     spans: bool = False) -> tuple[Found, list[int]]:
        """({key: (matching lines, hits)} of the entries with a match, [keys whose file was gone]),
        from child processes: the entries are cut into PROCESSES runs of consecutive ones, matched at
        the same time; each run may list `limit` lines, and the merge keeps the first `limit` in
        order (every line stays counted)."""
        runs = _split(entries, self.processes)
        timeout = self.time_limit + size / self.scan_rate / len(runs)
        base: dict[str, Any] = {"query": {"pattern": query.pattern, "regex": query.regex,
                                          "ignore_case": query.ignore_case},
                                "limit": limit, "each": each, "context": context, "spans": spans}
        outs = await asyncio.gather(*(
            self._ask({**base, "entries": run}, timeout, children.pop() if children else None) for run in runs))
        found: Found = {}
        missing: list[int] = []
        left = limit
        with _collector_paused():
            for out in outs:
                answer: dict[str, Any] = marshal.loads(out)  # from our own child: see bot.backup.grepworker
                if "error" in answer:
                    raise UserError(answer["error"])
                missing += answer["missing"]
                for key, count, listed, hits in answer["results"]:
                    # The runs after the first may list lines the first ones crowd out: those are not read.
                    keep = listed if left is None else min(listed, left)
                    found[key] = (count, tuple(Hit(*f) for f in marshal.loads(hits)[:keep]) if keep else ())
                    if left is not None:
                        left -= keep
        return found, missing

    async def _ask(self, request: dict[str, Any], timeout: float, child: Child | None) -> bytes:
        """A child's answer to `request` (`child`, or one from the pool); UserError (too_slow) if it
        did not finish within `timeout` seconds (it is killed), ChildFailed if it failed."""
        request = {**request, "cpu_seconds": math.ceil(timeout) + 1}
        if child is None:
            (child,) = await self._pool.lease(1)
        try:
            return await self._pool.ask(child, marshal.dumps(request), timeout)
        except TimeoutError:
            raise too_slow(timeout) from None

    # --- the history of a line -----------------------------------------------------------------

    async def history(self, query: Query, devices: Sequence[tuple[Device, Reading]], *,
                      show_secrets: bool = False) -> HistoryResult:
        """When the matching lines of each device appeared in its versions, and when they went.
        Reads every stored version of every device asked for."""
        compile_query(query)
        plans: list[tuple[Device, Reading, list[Version]]] = []
        for device, reading in devices:
            count = await self.store.count_versions(device.site, device.name)
            if count:
                newest_first = await self.store.versions(device.site, device.name, limit=count)
                plans.append((device, reading, newest_first[::-1]))
        out: list[DeviceHistory] = []
        secret = False
        for batch in _batches(plans):
            histories, batch_secret = await self._history_batch(query, batch, show_secrets)
            out += histories
            secret = secret or batch_secret
        return HistoryResult(query, tuple(out), len(plans), len(devices) - len(plans), secret)

    async def _history_batch(self, query: Query, batch: list[tuple[Device, Reading, list[Version]]],
                             show_secrets: bool) -> tuple[list[DeviceHistory], bool]:
        async with self._slots:
            folder = await self.cache.scratch()
            try:
                entries: list[Entry] = []
                writes = []
                for _, reading, versions in batch:
                    match, shown = _files(reading, show_secrets)
                    for v in versions:
                        paths = {kind: folder / f"{v.id}-{kind}" for kind in (match, shown) if kind}
                        writes.append(self.cache.write(v, paths))
                        entries.append((v.id, str(paths[match]), str(paths[shown]) if shown else None))
                await asyncio.gather(*writes)
                size = sum(v.size for _, _, versions in batch for v in versions)
                found, missing = await self._match(query, entries, size, limit=None, each=HISTORY_LINES + 1,
                                                   context=0)
                if missing:
                    raise RuntimeError(f"history files vanished during the search: {missing[:5]}")
            finally:
                await asyncio.to_thread(shutil.rmtree, folder, True)
        out = []
        secret = False
        for device, _, versions in batch:
            for v in versions:
                count = found.get(v.id, (0, ()))[0]
                if count > HISTORY_LINES:
                    raise UserError(f"{count:,}+ lines of {device.label} #{v.id} match {query.describe()}: too many "
                                    f"to follow through its versions (at most {HISTORY_LINES:,}). Narrow the pattern.")
            per_version = [(v, found.get(v.id, (0, ()))[1]) for v in versions]
            secret = secret or any(h.secret for _, hits in per_version for h in hits)
            lines = blame(per_version)
            if lines:
                out.append(DeviceHistory(device.site, device.name, len(versions), versions[0], versions[-1],
                                         tuple(lines)))
        return out, secret


def _kinds(reading: Reading, show_secrets: bool) -> Collection[Kind]:
    match, shown = _files(reading, show_secrets)
    return (match,) if shown is None else (match, shown)


def _files(reading: Reading, show_secrets: bool) -> tuple[Kind, Kind | None]:
    """(the text matched, the text shown when it is another one)."""
    if reading is Reading.REDACTED:
        return Kind.REDACTED, None
    return Kind.TEXT, None if show_secrets else Kind.REDACTED


def _entry(key: int, version: Version, reading: Reading, show_secrets: bool, files: Files) -> Entry:
    match, shown = _files(reading, show_secrets)
    return key, files[version.id, match], files[version.id, shown] if shown else None


def _split(entries: list[Entry], parts: int) -> list[list[Entry]]:
    """Runs of consecutive entries, as even as their count allows (at least one entry each)."""
    parts = max(1, min(parts, len(entries)))
    size, extra = divmod(len(entries), parts)
    runs, start = [], 0
    for i in range(parts):
        end = start + size + (i < extra)
        runs.append(entries[start:end])
        start = end
    return runs or [[]]


def too_slow(seconds: float) -> UserError:
    return UserError(
        f"The search was stopped after {seconds:.0f} s without finishing. A regular expression with "
        "nested repeats such as (a+)+ or (x|x.)* can take practically forever on some lines; "
        "simplify the pattern (or search plain text).")


@contextlib.contextmanager
def _collector_paused() -> Iterator[None]:
    """Python's cycle collector off while an answer's hundreds of thousands of tuples and strings
    are made: it would walk them all, again and again, and find nothing (half the time of a merge)."""
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was:
            gc.enable()


def _batches(plans: list[tuple[Device, Reading, list[Version]]]) -> list[list[tuple[Device, Reading, list[Version]]]]:
    batches: list[list[tuple[Device, Reading, list[Version]]]] = [[]]
    size = 0
    for plan in plans:
        if batches[-1] and size + len(plan[2]) > _BATCH_VERSIONS:
            batches.append([])
            size = 0
        batches[-1].append(plan)
        size += len(plan[2])
    return [b for b in batches if b]

