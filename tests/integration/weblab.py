"""What the browser-page tests share (tests/integration/test_web_*.py): a running bot with the pages
on, simulated routers (real SSH on 127.0.0.1) whose exports the test writes, versions made by real
backup runs, signed links, and a browser-like HTTP client with its own cookie jar."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import aiohttp

from bot.core.kinds import Trigger
from bot.core.models import Settings
from bot.serve.server import BACKEND
from bot.ssh.simulator import SimDevice, Simulator
from bot.web import links
from bot.web.links import Link
from tests.integration.helpers import (
    ADMIN,
    ALICE,
    GENERAL,
    WEB_SECRET,
    SlackBot,
    add_routers,
    config_for,
    free_port,
    run_bot,
)
from tests.integration.slack_fake import FakeSlack

BOB = "U0BOB00001"  # may see hq, not vault
PASSWORD = "Hunter2-Secret"  # a PPP secret in every export: never on a page
SCRIPT = "<script>alert(1)</script>"

BASE = [
    "/interface bridge", "add name=bridge vlan-filtering=yes",
    "/ip address", "add address=10.0.0.1/24 interface=bridge network=10.0.0.0",
    "/ip firewall address-list",
    *[f"add address=10.1.{k // 200}.{k % 200} list=customers" for k in range(400)],
    "/ip firewall filter",
    f'add action=drop chain=input comment="{SCRIPT}" in-interface-list=WAN',
    'add action=accept chain=input comment="allow ssh from mgmt" dst-port=22 protocol=tcp src-address-list=mgmt',
    "/ppp secret", f"add name=branch password={PASSWORD} service=l2tp",
    "/system identity", "set name=core-1",
]
CHANGED = [line.replace("10.1.0.150 list=customers", "10.1.0.150 list=blocked")
           .replace('comment="allow ssh from mgmt" dst-port=22', 'comment="allow ssh from mgmt" dst-port=2222')
           for line in BASE]
CHANGED.insert(CHANGED.index("/ppp secret"), "add action=drop chain=forward comment=\"new rule\" src-address-list=bad")


def body(lines: list[str]) -> str:
    """An export's body (the simulator adds the header)."""
    return "\n".join(lines) + "\n"


@dataclass
class WebLab:
    bot: SlackBot
    slack: FakeSlack
    settings: Settings
    routers: dict[str, SimDevice]
    ids: dict[str, list[int]] = field(default_factory=dict)  # device -> its versions, oldest first

    @property
    def base_url(self) -> str:
        assert self.settings.web.base_url is not None
        return self.settings.web.base_url

    async def backup(self, device: str) -> int:
        site = next(s for s in self.settings.sites.values() if s.device(device))
        summary = await self.bot.app[BACKEND].service.run([site.device(device)], Trigger.CLI)
        version = summary.results[0].version
        assert version is not None
        if not self.ids.get(device) or self.ids[device][-1] != version.id:
            self.ids.setdefault(device, []).append(version.id)
        return version.id

    def link(self, user: str, page: str, site: str | None = "hq", *, issued: datetime | None = None,
             minutes: int = 15) -> str:
        """A signed link, exactly as the bot makes them (bot.web.links)."""
        at = issued or datetime.now(timezone.utc)
        token = links.sign(WEB_SECRET, Link(user, site, page, at, at + timedelta(minutes=minutes)))
        return f"{self.base_url}/ui/open?t={token}"


@asynccontextmanager
async def web_lab(tmp_path: Path, slack: FakeSlack, simulator: Simulator) -> AsyncIterator[WebLab]:
    """hq (core-1 with two versions, the second after a RouterOS upgrade; edge-1 with one) for
    everyone, ALICE may download hq; vault (vault-1) for ADMIN only."""
    port = free_port()
    core, edge, vault = await add_routers(
        simulator, SimDevice("core-1", ros_version="7.18.2", body=body(BASE)),
        SimDevice("edge-1", body=body(BASE[:6])), SimDevice("vault-1", body=body(BASE[:4])))
    settings = config_for(tmp_path, {"hq": [core, edge], "vault": [vault]},
                          site_options={"vault": {"allowed_users": [ADMIN]}, "hq": {"download_users": [ALICE]}},
                          top={"web": {"base_url": f"http://127.0.0.1:{port}"}})
    async with run_bot(settings, slack, port=port) as bot:
        lab = WebLab(bot, slack, settings, {d.name: d for d in (core, edge, vault)})
        for device in ("core-1", "edge-1", "vault-1"):
            await lab.backup(device)
        core.body = body(CHANGED)
        core.upgrade("7.19.1")
        await lab.backup("core-1")
        yield lab


class Browser:
    """A browser-like HTTP client: its own cookies, redirects followed, every answer kept whole."""

    def __init__(self, session: aiohttp.ClientSession, base: str) -> None:
        self.session, self.base = session, base

    async def get(self, url: str, **kw: Any) -> tuple[int, str, aiohttp.ClientResponse]:
        full = url if url.startswith("http") else self.base + url
        async with self.session.get(full, **kw) as resp:
            return resp.status, await resp.text(), resp

    async def post(self, url: str, data: dict[str, str], **kw: Any) -> tuple[int, str, aiohttp.ClientResponse]:
        async with self.session.post(self.base + url, data=data, **kw) as resp:
            return resp.status, await resp.text(), resp

    async def json(self, url: str) -> tuple[int, Any]:
        status, text, _ = await self.get(url)
        return status, json.loads(text) if status == 200 else text

    def cookie(self, name: str) -> str | None:
        for morsel in self.session.cookie_jar:
            if morsel.key == name:
                return morsel.value
        return None


@asynccontextmanager
async def browser(base: str) -> AsyncIterator[Browser]:
    # unsafe=True: keep cookies of an IP address (127.0.0.1), as a real browser does
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as session:
        yield Browser(session, base)


def path_of(url: str) -> str:
    parts = urlsplit(url)
    return parts.path + (f"?{parts.query}" if parts.query else "")


__all__ = ["ADMIN", "ALICE", "BOB", "GENERAL", "PASSWORD", "SCRIPT", "Browser", "WebLab", "body", "browser",
           "path_of", "web_lab"]
