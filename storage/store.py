"""The store: every run, attempt, config version, host key and outbox message backupbot keeps.

storage/ is the only package that imports aiosqlite or holds SQL; it returns models from
bot.core.models, never rows. Callers pass every time in (the clock is theirs).

Store is assembled from parts that share one connection (storage.db.Database): this module holds
runs, versions and attempts; storage.trust host keys and the instance key; storage.outbox the
Slack outbox; storage.sessions the browser pages' sessions; storage.blobs the configs themselves
(delta chains); storage.inventory the inventory source's last good list and retired devices. Every write is one
transaction: a version is committed whole (blob + version + attempt + its outbox messages) or not
at all, and a stored version never changes except its last_verified and undated_sha256 (the
undated hash of the last export that confirmed it: migration 0004). storage.history reads the
history whole (runs in order, versions by date), for copying it elsewhere.

Attempts (migration 0007): every new, changed and failed attempt is a row of its own. An unchanged
attempt that confirms the version the device's previous attempt recorded or confirmed, with no note,
is a *repeat*: it is counted on that attempt's row (`repeats`, and the run and time of the last
one) instead. Who reads attempts, and what each gets, exactly as one row per attempt gave it:
- a device's last attempt (`last_attempts`: `backupbot sites`/`list`, `/backup SITE`, the App Home,
  the pages) and last success (`last_successes`: stale devices, the digests, the metrics), and a
  site's last run (`last_run`: readiness);
- the attempt that recorded each version (`recording_attempts`, `version_origins`: history views,
  `backupbot list SITE DEVICE`), and every failure with its reason;
- a run's attempts (`run_attempts`: the git mirror's commits, announcing an interrupted run): each
  row the run began, and each row whose last repeat it made. A repeat that a later run repeated
  again is no longer listed under its own run: only the mirror and the start-up's interrupted runs
  ask, and they use the new and changed attempts, which are all there.
What is not kept is the time and run of a row's repeats but the last; how many there were is.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import replace
from datetime import datetime
from pathlib import Path
from types import TracebackType

from bot.core.models import Attempt, DeviceState, ExportMeta, KnownConfig, Status, Version
from storage.blobs import BASE_CHAIN, VERSION_CHAIN, blob_id, chain_of, rewrite_legacy_blobs
from storage.codec import (PackedBlob, StoredBlob, from_db_time, from_db_time_or_none, pack, to_db_time, unpack_chain,
                           utc)
from storage.db import connect, value
from storage.migrate import migrate
from bot.core.messages import OutboxMessage
from storage.outbox import OutboxItem, OutboxStatus, OutboxStore, insert_batch, prepare
from storage.records import (
    ATTEMPT_SELECT,
    DEVICE_ID,
    HOST_KEY_SELECT,
    RUN_SELECT,
    VERSION_SELECT,
    RunInfo,
    RunStatus,
    attempt_from_row,
    device_id,
    host_key_from_row,
    last_attempt_from_row,
    meta_id,
    run_from_row,
    version_from_row,
)
from storage.history import HistoryStore
from storage.inventory import InventoryStore
from storage.sessions import SessionStore, WebSession
from storage.trust import TrustStore

__all__ = ["OutboxItem", "OutboxStatus", "RunInfo", "RunStatus", "Store", "WebSession"]

# The newest row of {table} for each device (of :site, or all): one MAX(id) seek per device on
# the table's (device_id, id) index, never a scan of the history.
_NEWEST_PER_DEVICE = """
IN (SELECT (SELECT MAX(id) FROM {table} WHERE device_id = d.id)
    FROM devices d WHERE :site IS NULL OR d.site = :site)
"""
_LATEST_VERSIONS = VERSION_SELECT + " WHERE v.id " + _NEWEST_PER_DEVICE.format(table="versions")

# A device's newest attempts row: the newer of its newest ok and newest failed row, a MAX(id) seek
# on each of the two partial indexes (their WHEREs are spelled exactly as the indexes' are).
_NEWEST_ATTEMPT = """
max(IFNULL((SELECT MAX(id) FROM attempts WHERE device_id = {device} AND status <> 'failed'), 0),
    IFNULL((SELECT MAX(id) FROM attempts WHERE device_id = {device} AND status = 'failed'), 0))
"""
_LAST_ATTEMPTS = ATTEMPT_SELECT + f"""
WHERE a.id IN (SELECT {_NEWEST_ATTEMPT.format(device="d.id")} FROM devices d WHERE :site IS NULL OR d.site = :site)
"""
_LAST_ROW = "SELECT id, status, version_id FROM attempts WHERE id = " + _NEWEST_ATTEMPT.format(device=":device")

# One seek per device on attempts_ok_by_device; the row's last repeat, if any, is the last success.
_LAST_SUCCESSES = """
SELECT d.site, d.name,
       (SELECT IFNULL(a.last_at, a.at) FROM attempts a WHERE a.device_id = d.id AND a.status <> 'failed'
        ORDER BY a.id DESC LIMIT 1) AS at
FROM devices d WHERE :site IS NULL OR d.site = :site
"""

# A run concerns a site if its scope lists the site (BackupService writes "siteA,siteB") or it
# recorded an attempt there; the first also catches runs that died before any device finished.
_LAST_RUN = RUN_SELECT + """
WHERE :site IS NULL
   OR instr(',' || r.scope || ',', ',' || :site || ',') > 0
   OR EXISTS (SELECT 1 FROM attempts a JOIN devices d ON d.id = a.device_id
              WHERE (a.run_id = r.id OR a.last_run_id = r.id) AND d.site = :site)
ORDER BY r.id DESC LIMIT 1
"""

_INSERT_ATTEMPT = """
INSERT INTO attempts (run_id, device_id, at, status, version_id, error_kind, reason, added, removed, note)
VALUES (:run_id, :device_id, :at, :status, :version_id, :error_kind, :reason, :added, :removed, :note)
RETURNING id
"""

_INSERT_VERSION = """
INSERT INTO versions (device_id, blob_id, meta_id, norm_hash, first_seen, last_verified, undated_sha256)
VALUES (?, ?, ?, ?, ?, ?, ?) RETURNING id
"""

# `status <> 'failed'` is attempts_ok_by_device's WHERE: it lets the query seek that index.
_RECORDING_ATTEMPTS = ATTEMPT_SELECT + f"""
WHERE a.device_id = {DEVICE_ID} AND a.status <> 'failed' AND a.status IN ('new', 'changed')
  AND a.version_id IN (SELECT value FROM json_each(:ids)) ORDER BY a.id DESC
"""
_RUN_ATTEMPTS = ATTEMPT_SELECT + " WHERE a.run_id = :run OR a.last_run_id = :run ORDER BY a.id"

_REPEAT = "UPDATE attempts SET repeats = repeats + 1, last_run_id = ?, last_at = ? WHERE id = ?"

_VERSIONS_OF_DEVICE = (VERSION_SELECT + f" WHERE v.device_id = {DEVICE_ID} AND (:before IS NULL OR v.id < :before)"
                       " ORDER BY v.id DESC LIMIT :limit")

# max(): a clock stepping back must not make a version look verified earlier than it was.
_CONFIRM = f"""
UPDATE versions SET last_verified = max(last_verified, :at), undated_sha256 = coalesce(:undated, undated_sha256)
WHERE id = :version_id AND device_id = {DEVICE_ID} RETURNING device_id
"""

# An interrupted run may still be finished: the process that marks runs interrupted at its start
# cannot tell a live run of another process from a dead one, and the live one's real end wins.
_FINISH_RUN = "UPDATE runs SET status = 'finished', finished_at = ? WHERE id = ? AND status <> 'finished'"
# A config up to this size with nothing to be a delta against is packed on the event loop.
_INLINE_PACK = 8 * 1024
_INTERRUPT_RUN = "UPDATE runs SET status = 'interrupted', finished_at = ? WHERE id = ? AND status = 'running'"


class Store(TrustStore, OutboxStore, SessionStore, HistoryStore, InventoryStore):
    """Async access to backupbot's SQLite database. Open with `await Store.open(path)`."""

    @classmethod
    async def open(cls, path: str | Path, *, busy_timeout: float = 10.0) -> Store:
        """Open (creating it and its folder if needed) and migrate the database at `path`.

        The first open after an upgrade from schema 2 also re-encodes the stored configs as deltas
        (storage.blobs.rewrite_legacy_blobs; resumable, and every config stays readable meanwhile).
        Raises SchemaTooNew if the file was written by a newer backupbot.
        """
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        db = await connect(path, busy_timeout)
        try:
            await migrate(db, path)
            await rewrite_legacy_blobs(db)
        except BaseException:
            await db.close()
            raise
        return cls(db)

    async def __aenter__(self) -> Store:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    # -- runs ----------------------------------------------------------------------------------

    async def start_run(self, trigger: str, at: datetime, scope: str) -> int:
        return int(await self._transact(lambda conn: value(
            conn, "INSERT INTO runs (trigger, scope, started_at) VALUES (?, ?, ?) RETURNING id",
            (trigger, scope, to_db_time(at)))))

    async def finish_run(self, run_id: int, at: datetime, outbox: Sequence[OutboxMessage] = ()) -> None:
        """Mark the run finished and enqueue its messages, in one transaction."""
        batch = prepare(outbox)

        def finish(conn: sqlite3.Connection) -> None:
            if conn.execute(_FINISH_RUN, (to_db_time(at), run_id)).rowcount != 1:
                raise ValueError(f"run {run_id} is unknown or already finished")
            insert_batch(conn, batch, to_db_time(at))

        await self._transact(finish)

    async def unfinished_runs(self) -> list[RunInfo]:
        """Runs still marked running (at start-up of `serve`: left by a process that stopped)."""
        rows = await self._rows(RUN_SELECT + " WHERE r.status = 'running' ORDER BY r.id")
        return [run_from_row(r) for r in rows]

    async def interrupt_run(self, run_id: int, at: datetime, outbox: Sequence[OutboxMessage] = ()) -> bool:
        """Mark one unfinished run interrupted and enqueue what it never announced, in one
        transaction; False (nothing written) if it is not running any more."""
        batch = prepare(outbox)

        def interrupt(conn: sqlite3.Connection) -> bool:
            if conn.execute(_INTERRUPT_RUN, (to_db_time(at), run_id)).rowcount != 1:
                return False
            insert_batch(conn, batch, to_db_time(at))
            return True

        return await self._transact(interrupt)

    async def run(self, run_id: int) -> RunInfo | None:
        row = await self._row(RUN_SELECT + " WHERE r.id = ?", (run_id,))
        return run_from_row(row) if row else None

    async def last_run(self, site: str | None = None) -> RunInfo | None:
        """The newest run (of any status) that concerned `site`, or of all runs."""
        row = await self._row(_LAST_RUN, {"site": site})
        return run_from_row(row) if row else None

    # -- recording a device's outcome --------------------------------------------------------

    async def add_version(
        self, run_id: int, site: str, device: str, at: datetime, raw: bytes, norm_hash: str,
        meta: ExportMeta, status: Status, added: int, removed: int, note: str | None,
        *, previous_raw: bytes | None = None, undated_hash: str | None = None,
    ) -> Version:
        """Store a new distinct config: blob (unless already stored), version and attempt.

        The blob is a delta against the device's previous version when its chain allows.
        `previous_raw`: that version's raw bytes if the caller has read them already (to count the
        changed lines), which saves decoding its chain again; bytes that are not it are ignored.
        `undated_hash`: routeros.undated_hash(raw), kept to recognise this config again.
        """
        if status not in (Status.NEW, Status.CHANGED):
            raise ValueError(f"a new version is recorded as new or changed, not {status}")
        if not raw:
            raise ValueError("an empty export is never a version")  # (a recognised Export carries no bytes)
        norm, undated = _sha256(norm_hash), _sha256_or_none(undated_hash)
        base = chain_of(await self._rows(BASE_CHAIN, {"site": site, "device": device}))
        if not base and len(raw) <= _INLINE_PACK:
            blob = pack(raw)  # a first config this small packs in under 0.1 ms, less than a thread hop
        else:  # decoding, hashing and compressing are CPU-bound
            blob = await asyncio.to_thread(pack, raw, base, previous_raw)
        attempt = Attempt(0, run_id, site, device, utc(at), status, added=added, removed=removed, note=note)
        version_id = await self._transact(lambda conn: _insert_version(conn, attempt, blob, norm, meta, undated))
        return Version(version_id, site, device, attempt.at, attempt.at, len(raw), norm.hex(), meta)

    async def confirm_version(
        self, run_id: int, site: str, device: str, at: datetime, version_id: int, note: str | None = None,
        *, undated_hash: str | None = None,
    ) -> Version:
        """The device still has `version_id`: move its last_verified and record an unchanged attempt.

        `undated_hash`: of the export that confirmed it (replaces the one kept, if given).
        LookupError if `version_id` is not a version of that device.
        """
        attempt = Attempt(0, run_id, site, device, utc(at), Status.UNCHANGED, version_id, note=note)
        params = {"at": to_db_time(at), "version_id": version_id, "site": site, "device": device,
                  "undated": _sha256_or_none(undated_hash)}

        def confirm(conn: sqlite3.Connection) -> Version:
            owner = value(conn, _CONFIRM, params)
            if owner is None:
                raise LookupError(f"version {version_id} is not a version of {site}/{device}")
            _record_confirmation(conn, owner, attempt)
            row = conn.execute(VERSION_SELECT + " WHERE v.id = ?", (version_id,)).fetchone()
            assert row is not None  # updated in this very transaction
            return version_from_row(row)

        return await self._transact(confirm)

    async def record_failure(
        self, run_id: int, site: str, device: str, at: datetime, kind: str, reason: str
    ) -> Attempt:
        attempt = Attempt(0, run_id, site, device, utc(at), Status.FAILED, error_kind=kind, reason=reason)
        attempt_id = await self._transact(lambda conn: _insert_attempt(conn, device_id(conn, site, device), attempt))
        return replace(attempt, id=attempt_id)

    # -- reading versions and attempts --------------------------------------------------------

    async def latest_version(self, site: str, device: str) -> Version | None:
        versions = await self.versions(site, device, limit=1)
        return versions[0] if versions else None

    async def device_state(self, site: str, device: str) -> DeviceState:
        """What a backup of the device starts from, read together in one round trip: its trusted
        host key, its latest version, and that version's config as the collector may recognise it."""

        def read(conn: sqlite3.Connection) -> DeviceState:
            names = {"site": site, "device": device}
            key = conn.execute(f"{HOST_KEY_SELECT} WHERE device_id = {DEVICE_ID}", names).fetchone()
            row = conn.execute(_VERSIONS_OF_DEVICE, {**names, "before": None, "limit": 1}).fetchone()
            latest = version_from_row(row) if row else None
            undated = latest and value(conn, "SELECT undated_sha256 FROM versions WHERE id = ?", (latest.id,))
            known = KnownConfig(undated.hex(), latest.hash, latest.meta) if latest and undated else None
            return DeviceState(host_key_from_row(key) if key else None, latest, known)

        return await self._read(read)

    async def latest_versions(self, site: str | None = None) -> dict[tuple[str, str], Version]:
        """The latest version of each device (of `site`, or everywhere), in one query."""
        versions = map(version_from_row, await self._rows(_LATEST_VERSIONS, {"site": site}))
        return {(v.site, v.device): v for v in versions}

    async def version(self, version_id: int) -> Version | None:
        found = await self.versions_by_ids([version_id])
        return found[0] if found else None

    async def versions(self, site: str, device: str, limit: int = 20, before_id: int | None = None) -> list[Version]:
        """Newest first; pass the last id of a page as `before_id` for the next page."""
        rows = await self._rows(_VERSIONS_OF_DEVICE,
                                {"site": site, "device": device, "before": before_id, "limit": limit})
        return [version_from_row(r) for r in rows]

    async def versions_by_ids(self, ids: Iterable[int]) -> list[Version]:
        """The versions that exist among `ids`, in the order asked for."""
        wanted = list(dict.fromkeys(int(i) for i in ids))
        rows = await self._rows(VERSION_SELECT + " WHERE v.id IN (SELECT value FROM json_each(?))", (str(wanted),))
        found = {v.id: v for v in map(version_from_row, rows)}
        return [found[i] for i in wanted if i in found]

    async def newest_version_id(self) -> int:
        """The highest version id, 0 if none. Versions are only ever added, with ids that only grow:
        while this stays the same, so does every device's latest version (but for last_verified)."""
        rows = await self._rows("SELECT IFNULL(MAX(id), 0) FROM versions")
        return int(rows[0][0])

    async def count_versions(self, site: str, device: str) -> int:
        rows = await self._rows(f"SELECT COUNT(*) FROM versions WHERE device_id = {DEVICE_ID}",
                                {"site": site, "device": device})
        return int(rows[0][0])

    async def raw(self, version_id: int) -> bytes:
        """The export exactly as received, checked against its sha256. LookupError if unknown,
        CorruptBlob if its blob or any blob of its delta chain is damaged."""
        (chain,) = await self.chains([version_id])
        return await asyncio.to_thread(unpack_chain, chain)

    async def chains(self, version_ids: Sequence[int]) -> list[list[StoredBlob]]:
        """The blobs each version's export is decoded from, as stored (storage.codec.unpack_chains):
        its own, then each base down to a whole one; a blob in several chains is one object (pickled
        once). For whoever decodes them elsewhere, the CPU worker: a few hundred KB to pass instead
        of the exports' MB. LookupError for an unknown version."""
        out = []
        blobs: dict[int, StoredBlob] = {}
        for version_id in version_ids:
            chain = chain_of(await self._rows(VERSION_CHAIN, {"version": version_id}))
            if not chain:
                raise LookupError(f"no version {version_id}")
            out.append([blobs.setdefault(blob.id, blob) for blob in chain])
        return out

    async def recording_attempts(self, site: str, device: str, version_ids: Iterable[int]) -> dict[int, Attempt]:
        """The attempt that recorded each of these versions of the device (new or changed, with its
        +/- counts against the version before and its note), by version id."""
        rows = await self._rows(_RECORDING_ATTEMPTS,
                                {"site": site, "device": device, "ids": str([int(i) for i in version_ids])})
        return {a.version_id: a for a in map(attempt_from_row, rows) if a.version_id is not None}

    async def last_attempts(self, site: str | None = None) -> dict[tuple[str, str], Attempt]:
        """The latest attempt of each device (of `site`, or everywhere)."""
        attempts = map(last_attempt_from_row, await self._rows(_LAST_ATTEMPTS, {"site": site}))
        return {(a.site, a.device): a for a in attempts}

    async def last_successes(self, site: str | None = None) -> dict[tuple[str, str], datetime]:
        """When each device last backed up successfully, however many failures came after."""
        rows = await self._rows(_LAST_SUCCESSES, {"site": site})
        return {(r["site"], r["name"]): from_db_time(r["at"]) for r in rows if r["at"] is not None}

    async def run_attempts(self, run_id: int) -> list[Attempt]:
        """The run's attempts: every new, changed and failed one, and its unchanged ones but those a
        later run repeated (the module docstring says why), in the order their rows were made."""
        rows = await self._rows(_RUN_ATTEMPTS, {"run": run_id})
        attempts = []
        for row in rows:
            if row["run_id"] == run_id:
                attempts.append(attempt_from_row(row))
            if row["last_run_id"] == run_id:
                attempts.append(last_attempt_from_row(row))
        return attempts

    # -- schedule ------------------------------------------------------------------------------

    async def last_scheduled(self, site: str) -> datetime | None:
        row = await self._row("SELECT last_scheduled FROM schedule WHERE site = ?", (site,))
        return from_db_time_or_none(row[0] if row else None)

    async def record_scheduled(self, covered: Mapping[str, datetime]) -> None:
        """Each site's schedule is covered up to its instant; all of them in one transaction, so a
        run over many sites is recorded for all of them or for none."""
        rows = [(site, to_db_time(at)) for site, at in covered.items()]
        await self._transact(lambda conn: conn.executemany(
            "INSERT INTO schedule (site, last_scheduled) VALUES (?, ?)"
            " ON CONFLICT (site) DO UPDATE SET last_scheduled = excluded.last_scheduled", rows))


# -- statements run inside the caller's transaction, on the database thread ---------------------


def _insert_version(conn: sqlite3.Connection, attempt: Attempt, blob: PackedBlob, norm: bytes, meta: ExportMeta,
                    undated: bytes | None) -> int:
    """The version (and its blob unless stored already) with the attempt that created it."""
    owner = device_id(conn, attempt.site, attempt.device)
    at = to_db_time(attempt.at)
    version_id = int(value(conn, _INSERT_VERSION, (owner, blob_id(conn, blob), meta_id(conn, meta), norm, at, at,
                                                   undated)))
    _insert_attempt(conn, owner, replace(attempt, version_id=version_id))
    return version_id


def _record_confirmation(conn: sqlite3.Connection, device: int, attempt: Attempt) -> int:
    """An unchanged attempt: a repeat on the device's newest row if it is one (that row recorded or
    confirmed this same version, and this attempt has no note), else a row of its own."""
    if attempt.note is None:
        row = conn.execute(_LAST_ROW, {"device": device}).fetchone()
        if row is not None and row[1] != Status.FAILED and row[2] == attempt.version_id:
            conn.execute(_REPEAT, (attempt.run_id, to_db_time(attempt.at), row[0]))
            return int(row[0])
    return _insert_attempt(conn, device, attempt)


def _insert_attempt(conn: sqlite3.Connection, device: int, attempt: Attempt) -> int:
    return int(value(conn, _INSERT_ATTEMPT, {
        "run_id": attempt.run_id, "device_id": device, "at": to_db_time(attempt.at),
        "status": attempt.status.value, "version_id": attempt.version_id, "error_kind": attempt.error_kind,
        "reason": attempt.reason, "added": attempt.added, "removed": attempt.removed, "note": attempt.note,
    }))


def _sha256(hex_digest: str) -> bytes:
    digest = bytes.fromhex(hex_digest)
    if len(digest) != 32:
        raise ValueError(f"not a sha256 hex digest: {hex_digest!r}")
    return digest


def _sha256_or_none(hex_digest: str | None) -> bytes | None:
    return None if hex_digest is None else _sha256(hex_digest)
