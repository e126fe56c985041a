"""A local stand-in for NetBox's REST API, on 127.0.0.1 only: what several test modules share.

`FakeNetBox` serves GET /api/dcim/devices/ and /api/dcim/sites/ as NetBox 4 does: the
`Authorization: Token …` header checked (403 `{"detail": "Invalid token."}` otherwise), filters as
query parameters (`tag`, `platform`, `site`, `tenant`, `status`; a repeated parameter is "any of"),
offset pagination with `limit` (NetBox's default 50, at most `max_page`) and absolute `next` links,
and device objects with nested site/tenant/platform/tags and primary IPs with a prefix length.
`outage()` closes the port (connection refused) and `restore()` listens on it again; `mode`
makes it answer garbage ("html", "shape", "http500") or slowly ("slow"). Every request is
recorded in `requests` (path, query, Authorization header).
"""

from __future__ import annotations

import asyncio
import itertools
import urllib.parse
from dataclasses import dataclass
from typing import Any

from aiohttp import web

TOKEN = "0123456789abcdef0123456789abcdef01234567"  # a v1 token's shape: 40 hex characters
FILTERS = {"tag": lambda d: [t["slug"] for t in d["tags"]], "platform": lambda d: [(d["platform"] or {}).get("slug")],
           "site": lambda d: [d["site"]["slug"]], "tenant": lambda d: [(d["tenant"] or {}).get("slug")],
           "status": lambda d: [d["status"]["value"]]}


@dataclass
class Seen:
    path: str
    query: list[tuple[str, str]]
    authorization: str | None


class FakeNetBox:
    def __init__(self, token: str = TOKEN, max_page: int = 1000) -> None:
        self.token, self.max_page = token, max_page
        self.devices: list[dict[str, Any]] = []
        self.sites: dict[str, dict[str, Any]] = {}
        self.requests: list[Seen] = []
        self.mode = "ok"  # ok | html | shape | http500 | slow
        self.next_scheme: str | None = None  # "http": `next` written as a TLS-terminating proxy makes NetBox write it
        self.on_page: Any = None  # called with the offset before each devices page is answered
        self._ids = itertools.count(1)
        self._app = web.Application()
        self._app.router.add_get("/api/dcim/devices/", self._devices)
        self._app.router.add_get("/api/dcim/sites/", self._sites)
        self._runner: web.AppRunner | None = None
        self._site: web.TCPSite | None = None
        self.port = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def start(self) -> FakeNetBox:
        self._runner = web.AppRunner(self._app, handle_signals=False)
        await self._runner.setup()
        await self.restore()
        return self

    async def restore(self) -> None:
        """Listen (again, on the same port after an outage)."""
        assert self._runner is not None
        self._site = web.TCPSite(self._runner, "127.0.0.1", self.port, reuse_address=True)
        await self._site.start()
        self.port = self._runner.addresses[-1][1]

    async def outage(self) -> None:
        """Stop listening: connections are refused until restore()."""
        assert self._site is not None
        await self._site.stop()

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    # -- the data ------------------------------------------------------------------------------

    def site(self, slug: str, region: str | None = None) -> dict[str, Any]:
        if slug not in self.sites:
            n = len(self.sites) + 1
            self.sites[slug] = {"id": n, "url": f"{self.url}/api/dcim/sites/{n}/", "display": slug.title(),
                                "name": slug.title(), "slug": slug,
                                "region": {"id": n, "name": region, "slug": region} if region else None}
        return self.sites[slug]

    def add(self, name: str | None, site: str, ip: str | None, *, tags: tuple[str, ...] = ("backup",),
            platform: str | None = "routeros", tenant: str | None = None, status: str = "active",
            custom_fields: dict[str, Any] | None = None, region: str | None = None) -> dict[str, Any]:
        """A device as NetBox lists it; `ip` with its prefix length ("10.0.0.1/24")."""
        n = next(self._ids)
        s = self.site(site, region)
        ref = {k: s[k] for k in ("id", "url", "display", "name", "slug")}
        address = {"id": n, "url": f"{self.url}/api/ipam/ip-addresses/{n}/", "family": {"value": 4},
                   "address": ip} if ip else None
        device = {
            "id": n, "url": f"{self.url}/api/dcim/devices/{n}/", "display": name or f"Unnamed device ({n})",
            "name": name, "site": ref, "status": {"value": status, "label": status.title()},
            "tenant": {"id": n, "name": tenant, "slug": tenant} if tenant else None,
            "platform": {"id": 1, "name": platform, "slug": platform} if platform else None,
            "primary_ip": address, "primary_ip4": address, "primary_ip6": None,
            "tags": [{"id": i, "name": t, "slug": t} for i, t in enumerate(tags, 1)],
            "custom_fields": dict(custom_fields or {}),
        }
        self.devices.append(device)
        return device

    def remove(self, name: str) -> None:
        self.devices = [d for d in self.devices if d["name"] != name]

    # -- the API ------------------------------------------------------------------------------

    async def _devices(self, request: web.Request) -> web.StreamResponse:
        return await self._list(request, self.devices)

    async def _sites(self, request: web.Request) -> web.StreamResponse:
        return await self._list(request, list(self.sites.values()))

    async def _list(self, request: web.Request, objects: list[dict[str, Any]]) -> web.StreamResponse:
        query = list(request.query.items())
        self.requests.append(Seen(request.path, query, request.headers.get("Authorization")))
        if request.headers.get("Authorization") != f"Token {self.token}":
            return web.json_response({"detail": "Invalid token."}, status=403)
        if self.mode == "html":
            return web.Response(text="<html><body>502 Bad Gateway</body></html>", content_type="text/html")
        if self.mode == "http500":
            return web.json_response({"error": "Server Error"}, status=500)
        if self.mode == "slow":
            await asyncio.sleep(30)
        if self.mode == "shape":
            return web.json_response({"devices": [], "total": 0})
        offset = int(request.query.get("offset", 0))
        if request.path.endswith("/devices/") and self.on_page is not None:
            self.on_page(offset)
            objects = self.devices
        wanted: dict[str, set[str]] = {}
        for key, value in query:
            if key in FILTERS:
                wanted.setdefault(key, set()).add(value)
        chosen = [o for o in objects if all(set(FILTERS[k](o)) & values for k, values in wanted.items())]
        limit = min(int(request.query.get("limit", 50)), self.max_page)
        page = chosen[offset:offset + limit]
        nxt = None
        if offset + limit < len(chosen):
            rest = [(k, v) for k, v in query if k not in ("offset", "limit")]
            scheme = self.next_scheme or "http"
            nxt = (f"{scheme}://{request.host}{request.path}?"
                   + urllib.parse.urlencode([*rest, ("limit", limit), ("offset", offset + limit)]))
        prev = None if offset == 0 else f"http://{request.host}{request.path}?offset={max(offset - limit, 0)}"
        return web.json_response({"count": len(chosen), "next": nxt, "previous": prev, "results": page})
