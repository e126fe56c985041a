"""The browser pages in a real headless Chromium (Debian's `chromium`, driven by Playwright) against
the bot's real server: tick two versions and compare, colours read from computed styles, word-level
highlights, the unified toggle (remembered), a config's `<script>` shown as text and never run,
refusals, a phone-sized screen, and a search whose hit opens the version at its highlighted line.
Screenshots of the compare and search pages land in test-artifacts/.

Chromium is looked up on PATH; without it these tests are skipped on a workstation and FAIL in CI
(the CI variable is set), where .ci/run installs it with apt-get.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import AsyncIterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from bot.ssh.simulator import Simulator
from tests.helpers import ROOT
from tests.integration.slack_fake import FakeSlack
from tests.integration.weblab import ALICE, BOB, PASSWORD, SCRIPT, WebLab, web_lab

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
ARTIFACTS = ROOT / "test-artifacts"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--disable-sync", "--no-first-run", "--disable-default-apps", "--disable-extensions"]


@pytest.fixture(scope="module")
def chromium() -> str:
    if CHROMIUM is None:
        if os.environ.get("CI"):
            pytest.fail("chromium is not installed: .ci/run installs it (apt-get install -y chromium)")
        pytest.skip("chromium is not installed (apt-get install chromium)")
    return CHROMIUM


@pytest.fixture
async def browser(chromium: str) -> AsyncIterator[Any]:
    from playwright.async_api import async_playwright

    async with async_playwright() as p:
        instance = await p.chromium.launch(executable_path=chromium, args=ARGS)
        try:
            yield instance
        finally:
            await instance.close()


@pytest.fixture
async def lab(tmp_path: Path, slack: FakeSlack, simulator: Simulator) -> AsyncIterator[WebLab]:
    async with web_lab(tmp_path, slack, simulator) as lab:
        yield lab


class Watch:
    """Everything a page does that it should not: dialogs (alert), console errors, CSP reports."""

    def __init__(self, page: Any) -> None:
        self.dialogs: list[str] = []
        self.errors: list[str] = []

        async def dialog(d: Any) -> None:
            self.dialogs.append(d.message)
            await d.dismiss()

        page.on("dialog", dialog)
        page.on("console", lambda m: self.errors.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: self.errors.append(str(e)))


async def style(page: Any, selector: str, prop: str) -> str:
    return await page.eval_on_selector(selector, f"e => getComputedStyle(e).{prop}")


def rgb(value: str) -> tuple[int, int, int]:
    r, g, b = (int(x) for x in value[value.index("(") + 1:value.index(")")].split(",")[:3])
    return r, g, b


async def visible_table(page: Any) -> str:
    return await page.evaluate("""() => [...document.querySelectorAll('table.diff')]
        .filter(t => getComputedStyle(t).display !== 'none').map(t => t.classList.contains('uni') ? 'uni' : 'sbs')
        .join(',')""")


async def test_tick_two_versions_and_compare_them(browser: Any, lab: WebLab) -> None:
    old, new = lab.ids["core-1"]
    context = await browser.new_context(viewport={"width": 1280, "height": 900})
    page = await context.new_page()
    watch = Watch(page)
    await page.goto(lab.link(ALICE, "/ui/device/hq/core-1"))
    assert await page.is_disabled("button[data-needs='2']")  # Compare waits for two ticks
    await page.check(f"input[value='{new}']")
    assert await page.is_enabled("button[data-needs='1']") and await page.is_disabled("button[data-needs='2']")
    await page.check(f"input[value='{old}']")
    assert await page.is_disabled("button[data-needs='1']")
    await page.click("button[data-needs='2']")
    await page.wait_for_url("**/ui/compare?*")
    assert f"#{old} (" in await page.inner_text("h2") and f"→ #{new} (" in await page.inner_text("h2")
    assert await visible_table(page) == "sbs"

    removed = "table.diff.sbs td.t.del:has-text('list=customers')"
    added = "table.diff.sbs td.t.add:has-text('list=blocked')"
    r, g, b = rgb(await style(page, removed, "backgroundColor"))
    assert r > g + 10 and r > b + 10, "a removed line is red"
    r, g, b = rgb(await style(page, added, "backgroundColor"))
    assert g > r + 10 and g > b, "an added line is green"
    assert await page.inner_text(f"{removed} .m") == "-" and await page.inner_text(f"{added} .m") == "+"
    assert await page.inner_text(f"{removed} mark") == "customers" and await page.inner_text(f"{added} mark") == "blocked"
    word = rgb(await style(page, f"{removed} mark", "backgroundColor"))
    line = rgb(await style(page, removed, "backgroundColor"))
    assert sum(word) < sum(line), "a changed word is highlighted more strongly than its line"

    # the comment with <script> is text on the page, and nothing ran
    cell = page.locator("table.diff.sbs td.t", has_text="alert(1)").first
    assert SCRIPT in await cell.inner_text()
    assert await page.evaluate("document.querySelectorAll('main script').length") == 0

    ARTIFACTS.mkdir(exist_ok=True)
    await page.screenshot(path=str(ARTIFACTS / "compare-desktop.png"), full_page=True)

    # unified, remembered across a reload, and back
    await page.click("button[data-layout='uni']")
    assert await visible_table(page) == "uni"
    assert await page.get_attribute("button[data-layout='uni']", "aria-pressed") == "true"
    await page.reload()
    assert await visible_table(page) == "uni"
    r, g, b = rgb(await style(page, "table.diff.uni td.t.del", "backgroundColor"))
    assert r > g + 10
    await page.screenshot(path=str(ARTIFACTS / "compare-desktop-unified.png"), full_page=True)
    await page.click("button[data-layout='sbs']")
    await page.reload()
    assert await visible_table(page) == "sbs"

    # a fold opens in place: 50 more unchanged lines, numbered, in both layouts
    before = await page.locator("table.diff.sbs tr.same").count()
    await page.locator("table.diff.sbs tr.fold button", has_text="↓").first.click()
    await page.locator("table.diff.sbs tr.same").nth(before + 49).wait_for(state="attached")
    assert await page.locator("table.diff.sbs tr.same").count() == before + 50
    assert await page.locator("table.diff.uni tr.same").count() == before + 50
    assert watch.dialogs == [] and watch.errors == []
    await context.close()


async def test_a_phone_gets_unified_and_no_sideways_scroll(browser: Any, lab: WebLab) -> None:
    old, new = lab.ids["core-1"]
    context = await browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True,
                                        device_scale_factor=2)
    page = await context.new_page()
    watch = Watch(page)
    for path in (f"/ui/compare?v={old}&v={new}", "/ui/site/hq", "/ui/device/hq/core-1", f"/ui/version/{new}", "/ui/"):
        await page.goto(lab.link(ALICE, path, site=None if path == "/ui/" else "hq"))
        overflow = await page.evaluate("document.documentElement.scrollWidth - document.documentElement.clientWidth")
        assert overflow <= 0, f"{path} scrolls sideways by {overflow}px"
        if path.startswith("/ui/compare"):
            assert await visible_table(page) == "uni"  # side by side falls back to unified
            assert not await page.is_visible("button[data-layout='sbs']")
            await page.screenshot(path=str(ARTIFACTS / "compare-phone.png"), full_page=True)
    assert watch.dialogs == [] and watch.errors == []
    await context.close()


async def test_refusals_in_the_browser(browser: Any, lab: WebLab) -> None:
    context = await browser.new_context()
    page = await context.new_page()
    vault = lab.ids["vault-1"][0]
    response = await page.goto(lab.link(BOB, "/ui/site/hq"))
    assert response.status == 200
    response = await page.goto(f"{lab.base_url}/ui/version/{vault}")
    assert response.status == 403 and "/backup SITE" in await page.inner_text("main")
    link = lab.link(BOB, "/ui/site/hq")
    response = await page.goto(link[:-3] + ("AAA" if not link.endswith("AAA") else "BBB"))
    assert response.status == 403 and "signature" in await page.inner_text("main")
    expired = lab.link(BOB, "/ui/site/hq", issued=datetime.now(timezone.utc) - timedelta(hours=1))
    response = await page.goto(expired)
    assert response.status == 403 and "expired" in await page.inner_text("main")
    await context.close()


async def test_search_the_configs_and_follow_a_hit_to_its_highlighted_line(browser: Any, lab: WebLab) -> None:
    """From the site page's Search configs box to the results, then a hit's line number to the View
    page, scrolled to that line and highlighted; on a phone too, without sideways scrolling."""
    new = lab.ids["core-1"][-1]
    context = await browser.new_context(viewport={"width": 1280, "height": 900})
    page = await context.new_page()
    watch = Watch(page)
    await page.goto(lab.link(ALICE, "/ui/site/hq"))
    await page.fill("#grep-q", "allow ssh")
    await page.press("#grep-q", "Enter")
    await page.wait_for_url("**/ui/search?*")
    assert "1 device, 1 line" in await page.inner_text("p.summary")
    assert await page.inner_text("table.grep tr.hit mark") == "allow ssh"
    mark = rgb(await style(page, "table.grep tr.hit mark", "backgroundColor"))
    row = rgb(await style(page, "table.grep tr.hit td.t", "backgroundColor"))
    assert sum(mark) < sum(row) < 3 * 255, "the match stands out from its line, which stands out from the page"
    cell = page.locator("table.grep td.t", has_text="alert(1)").first
    assert SCRIPT in await cell.inner_text()  # context lines are text too
    ARTIFACTS.mkdir(exist_ok=True)
    await page.screenshot(path=str(ARTIFACTS / "search.png"), full_page=True)
    await page.goto(f"{lab.base_url}/ui/search?q={PASSWORD}")  # ALICE may download hq: found, never shown
    assert await page.is_visible("table.grep tr.hit.secret .secret-tag")
    assert PASSWORD not in await page.inner_text("main section.device-hits")
    await page.screenshot(path=str(ARTIFACTS / "search-secret.png"), full_page=True)
    await page.go_back()

    number = int(await page.inner_text("table.grep tr.hit td.n a"))
    await page.click("table.grep tr.hit td.n a")
    await page.wait_for_url(f"**/ui/version/{new}#L{number}")
    target = page.locator(":target")
    assert await target.get_attribute("id") == f"L{number}" and "allow ssh" in await target.inner_text()
    assert rgb(await style(page, ":target td.t", "backgroundColor")) == (0xff, 0xe5, 0x8a)  # --target-bg
    box = await target.bounding_box()
    assert box is not None and 0 <= box["y"] < 900, "the browser scrolled to the line"
    await page.screenshot(path=str(ARTIFACTS / "search-view.png"))
    assert watch.dialogs == [] and watch.errors == []
    await context.close()

    phone = await browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True,
                                      device_scale_factor=2)
    page = await phone.new_page()
    watch = Watch(page)
    await page.goto(lab.link(ALICE, "/ui/search?q=list%3Dblocked&i=1", site=None))
    assert "1 device, 1 line" in await page.inner_text("p.summary")
    overflow = await page.evaluate("document.documentElement.scrollWidth - document.documentElement.clientWidth")
    assert overflow <= 0, f"the search page scrolls sideways by {overflow}px"
    await page.screenshot(path=str(ARTIFACTS / "search-phone.png"), full_page=True)
    await page.click("table.grep tr.hit td.n a")
    await page.wait_for_url("**/ui/version/*#L*")
    overflow = await page.evaluate("document.documentElement.scrollWidth - document.documentElement.clientWidth")
    assert overflow <= 0 and await page.locator(":target").count() == 1
    assert watch.dialogs == [] and watch.errors == []
    await phone.close()
