"""How rows become models: the SELECT each model is read with, and its row mapper; and how a
device's (site, name) becomes its integer id.

Each model has exactly one SELECT prefix here; queries add only their WHERE/ORDER BY, so the
column list and its mapping never drift apart.
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
       v.ros_version, v.model, v.serial, v.software_id
FROM versions v JOIN devices d ON d.id = v.device_id JOIN blobs b ON b.id = v.blob_id
"""

ATTEMPT_SELECT = """
SELECT a.id, a.run_id, d.site, d.name, a.at, a.status, a.version_id, a.error_kind, a.reason,
       a.added, a.removed, a.note
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


async def ensure_device(db: aiosqlite.Connection, site: str, device: str) -> int:
    """`device_id` from a transaction that awaits its statements (storage.db.transaction)."""
    return await on_thread(db, lambda conn: device_id(conn, site, device))
