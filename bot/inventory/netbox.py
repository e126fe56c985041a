"""NetBox as an inventory source: GET /api/dcim/devices/ with the configured filters, every page.

Reading (aiohttp, one session per fetch; every request has the configured timeout):
- `Authorization: Token <token>` for NetBox's classic (v1) tokens, `Bearer <token>` for the v2
  tokens NetBox 4.5 introduced (they start with "nbt_"). The token is registered with the log
  scrubber (bot.core.logs) and never appears in a message.
- Filters are query parameters exactly as NetBox's web UI writes them (`tag=backup`,
  `platform=routeros`, a list repeats the parameter); backupbot adds `limit` and follows `next`.
  `next` is followed on the configured origin only (its path and query, our scheme and host): a
  NetBox behind a proxy often writes `http://` there, and the token never goes anywhere else.
- The answer must look like NetBox's list (`count`, `next`, `results` of devices with a site):
  anything else (an HTML login page, a proxy's error, JSON of another shape) is an InventoryError
  and the fetch is discarded. So is a list whose size changed while it was paged through (a
  device added or deleted in the middle shifts the offsets, and a device skipped that way would
  be retired); it is read again at the next refresh.

Mapping a NetBox device (`devices_from`, pure):
- name: the device's name; site: the slug of its site, region or tenant (`site_from`; the region
  is the site's, read once per fetch from /api/dcim/sites/);
- host: `primary_ip` (NetBox's preferred family), else `primary_ip4`, else `primary_ip6`, without
  the prefix length;
- port: the custom field named by `port_field` when it holds a port, else the site's/defaults' port.
A device without a name, a primary IP, a region/tenant, or whose name or slug is not a simple name
(bot.core.names) is skipped, and the reason shown by `backupbot inventory`.
"""

from __future__ import annotations

import json
import urllib.parse
from collections.abc import Mapping, Sequence
from typing import Any

import aiohttp

from bot.core.errors import InventoryError
from bot.core.logs import register_secret
from bot.core.models import NetBoxSource, SourceDevice
from bot.core.names import RULE, host_problem, is_simple_name
from bot.inventory.merge import Fetched, dedupe

DEVICES = "/api/dcim/devices/"
SITES = "/api/dcim/sites/"
PAGE_SIZE = 250  # well under NetBox's default MAX_PAGE_SIZE (1000)
MAX_PAGES = 2000  # 500,000 devices: past this the `next` links are going round in circles
_SHOWN = 120  # characters of a non-JSON answer quoted in the error


def authorization(token: str) -> str:
    return f"Bearer {token}" if token.startswith("nbt_") else f"Token {token}"


class NetBox:
    """Reads the devices of one NetBox (an inventory source: `describe`, `fetch`)."""

    def __init__(self, config: NetBoxSource) -> None:
        self.config = config
        register_secret(config.token)
        base = urllib.parse.urlsplit(config.url)
        self._origin = (base.scheme, base.netloc)
        self._prefix = base.path.rstrip("/")

    @property
    def describe(self) -> str:
        return self.config.describe

    async def fetch(self) -> Fetched:
        """Every device the filters select; InventoryError if NetBox cannot be read or answers garbage."""
        headers = {"Authorization": authorization(self.config.token), "Accept": "application/json"}
        timeout = aiohttp.ClientTimeout(total=self.config.timeout)
        try:
            async with aiohttp.ClientSession(headers=headers, timeout=timeout) as session:
                devices = await self._all(session, DEVICES, self.config.filter)
                regions = await self._regions(session) if self.config.site_from == "region" else {}
        except TimeoutError:
            raise InventoryError(f"NetBox did not answer within {self.config.timeout:g} s") from None
        except aiohttp.ClientError as exc:
            raise InventoryError(f"NetBox cannot be reached ({type(exc).__name__}: {exc})") from None
        found, skipped = devices_from(devices, self.config, regions)
        return Fetched(self.describe, tuple(found), tuple(skipped))

    def _url(self, path: str, query: Sequence[tuple[str, str]]) -> str:
        return urllib.parse.urlunsplit((*self._origin, self._prefix + path, urllib.parse.urlencode(query), ""))

    async def _all(self, session: aiohttp.ClientSession, path: str,
                   query: Sequence[tuple[str, str]]) -> list[dict[str, Any]]:
        """Every object of a NetBox list, page by page, each object once (by id)."""
        url: str | None = self._url(path, [*query, ("limit", str(PAGE_SIZE))])
        seen: set[str] = set()
        objects: dict[int, dict[str, Any]] = {}
        counts: list[int] = []
        while url is not None:
            if url in seen or len(seen) >= MAX_PAGES:
                raise InventoryError(f"NetBox's pages of {path} do not end (page {len(seen) + 1}: {url})")
            seen.add(url)
            page = await self._page(session, url, path)
            counts.append(page["count"])
            for item in page["results"]:
                objects[item["id"]] = item
            nxt = page["next"]
            url = None if nxt is None else self._follow(nxt)
        # A device added or deleted between two pages shifts the offsets: one device is then never
        # seen (and would be retired) while the total may still look right, so the count must not move.
        if len(set(counts)) > 1 or len(objects) != counts[-1]:
            raise InventoryError(f"NetBox's list of {path} changed while it was read (it counted "
                                 f"{' then '.join(map(str, dict.fromkeys(counts)))}, the pages held {len(objects)}); "
                                 "it is read again at the next refresh")
        return list(objects.values())

    def _follow(self, nxt: str) -> str:
        """`next` on the configured origin: its path and query only."""
        parts = urllib.parse.urlsplit(nxt)
        return urllib.parse.urlunsplit((*self._origin, parts.path, parts.query, ""))

    async def _page(self, session: aiohttp.ClientSession, url: str, path: str) -> dict[str, Any]:
        async with session.get(url, allow_redirects=False) as response:
            body = await response.read()
            if response.status in (401, 403):
                raise InventoryError(f"NetBox refused the token (HTTP {response.status}{_detail(body)}); "
                                     "check inventory.netbox.token and the token's permissions")
            if response.status != 200:
                raise InventoryError(f"NetBox answered HTTP {response.status} for {path}{_detail(body)}")
        try:
            page = json.loads(body)
        except (UnicodeDecodeError, json.JSONDecodeError):
            shown = body[:_SHOWN].decode("utf-8", "replace").strip()
            raise InventoryError(f"NetBox's answer for {path} is not JSON "
                                 f"({response.content_type or 'no content type'}: {shown!r})") from None
        return _check_page(page, path)

    async def _regions(self, session: aiohttp.ClientSession) -> dict[int, str]:
        """Each site's region slug, by site id (sites without a region are left out)."""
        regions = {}
        for site in await self._all(session, SITES, ()):
            region = site.get("region")
            if isinstance(region, dict) and isinstance(region.get("slug"), str):
                regions[site["id"]] = region["slug"]
        return regions


def _detail(body: bytes) -> str:
    """NetBox's own reason (`{"detail": "Invalid token"}`), when it gave one."""
    try:
        detail = json.loads(body).get("detail")
    except (ValueError, AttributeError):
        return ""
    return f": {detail}" if isinstance(detail, str) and detail else ""


def _check_page(page: object, path: str) -> dict[str, Any]:
    """The page, if it has the shape of a NetBox list; InventoryError naming what is wrong."""
    where = f"NetBox's answer for {path} is not a NetBox list"
    if not isinstance(page, dict):
        raise InventoryError(f"{where} (a JSON {type(page).__name__}, not an object)")
    missing = [k for k in ("count", "next", "results") if k not in page]
    if missing:
        raise InventoryError(f"{where} (no {', '.join(missing)})")
    if not isinstance(page["count"], int) or isinstance(page["count"], bool) or page["count"] < 0:
        raise InventoryError(f"{where} (count is {page['count']!r})")
    if page["next"] is not None and not isinstance(page["next"], str):
        raise InventoryError(f"{where} (next is {page['next']!r})")
    if not isinstance(page["results"], list):
        raise InventoryError(f"{where} (results is not a list)")
    for i, item in enumerate(page["results"]):
        if not isinstance(item, dict) or not isinstance(item.get("id"), int):
            raise InventoryError(f"{where} (results[{i}] is not an object with an id)")
        if path == DEVICES and not isinstance(item.get("site"), dict):
            raise InventoryError(f"{where} (results[{i}], device {item['id']}, has no site)")
    return page


def _slug(value: object) -> str | None:
    return value.get("slug") if isinstance(value, dict) and isinstance(value.get("slug"), str) else None


def _address(device: Mapping[str, Any]) -> str | None:
    for key in ("primary_ip", "primary_ip4", "primary_ip6"):
        ip = device.get(key)
        if isinstance(ip, dict) and isinstance(ip.get("address"), str) and ip["address"].strip():
            return str(ip["address"]).strip().split("/", 1)[0]
    return None


def _port(value: object) -> int | None:
    """A custom field's value as a port (an integer field, or a text field holding digits)."""
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value)
    if isinstance(value, int) and not isinstance(value, bool) and 1 <= value <= 65535:
        return value
    return None


def devices_from(items: Sequence[Mapping[str, Any]], config: NetBoxSource,
                 regions: Mapping[int, str]) -> tuple[list[SourceDevice], list[str]]:
    """NetBox devices as source devices, and a line per device that cannot be one. Pure."""
    found: list[SourceDevice] = []
    skipped: list[str] = []
    for item in sorted(items, key=lambda i: i["id"]):
        origin = f"NetBox device {item['id']}"
        name = item.get("name")
        label = f'{origin} ("{name}")' if isinstance(name, str) else origin
        site_obj = item["site"]
        site = {"site": _slug(site_obj), "tenant": _slug(item.get("tenant")),
                "region": regions.get(site_obj.get("id", -1))}[config.site_from]
        host = _address(item)
        port: int | None = None  # the site's or defaults' port unless the custom field gives one
        raw_port = (item.get("custom_fields") or {}).get(config.port_field) if config.port_field else None
        if not isinstance(name, str) or not name:
            skipped.append(f"{origin}: has no name")
        elif not is_simple_name(name):
            skipped.append(f"{label}: the name is not a simple name ({RULE}); rename it in NetBox, or add the "
                           "device to backupbot.yml under a simple name and filter it out")
        elif site is None:
            skipped.append(f"{label}: has no {config.site_from} (site_from: {config.site_from})")
        elif not is_simple_name(site):
            skipped.append(f'{label}: its {config.site_from} slug "{site}" is not a simple name ({RULE})')
        elif host is None:
            skipped.append(f"{label}: has no primary IP address")
        elif (problem := host_problem(host)) is not None:
            skipped.append(f"{label}: primary IP {problem}")
        elif raw_port is not None and (port := _port(raw_port)) is None:
            skipped.append(f"{label}: custom field {config.port_field} is {raw_port!r}, not a port 1-65535")
        else:
            found.append(SourceDevice(site, name, host, port, origin))
    kept, duplicates = dedupe(found)
    return kept, skipped + duplicates
