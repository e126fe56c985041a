"""PURE. The decisions of an import (bot.interop.importing has the rules and their reasons): which
configured device a source file belongs to, what a snapshot is once checked and normalized, and which
snapshots of a device start a version given what the store already has of it.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from bot.core.models import Device, ExportMeta, Settings, Status, Version
from bot.interop.sources import Snapshot, SourceFile
from bot.routeros import export as routeros


# -- matching files to devices (pure) ------------------------------------------------------------


@dataclass(frozen=True)
class Skipped:
    file: SourceFile
    reason: str


def match_files(files: Sequence[SourceFile], settings: Settings, *, site: str | None = None,
                site_from_group: bool = False) -> tuple[list[tuple[Device, SourceFile]], list[Skipped]]:
    """Each file's device, and the files left out with why. `settings` is the inventory in use (the
    config file merged with the inventory source's devices); a retired device is matched only when
    no active one is. `site`: only that site's devices; `site_from_group`: a file's group folder names its site."""
    claimed: dict[tuple[str, str], list[SourceFile]] = {}
    devices: dict[tuple[str, str], Device] = {}
    skipped: list[Skipped] = []
    for f in files:
        if site_from_group:
            if f.group is None:
                skipped.append(Skipped(f, "not in a group folder (--site-from group names the site by its folder)"))
                continue
            if f.group not in settings.sites:
                skipped.append(Skipped(f, f'no site "{f.group}" in the config'))
                continue
        scope = f.group if site_from_group else site
        # A retired device's history may be brought in too, but an active device of the same name
        # wins: a router moved to another site is retired in the old one and listed in the new one.
        found = _named(settings.devices(scope), f.name) or _named(settings.retired_devices(scope), f.name)
        if not found:
            where = f'site "{f.group if site_from_group else site}"' if site_from_group or site else "the config"
            skipped.append(Skipped(f, f'no device named "{f.name}" in {where}'))
        elif len(found) > 1:
            labels = ", ".join(d.label for d in found)
            skipped.append(Skipped(f, f"matches {labels}: say which site with --site"))
        else:
            claimed.setdefault(found[0].key, []).append(f)
            devices[found[0].key] = found[0]
    matched = []
    for key, claims in claimed.items():
        if len(claims) == 1:
            matched.append((devices[key], claims[0]))
            continue
        others = ", ".join(c.path for c in claims)
        skipped.extend(Skipped(c, f"{devices[key].label} is claimed by {len(claims)} files ({others}); "
                                  "import them one at a time, or with --site-from group") for c in claims)
    return matched, skipped


def _named(devices: Sequence[Device], name: str) -> list[Device]:
    wanted = name.lower()
    by_name = [d for d in devices if d.name.lower() == wanted]
    if not by_name and wanted.endswith(".rsc"):
        by_name = [d for d in devices if d.name.lower() == wanted[:-len(".rsc")]]
    return by_name or [d for d in devices if d.host.lower() == wanted]


# -- examining a snapshot (pure; runs in the CPU worker) ------------------------------------------


@dataclass(frozen=True)
class Examined:
    refusal: str | None  # why it must not be stored, as check_export says
    normalized: str
    norm_hash: str
    raw_sha256: str  # of the bytes as read, to be sure they are the same when written
    meta: ExportMeta


def examine(raw: bytes) -> Examined:
    """Check and normalize one imported snapshot as a live backup is, accepting a missing final newline."""
    whole = raw if raw.rstrip(b" \t").endswith(b"\n") else raw + b"\n"
    refusal, normalized = routeros.check_and_normalize(whole)
    return Examined(refusal, normalized, hashlib.sha256(normalized.encode()).hexdigest(),
                    hashlib.sha256(raw).hexdigest(), routeros.parse_header(raw[:16384].decode("utf-8", "replace")))


# -- one device's timeline (pure) -----------------------------------------------------------------


@dataclass
class Planned:
    """A version to store: the snapshot that first showed it, and the last one that still did."""

    snapshot: Snapshot
    last_seen: datetime
    norm_hash: str
    raw_sha256: str
    meta: ExportMeta
    status: Status
    note: str | None
    added: int = 0
    removed: int = 0


def _same(hash_a: str, meta_a: ExportMeta, hash_b: str, meta_b: ExportMeta) -> bool:
    """No new version: the same config, and a header that tells of no upgrade or replacement."""
    return hash_a == hash_b and routeros.describe_meta_change(meta_a, meta_b) is None


class Timeline:
    """A device's snapshots, oldest first, against what the store already has of it (newest first)."""

    def __init__(self, stored: Sequence[Version]) -> None:
        self.latest = stored[0] if stored else None
        # Only what comes after the latest version's last verification may be appended.
        self.since = self.latest.last_verified if self.latest else None
        self._known = {(v.hash, v.first_seen) for v in stored}
        self._covered: tuple[str, ExportMeta] | None = None  # the last snapshot at or before `since`
        self.new: list[Planned] = []
        self.already = 0  # versions of the source the store has already (an earlier import)
        self.older = 0  # versions of the source older than the stored history: not imported
        self.unchanged = 0  # snapshots that showed no change

    def add(self, snap: Snapshot, ex: Examined) -> Planned | None:
        """The version this snapshot starts, or None if it starts none."""
        if self.since is not None and snap.at <= self.since:
            if self._covered is not None and _same(*self._covered, ex.norm_hash, ex.meta):
                self.unchanged += 1
            elif (ex.norm_hash, snap.at) in self._known:
                self.already += 1
            else:
                self.older += 1
            self._covered = (ex.norm_hash, ex.meta)
            return None
        previous = self.new[-1] if self.new else None
        if previous is not None and _same(previous.norm_hash, previous.meta, ex.norm_hash, ex.meta):
            previous.last_seen = snap.at
            self.unchanged += 1
            return None
        base = (previous.norm_hash, previous.meta) if previous else (
            (self.latest.hash, self.latest.meta) if self.latest else None)
        if previous is None and base is not None and _same(*base, ex.norm_hash, ex.meta):
            self.unchanged += 1  # what the store's latest version already says
            return None
        note = routeros.describe_meta_change(base[1], ex.meta) if base else None
        if base is not None and base[0] == ex.norm_hash and note:
            note += ", config unchanged"
        planned = Planned(snap, snap.at, ex.norm_hash, ex.raw_sha256, ex.meta,
                          Status.CHANGED if base else Status.NEW, note)
        self.new.append(planned)
        return planned
