"""How fast is the Compare page of two 100,000-line exports? The server against the diff itself,
and a real Chromium loading and unfolding the page, in one run.

Two exports are built by benchmarks/diff_speed.py's generator (an ISP edge router: a big address
list, leases, rules; about 14 % of the lines changed, in short runs), stored through the real Store
(zstd deltas, sha256-checked reads), and served by the real /ui/ application (bot.web, as
`backupbot serve` and `demo --web` mount it) on 127.0.0.1.

Rows:
  diff alone        bot.routeros.diff.diff of the two redacted normalized texts, in this process:
                    the reference (what any comparison costs)
  Slack's compare   Catalog.compare(redact=True), what `/backup diff` does before rendering: read,
                    normalize and redact both versions, diff (in the CPU worker)
  server, cold      GET /ui/compare with nothing cached (a new bot.web.texts.Texts: a scope of its
                    own in the CPU worker): read both versions' blobs from the store, decode,
                    normalize and redact each (as Slack does; one in each CPU worker, at once),
                    diff, lay out, highlight the first part's words, render it
    of which        the same two steps timed apart, with nothing cached: the two versions'
                    redacted lines (one after the other), then the comparison
  server, warm      the same request again (versions never change, so the texts and the layout
                    are kept in the CPU worker: later parts, folds and reloads cost this)
  peak memory       of the CPU workers and of this process over the cold and warm rows (VmHWM)
  more changes      the next part of the comparison (JSON, as the page's script asks)
  fold              50 unchanged lines of a fold (JSON)
Browser (Debian's chromium, headless, via Playwright): time to DOMContentLoaded and to load (with
the server cold, then a reload with it warm), and the longest main-thread task
(PerformanceObserver "longtask", which reports tasks over 50 ms; 0 means none) while loading,
while opening a fold and while adding the next part.

The last line is the server's cold answer over the diff alone (target: at most 2x), wall clock.

    python benchmarks/web_compare.py                  # 100,000 lines
    python benchmarks/web_compare.py --lines 20000 --repeat 3
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import os
import shutil
import socket
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path
from statistics import median

import aiohttp

sys.path.insert(0, str(Path(__file__).resolve().parent))
from diff_speed import build

from bot.backup.offload import cpu, cpu_aside
from bot.core.models import Settings, Site, WebSettings
from bot.app import open_backend
from bot.core.kinds import Trigger
from bot.core.models import Status
from bot.routeros import diff as diffing
from bot.routeros import export as routeros
from bot.routeros import redact as redaction
from bot.slack.tasks import TaskTracker
from bot.web.app import build_ui, serving
from bot.web.links import Linker
from bot.web.pages import UiDeps
from bot.web.routes import UI

SECRET = b"benchmark-web-secret-0123456789abcdef"
USER = "U0BENCH001"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--disable-sync", "--no-first-run"]
LONGTASKS = """
window.__long = [];
new PerformanceObserver(list => { for (const e of list.getEntries()) window.__long.push(e.duration); })
  .observe({type: 'longtask', buffered: true});
"""


def ms(seconds: float) -> str:
    return f"{seconds * 1000:,.0f} ms"


async def store_versions(settings: Settings, old_raw: bytes, new_raw: bytes) -> list[int]:
    async with open_backend(settings) as backend:
        ids = []
        for raw, status in ((old_raw, Status.NEW), (new_raw, Status.CHANGED)):
            run = await backend.store.start_run(Trigger.CLI, datetime.now(timezone.utc), "isp")
            norm = hashlib.sha256(routeros.normalize(raw).encode()).hexdigest()
            version = await backend.store.add_version(run, "isp", "edge-1", datetime.now(timezone.utc), raw, norm,
                                                      routeros.parse_header(raw.decode()[:4096]), status, 0, 0, None)
            await backend.store.finish_run(run, datetime.now(timezone.utc))
            ids.append(version.id)
        return ids


def cpu_workers() -> list[int]:
    """The pids of the CPU workers (bot.backup.offload), oldest first: our children that
    multiprocessing spawned (not its resource tracker)."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
            if int(fields[1]) == os.getpid() and b"spawn_main" in (stat.parent / "cmdline").read_bytes():
                found.append((int(fields[19]), int(stat.parent.name)))  # start time, pid
        except (OSError, IndexError, ValueError):
            continue
    if not found:
        raise SystemExit("no CPU worker found")
    return [pid for _, pid in sorted(found)]


def peak_rss(pid: int, reset: bool = False) -> float:
    """The process's peak resident memory in MB (VmHWM); with reset, its current size, and the
    peak starts again from it (Linux: clear_refs 5)."""
    status = Path(f"/proc/{pid}/status")
    if reset:
        Path(f"/proc/{pid}/clear_refs").write_text("5")
    field = "VmRSS:" if reset else "VmHWM:"
    kb = next(line.split()[1] for line in status.read_text().splitlines() if line.startswith(field))
    return int(kb) / 1024


def diff_alone(old_raw: bytes, new_raw: bytes, key: bytes, repeat: int) -> float:
    old = redaction.redact(routeros.normalize(old_raw), key)
    new = redaction.redact(routeros.normalize(new_raw), key)
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        diffing.diff(old, new)
        best = min(best, time.perf_counter() - t0)
    return best


async def timed_get(session: aiohttp.ClientSession, url: str) -> tuple[float, str]:
    t0 = time.perf_counter()
    async with session.get(url) as resp:
        body = await resp.text()
        assert resp.status == 200, (resp.status, body[:300])
    return time.perf_counter() - t0, body


async def in_browser(link: str) -> dict[str, float]:
    from playwright.async_api import async_playwright

    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        raise SystemExit("chromium is not installed (apt-get install chromium)")
    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path=chromium, args=ARGS)
        page = await (await browser.new_context(viewport={"width": 1280, "height": 900})).new_page()
        await page.add_init_script(LONGTASKS)
        await page.goto(link, wait_until="load")
        nav = await page.evaluate("() => { const n = performance.getEntriesByType('navigation')[0];"
                                  " return [n.domContentLoadedEventEnd, n.loadEventEnd, n.transferSize]; }")
        load_long = await page.evaluate("() => Math.max(0, ...window.__long)")
        await page.reload(wait_until="load")  # the server warm now: what the browser itself costs
        again = await page.evaluate("() => { const n = performance.getEntriesByType('navigation')[0];"
                                    " return [n.responseStart, n.domContentLoadedEventEnd, n.loadEventEnd]; }")
        reload_long = await page.evaluate("() => Math.max(0, ...window.__long)")
        rows = await page.locator("table.diff.sbs tr").count()
        await page.evaluate("() => { window.__long = []; }")
        before = await page.locator("table.diff.sbs tr.same").count()
        button = page.locator("table.diff.sbs tr.fold button").first
        n = int(await button.get_attribute("data-n") or 0)
        t0 = time.perf_counter()
        await button.click()
        await page.locator("table.diff.sbs tr.same").nth(before + n - 1).wait_for(state="attached")
        fold = time.perf_counter() - t0
        await page.wait_for_timeout(200)
        fold_long = await page.evaluate("() => Math.max(0, ...window.__long)")
        await page.evaluate("() => { window.__long = []; }")
        before = await page.locator("table.diff.sbs tr").count()
        t0 = time.perf_counter()
        await page.click("a.more")
        await page.locator("table.diff.sbs tr").nth(before + 100).wait_for(state="attached")
        more = time.perf_counter() - t0
        await page.wait_for_timeout(200)
        more_long = await page.evaluate("() => Math.max(0, ...window.__long)")
        await browser.close()
    return {"dcl": nav[0] / 1000, "load": nav[1] / 1000, "bytes": nav[2], "rows": rows, "load_long": load_long / 1000,
            "re_first": again[0] / 1000, "re_dcl": again[1] / 1000, "re_load": again[2] / 1000,
            "re_long": reload_long / 1000,
            "fold": fold, "fold_long": fold_long / 1000, "more": more, "more_long": more_long / 1000}


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lines", type=int, default=100_000, help="normalized lines per export")
    parser.add_argument("--repeat", type=int, default=3, help="runs per server row (best is reported)")
    parser.add_argument("--seed", type=int, default=9)
    args = parser.parse_args()
    old_raw, new_raw = build(args.lines, args.seed)
    with tempfile.TemporaryDirectory(prefix="backupbot-web-") as tmp:
        settings = Settings(Path(tmp) / "backups.db", {"isp": Site("isp", ())})
        old_id, new_id = await store_versions(settings, old_raw, new_raw)
        async with open_backend(settings) as backend:
            key = await backend.store.instance_key()
            await cpu(len, "warm up the CPU workers")  # they start on first use; not part of any request
            await cpu_aside(len, "warm up the CPU workers")
            alone = diff_alone(old_raw, new_raw, key, args.repeat)
            slack = float("inf")
            for _ in range(args.repeat):
                t0 = time.perf_counter()
                await backend.catalog.compare([old_id, new_id], redact=True)
                slack = min(slack, time.perf_counter() - t0)
            sock = socket.socket()
            sock.bind(("127.0.0.1", 0))
            base = f"http://127.0.0.1:{sock.getsockname()[1]}"
            ui = build_ui(base, SECRET)
            tasks = TaskTracker()

            def fresh() -> None:  # a new UiDeps: nothing cached
                ui[UI].start(UiDeps(catalog=backend.catalog, store=backend.store, service=backend.service,
                                    grep=backend.grep, tasks=tasks, clock=lambda: datetime.now(timezone.utc)))

            fresh()
            web_settings = Settings(settings.storage_path, settings.sites, web=WebSettings(base_url=base))
            versions = await backend.store.versions_by_ids([old_id, new_id])
            linker = Linker(web_settings, SECRET, lambda: datetime.now(timezone.utc))
            async with serving(sock, ui), aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as session:
                link = linker.compare(USER, versions)
                assert link is not None
                async with session.get(link, allow_redirects=False) as resp:  # a session cookie, no page
                    page_url = base + resp.headers["Location"]
                cold, warm = [], []
                watched = [*cpu_workers(), os.getpid()]
                before = {pid: peak_rss(pid, reset=True) for pid in watched}
                for _ in range(args.repeat):
                    fresh()
                    cold.append((await timed_get(session, page_url))[0])
                    warm.append((await timed_get(session, page_url))[0])
                peaks = {pid: peak_rss(pid) for pid in watched}
                _, body = await timed_get(session, page_url)
                more_url = base + body.split('class="button more" href="')[1].split('"')[0].replace("&amp;", "&")
                more, _ = await timed_get(session, more_url + "&fragment=1")
                fold, _ = await timed_get(session, f"{base}/ui/version/{new_id}/lines?start=0&count=50&old=0")
                old_lines, new_lines = routeros.normalize(old_raw).count("\n"), routeros.normalize(new_raw).count("\n")
                layout = (await ui[UI].deps.texts.compare(versions)).pairs[0]
                print(f"{args.lines:,} lines: old {old_lines:,} / new {new_lines:,} normalized lines, "
                      f"+{layout.added:,} -{layout.removed:,} in {layout.hunks:,} hunks, {layout.parts} parts; "
                      f"first page {len(body) / 1e6:.2f} MB of HTML")
                print(f"  {'diff alone (reference)':<34} {ms(alone):>10}")
                print(f"  {'Slack-s compare (redact=True)'.replace('-', chr(39)):<34} {ms(slack):>10}")
                print(f"  {f'server, cold (best of {args.repeat})':<34} {ms(min(cold)):>10}   "
                      f"median {ms(median(cold))}")
                fresh()
                t0 = time.perf_counter()
                for v in versions:
                    await ui[UI].deps.texts.lines(v.id, 0, 1)
                texts = time.perf_counter() - t0
                t0 = time.perf_counter()
                await ui[UI].deps.texts.compare(versions)
                planned = time.perf_counter() - t0
                print(f"  {'  of which redacted lines (2)':<34} {ms(texts):>10}   (read, decoded, normalized, redacted "
                      "as Slack, split; one after the other here, at once in the cold row)")
                print(f"  {'  of which diff + plan + 1st part':<34} {ms(planned):>10}   (in the CPU worker)")
                print(f"  {f'server, warm (best of {args.repeat})':<34} {ms(min(warm)):>10}")
                print(f"  {'peak memory (cold and warm rows)':<34} " + ", ".join(
                    f"{name} {peaks[pid]:,.0f} MB (from {before[pid]:,.0f})"
                    for name, pid in zip(("CPU worker", "its second", "bot process"), watched[-3:]))
                      + " (the bot process holds the benchmark's exports too)")
                print(f"  {'more changes (next part, JSON)':<34} {ms(more):>10}")
                print(f"  {'fold (50 lines, JSON)':<34} {ms(fold):>10}")
                fresh()
                b = await in_browser(link)
                print(f"  browser, server cold: DOMContentLoaded {ms(b['dcl'])}, load {ms(b['load'])} "
                      f"({b['rows']:,} rows); longest task {ms(b['load_long'])}")
                print(f"  browser, reload (server warm): first byte {ms(b['re_first'])}, DOMContentLoaded "
                      f"{ms(b['re_dcl'])}, load {ms(b['re_load'])}; longest task {ms(b['re_long'])}")
                print(f"  browser: fold opened in {ms(b['fold'])} (longest task {ms(b['fold_long'])}); "
                      f"next part added in {ms(b['more'])} (longest task {ms(b['more_long'])})")
            await tasks.drain(5)
    print(f"ratio {args.lines // 1000}k: server cold {min(cold) / alone:.1f}x the diff alone (warm "
          f"{min(warm) / alone:.1f}x; cold {min(cold) / slack:.1f}x Slack's compare); target <= 2x")


if __name__ == "__main__":
    asyncio.run(main())
