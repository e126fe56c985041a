"""Frozen value objects shared by every layer: inventory, exports, versions, attempts and runs.

Nothing here does I/O. Datetimes are always timezone-aware UTC. Settings never change once built:
a refreshed inventory is a whole new Settings, swapped in by bot.core.live.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from pathlib import Path
from typing import NamedTuple

from bot.core.kinds import Trigger


class Status(StrEnum):
    """Outcome of one device in one run, spelled as the CLI's --json and Slack show it."""

    NEW = "new"
    CHANGED = "changed"
    UNCHANGED = "unchanged"
    FAILED = "failed"


@dataclass(frozen=True)
class Device:
    """One router. The defaults here are the built-in ones backupbot.yml falls back to (bot.config);
    `username` has none: the file must name it."""

    site: str
    name: str
    host: str
    port: int = 22
    username: str = field(kw_only=True)
    # repr=False keeps credentials out of logs and tracebacks that print a Device.
    password: str | None = field(default=None, repr=False)
    key_file: str | None = None
    timeout: float = 120.0
    # "auto" picks by RouterOS major version; anything else is the literal command to run.
    export: str = "auto"
    # Set when the inventory source stopped listing the device: never backed up again, its
    # history stays browsable (bot.inventory).
    retired_at: datetime | None = None

    @property
    def key(self) -> tuple[str, str]:
        return (self.site, self.name)

    @property
    def label(self) -> str:
        return f"{self.site}/{self.name}"


@dataclass(frozen=True)
class Connection:
    """How devices without settings of their own log in: `defaults` merged with a site's own keys.
    The devices an inventory source adds (bot.inventory) are built from it; `username` None means
    the file names none there."""

    username: str | None = None
    password: str | None = field(default=None, repr=False)
    key_file: str | None = None
    port: int = 22
    timeout: float = 120.0
    export: str = "auto"

    def device(self, site: str, name: str, host: str, port: int | None = None) -> Device:
        return Device(site, name, host, self.port if port is None else port, username=self.username or "",
                      password=self.password, key_file=self.key_file, timeout=self.timeout, export=self.export)


@dataclass(frozen=True)
class Site:
    name: str
    devices: tuple[Device, ...]  # the devices backed up (never a retired one)
    channel: str | None = None  # overrides slack.channel for this site's messages
    times: tuple[str, ...] | None = None  # overrides schedule.times ("HH:MM")
    timezone: str | None = None  # overrides schedule.timezone
    allowed_users: frozenset[str] = frozenset()  # empty = everyone in the workspace
    allowed_channels: frozenset[str] = frozenset()  # empty = any channel
    download_users: frozenset[str] = frozenset()  # besides slack.admins
    quiet: bool | None = None  # overrides schedule.quiet for this site's digests
    # Devices the inventory source no longer lists (Device.retired_at set): browsable, not backed up.
    retired: tuple[Device, ...] = ()
    # What the inventory source's devices in this site inherit (None: the global `defaults`).
    connection: Connection | None = None

    def device(self, name: str) -> Device | None:
        """An active device (one that is backed up) by name."""
        return next((d for d in self.devices if d.name == name), None)

    def known(self, name: str) -> Device | None:
        """An active or a retired device by name: everything whose history may be browsed."""
        return self.device(name) or next((d for d in self.retired if d.name == name), None)


@dataclass(frozen=True)
class SlackSettings:
    channel: str | None = None
    admins: frozenset[str] = frozenset()


@dataclass(frozen=True)
class ScheduleSettings:
    times: tuple[str, ...] = ("02:00",)
    timezone: str = "UTC"
    # Seconds: each slot (and the catch-up) starts up to this much later, at random. 0: "02:00" means
    # 02:00; `concurrency` already bounds the SSH sessions.
    jitter: int = 0
    quiet: bool = False  # no digest without a change, new device, failure, stale device or site not started


DEFAULT_GIT_AUTHOR = "backupbot <backupbot@localhost>"


@dataclass(frozen=True)
class GitSettings:
    """The git mirror (bot.interop.mirror): every new version committed as SITE/DEVICE.rsc, one commit per run."""

    path: Path  # a repository backupbot owns, created if missing
    remote: str | None = None  # pushed to after each commit; a URL or a local path
    redact: bool = True  # commit the normalized config with secrets fingerprinted, not the raw export
    author: str = DEFAULT_GIT_AUTHOR  # author and committer of every commit (and of `export git`'s)


@dataclass(frozen=True)
class WebSettings:
    """The browser pages (bot.web). Off unless `base_url` is set."""

    base_url: str | None = None  # the bot's URL as the team's browsers reach it, without a trailing "/"
    link_minutes: int = 15  # how long a signed link from Slack may be opened (a session then lasts 12 h)


@dataclass(frozen=True)
class NetBoxSource:
    """`inventory.netbox`: NetBox's /api/dcim/devices/, filtered (bot.inventory.netbox)."""

    url: str  # NetBox's base URL, e.g. https://netbox.example.com
    token: str = field(repr=False)
    filter: tuple[tuple[str, str], ...] = ()  # query parameters, in file order; a list repeats its key
    site_from: str = "site"  # site | region | tenant: whose slug names the backupbot site
    port_field: str | None = None  # a custom field holding the SSH port; None: the site's/defaults' port
    timeout: float = 30.0  # seconds for each HTTP request

    @property
    def describe(self) -> str:
        query = "&".join(f"{k}={v}" for k, v in self.filter)
        return f"NetBox {self.url.rstrip('/')}/api/dcim/devices/" + (f"?{query}" if query else "")


@dataclass(frozen=True)
class CsvSource:
    """`inventory.csv`: a CSV file with columns site, name, host and optionally port (bot.inventory.csvfile)."""

    path: Path

    @property
    def describe(self) -> str:
        return f"CSV {self.path}"


@dataclass(frozen=True)
class InventorySettings:
    source: NetBoxSource | CsvSource
    refresh: timedelta = timedelta(hours=1)  # how often `serve` reads the source again
    # A fetch that would retire more than this share of the source's devices at once is held back
    # until a person accepts it (`backupbot inventory --apply`); at least one device may always go.
    max_retire_percent: int = 10


@dataclass(frozen=True)
class SourceDevice:
    """A router as an inventory source lists it: where it is and how to reach it, no credentials."""

    site: str
    name: str
    host: str
    port: int | None = None  # None: the site's or defaults' port
    origin: str = ""  # where the source said so, for messages: "NetBox device 12", "routers.csv line 7"

    @property
    def key(self) -> tuple[str, str]:
        return (self.site, self.name)


@dataclass(frozen=True)
class StoredInventory:
    """What the database remembers of the inventory source: its last good list (used while the
    source cannot be read) and the devices it stopped listing, with when (retired)."""

    source: str | None = None  # the source's description when that list was read
    fetched_at: datetime | None = None
    listed: tuple[SourceDevice, ...] = ()
    retired: tuple[tuple[SourceDevice, datetime], ...] = ()


@dataclass(frozen=True)
class Settings:
    storage_path: Path
    sites: dict[str, Site]
    concurrency: int = 50
    # A device tried but without a good backup for longer is stale (bot.core.stale): told in digests.
    stale_after: timedelta = timedelta(hours=24)
    slack: SlackSettings = SlackSettings()
    schedule: ScheduleSettings = ScheduleSettings()
    web: WebSettings = WebSettings()
    git: GitSettings | None = None  # no mirror unless the file has a git section
    # What the devices an inventory source adds to a site that is not in the file inherit.
    defaults: Connection = Connection()
    inventory: InventorySettings | None = None

    def quiet(self, site: str) -> bool:
        """Whether the site's all-clear alone is not worth a digest (its own `quiet`, else schedule.quiet)."""
        own = self.sites[site].quiet if site in self.sites else None
        return self.schedule.quiet if own is None else own

    def devices(self, site: str | None = None, device: str | None = None) -> list[Device]:
        """Active devices (the ones backed up), of every site or of one."""
        sites = [self.sites[site]] if site is not None else list(self.sites.values())
        return [d for s in sites for d in s.devices if device is None or d.name == device]

    def retired_devices(self, site: str | None = None) -> list[Device]:
        """Retired devices (the inventory source stopped listing them: browsable, never backed up)."""
        sites = [self.sites[site]] if site is not None else list(self.sites.values())
        return [d for s in sites for d in s.retired]


@dataclass(frozen=True)
class ExportMeta:
    """What the export header says about the device (never part of the normalized config)."""

    ros_version: str | None = None
    model: str | None = None
    serial: str | None = None
    software_id: str | None = None


@dataclass(frozen=True)
class Export:
    """One successful collection: the bytes exactly as the device printed them, with what the
    service needs to know about them (worked out where the bytes are, in the SSH worker).

    `recognised`: the export is the device's known config again (KnownConfig: same undated hash,
    same header), so there is nothing to store but the confirmation; its bytes are left out (`raw`
    is empty) rather than carried from the SSH worker to the bot for nothing."""

    raw: bytes
    command: str
    host_key: str  # OpenSSH public key text the device presented
    host_key_fingerprint: str  # "SHA256:..."
    norm_hash: str  # sha256 (hex) of routeros.normalize(raw): decides "changed"
    meta: ExportMeta  # from the header
    ros_major: int | None = None
    undated_hash: str | None = None  # routeros.undated_hash(raw)
    recognised: bool = False


@dataclass(frozen=True)
class KnownConfig:
    """A device's latest stored config as the collector may recognise it without normalizing the
    next export: one whose routeros.undated_hash is `undated_hash` normalizes to `norm_hash`, and
    its header said `meta`."""

    undated_hash: str
    norm_hash: str
    meta: ExportMeta


class DeviceState(NamedTuple):
    """What a backup of a device starts from (storage.store.Store.device_state)."""

    trusted: HostKey | None
    latest: Version | None
    known: KnownConfig | None


@dataclass(frozen=True)
class HostKey:
    key: str  # OpenSSH public key text
    fingerprint: str
    pending_key: str | None = None  # presented but not trusted (key changed)
    pending_fingerprint: str | None = None


@dataclass(frozen=True)
class Version:
    """A distinct normalized config of one device. `id` is short and typeable."""

    id: int
    site: str
    device: str
    first_seen: datetime
    last_verified: datetime
    size: int  # raw bytes
    hash: str  # sha256 of the normalized text
    meta: ExportMeta = ExportMeta()


@dataclass(frozen=True)
class Attempt:
    """One device in one run, ok or failed. Every new, changed and failed attempt is kept; an unchanged
    one that only repeats the attempt before it is counted on that attempt's record, and what is read
    back of it is the device's last one (storage/store.py)."""

    id: int
    run_id: int
    site: str
    device: str
    at: datetime
    status: Status
    version_id: int | None = None
    error_kind: str | None = None  # errors.CollectError.kind
    reason: str | None = None
    added: int = 0
    removed: int = 0
    note: str | None = None  # e.g. "RouterOS 7.20 -> 7.21, config unchanged"


@dataclass(frozen=True)
class KeyChange:
    """A device presented a host key other than the trusted one (the backup failed)."""

    old_fingerprint: str
    new_fingerprint: str
    first_seen: bool  # no earlier run had already recorded this key as pending: alert once


@dataclass(frozen=True)
class DeviceResult:
    """What happened to one device in a run, as reported to the CLI and to Slack."""

    device: Device
    status: Status
    version: Version | None = None
    previous: Version | None = None
    added: int = 0
    removed: int = 0
    error_kind: str | None = None
    reason: str | None = None
    note: str | None = None
    duration: float = 0.0
    # The run that recorded this attempt; a run that joined another run's device sees the other
    # run's id here, so only the recording run announces the change (the channel hears it once).
    run_id: int | None = None
    key_change: KeyChange | None = None


@dataclass(frozen=True)
class NotStarted:
    """A site a scheduled run was meant to back up but did not start, and why (told in its digest)."""

    site: str
    reason: str


@dataclass(frozen=True)
class RunSummary:
    run_id: int
    trigger: Trigger
    started_at: datetime
    finished_at: datetime
    results: tuple[DeviceResult, ...]
    not_started: tuple[NotStarted, ...] = ()

    def count(self, status: Status) -> int:
        return sum(1 for r in self.results if r.status is status)

    @property
    def failed(self) -> list[DeviceResult]:
        return [r for r in self.results if r.status is Status.FAILED]


@dataclass(frozen=True)
class DeviceStatus:
    """A device's standing: its latest version and last attempt (either may be missing)."""

    device: Device
    latest: Version | None
    last_attempt: Attempt | None
    last_success_at: datetime | None


@dataclass(frozen=True)
class Hunk:
    section: str | None  # RouterOS menu path the hunk falls in, e.g. "/ip firewall filter"
    header: str  # "@@ -12,4 +12,5 @@ /ip firewall filter"
    lines: tuple[str, ...]  # each starting with " ", "-" or "+"


@dataclass(frozen=True)
class Diff:
    old_label: str
    new_label: str
    hunks: tuple[Hunk, ...]
    added: int
    removed: int
    old_lines: int = 0  # display lines of each side (bot.routeros.diff): where the last hunk's tail ends
    new_lines: int = 0

    @property
    def empty(self) -> bool:
        return not self.hunks

    @property
    def text(self) -> str:
        """Unified diff text, each hunk header naming its section."""
        if not self.hunks:
            return ""
        out = [f"--- {self.old_label}", f"+++ {self.new_label}"]
        for h in self.hunks:
            out.append(h.header)
            out.extend(h.lines)
        return "\n".join(out) + "\n"
