"""`backupbot demo`: the main job on embedded defaults, with simulated routers on 127.0.0.1.

Starts a handful of RouterOS-like SSH servers, writes a real config file for them, backs them
up, changes some configs (and upgrades one router), backs up again, and prints both summaries and
a diff. The database and config stay behind so the other commands can be tried on them.

`demo --web` then serves the browser pages (bot.web) on 127.0.0.1 until Ctrl-C, the simulated
routers still running (so "Back up site now" works), and prints a signed link to the comparison
of the changed router: a newcomer sees the pages without a Slack workspace. The link names a demo
user that the demo's config makes an admin (so Download shows too); it opens for 12 hours.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import signal
import socket
import tempfile
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from typing import TextIO

import yaml

from bot.cli import terminal
from bot.app import Backend, open_backend
from bot.ssh.collector import Collector
from bot.config.load import load_settings
from bot.core.clock import utcnow
from bot.core.kinds import Trigger
from bot.core.models import Settings, WebSettings
from bot.core.text import diffs_text
from bot.slack.tasks import TaskTracker
from bot.ssh.simulator import SimDevice, Simulator, write_client_key
from bot.web import links, paths
from bot.web.app import build_ui, serving
from bot.web.links import Linker
from bot.web.pages import UiDeps
from bot.web.routes import UI

DEMO_USER = "U0DEMO0001"  # the Slack user the demo's link names; an admin of the demo's config
WebDemo = tuple[int, Mapping[str, str]]  # (port, 0 for a free one; the environment)

SITES = {
    "hq": [
        SimDevice("core-1", size=40_000),
        SimDevice("edge-1", ros_version="6.49.7", model="RB750Gr3", size=6_000),
        SimDevice("ap-1", model="C53UiG+5HPaxD2HPaxD"),
    ],
    "branch": [
        SimDevice("gw-1", ros_version="7.19.3", model="RB4011iGS+"),
        SimDevice("sw-1", model="CRS328-24P-4S+", behaviour="refuse"),
    ],
}


def _devices(site: str) -> list[dict[str, object]]:
    return [{"name": d.name, "host": d.host, "port": d.port} for d in SITES[site]]


def _config(key_file: Path, web: bool = False) -> dict[str, object]:
    return {
        "storage": {"path": "backups.db"},
        **({"slack": {"admins": [DEMO_USER]}} if web else {}),
        "concurrency": 10,
        "defaults": {"username": "backup", "key_file": str(key_file), "timeout": 15},
        "sites": {site: {"devices": _devices(site)} for site in SITES},
    }


async def run_demo(directory: Path | None, out: TextIO, colour: bool = False, web: WebDemo | None = None) -> int:
    directory = (directory or Path(tempfile.mkdtemp(prefix="backupbot-demo-"))).absolute()
    directory.mkdir(parents=True, exist_ok=True)
    public_key = write_client_key(directory / "demo_id_ed25519")
    async with Simulator() as sim:
        for device in (d for devices in SITES.values() for d in devices):
            device.authorized_key = public_key
            sim.add(device)
        await sim.start()
        config_path = directory / "backupbot.yml"
        config_path.write_text(yaml.safe_dump(_config(directory / "demo_id_ed25519", web is not None),
                                              sort_keys=False))
        settings = load_settings(config_path, {})
        collector = Collector(connect_timeout=5, retries=1, backoff=0.2)
        async with open_backend(settings, collector=collector) as backend:
            print(f"Simulated {len(sim.devices)} RouterOS devices on 127.0.0.1; sw-1 is unreachable on purpose.\n",
                  file=out)
            first = await backend.service.run(settings.devices(), Trigger.DEMO)
            print("== First backup: everything is new ==", file=out)
            print(terminal.summary(first) + "\n", file=out)

            sim.devices["core-1"].change(3)
            sim.devices["edge-1"].change(1)
            sim.devices["gw-1"].upgrade("7.20.1")
            second = await backend.service.run(settings.devices(), Trigger.DEMO)
            print("== Second backup: core-1 and edge-1 changed, gw-1 upgraded, the rest only "
                  "have new timestamps ==", file=out)
            print(terminal.summary(second) + "\n", file=out)

            changed = next((r for r in second.results if r.device.name == "core-1" and r.previous), None)
            if changed is None or changed.previous is None or changed.version is None:
                return 1  # core-1 failed this time: the summary above says why
            old_id, new_id = changed.previous.id, changed.version.id
            diffs = await backend.catalog.compare([old_id, new_id])
            text = diffs_text(diffs)
            print(f"== backupbot diff {old_id} {new_id} ==", file=out)
            out.write(terminal.colour_diff(text) if colour else text)
            print(f"\nDatabase: {settings.storage_path}\nConfig:   {config_path}\nTry:", file=out)
            for command in ("sites", "list hq", "list hq core-1", f"show {new_id}"):
                print(f"  backupbot --config {config_path} {command}", file=out)
            if web is not None:
                await serve_pages(backend, settings, (old_id, new_id), web, out)
    return 0


async def serve_pages(backend: Backend, settings: Settings, pair: tuple[int, int], web_demo: WebDemo,
                      out: TextIO) -> None:
    """The browser pages of the demo on 127.0.0.1 until Ctrl-C (or SIGTERM)."""
    port, env = web_demo
    secret = links.secret_from_env(env) if env.get(links.SECRET_ENV) else secrets.token_urlsafe(32).encode()
    sock = socket.socket()
    sock.bind(("127.0.0.1", port))  # bound first: the base URL must name the port
    base = f"http://127.0.0.1:{sock.getsockname()[1]}"
    ui = build_ui(base, secret)
    tasks = TaskTracker()
    ui[UI].start(UiDeps(catalog=backend.catalog, store=backend.store, service=backend.service, grep=backend.grep,
                        tasks=tasks, clock=utcnow))
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        async with serving(sock, ui):
            await _announce_and_wait(backend, settings, pair, base, secret, out, stop)
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)
        await tasks.drain(10.0)
        with contextlib.suppress(OSError):
            sock.close()


async def _announce_and_wait(backend: Backend, settings: Settings, pair: tuple[int, int], base: str, secret: bytes,
                             out: TextIO, stop: asyncio.Event) -> None:
    linker = Linker(replace(settings, web=WebSettings(base_url=base, link_minutes=12 * 60)), secret, utcnow)
    link = linker.compare(DEMO_USER, await backend.store.versions_by_ids(pair))
    print(f"\n== Browser pages ==\nServing the demo's pages on {base}{paths.home()} until Ctrl-C. The comparison "
          f"of core-1 (#{pair[0]} → #{pair[1]}), signed in as {DEMO_USER} (the demo's admin) for 12 hours:\n"
          f"  {link}", file=out, flush=True)
    await stop.wait()
    print("\nStopped serving the pages.", file=out, flush=True)
