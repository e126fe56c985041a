"""Trust material: SSH host keys per device (trust on first use) and the instance's secret key.

A device's first key is trusted as presented. A different key later is kept as *pending* (the
trusted key stays trusted and the backup fails) until a person accepts it.
"""

from __future__ import annotations

import secrets
import sqlite3

from bot.core.models import HostKey
from storage.db import Database, value
from storage.records import DEVICE_ID, HOST_KEY_SELECT, device_id, host_key_from_row

_INSTANCE_KEY = "instance_key"


class TrustStore(Database):
    """Host keys and the instance key, as part of storage.store.Store."""

    _instance_key: bytes | None = None  # cached: it never changes once made

    async def host_key(self, site: str, device: str) -> HostKey | None:
        row = await self._row(f"{HOST_KEY_SELECT} WHERE device_id = {DEVICE_ID}", {"site": site, "device": device})
        return host_key_from_row(row) if row else None

    async def trust_host_key(self, site: str, device: str, key: str, fingerprint: str) -> None:
        """Trust `key` for the device, replacing any trusted key and clearing any pending one."""

        def trust(conn: sqlite3.Connection) -> None:
            conn.execute(
                "INSERT INTO host_keys (device_id, key, fingerprint) VALUES (?, ?, ?)"
                " ON CONFLICT (device_id) DO UPDATE SET key = excluded.key, fingerprint = excluded.fingerprint,"
                " pending_key = NULL, pending_fingerprint = NULL",
                (device_id(conn, site, device), key, fingerprint),
            )

        await self._transact(trust)

    async def set_pending_host_key(self, site: str, device: str, key: str, fingerprint: str) -> None:
        """Remember a different key the device presented; the trusted key stays trusted.

        LookupError if the device has no trusted key (a first key is trusted, not pending).
        """

        def remember(conn: sqlite3.Connection) -> None:
            cursor = conn.execute(
                f"UPDATE host_keys SET pending_key = :key, pending_fingerprint = :fp WHERE device_id = {DEVICE_ID}",
                {"key": key, "fp": fingerprint, "site": site, "device": device},
            )
            if cursor.rowcount != 1:
                raise LookupError(f"{site}/{device} has no trusted host key; trust one first")

        await self._transact(remember)

    async def accept_pending_host_key(self, site: str, device: str) -> HostKey | None:
        """Promote the pending key to trusted and return the result; None if nothing is pending."""

        def accept(conn: sqlite3.Connection) -> HostKey | None:
            # SET reads the old row, so key takes the pending value before pending is cleared.
            row = conn.execute(
                "UPDATE host_keys SET key = pending_key, fingerprint = pending_fingerprint,"
                " pending_key = NULL, pending_fingerprint = NULL"
                f" WHERE device_id = {DEVICE_ID} AND pending_key IS NOT NULL"
                " RETURNING key, fingerprint, pending_key, pending_fingerprint",
                {"site": site, "device": device},
            ).fetchone()
            return host_key_from_row(row) if row else None

        return await self._transact(accept)

    async def instance_key(self) -> bytes:
        """32 random bytes made on first use and kept forever (they key redaction fingerprints)."""

        def make_or_read(conn: sqlite3.Connection) -> bytes:
            # DO NOTHING: if another process made the key first, theirs is the key.
            conn.execute("INSERT INTO settings (name, value) VALUES (?, ?) ON CONFLICT (name) DO NOTHING",
                         (_INSTANCE_KEY, secrets.token_bytes(32)))
            return bytes(value(conn, "SELECT value FROM settings WHERE name = ?", (_INSTANCE_KEY,)))

        if self._instance_key is None:
            self._instance_key = await self._transact(make_or_read)
        return self._instance_key
