"""Trust material: SSH host keys per device (trust on first use) and the instance's secret key.

A device's first key is trusted as presented. A different key later is kept as *pending* (the
trusted key stays trusted and the backup fails) until a person accepts it.
"""

from __future__ import annotations

import secrets

from bot.core.models import HostKey
from storage.db import Database, scalar
from storage.records import DEVICE_ID, HOST_KEY_SELECT, ensure_device, host_key_from_row

_INSTANCE_KEY = "instance_key"


class TrustStore(Database):
    """Host keys and the instance key, as part of storage.store.Store."""

    _instance_key: bytes | None = None  # cached: it never changes once made

    async def host_key(self, site: str, device: str) -> HostKey | None:
        row = await self._row(f"{HOST_KEY_SELECT} WHERE device_id = {DEVICE_ID}", {"site": site, "device": device})
        return host_key_from_row(row) if row else None

    async def trust_host_key(self, site: str, device: str, key: str, fingerprint: str) -> None:
        """Trust `key` for the device, replacing any trusted key and clearing any pending one."""
        async with self._write() as db:
            await db.execute(
                "INSERT INTO host_keys (device_id, key, fingerprint) VALUES (?, ?, ?)"
                " ON CONFLICT (device_id) DO UPDATE SET key = excluded.key, fingerprint = excluded.fingerprint,"
                " pending_key = NULL, pending_fingerprint = NULL",
                (await ensure_device(db, site, device), key, fingerprint),
            )

    async def set_pending_host_key(self, site: str, device: str, key: str, fingerprint: str) -> None:
        """Remember a different key the device presented; the trusted key stays trusted.

        LookupError if the device has no trusted key (a first key is trusted, not pending).
        """
        async with self._write() as db:
            cursor = await db.execute(
                f"UPDATE host_keys SET pending_key = :key, pending_fingerprint = :fp WHERE device_id = {DEVICE_ID}",
                {"key": key, "fp": fingerprint, "site": site, "device": device},
            )
            if cursor.rowcount != 1:
                raise LookupError(f"{site}/{device} has no trusted host key; trust one first")

    async def accept_pending_host_key(self, site: str, device: str) -> HostKey | None:
        """Promote the pending key to trusted and return the result; None if nothing is pending."""
        async with self._write() as db:
            # SET reads the old row, so key takes the pending value before pending is cleared.
            rows = await db.execute_fetchall(
                "UPDATE host_keys SET key = pending_key, fingerprint = pending_fingerprint,"
                " pending_key = NULL, pending_fingerprint = NULL"
                f" WHERE device_id = {DEVICE_ID} AND pending_key IS NOT NULL"
                " RETURNING key, fingerprint, pending_key, pending_fingerprint",
                {"site": site, "device": device},
            )
            accepted = [host_key_from_row(r) for r in rows]
        return accepted[0] if accepted else None

    async def instance_key(self) -> bytes:
        """32 random bytes made on first use and kept forever (they key redaction fingerprints)."""
        if self._instance_key is None:
            async with self._write() as db:
                # DO NOTHING: if another process made the key first, theirs is the key.
                await db.execute("INSERT INTO settings (name, value) VALUES (?, ?) ON CONFLICT (name) DO NOTHING",
                                 (_INSTANCE_KEY, secrets.token_bytes(32)))
                value = await scalar(db, "SELECT value FROM settings WHERE name = ?", (_INSTANCE_KEY,))
            self._instance_key = bytes(value)
        return self._instance_key
