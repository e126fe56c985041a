"""PURE. The file's inventory merged with an inventory source's, and what a new fetch would change.

Rules (README, "Inventory from NetBox or a CSV file"):

- A device the source lists that backupbot.yml also has in the same site (names compared without
  case) is the file's device: the file wins, and every field where they disagree (host, port, the
  name's spelling) is an `Override`, logged and shown by `backupbot inventory`.
- Any other source device joins its site as a Device built from the site's `Connection` (the
  file's `defaults` merged with the site's own keys; `defaults` alone for a site the file does
  not have). Such a site gets the global defaults for everything else too: `slack.channel`,
  `schedule.times`/`timezone`, and no `allowed_users`/`allowed_channels` (everyone may see it,
  like a file site that names nobody). Credentials only ever come from the file.
- A device the source stopped listing is retired (Site.retired), unless the file has it.
- Order: the file's sites in file order, then the source's other sites by name; in a site, the
  file's devices first, then the source's by name.

`plan` compares a fetch with the last good list and decides whether it may be applied without a
person: it is held back when it would retire more than `max_retire_percent` of the devices the
source listed before (at least one may always go when the percentage is above 0), and always when
the source that listed devices now lists none (an emptied filter or a broken view, far more
likely than a fleet gone overnight).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime

from bot.core.models import Device, InventorySettings, Settings, Site, SourceDevice, StoredInventory


@dataclass(frozen=True)
class Fetched:
    """What one read of the source gave: its devices, and the entries it could not use (and why)."""

    source: str  # the source's description
    devices: tuple[SourceDevice, ...]
    skipped: tuple[str, ...] = ()
    at: datetime | None = None


@dataclass(frozen=True)
class Override:
    """A source device the file also has, where they disagree: the file's value is kept."""

    site: str
    name: str
    field: str  # "host", "port" or "name"
    source: str  # what the source says
    file: str  # what backupbot.yml says (and what is used)

    def describe(self) -> str:
        return (f"{self.site}/{self.name}: {self.field} {self.file} from the config file, "
                f"not {self.source} from the source")


@dataclass(frozen=True)
class Change:
    site: str
    name: str
    field: str  # "host" or "port"
    old: str
    new: str


@dataclass(frozen=True)
class Merged:
    settings: Settings
    overrides: tuple[Override, ...] = ()


@dataclass(frozen=True)
class Plan:
    """A fetch against the last good list: what applying it changes, and whether it may be applied
    without a person (`held_back` says why not)."""

    fetched: Fetched
    added: tuple[SourceDevice, ...] = ()  # listed now, not in the last good list nor the file (new, or back)
    returned: tuple[SourceDevice, ...] = ()  # the added ones that were retired: un-retired
    retired: tuple[SourceDevice, ...] = ()  # in the last good list, not now: retired when applied
    kept_by_file: tuple[SourceDevice, ...] = ()  # gone from the source, but the file has them: not retired
    changed: tuple[Change, ...] = ()  # host or port moved (devices the file has are under `overrides`)
    overrides: tuple[Override, ...] = ()
    held_back: str | None = None

    @property
    def empty(self) -> bool:
        return not (self.added or self.retired or self.changed)


def _port(port: int | None) -> str:
    return "-" if port is None else str(port)


def _file_device(site: Site | None, name: str) -> Device | None:
    if site is None:
        return None
    lower = name.lower()
    return next((d for d in site.devices if d.name.lower() == lower), None)


def _overrides(d: SourceDevice, mine: Device) -> list[Override]:
    out = []
    if d.name != mine.name:
        out.append(Override(mine.site, mine.name, "name", d.name, mine.name))
    if d.host != mine.host:
        out.append(Override(mine.site, mine.name, "host", d.host, mine.host))
    if d.port is not None and d.port != mine.port:
        out.append(Override(mine.site, mine.name, "port", str(d.port), str(mine.port)))
    return out


def merge(base: Settings, listed: Iterable[SourceDevice],
          retired: Iterable[tuple[SourceDevice, datetime]] = ()) -> Merged:
    """The file's Settings (`base`) with the source's devices added and its retired ones marked."""
    extra: dict[str, list[Device]] = {}
    overrides: list[Override] = []
    for d in sorted(listed, key=lambda d: d.key):
        site = base.sites.get(d.site)
        mine = _file_device(site, d.name)
        if mine is not None:
            overrides += _overrides(d, mine)
            continue
        connection = (site.connection if site is not None else None) or base.defaults
        extra.setdefault(d.site, []).append(connection.device(d.site, d.name, d.host, d.port))
    active = {d.key for s in base.sites.values() for d in s.devices} | {d.key for ds in extra.values() for d in ds}
    gone: dict[str, list[Device]] = {}
    for d, at in sorted(retired, key=lambda r: r[0].key):
        site = base.sites.get(d.site)
        if d.key in active or _file_device(site, d.name) is not None:
            continue
        connection = (site.connection if site is not None else None) or base.defaults
        gone.setdefault(d.site, []).append(replace(connection.device(d.site, d.name, d.host, d.port), retired_at=at))
    sites = {name: replace(site, devices=site.devices + tuple(extra.get(name, ())), retired=tuple(gone.get(name, ())))
             for name, site in base.sites.items()}
    for name in sorted((extra.keys() | gone.keys()) - sites.keys()):
        sites[name] = Site(name, tuple(extra.get(name, ())), retired=tuple(gone.get(name, ())))
    return Merged(replace(base, sites=sites), tuple(overrides))


def retire_limit(before: int, percent: int) -> int:
    """How many of `before` listed devices one fetch may retire without a person."""
    if percent <= 0:
        return 0
    return max(1, before * percent // 100)


def plan(base: Settings, stored: StoredInventory, fetched: Fetched, rules: InventorySettings) -> Plan:
    """What applying `fetched` over the last good list `stored` changes, and whether it is held back."""
    old = {d.key: d for d in stored.listed}
    new = {d.key: d for d in fetched.devices}
    was_retired = {d.key for d, _ in stored.retired}
    def in_file(d: SourceDevice) -> bool:  # the file's device is used, whatever the source says
        return _file_device(base.sites.get(d.site), d.name) is not None

    kept = tuple(d for k, d in old.items() if k not in new and in_file(d))
    added = tuple(d for k, d in new.items() if k not in old and not in_file(d))
    gone = tuple(d for k, d in old.items() if k not in new and not in_file(d))
    changed: list[Change] = []
    for key, d in new.items():
        before = old.get(key)
        if before is None or in_file(d):
            continue
        if before.host != d.host:
            changed.append(Change(d.site, d.name, "host", before.host, d.host))
        if before.port != d.port:
            changed.append(Change(d.site, d.name, "port", _port(before.port), _port(d.port)))
    held_back = None
    limit = retire_limit(len(old), rules.max_retire_percent)
    if old and not new:
        held_back = (f"the source lists no devices, where it listed {len(old)}: an empty answer is not applied "
                     "on its own (a changed filter or a broken view is likelier than a fleet gone overnight)")
    elif len(gone) > limit:
        held_back = (f"it would retire {len(gone)} of {len(old)} devices at once, more than "
                     f"max_retire_percent ({rules.max_retire_percent} %) allows ({limit})")
    return Plan(fetched=fetched, added=added, returned=tuple(d for d in added if d.key in was_retired),
                retired=gone, kept_by_file=kept, changed=tuple(changed),
                overrides=merge(base, fetched.devices).overrides, held_back=held_back)


def dedupe(devices: Sequence[SourceDevice]) -> tuple[list[SourceDevice], list[str]]:
    """The devices with each (site, name) once (names compared without case, as the file's are),
    and a line per later duplicate."""
    first: dict[tuple[str, str], SourceDevice] = {}
    kept: list[SourceDevice] = []
    skipped: list[str] = []
    for d in devices:
        key = (d.site, d.name.lower())
        if key in first:
            skipped.append(f"{d.origin}: {d.site}/{d.name} is listed twice (first as {first[key].origin}); "
                           "the first is used")
            continue
        first[key] = d
        kept.append(d)
    return kept, skipped
