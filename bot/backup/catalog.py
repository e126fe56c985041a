"""Read-only questions about the inventory and what was recorded: the CLI and Slack both ask here.

Resolves typed names (with close-match suggestions), lists sites, devices and versions, and
produces views and diffs. The inventory is read from the LiveSettings holder at each call, so a
refreshed inventory (bot.inventory) is seen at once; `pinned` gives a request one inventory from
its start to its end (the Slack handlers and the browser pages take one per request). Retired
devices (gone from the inventory source) are found, listed (after the active ones, marked) and
browsable like any other; only `backup_targets` refuses them: they are never backed up again.
Normalizing, diffing and redacting large configs runs in the CPU worker process (bot.backup.offload).
"""

from __future__ import annotations

import difflib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from bot.routeros import diff as diffing
from bot.routeros import export as routeros
from bot.routeros import redact as redaction
from bot.core.clock import Clock, utcnow
from bot.core.stale import is_stale
from bot.core.text import retired_phrase
from bot.core.errors import NotFound, UserError
from bot.core.live import LiveSettings
from bot.backup.offload import cpu
from bot.core.models import Attempt, Device, DeviceStatus, Diff, HostKey, Settings, Site, Status, Version
from storage.codec import StoredBlob, unpack_chain, unpack_chains

Chain = Sequence[StoredBlob]  # a version's blobs, as storage.store.Store.chains reads them


class CatalogStore(Protocol):
    async def version(self, version_id: int) -> Version | None: ...
    async def versions(
        self, site: str, device: str, limit: int = 20, before_id: int | None = None
    ) -> list[Version]: ...
    async def versions_by_ids(self, ids: Sequence[int]) -> list[Version]: ...
    async def count_versions(self, site: str, device: str) -> int: ...
    async def latest_versions(self, site: str | None = None) -> dict[tuple[str, str], Version]: ...
    async def raw(self, version_id: int) -> bytes: ...
    async def chains(self, version_ids: Sequence[int]) -> list[list[StoredBlob]]: ...
    async def last_attempts(self, site: str | None = None) -> dict[tuple[str, str], Attempt]: ...
    async def last_successes(self, site: str | None = None) -> dict[tuple[str, str], datetime]: ...
    async def accept_pending_host_key(self, site: str, device: str) -> HostKey | None: ...
    async def instance_key(self) -> bytes: ...


@dataclass(frozen=True)
class SiteOverview:
    site: Site
    last_run: datetime | None
    ok: int
    changed: int
    failed: int
    never: int  # devices never attempted
    retired: int = 0  # devices gone from the inventory source (not counted above)


class Catalog:
    def __init__(self, settings: Settings | LiveSettings, store: CatalogStore, clock: Clock = utcnow) -> None:
        self.live = LiveSettings.of(settings)
        self.store = store
        self.clock = clock

    @property
    def settings(self) -> Settings:
        return self.live.settings

    def pinned(self, settings: Settings | None = None) -> Catalog:
        """This catalog on one inventory (`settings`, or the one in use now) that a refresh does not
        change: for a request or a run that must see one inventory from its start to its end."""
        return Catalog(settings or self.settings, self.store, self.clock)

    # --- names -------------------------------------------------------------------------------
    def site(self, name: str) -> Site:
        site = self.settings.sites.get(name)
        if site is None:
            close = difflib.get_close_matches(name, list(self.settings.sites), n=3, cutoff=0.5)
            raise NotFound(f'Unknown site "{name}".', close)
        return site

    def device(self, site_name: str, name: str) -> Device:
        """A device whose history may be browsed: active or retired."""
        site = self.site(site_name)
        device = site.known(name)
        if device is None:
            names = [d.name for d in (*site.devices, *site.retired)]
            close = difflib.get_close_matches(name, names, n=3, cutoff=0.5)
            raise NotFound(f'Unknown device "{name}" in site "{site.name}".', close)
        return device

    def backup_targets(self, site_name: str, name: str | None = None) -> list[Device]:
        """The devices a backup of the site (or of one of its devices) takes; UserError for a retired
        device or a site with none left to back up."""
        if name is not None:
            device = self.device(site_name, name)
            if device.retired_at is not None:
                raise UserError(retired_phrase(device) + "; it is not backed up any more. "
                                "Its backups are kept and can still be listed, shown, compared and downloaded.")
            return [device]
        site = self.site(site_name)
        if not site.devices:
            raise UserError(f"{site.name} has no devices to back up"
                            + (f" (its {len(site.retired)} retired ones are not backed up)." if site.retired else "."))
        return list(site.devices)

    def search(self, text: str) -> list[Device]:
        """Devices, active then retired, whose site, name or host contains `text` (case-insensitive)."""
        needle = text.strip().lower()
        if not needle:
            raise UserError("Search for what? Give part of a site, device name or address.")
        settings = self.settings
        return [d for d in (*settings.devices(), *settings.retired_devices())
                if needle in d.site.lower() or needle in d.name.lower() or needle in d.host.lower()]

    # --- listings ----------------------------------------------------------------------------
    async def sites(self) -> list[SiteOverview]:
        attempts = await self.store.last_attempts()
        out = []
        for site in self.settings.sites.values():
            mine = [attempts[d.key] for d in site.devices if d.key in attempts]
            out.append(SiteOverview(
                site=site,
                last_run=max((a.at for a in mine), default=None),
                ok=sum(a.status is not Status.FAILED for a in mine),
                changed=sum(a.status is Status.CHANGED for a in mine),
                failed=sum(a.status is Status.FAILED for a in mine),
                never=len(site.devices) - len(mine),
                retired=len(site.retired),
            ))
        return out

    async def device_statuses(self, site_name: str) -> list[DeviceStatus]:
        """The site's devices with their latest version and attempt: active ones, then retired ones."""
        site = self.site(site_name)
        latest = await self.store.latest_versions(site.name)
        attempts = await self.store.last_attempts(site.name)
        successes = await self.store.last_successes(site.name)
        return [DeviceStatus(d, latest.get(d.key), attempts.get(d.key), successes.get(d.key))
                for d in (*site.devices, *site.retired)]

    def is_stale(self, status: DeviceStatus) -> bool:
        """bot.core.stale's definition, with the configured threshold, as of now (a retired device never is)."""
        if status.device.retired_at is not None:
            return False
        return is_stale(status.last_attempt is not None, status.last_success_at, self.clock(),
                        self.settings.stale_after)

    async def versions(self, site: str, device: str, limit: int = 20, before_id: int | None = None) -> list[Version]:
        d = self.device(site, device)
        return await self.store.versions(d.site, d.name, limit=limit, before_id=before_id)

    async def count_versions(self, site: str, device: str) -> int:
        d = self.device(site, device)
        return await self.store.count_versions(d.site, d.name)

    # --- one version -------------------------------------------------------------------------
    async def version(self, version_id: int) -> Version:
        version = await self.store.version(version_id)
        if version is None:
            raise NotFound(f"No backup with id {version_id}.")
        return version

    async def raw(self, version_id: int) -> bytes:
        await self.version(version_id)
        return await self.store.raw(version_id)

    async def config(self, version_id: int) -> str:
        """The normalized config (secrets intact: callers posting it anywhere must redact)."""
        return await cpu(text_of, await self._chain(version_id), None)

    async def redacted_config(self, version_id: int) -> str:
        """The normalized config with its secrets redacted, as Slack shows it."""
        return await cpu(text_of, await self._chain(version_id), await self.store.instance_key())

    async def _chain(self, version_id: int) -> list[StoredBlob]:
        await self.version(version_id)  # NotFound: "No backup with id N."
        (chain,) = await self.store.chains([version_id])
        return chain

    # --- comparisons -------------------------------------------------------------------------
    async def compare(self, version_ids: Sequence[int], redact: bool = False) -> list[Diff]:
        """Diffs of each consecutive pair of the given versions, oldest first."""
        ids = sorted(set(version_ids))
        if len(ids) < 2:
            raise UserError("Pick at least two backups to compare.")
        versions = {v.id: v for v in await self.store.versions_by_ids(ids)}
        missing = [str(i) for i in ids if i not in versions]
        if missing:
            raise NotFound(f"No backup with id {', '.join(missing)}.")
        ordered = sorted(versions.values(), key=lambda v: (v.first_seen, v.id))
        chains = await self.store.chains([v.id for v in ordered])
        key = await self.store.instance_key() if redact else None
        return await cpu(compare_chains, [self.label(v) for v in ordered], chains, key)

    async def latest_change(self, site: str, device: str, redact: bool = False) -> list[Diff]:
        """The device's most recent change: its two newest versions."""
        recent = await self.versions(site, device, limit=2)
        if len(recent) < 2:
            raise UserError(f"{site}/{device} has {len(recent)} version(s): nothing to compare yet.")
        return await self.compare([v.id for v in recent], redact=redact)

    @staticmethod
    def label(version: Version) -> str:
        return f"{version.site}/{version.device} #{version.id} ({version.first_seen:%Y-%m-%d %H:%M} UTC)"

    # --- operator actions --------------------------------------------------------------------
    async def trust(self, site: str, device: str) -> HostKey:
        d = self.device(site, device)
        key = await self.store.accept_pending_host_key(d.site, d.name)
        if key is None:
            raise UserError(f"{d.label} has no changed host key waiting to be accepted.")
        return key


# -- in the CPU worker ---------------------------------------------------------------------------------
# One call per question, from the versions' blobs: an export is decoded, normalized, redacted and
# diffed where it is decoded, so its text never crosses between processes until the answer (only
# the blobs go to the worker: a few KB to a few MB, a fifth of the export or less).

def redacted_text(raw: bytes, key: bytes) -> str:
    """The normalized config with each secret value replaced by its keyed fingerprint
    (bot.routeros.redact): what Slack and the browser show of a version."""
    return redaction.redact(routeros.normalize(raw), key)


def text_of(chain: Chain, key: bytes | None) -> str:
    """(CPU worker) The version's normalized text, redacted with `key` unless None."""
    raw = unpack_chain(chain)
    return routeros.normalize(raw) if key is None else redacted_text(raw, key)


def compare_chains(labels: Sequence[str], chains: Sequence[Chain], key: bytes | None) -> list[Diff]:
    """(CPU worker) bot.routeros.diff.compare of the versions' normalized texts (redacted with `key`
    unless None), labelled and oldest first."""
    raws = unpack_chains(chains)
    texts = [routeros.normalize(raw) if key is None else redacted_text(raw, key) for raw in raws]
    return diffing.compare(list(zip(labels, texts)))
