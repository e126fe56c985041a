"""Settings and inventory: load the YAML file, expand ${VAR}, validate, report every problem at once.

Every problem names its place (``sites.site-a.devices[1].host: required``) so one run of the
tool lists everything to fix. The validator is hand-written rather than pydantic: nearly every
message here is custom, the cross-field checks (inheritance, duplicates, credentials) are the bulk
of the work, and pydantic skips model validators as soon as any field fails, which would hide
problems instead of listing them all.
"""

from __future__ import annotations

import dataclasses
import difflib
import os
import re
import urllib.parse
from collections.abc import Callable, Mapping
from datetime import timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from bot.core.errors import ConfigError
from bot.core.names import RULE, host_problem, is_simple_name
from bot.core.models import (
    Connection,
    CsvSource,
    Device,
    GitSettings,
    InventorySettings,
    NetBoxSource,
    ScheduleSettings,
    Settings,
    Site,
    SlackSettings,
    WebSettings,
)
from bot.config.yamlfile import read_yaml

_VAR = re.compile(r"\$\$\{|\$\{([A-Za-z_][A-Za-z0-9_]*)\}")  # "$${" is a literal "${"
_PASSWORD_REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
# The browser pages' base URL: scheme and host (and port, path), nothing the links would drop or repeat.
_BASE_URL = re.compile(r"https?://[A-Za-z0-9.-]+(?::\d{1,5})?(?:/[A-Za-z0-9._~/-]*)?")
_AUTHOR = re.compile(r"[^<>\n]*[^<>\s] <[^<>\s]+>")  # what git takes as an identity: Name <email>
# A git URL (scheme://…, or scp-like host:path with no slash before the colon); anything else is a local path.
_GIT_URL = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://.*|[^/:]+:.*")
_HHMM = re.compile(r"([01][0-9]|2[0-3]):[0-5][0-9]")
_SLACK_ID = {"channel": (re.compile(r"[CG][A-Z0-9]{6,}"), "C0123456789"),
             "user": (re.compile(r"[UW][A-Z0-9]{6,}"), "U0123456789")}
_CONN_KEYS = ("username", "password", "port", "timeout", "export", "key_file")
# Precedence device > site > defaults > built-in; the built-in values are Device's own defaults.
_BUILTIN = {f.name: f.default for f in dataclasses.fields(Device) if f.name in ("port", "timeout", "export")}
_HINTS = {"address": "host", "adress": "host", "ip": "host", "hostname": "host", "user": "username"}
_DURATION = re.compile(r"(\d+)\s*([smhd])")
_UNIT = {"s": 1, "m": 60, "h": 3600, "d": 86400}
MIN_REFRESH = timedelta(minutes=1)  # a source read more often than this is being hammered, not watched
SITE_FROM = ("site", "region", "tenant")
# Query parameters backupbot sets itself while paging through NetBox's list.
_PAGING = ("limit", "offset", "brief", "fields", "exclude")
_BAD = object()  # stands in for a value that was present but wrong (and already reported)
Checker = Callable[[str, Any], Any]


class _Invalid(Exception):
    """The value being checked is wrong; the message is reported at its place."""


def load_settings(path: str | Path, env: Mapping[str, str]) -> Settings:
    """Read, parse and validate the config file; raise ConfigError listing every problem."""
    path = Path(path)
    data, duplicates = read_yaml(path)
    # Relative paths inside the file resolve against the file's own directory, not the working
    # directory: services are started from anywhere (systemd, cron, a container's WORKDIR).
    try:
        settings = parse_settings(data, env, path.absolute().parent)
    except ConfigError as exc:
        raise ConfigError(duplicates + exc.problems) from None
    if duplicates:
        raise ConfigError(duplicates)
    return settings


def parse_settings(data: object, env: Mapping[str, str], base_dir: Path) -> Settings:
    """Validate an already-parsed config object; relative paths resolve against base_dir."""
    checker = _Checker(env, Path(base_dir))
    settings = checker.settings(data)
    if checker.problems or settings is None:
        raise ConfigError(checker.problems)
    return settings


def _show(value: object) -> str:
    """A value as it reads in a message (never used for passwords)."""
    if isinstance(value, str):
        return f'"{value}"'
    names = {type(None): "nothing", bool: str(value).lower(), dict: "a mapping", list: "a list"}
    return names.get(type(value), str(value))


def _suggest(key: object, allowed: Mapping[str, object]) -> str:
    hint = _HINTS.get(str(key).lower())
    if hint not in allowed:
        close = difflib.get_close_matches(str(key), list(allowed), n=1)
        hint = close[0] if close else None
    return f' (did you mean "{hint}"?)' if hint else ""


def _connection(inherited: Mapping[str, Any]) -> Connection:
    """What a device without keys of its own gets (values already reported as bad are left out)."""
    fields = {f.name for f in dataclasses.fields(Connection)}
    return Connection(**{k: v for k, v in inherited.items() if k in fields and v is not _BAD})


class _Checker:
    """Walks the parsed config in file order, collecting problems instead of stopping at one."""

    def __init__(self, env: Mapping[str, str], base_dir: Path) -> None:
        self.env, self.base_dir = env, base_dir
        self.problems: list[str] = []
        self.from_source = False  # an `inventory` section is present
        self.conn: dict[str, Checker] = {  # the keys defaults, sites and devices all accept
            "username": self.text, "password": self.password,
            "port": lambda loc, v: self.integer(v, 1, 65535), "timeout": self.timeout,
            "export": self.export, "key_file": self.key_file}

    def fail(self, loc: str, message: str) -> None:
        self.problems.append(f"{loc}: {message}")

    def check(self, loc: str, checker: Checker, value: object) -> Any:
        try:
            return checker(loc, value)
        except _Invalid as exc:
            self.fail(loc, str(exc))
            return _BAD

    def fields(self, loc: str, value: object, checkers: Mapping[str, Checker]) -> dict[str, Any] | None:
        """Check each key of the mapping at `loc` in file order; None if it is not a mapping."""
        if value is None:  # a section whose keys are all commented out
            return {}
        if not isinstance(value, dict):
            self.fail(loc, f"must be a mapping, got {_show(value)}")
            return None
        out = {}
        for key, raw in value.items():
            where = f"{loc}.{key}" if loc else str(key)
            if key in checkers:
                out[key] = self.check(where, checkers[key], raw)
            else:
                self.fail(where, "unknown key" + _suggest(key, checkers))
        return out

    def lookup(self, name: str) -> str:
        if name not in self.env:
            raise _Invalid(f"environment variable {name} is not set")
        return self.env[name]

    def expand(self, value: str) -> str:
        return _VAR.sub(lambda m: "${" if m.group(1) is None else self.lookup(m.group(1)), value)

    # -- one checker per kind of value: (place, raw value) -> clean value, or raise _Invalid --

    def integer(self, value: object, low: int, high: int | None = None) -> int:
        if isinstance(value, str) and self.expand(value).strip().isdigit():  # e.g. port: ${SSH_PORT}
            value = int(self.expand(value))
        if isinstance(value, int) and not isinstance(value, bool) and value >= low and (high is None or value <= high):
            return value
        wanted = f"{low}-{high}" if high is not None else f">= {low}"
        raise _Invalid(f"must be an integer {wanted}, got {_show(value)}")

    def boolean(self, loc: str, value: object) -> bool:
        if isinstance(value, bool):
            return value
        raise _Invalid(f"must be true or false, got {_show(value)}")

    def text(self, loc: str, value: object) -> str:
        text = self.expand(value) if isinstance(value, str) else ""
        if not text.strip():
            raise _Invalid(f"must be a non-empty string, got {_show(value)}")
        return text

    def name(self, loc: str, value: object) -> str:
        if isinstance(value, (str, int)) and not isinstance(value, bool) and is_simple_name(str(value)):
            return str(value)
        raise _Invalid(f"{_show(value)} is not a simple name: {RULE} "
                       "(names are typed in Slack commands, separated by spaces)")

    def host(self, loc: str, value: object) -> str:
        host = self.text(loc, value)
        problem = host_problem(host)
        if problem is not None:
            raise _Invalid(problem)
        return host

    def password(self, loc: str, value: object) -> str:
        return self.secret(value, "password", "${ROUTER_PASSWORD}")

    def secret(self, value: object, what: str, example: str) -> str:
        match = _PASSWORD_REF.fullmatch(value) if isinstance(value, str) else None
        if match is None:  # the message never repeats the value: it may be a real secret
            raise _Invalid(f"{what} must come from the environment, e.g. {example}; "
                           "credentials are not kept in files")
        if not self.lookup(match.group(1)):
            raise _Invalid(f"environment variable {match.group(1)} is empty")
        return self.lookup(match.group(1))

    def timeout(self, loc: str, value: object) -> float:
        if isinstance(value, (int, float)) and not isinstance(value, bool) and value > 0:
            return float(value)
        raise _Invalid(f"must be a number of seconds > 0, got {_show(value)}")

    def export(self, loc: str, value: object) -> str:
        command = self.text(loc, value)
        if command != "auto" and not command.startswith("/export"):
            raise _Invalid(f'must be "auto" or a command starting with "/export", got {_show(command)}')
        return command

    def key_file(self, loc: str, value: object) -> str:
        return str(self.readable_file(loc, value))

    def readable_file(self, loc: str, value: object) -> Path:
        path = self.base_dir / Path(self.text(loc, value)).expanduser()  # absolute paths stay as is
        if not path.exists():
            raise _Invalid(f"{path}: no such file")
        if not path.is_file():
            raise _Invalid(f"{path}: is not a file")
        if not os.access(path, os.R_OK):
            raise _Invalid(f"{path}: is not readable by this process")
        return path

    def base_url(self, loc: str, value: object) -> str:
        url = self.text(loc, value)
        if not _BASE_URL.fullmatch(url):
            raise _Invalid(f"{_show(url)} is not a base URL like https://backupbot.example.com "
                           "(http or https, a host, optionally a port and a path; no query)")
        return url.rstrip("/")

    def times(self, loc: str, value: object) -> tuple[str, ...]:
        if not isinstance(value, list):
            raise _Invalid(f'must be a list of "HH:MM" times, e.g. ["02:00"], got {_show(value)}')
        if not value:
            raise _Invalid('at least one time is required, e.g. ["02:00"]')
        for i, item in enumerate(value):
            if isinstance(item, int) and not isinstance(item, bool):  # YAML 1.1 reads 22:30 as 1350
                self.fail(f"{loc}[{i}]", f'write the time in quotes, e.g. "{item // 60:02d}:{item % 60:02d}" '
                          f"(unquoted, YAML reads it as the number {item})")
            elif not (isinstance(item, str) and _HHMM.fullmatch(item)):
                self.fail(f"{loc}[{i}]", f"{_show(item)} is not HH:MM")
        return tuple(t for t in value if isinstance(t, str) and _HHMM.fullmatch(t))

    def timezone(self, loc: str, value: object) -> str:
        name = self.text(loc, value)
        try:
            ZoneInfo(name)
        except (ZoneInfoNotFoundError, ValueError, OSError):
            raise _Invalid(f'unknown time zone "{name}" (use an IANA name such as '
                           '"Europe/Riga" or "UTC")') from None
        return name

    def slack_id(self, kind: str, value: object) -> str:
        pattern, example = _SLACK_ID[kind]
        text = self.expand(value) if isinstance(value, str) else value
        if isinstance(text, str) and pattern.fullmatch(text):
            return text
        if not isinstance(text, str):
            raise _Invalid(f"must be a Slack {kind} ID like {example}, got {_show(text)}")
        if text[:1] in ("#", "@") or text != text.upper():
            raise _Invalid(f"{_show(text)} looks like a name; use the {kind} ID, like {example} "
                           "(Slack shows it in the channel's details or a member's profile)")
        other = "channel" if kind == "user" else "user"
        if _SLACK_ID[other][0].fullmatch(text):
            raise _Invalid(f"{_show(text)} is a {other} ID; a {kind} ID like {example} is expected")
        raise _Invalid(f"{_show(text)} is not a Slack {kind} ID "
                       f"(like {example}: uppercase letters and digits)")

    def channel(self, loc: str, value: object) -> str:
        return self.slack_id("channel", value)

    def id_list(self, kind: str) -> Checker:
        def check(loc: str, value: object) -> frozenset[str]:
            if not isinstance(value, list):
                raise _Invalid(f"must be a list of Slack {kind} IDs, got {_show(value)}")
            ids = [self.check(f"{loc}[{i}]", lambda _, v: self.slack_id(kind, v), item)
                   for i, item in enumerate(value)]
            return frozenset(i for i in ids if i is not _BAD)
        return check

    def git_remote(self, loc: str, value: object) -> str:
        remote = self.text(loc, value)
        if _GIT_URL.fullmatch(remote):
            return remote
        return str(self.base_dir / Path(remote).expanduser())  # a local repository, like storage.path

    def git_author(self, loc: str, value: object) -> str:
        author = self.text(loc, value)
        if not _AUTHOR.fullmatch(author):
            raise _Invalid(f'{_show(author)} is not a git identity: write it as "Name <email>", '
                           'e.g. "backupbot <backupbot@example.net>"')
        return author

    def git(self, loc: str, value: object) -> GitSettings | None:
        fields = self.fields(loc, value, {"path": self.text, "remote": self.git_remote, "redact": self.boolean,
                                          "author": self.git_author})
        if not fields:  # absent, not a mapping (reported), or every key commented out: no mirror
            return None
        if "path" not in fields:
            self.fail(f"{loc}.path", "required (the mirror repository, created if missing)")
        if any(v is _BAD for v in fields.values()) or "path" not in fields:
            return None
        path = self.base_dir / Path(fields.pop("path")).expanduser()
        return GitSettings(path=path, **fields)

    def duration(self, loc: str, value: object) -> timedelta:
        """"1h", "30m", "90s", "1d" or a number of seconds."""
        seconds: int | None = None
        if isinstance(value, int) and not isinstance(value, bool):
            seconds = value
        elif isinstance(value, str) and (m := _DURATION.fullmatch(value.strip())):
            seconds = int(m.group(1)) * _UNIT[m.group(2)]
        if seconds is None:
            raise _Invalid(f'must be a duration such as "1h", "30m" or "90s" (or seconds), got {_show(value)}')
        if timedelta(seconds=seconds) < MIN_REFRESH:
            raise _Invalid(f"must be at least 1 minute, got {_show(value)}")
        return timedelta(seconds=seconds)

    def url(self, loc: str, value: object) -> str:
        url = self.text(loc, value).strip()
        parts = urllib.parse.urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise _Invalid(f'{_show(url)} is not an http(s) URL, e.g. "https://netbox.example.com"')
        if parts.query or parts.fragment:
            raise _Invalid(f'{_show(url)}: give the base URL only; filters go in "filter"')
        if parts.path.rstrip("/").endswith("/api") or "/api/" in parts.path:
            raise _Invalid(f'{_show(url)}: give NetBox\'s base URL, without "/api/..." (it is added)')
        try:
            parts.port  # noqa: B018 - raises on a port out of range
        except ValueError:
            raise _Invalid(f"{_show(url)} has a bad port") from None
        return url.rstrip("/")

    def query(self, loc: str, value: object) -> tuple[tuple[str, str], ...]:
        """NetBox filters: name -> a value or a list of values (a list repeats the parameter)."""
        if value is None:
            return ()
        if not isinstance(value, dict):
            raise _Invalid(f"must be a mapping of NetBox filter to value, e.g. {{tag: backup}}, got {_show(value)}")
        out: list[tuple[str, str]] = []
        for key, raw in value.items():
            where = f"{loc}.{key}"
            if str(key) in _PAGING:
                self.fail(where, f'backupbot sets "{key}" itself while reading every page; leave it out')
                continue
            for item in raw if isinstance(raw, list) else [raw]:
                if isinstance(item, bool) or not isinstance(item, (str, int, float)) or str(item).strip() == "":
                    self.fail(where, f"must be a value or a list of values, got {_show(raw)}")
                    break
                out.append((str(key), self.expand(item) if isinstance(item, str) else str(item)))
        return tuple(out)

    def netbox(self, loc: str, value: object) -> NetBoxSource | None:
        fields = self.fields(loc, value, {
            "url": self.url, "token": lambda _, v: self.secret(v, "token", "${NETBOX_TOKEN}"),
            "filter": self.query, "site_from": self.site_from,
            "port_field": self.name, "timeout": self.timeout})
        if fields is None:
            return None
        for key in ("url", "token"):
            if key not in fields:
                self.fail(f"{loc}.{key}", "required")
        if any(v is _BAD for v in fields.values()) or "url" not in fields or "token" not in fields:
            return None
        return NetBoxSource(**fields)

    def site_from(self, loc: str, value: object) -> str:
        if value in SITE_FROM:
            return str(value)
        raise _Invalid(f"must be one of {', '.join(SITE_FROM)} (whose slug names the site), got {_show(value)}")

    def inventory(self, loc: str, value: object) -> InventorySettings | None:
        fields = self.fields(loc, value, {
            "netbox": self.netbox, "csv": lambda loc, v: CsvSource(self.readable_file(loc, v)),
            "refresh": self.duration, "max_retire_percent": lambda loc, v: self.integer(v, 0, 100)})
        if fields is None:
            return None
        sources = [k for k in ("netbox", "csv") if k in fields]
        if len(sources) != 1:
            self.fail(loc, "needs exactly one source: netbox or csv" + (" (both are given)" if sources else ""))
            return None
        source = fields.pop(sources[0])
        if source is None or source is _BAD or any(v is _BAD for v in fields.values()):
            return None
        return InventorySettings(source=source, **fields)


    # -- the structure --

    def settings(self, data: object) -> Settings | None:
        if not isinstance(data, dict):
            self.fail("top level", "must be a mapping with at least a sites section, got "
                      + ("an empty file" if data is None else _show(data)))
            return None
        top = self.fields("", data, {
            "storage": lambda loc, v: self.fields(loc, v, {"path": self.text}) or {},
            "slack": lambda loc, v: self.fields(loc, v, {"channel": self.channel,
                                                         "admins": self.id_list("user")}) or {},
            "schedule": lambda loc, v: self.fields(loc, v, {
                "times": self.times, "timezone": self.timezone,
                "jitter": lambda loc, v: self.integer(v, 0), "quiet": self.boolean}) or {},
            "web": lambda loc, v: self.fields(loc, v, {
                "base_url": self.base_url,
                "link_minutes": lambda loc, v: self.integer(v, 1, 24 * 60)}) or {},
            "concurrency": lambda loc, v: self.integer(v, 1, 1000),  # SSH sessions across all sites
            "stale_after_hours": lambda loc, v: self.integer(v, 1),
            # a broken defaults section counts as "set" so devices don't also report missing keys
            "defaults": lambda loc, v: self.fields(loc, v, self.conn) or dict.fromkeys(_CONN_KEYS, _BAD),
            "git": self.git,
            "sites": lambda loc, v: v,  # checked below, once defaults are known
            "inventory": self.inventory,
        }) or {}
        storage = top.get("storage", {}).get("path", "data/backups.db")
        inventory = top.get("inventory")
        self.from_source = "inventory" in data  # sites may then list no devices of their own
        defaults = {**_BUILTIN, **top.get("defaults", {})}
        sites = self.sites(data.get("sites"), defaults)
        if isinstance(inventory, InventorySettings) and (
                "username" not in defaults or not ({"password", "key_file"} & set(defaults))):
            self.fail("inventory", "the devices it adds log in with `defaults`: set defaults.username and "
                      "defaults.password (or defaults.key_file)")
        storage_path = self.base_dir / Path(storage if isinstance(storage, str) else ".").expanduser()
        # What the file leaves out keeps Settings' own default (the one place defaults live).
        given: dict[str, Any] = {}
        if "concurrency" in top:
            given["concurrency"] = top["concurrency"]
        if isinstance(top.get("stale_after_hours"), int):
            given["stale_after"] = timedelta(hours=top["stale_after_hours"])
        if isinstance(top.get("git"), GitSettings):
            given["git"] = top["git"]
        if isinstance(inventory, InventorySettings):
            given["inventory"] = inventory
        return Settings(storage_path=storage_path, sites=sites, slack=SlackSettings(**top.get("slack", {})),
                        schedule=ScheduleSettings(**top.get("schedule", {})),
                        web=WebSettings(**top.get("web", {})), defaults=_connection(defaults), **given)

    def sites(self, value: object, inherited: dict[str, Any]) -> dict[str, Site]:
        if not value and self.from_source:
            return {}  # every site comes from the inventory source
        if not value:
            self.fail("sites", "at least one site is required")
            return {}
        if not isinstance(value, dict):
            self.fail("sites", f"must be a mapping of site name to site, got {_show(value)}")
            return {}
        return {str(key): self.site(f"sites.{key}", key, body, inherited) for key, body in value.items()}

    def site(self, loc: str, key: object, body: object, inherited: dict[str, Any]) -> Site:
        self.check(loc, self.name, key)
        user_ids = self.id_list("user")
        fields = self.fields(loc, body, {
            "devices": lambda loc, v: v, **self.conn, "channel": self.channel, "times": self.times,
            "timezone": self.timezone, "allowed_users": user_ids,
            "allowed_channels": self.id_list("channel"), "download_users": user_ids, "quiet": self.boolean})
        name, devices = str(key), []
        if fields is not None:
            inherited = {**inherited, **{k: v for k, v in fields.items() if k in _CONN_KEYS}}
            raw = fields.get("devices")
            if not raw and self.from_source:
                pass  # the site's settings, for the devices the inventory source lists in it
            elif not raw:
                self.fail(f"{loc}.devices", "at least one device is required")
            elif not isinstance(raw, list):
                self.fail(f"{loc}.devices", f"must be a list of devices, got {_show(raw)}")
            else:
                first: dict[str, int] = {}
                for i, item in enumerate(raw):
                    device = self.device(f"{loc}.devices[{i}]", name, item, inherited)
                    if device is None or not isinstance(device.name, str):
                        continue
                    if device.name in first:
                        self.fail(f"{loc}.devices[{i}].name", f'duplicate device "{device.name}" in site '
                                  f'"{name}" (first at devices[{first[device.name]}])')
                    first.setdefault(device.name, i)
                    devices.append(device)
        extras = {k: v for k, v in (fields or {}).items() if k not in _CONN_KEYS and k != "devices"}
        return Site(name=name, devices=tuple(devices), connection=_connection(inherited), **extras)

    def device(self, loc: str, site: str, body: object, inherited: dict[str, Any]) -> Device | None:
        fields = self.fields(loc, body, {"name": self.name, "host": self.host, **self.conn})
        if fields is None:
            return None
        for key in ("name", "host"):
            if key not in fields:
                self.fail(f"{loc}.{key}", "required")
        merged = {**inherited, **fields}  # precedence: device > site > defaults > built-in
        if "username" not in merged:
            self.fail(f"{loc}.username", "required (set it on the device, its site or in defaults)")
        if "password" not in merged and "key_file" not in merged:
            self.fail(loc, "needs a password or a key_file (on the device, its site or in defaults)")
        name = merged.get("name")
        if not isinstance(name, str):
            return None  # missing or not a name: reported above, and nothing to check duplicates against
        # A device with a problem is only looked at for duplicate names: the problems raise ConfigError.
        full: dict[str, Any] = {"host": _BAD, "username": _BAD, **merged}
        return Device(site=site, name=name, host=full["host"], port=full["port"], username=full["username"],
                      password=full.get("password"), key_file=full.get("key_file"), timeout=full["timeout"],
                      export=full["export"])
