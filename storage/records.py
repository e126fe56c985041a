"""How rows become models: the SELECT each model is read with, and its row mapper; and how a
device's (site, name) and a version's export header become their integer ids.

Each model has exactly one SELECT prefix here; queries add only their WHERE/ORDER BY, so the
column list and its mapping never drift apart.

An attempts row is one attempt and the unchanged attempts that merely repeated it (migration 0007):
`attempt_from_row` is the attempt the row began with, `last_attempt_from_row` the last one it counts
(the same attempt while it has no repeats). A repeat confirms the row's version, with no note.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

import sqlite3

import aiosqlite

from bot.core.models import Attempt, ExportMeta, HostKey, Status, Version
from storage.codec import from_db_time, from_db_time_or_none
from storage.db import on_thread, value


class RunStatus(StrEnum):
    RUNNING = "running"
    FINISHED = "finished"
    INTERRUPTED = "interrupted"  # the process died before finish_run


@dataclass(frozen=True)
class RunInfo:
    id: int
    trigger: str
    scope: str
    started_at: datetime
    finished_at: datetime | None  # for an interrupted run: when the interruption was noticed
    status: RunStatus


# A device's id from named parameters :site and :device (NULL if the device is unknown).
DEVICE_ID = "(SELECT id FROM devices WHERE site = :site AND name = :device)"

VERSION_SELECT = """
SELECT v.id, d.site, d.name, v.first_seen, v.last_verified, b.size, v.norm_hash,
       m.ros_version, m.model, m.serial, m.software_id
FROM versions v JOIN devices d ON d.id = v.device_id JOIN blobs b ON b.id = v.blob_id
     JOIN export_meta m ON m.id = v.meta_id
"""

ATTEMPT_SELECT = """
SELECT a.id, a.run_id, d.site, d.name, a.at, a.status, a.version_id, a.error_kind, a.reason,
       a.added, a.removed, a.note, a.repeats, a.last_run_id, a.last_at
FROM attempts a JOIN devices d ON d.id = a.device_id
"""

HOST_KEY_SELECT = "SELECT key, fingerprint, pending_key, pending_fingerprint FROM host_keys"

RUN_SELECT = "SELECT r.id, r.trigger, r.scope, r.started_at, r.finished_at, r.status FROM runs r"


def version_from_row(row: aiosqlite.Row) -> Version:
    return Version(
        id=row["id"],
        site=row["site"],
        device=row["name"],
        first_seen=from_db_time(row["first_seen"]),
        last_verified=from_db_time(row["last_verified"]),
        size=row["size"],
        hash=row["norm_hash"].hex(),
        meta=ExportMeta(row["ros_version"], row["model"], row["serial"], row["software_id"]),
    )


def attempt_from_row(row: aiosqlite.Row) -> Attempt:
    """The attempt the row began with."""
    return Attempt(
        id=row["id"],
        run_id=row["run_id"],
        site=row["site"],
        device=row["name"],
        at=from_db_time(row["at"]),
        status=Status(row["status"]),
        version_id=row["version_id"],
        error_kind=row["error_kind"],
        reason=row["reason"],
        added=row["added"],
        removed=row["removed"],
        note=row["note"],
    )


def last_attempt_from_row(row: aiosqlite.Row) -> Attempt:
    """The newest attempt the row counts: its last repeat (unchanged, the row's version), or the
    attempt it began with if it has none."""
    first = attempt_from_row(row)
    if not row["repeats"]:
        return first
    return Attempt(first.id, row["last_run_id"], first.site, first.device, from_db_time(row["last_at"]),
                   Status.UNCHANGED, first.version_id)


def run_from_row(row: aiosqlite.Row) -> RunInfo:
    return RunInfo(
        id=row["id"],
        trigger=row["trigger"],
        scope=row["scope"],
        started_at=from_db_time(row["started_at"]),
        finished_at=from_db_time_or_none(row["finished_at"]),
        status=RunStatus(row["status"]),
    )


def host_key_from_row(row: aiosqlite.Row) -> HostKey:
    return HostKey(row["key"], row["fingerprint"], row["pending_key"], row["pending_fingerprint"])


def device_id(conn: sqlite3.Connection, site: str, device: str) -> int:
    """The device's id, adding the device on its first write (inside the caller's transaction,
    on the database thread)."""
    names = {"site": site, "device": device}
    found = value(conn, f"SELECT {DEVICE_ID}", names)
    if found is None:
        found = value(conn, "INSERT INTO devices (site, name) VALUES (:site, :device) RETURNING id", names)
    return int(found)


# `IS`: a field the header did not have is NULL, and NULL = NULL is not true.
_META_ID = """
SELECT id FROM export_meta
WHERE serial IS :serial AND model IS :model AND ros_version IS :ros_version AND software_id IS :software_id
"""


def meta_id(conn: sqlite3.Connection, meta: ExportMeta) -> int:
    """The id of the export_meta row holding `meta`, adding it the first time (inside the caller's
    transaction, on the database thread)."""
    fields = {"ros_version": meta.ros_version, "model": meta.model, "serial": meta.serial,
              "software_id": meta.software_id}
    found = value(conn, _META_ID, fields)
    if found is None:
        found = value(conn, "INSERT INTO export_meta (ros_version, model, serial, software_id)"
                            " VALUES (:ros_version, :model, :serial, :software_id) RETURNING id", fields)
    return int(found)


async def ensure_device(db: aiosqlite.Connection, site: str, device: str) -> int:
    """`device_id` from a transaction that awaits its statements (storage.db.transaction)."""
    return await on_thread(db, lambda conn: device_id(conn, site, device))
