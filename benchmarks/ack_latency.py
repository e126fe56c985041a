"""Slack ack latency while a 1,000-device backup runs: does the bot still answer within 3 s?

    python benchmarks/ack_latency.py [--devices 1000] [--requests 400] [--rate 40] [--in-flight 16]

Three processes, all on 127.0.0.0/8:
  simulator   `python -m bot.ssh.simulator --count N --base-host 127.0.1.1 --delay D` (its own process)
  bot         the real `backupbot serve` (aiohttp + Bolt), its Web API pointed at the fake below
  this one    a fake Slack Web API + response_url endpoint (tests/integration/slack_fake.py) and the
              load: signed slash commands and button presses exactly as Slack sends them

It starts the backup of every site through Slack (`/backup site-NN now`), then, while the backup
runs, sends --requests signed requests at --rate per second (at most --in-flight at once): sites,
a site, a device's versions, search, show, diff, help, a joining `now`, paging and Compare
buttons. It prints time-to-HTTP-response (the ack) p50/p90/p99/max (target: p99 < 100 ms), how
many requests were answered while the backup was running, the time until each query's answer
reached response_url, and the backup's wall time.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import resource
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.parse
from pathlib import Path
from typing import Any

import aiohttp
import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # for tests.integration.slack_fake

from tests.integration.helpers import sign  # noqa: E402
from tests.integration.slack_fake import BOT_TOKEN, FakeSlack  # noqa: E402

SECRET = "bench-signing-secret"
PASSWORD_VAR = "BACKUPBOT_SIM_PASSWORD"
PASSWORD = "bench-secret"
ADMIN = "U0BENCHADM1"
CHANNEL = "C0BENCHCHN1"
SITE_SIZE = 100


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def write_config(devices: list[dict[str, Any]], work: Path, concurrency: int) -> tuple[Path, dict[str, list[str]]]:
    sites: dict[str, list[dict[str, Any]]] = {}
    for i, d in enumerate(devices):
        sites.setdefault(f"site-{i // SITE_SIZE:02d}", []).append({"name": d["name"], "host": d["host"],
                                                                   "port": d["port"]})
    path = work / "backupbot.yml"
    path.write_text(yaml.safe_dump({
        "storage": {"path": str(work / "bench.db")}, "concurrency": concurrency,
        "slack": {"admins": [ADMIN]},
        "defaults": {"username": "backup", "password": f"${{{PASSWORD_VAR}}}", "timeout": 120},
        "sites": {name: {"devices": devs} for name, devs in sites.items()},
    }))
    return path, {name: [d["name"] for d in devs] for name, devs in sites.items()}


class Load:
    def __init__(self, url: str, slack: FakeSlack, session: aiohttp.ClientSession) -> None:
        self.url, self.slack, self.session = url, slack, session
        self.n = 0
        self.acks: list[tuple[str, float, float, int]] = []  # (kind, sent at, latency, status)
        self.sent: dict[str, tuple[str, float]] = {}  # response key -> (kind, sent at)

    async def _post(self, kind: str, body: str, key: str) -> None:
        headers = {**sign(body, secret=SECRET), "Content-Type": "application/x-www-form-urlencoded"}
        t0 = time.monotonic()
        self.sent[key] = (kind, t0)
        async with self.session.post(self.url + "/slack/events", data=body, headers=headers) as resp:
            await resp.read()
        self.acks.append((kind, t0, time.monotonic() - t0, resp.status))

    def _key(self) -> str:
        self.n += 1
        return f"k{self.n}"

    async def command(self, text: str, kind: str | None = None) -> str:
        key = self._key()
        body = urllib.parse.urlencode({
            "token": "x", "team_id": "T0FAKETEAM", "channel_id": CHANNEL, "channel_name": "bench",
            "user_id": ADMIN, "user_name": "admin", "command": "/backup", "text": text,
            "response_url": self.slack.response_url(key), "trigger_id": "1.1"})
        await self._post(kind or text.split()[0] if text else "help", body, key)
        return key

    async def action(self, action_id: str, value: str, state: dict[str, Any] | None = None) -> str:
        key = self._key()
        payload = {"type": "block_actions", "user": {"id": ADMIN}, "team": {"id": "T0FAKETEAM"},
                   "channel": {"id": CHANNEL}, "container": {"type": "message", "channel_id": CHANNEL},
                   "actions": [{"action_id": action_id, "value": value, "type": "button", "block_id": "b"}],
                   "state": {"values": state or {}}, "response_url": self.slack.response_url(key)}
        await self._post(action_id, "payload=" + urllib.parse.quote(json.dumps(payload)), key)
        return key


def request_mix(sites: dict[str, list[str]], rng: random.Random) -> list[tuple[str, tuple[Any, ...]]]:
    names = list(sites)
    site = rng.choice(names)
    device = rng.choice(sites[site])
    a, b = sorted(rng.sample(range(1, 300), 2))
    return [
        ("command", ("sites",)), ("command", (site,)), ("command", (f"{site} {device}", "site device")),
        ("command", (f"search {device[:6]}", "search")), ("command", (f"show {a}", "show")),
        ("command", (f"diff {a} {b}", "diff")), ("command", ("help",)), ("command", (f"{site} now", "now (join)")),
        ("command", ("nosuchsite", "unknown site")),
        ("action", ("page_versions", f"{site} {device} 0")), ("action", ("open_device", f"{site} {device}")),
        ("action", ("compare_selected", f"{site} {device}",
                    {"v": {"select_versions": {"type": "checkboxes",
                                               "selected_options": [{"value": str(a)}, {"value": str(b)}]}}})),
    ]


async def run(args: argparse.Namespace, devices: list[dict[str, Any]], work: Path) -> None:
    slack = FakeSlack()
    await slack.start()
    config, sites = write_config(devices, work, args.concurrency)
    port, admin_port = await free_port(), await free_port()  # not 9090: it may be taken on a shared machine
    bot = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bot", "--config", str(config), "serve", "--host", "127.0.0.1", "--port", str(port),
        "--admin-port", str(admin_port),
        stderr=asyncio.subprocess.PIPE, cwd=ROOT,
        env={**os.environ, PASSWORD_VAR: PASSWORD, "SLACK_BOT_TOKEN": BOT_TOKEN, "SLACK_SIGNING_SECRET": SECRET,
             "SLACK_API_URL": slack.api_url})
    assert bot.stderr is not None
    log_lines: list[bytes] = []

    async def drain_log() -> None:
        # Keep reading the bot's log: a full pipe would block the bot on its next log line.
        async for line in bot.stderr:
            log_lines.append(line)

    drainer = asyncio.create_task(drain_log())
    try:
        for _ in range(600):
            if any(b"listening" in line for line in log_lines) or bot.returncode is not None:
                break
            await asyncio.sleep(0.1)
        if not any(b"listening" in line for line in log_lines):
            sys.exit("bot did not start:\n" + b"".join(log_lines[-20:]).decode(errors="replace"))
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=args.in_flight * 2)) as session:
            load = Load(f"http://127.0.0.1:{port}", slack, session)
            t_backup = time.monotonic()
            backup_keys = [await load.command(f"{name} now", "now (start)") for name in sites]

            def summaries() -> int:
                return sum(1 for k in backup_keys for r in slack.responses(k) if r["text"].startswith("Backup of"))

            await asyncio.sleep(args.warmup)
            rng = random.Random(7)
            slots = asyncio.Semaphore(args.in_flight)
            during = 0

            async def one(i: int) -> None:
                nonlocal during
                kind, call = rng.choice(request_mix(sites, rng))
                async with slots:
                    running = summaries() < len(sites)
                    if kind == "command":
                        await load.command(*call)
                    else:
                        await load.action(*call)
                    during += running and summaries() < len(sites)

            tasks = []
            for i in range(args.requests):
                tasks.append(asyncio.create_task(one(i)))
                await asyncio.sleep(1 / args.rate)
            await asyncio.gather(*tasks)
            load_done = time.monotonic()
            while summaries() < len(sites):
                await asyncio.sleep(0.2)
                if time.monotonic() - t_backup > args.timeout:
                    sys.exit("backup did not finish in time")
            backup_wall = time.monotonic() - t_backup
            await asyncio.sleep(1.0)  # let the last answers arrive
    finally:
        bot.terminate()
        await bot.wait()
        await drainer
        await slack.stop()
    report(load, slack, backup_keys, sites, backup_wall, load_done - t_backup, during, args)


def report(load: Load, slack: FakeSlack, backup_keys: list[str], sites: dict[str, list[str]], backup_wall: float,
           load_wall: float, during: int, args: argparse.Namespace) -> None:
    latencies = [lat * 1000 for kind, _, lat, _ in load.acks if kind != "now (start)"]
    bad = [(kind, status) for kind, _, _, status in load.acks if status != 200]
    print(f"{len(latencies)} signed requests at ~{args.rate}/s (≤{args.in_flight} in flight) during a backup of "
          f"{sum(map(len, sites.values()))} devices in {len(sites)} sites; {during} answered while it was still "
          f"running; non-200: {len(bad)} {bad[:5]}")
    print(f"ack (time to HTTP response) ms: p50 {percentile(latencies, 50):.1f}  p90 {percentile(latencies, 90):.1f}"
          f"  p99 {percentile(latencies, 99):.1f}  max {max(latencies):.1f}  mean {statistics.mean(latencies):.1f}"
          f"   target p99 < 100 ms: {'OK' if percentile(latencies, 99) < 100 else 'MISSED'}")
    by_kind: dict[str, list[float]] = {}
    for kind, _, lat, _ in load.acks:
        by_kind.setdefault(kind, []).append(lat * 1000)
    print("  by request: "
          + ", ".join(f"{k} p99 {percentile(v, 99):.0f} ({len(v)})" for k, v in sorted(by_kind.items())))
    answers = []
    for call in slack.calls:
        if call.method == "response_url" and call.key in load.sent and call.key not in backup_keys:
            kind, t0 = load.sent[call.key]
            if kind not in ("now (join)",):
                answers.append((call.at - t0) * 1000)
    if answers:
        print(f"answer via response_url (queries) ms: p50 {percentile(answers, 50):.0f}  "
              f"p99 {percentile(answers, 99):.0f}  max {max(answers):.0f}  ({len(answers)} answers)")
    uploads = len(slack.completed_uploads())
    print(f"backup of every site: {backup_wall:.1f} s wall (load ran for the first {load_wall:.1f} s); "
          f"{uploads} snippets uploaded")


async def free_port() -> int:
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--devices", type=int, default=1000)
    p.add_argument("--delay", type=float, default=0.2, help="seconds each simulated export takes")
    p.add_argument("--sizes", default="3000,40000,1000000")
    p.add_argument("--mix", default="70,25,5")
    p.add_argument("--concurrency", type=int, default=100, help="SSH sessions at once (config)")
    p.add_argument("--requests", type=int, default=400)
    p.add_argument("--rate", type=float, default=40.0, help="requests started per second")
    p.add_argument("--in-flight", type=int, default=16)
    p.add_argument("--warmup", type=float, default=1.0, help="seconds between starting the backup and the load")
    p.add_argument("--timeout", type=float, default=600.0)
    args = p.parse_args()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, min(hard, 65536)), hard))
    sim = subprocess.Popen(
        [sys.executable, "-m", "bot.ssh.simulator", "--count", str(args.devices), "--base-host", "127.0.1.1",
         "--port", "2222", "--sizes", args.sizes, "--mix", args.mix, "--delay", str(args.delay),
         "--password-var", PASSWORD_VAR],
        stdout=subprocess.PIPE, text=True, cwd=ROOT, env={**os.environ, PASSWORD_VAR: PASSWORD})
    try:
        assert sim.stdout is not None
        devices = json.loads(sim.stdout.readline())["devices"]
        print(f"{len(devices)} simulated routers on 127.0.1.x (exports {args.sizes} bytes, mix {args.mix}, "
              f"{args.delay} s each), backup concurrency {args.concurrency}, {os.cpu_count()} CPUs")
        with tempfile.TemporaryDirectory(prefix="bench-ack-") as work:
            asyncio.run(run(args, devices, Path(work)))
    finally:
        sim.terminate()
        sim.wait(10)


if __name__ == "__main__":
    main()
