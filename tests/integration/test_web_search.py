"""The search page (/ui/search) over real HTTP against the bot's real server with a real session:
the latest backups of real SSH backups from the simulator, searched by the same killable child
processes as /backup grep. Hits with their sections, numbers and context; who sees which devices
and counts; secrets never searchable without download rights and never shown; bad patterns as a
clear 400 page; many results counted and never cut silently; each hit's link opening the View page
at its own line, also after a script the View page splits."""

from __future__ import annotations

import asyncio
import html
import re
import time
from collections.abc import AsyncIterator
from pathlib import Path
from urllib.parse import urlencode

import pytest

from bot.serve.server import BACKEND
from bot.ssh.simulator import Simulator
from bot.web.app import CSP
from tests.integration.slack_fake import FakeSlack
from tests.integration.weblab import ADMIN, ALICE, BASE, BOB, PASSWORD, SCRIPT, Browser, WebLab, body, browser, web_lab

TRACEBACK = re.compile(r"Traceback|File \"|line \d+, in ")
ROW = re.compile(r'<tr class="(hit|ctx)( secret)?"><td class="n"><a href="([^"]+)"[^>]*>(\d+)</a></td>'
                 r'<td class="t">(.*?)</td></tr>')
DEVICE = re.compile(r'<section class="device-hits" aria-label="([^"]+)">(.*?)</section>', re.S)


@pytest.fixture
async def lab(tmp_path: Path, slack: FakeSlack, simulator: Simulator) -> AsyncIterator[WebLab]:
    async with web_lab(tmp_path, slack, simulator) as lab:
        yield lab


async def signed_in(lab: WebLab, br: Browser, user: str) -> None:
    status, _, _ = await br.get(lab.link(user, "/ui/", site=None))
    assert status == 200


async def search(br: Browser, **params: str) -> tuple[int, str]:
    status, text, resp = await br.get("/ui/search?" + urlencode(params))
    assert resp.headers["Content-Security-Policy"] == CSP and not TRACEBACK.search(text)
    return status, text


def devices(page: str) -> dict[str, list[tuple[str, str, int, str, bool]]]:
    """{site/device: [(hit|ctx, View link, number, text as shown, inside a secret)]} of a result page."""
    return {label: [(kind, html.unescape(href), int(no), html.unescape(re.sub(r"<[^>]+>", "", text)), bool(secret))
                    for kind, secret, href, no, text in ROW.findall(section)]
            for label, section in DEVICE.findall(page)}


async def normalized_lines(lab: WebLab, version_id: int) -> list[str]:
    """The config as `backupbot show` numbers it."""
    return (await lab.bot.app[BACKEND].catalog.config(version_id)).splitlines()


async def test_hits_come_with_their_section_number_context_and_the_match_marked(lab: WebLab) -> None:
    new = lab.ids["core-1"][-1]
    lines = await normalized_lines(lab, new)
    number = next(i + 1 for i, line in enumerate(lines) if "allow ssh" in line)
    async with browser(lab.base_url) as br:
        await signed_in(lab, br, BOB)
        status, page = await search(br, q="allow ssh")
        assert status == 200
        assert "<strong>1 device, 1 line</strong> match “allow ssh” · searched the latest backups of 2 devices" in page
        found = devices(page)
        assert list(found) == ["hq/core-1"]
        rows = found["hq/core-1"]
        assert [(kind, no) for kind, _, no, _, _ in rows] == [
            ("ctx", number - 2), ("ctx", number - 1), ("hit", number), ("ctx", number + 1), ("ctx", number + 2)]
        assert [text for _, _, _, text, _ in rows] == lines[number - 3:number + 2]
        assert rows[0][3] == "/ip firewall filter" and 'class="run"' not in page  # its section's head is in it
        assert 'comment=&#34;<mark>allow ssh</mark> from mgmt&#34; dst-port=2222' in page  # the match marked
        assert SCRIPT not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page  # context is text, escaped
        assert f'href="/ui/version/{new}?line={number}"' in page and f'href="/ui/version/{new}">#{new}</a>' in page
        assert "<script>" not in page.replace('<script src="/ui/static/ui.js"></script>', "")

        status, page = await search(br, q="list=blocked")  # deep in its section: the section named above
        assert '<tr class="run"><th colspan="2" scope="rowgroup">/ip firewall address-list</th></tr>' in page

        # a regular expression, ignoring case; the same without -i matches nothing
        status, page = await search(br, q=r"ALLOW SSH.*dst-port=\d{4}", re="1", i="1")
        assert status == 200 and list(devices(page)) == ["hq/core-1"]
        assert 'comment=&#34;<mark>allow ssh from mgmt&#34; dst-port=2222</mark> protocol=tcp' in page
        status, page = await search(br, q=r"ALLOW SSH.*dst-port=\d{4}", re="1")
        assert status == 200 and "No line matches regex “ALLOW SSH.*dst-port=\\d{4}” in the latest backups of 2 devices." in page
        assert 'value="ALLOW SSH.*dst-port=\\d{4}"' in page and 'name="re" value="1" checked' in page  # kept

        # one site, one device: the section heads move with the scope
        status, page = await search(br, q="10.0.0.1/24", site="hq", device="edge-1")
        assert status == 200 and list(devices(page)) == ["hq/edge-1"] and "Search configs <span class=\"muted\">in hq/edge-1" in page
        assert 'href="/ui/search?q=10.0.0.1%2F24&amp;site=hq"' in page  # widen to the site


async def test_a_user_never_gets_the_devices_or_counts_of_a_site_they_may_not_see(lab: WebLab) -> None:
    """vault-1 has the same address line as the hq routers; only ADMIN may see vault."""
    async with browser(lab.base_url) as br:
        await signed_in(lab, br, BOB)
        status, page = await search(br, q="10.0.0.1/24")
        assert status == 200 and list(devices(page)) == ["hq/core-1", "hq/edge-1"]
        assert "2 devices, 2 lines" in page and "the latest backups of 2 devices" in page and "vault" not in page
        status, page = await search(br, q="10.0.0.1/24", site="vault")
        assert status == 403 and "vault-1" not in page
        status, page = await search(br, q="10.0.0.1/24", site="vault", device="vault-1")
        assert status == 403 and "vault-1" not in page
    async with browser(lab.base_url) as br:
        await signed_in(lab, br, ADMIN)
        status, page = await search(br, q="10.0.0.1/24")
        assert list(devices(page)) == ["hq/core-1", "hq/edge-1", "vault/vault-1"] and "3 devices, 3 lines" in page
        assert '<option value="vault">vault</option>' in page


async def test_a_secret_is_found_only_with_download_rights_and_never_shown(lab: WebLab) -> None:
    """BOB may not download hq: its redacted text is searched, so guessing the PPP secret finds nothing.
    ALICE may: the secret is found, the line shown redacted and marked, with the page's warning."""
    async with browser(lab.base_url) as br:
        await signed_in(lab, br, BOB)
        status, page = await search(br, q=PASSWORD)
        assert status == 200 and "No line matches" in page and devices(page) == {}
        assert PASSWORD not in echoed_away(page, PASSWORD)  # only where BOB's own pattern is repeated
    async with browser(lab.base_url) as br:
        await signed_in(lab, br, ALICE)
        status, page = await search(br, q=PASSWORD)
        assert status == 200 and "1 device, 1 line" in page
        ((_, _, _, text, secret),) = [row for row in devices(page)["hq/core-1"] if row[0] == "hit"]
        assert secret and text.startswith("add name=branch password=<redacted:") and PASSWORD not in text
        assert "matched only inside a secret value" in page and "This page is for you alone" in page
        assert PASSWORD not in echoed_away(page, PASSWORD) and "<mark>" not in page  # nothing shown to mark
        status, page = await search(br, q="name=branch")  # outside the secret: marked, still redacted
        ((_, _, _, text, secret),) = [row for row in devices(page)["hq/core-1"] if row[0] == "hit"]
        assert not secret and "<mark>name=branch</mark> password=&lt;redacted:" in page and PASSWORD not in page


def echoed_away(page: str, pattern: str) -> str:
    """The page without the places that repeat the pattern typed: the box and the summary."""
    assert f'value="{pattern}"' in page and f"“{pattern}”" in page
    return page.replace(f'value="{pattern}"', "").replace(f"“{pattern}”", "")


async def test_bad_patterns_and_requests_get_a_clear_page(lab: WebLab) -> None:
    async with browser(lab.base_url) as br:
        status, page = await search(br, q="x")
        assert status == 403 and "not signed in" in page  # no session, no search
        await signed_in(lab, br, BOB)
        status, page = await search(br, q="add (name", re="1")
        assert status == 400 and '<p class="error" role="alert">Not a valid regular expression: missing ), ' \
                                 'unterminated subpattern at position 4.</p>' in page
        assert 'value="add (name"' in page and devices(page) == {}  # the form as typed, to fix it
        status, page = await search(br, q="a" * 201)
        assert status == 400 and "The pattern is 201 characters long; at most 200 are allowed." in page
        status, page = await search(br, q="")
        assert status == 200 and 'id="grep-q"' in page and "No line matches" not in page  # just the form
        status, page = await search(br, q="x", device="core-1")
        assert status == 400 and "give the site too" in page
        status, page = await search(br, q="x", site="nowhere")
        assert status == 404 and "Unknown site" in page
        status, page = await search(br, q="x", site="hq", device="core-9")
        assert status == 404 and 'Unknown device &#34;core-9&#34; in site &#34;hq&#34;. Did you mean: core-1?' in page
        status, page, _ = await br.get(f"/ui/version/{lab.ids['core-1'][-1]}?line=99999")
        assert status == 400 and "has no line 99,999" in page
        status, page, _ = await br.get(f"/ui/version/{lab.ids['vault-1'][-1]}?line=1")
        assert status == 403 and "belongs to a site you may not see" in page


async def test_a_pathological_regex_is_stopped_and_told_on_the_page(lab: WebLab) -> None:
    """`(a+)+$` on a long line of a's would run for years: the search runs in the same killable child
    processes as /backup grep, the bot keeps answering meanwhile, and the page says why it stopped."""
    lab.routers["edge-1"].body = body(["/system note", 'set note="' + "a" * 40 + 'b" show-at-login=no'])
    await lab.backup("edge-1")
    lab.bot.app[BACKEND].grep.time_limit = 1.0  # the real search, with a shorter limit than 10 s
    async with browser(lab.base_url) as br, browser(lab.base_url) as other:
        await signed_in(lab, br, BOB)
        await signed_in(lab, other, BOB)
        slow = asyncio.create_task(search(br, q="(a+)+$", re="1"))
        await asyncio.sleep(0.3)
        started = time.monotonic()
        status, _, _ = await other.get("/ui/site/hq")
        assert status == 200 and time.monotonic() - started < 1.0 and not slow.done()
        status, page = await slow
        assert status == 400 and "The search was stopped after 1 s without finishing" in page
        assert 'value="(a+)+$"' in page
        status, page = await search(br, q="(a+)+b", re="1")  # the next search works
        assert status == 200 and "1 device, 1 line" in page


async def test_many_results_are_counted_and_never_cut_silently(lab: WebLab) -> None:
    """core-1 has 399 `list=customers` lines; edge-1 gets 600 and vault-1 3: 1,002 lines, of which the
    page shows the first 500 (every device of them named and counted)."""
    lab.routers["edge-1"].body = body(["/ip firewall address-list",
                                        *[f"add address=10.9.{k // 200}.{k % 200} list=customers" for k in range(600)]])
    lab.routers["vault-1"].body = body([*BASE[:4], "/ip firewall address-list",
                                        *[f"add address=10.8.0.{k} list=customers" for k in range(3)]])
    await lab.backup("edge-1")
    await lab.backup("vault-1")
    async with browser(lab.base_url) as br:
        await signed_in(lab, br, ADMIN)
        status, page = await search(br, q="list=customers")
        assert status == 200 and "<strong>3 devices, 1,002 lines</strong>" in page
        assert "The first 500 of 1,002 matching lines are shown; every one is counted." in page
        found = devices(page)
        assert list(found) == ["hq/core-1", "hq/edge-1"]
        assert sum(kind == "hit" for kind, *_ in found["hq/core-1"]) == 399
        assert sum(kind == "hit" for kind, *_ in found["hq/edge-1"]) == 101
        assert "600 matching lines (101 shown)" in page  # more than a page holds: no "see all" link
        more = page[page.index("More matching devices"):]
        assert 'href="/ui/device/vault/vault-1">vault/vault-1</a>' in more and "<td>3 · <a href=" in more
        narrow = html.unescape(re.search(r'<td>3 · <a href="([^"]+)">show them</a>', more)[1])
        assert narrow == "/ui/search?q=list%3Dcustomers&site=vault&device=vault-1"
        status, page = await search(br, q="list=customers", site="vault", device="vault-1")
        assert status == 200 and "1 device, 3 lines" in page and "The first" not in page
        assert sum(kind == "hit" for kind, *_ in devices(page)["vault/vault-1"]) == 3


async def test_a_hit_opens_the_view_page_at_its_line_after_a_split_script(lab: WebLab) -> None:
    """A script's `\\r\\n` escapes are separate lines on the View page; the hit after it still lands
    on its own line there, and the line is the page's target."""
    script = 'add name=up source=":log info \\"one\\"\\r\\n:log info \\"two\\"\\r\\n:log info \\"three\\""'
    lab.routers["edge-1"].body = body(["/system script", script, "/system identity", "set name=after-the-script"])
    new = await lab.backup("edge-1")
    lines = await normalized_lines(lab, new)
    number = lines.index("set name=after-the-script") + 1
    async with browser(lab.base_url) as br:
        await signed_in(lab, br, BOB)
        _, page = await search(br, q="after-the-script")
        ((_, href, shown_no, _, _),) = [row for row in devices(page)["hq/edge-1"] if row[0] == "hit"]
        assert shown_no == number and href == f"/ui/version/{new}?line={number}"
        status, _, resp = await br.get(href, allow_redirects=False)
        assert status == 303 and resp.headers["Location"] == f"/ui/version/{new}#L{number + 2}"  # 2 more lines
        status, view, _ = await br.get(resp.headers["Location"])
        row = re.search(rf'<tr id="L{number + 2}"[^>]*>(.*?)</tr>', view)[1]
        assert status == 200 and "set name=after-the-script" in row
        script_rows = [re.search(rf'<tr id="L{n}"[^>]*>(.*?)</tr>', view)[1] for n in (number - 2, number - 1, number)]
        assert "add name=up source=" in script_rows[0]  # the script's line, then its two more on the page
        assert all(r"    \n:log info" in html.unescape(r) for r in script_rows[1:])


async def test_the_site_page_searches_its_configs_and_every_page_the_fleet(lab: WebLab) -> None:
    async with browser(lab.base_url) as br:
        await signed_in(lab, br, BOB)
        _, page, _ = await br.get("/ui/site/hq")
        assert re.search(r'<form class="search" method="get" action="/ui/search" role="search">\s*'
                         r'<label for="grep-q">Search configs</label>\s*<input type="hidden" name="site" value="hq">', page)
        assert 'action="/ui/site/hq"' in page  # the device-name search stays
        for path in ("/ui/", "/ui/site/hq", "/ui/device/hq/core-1", f"/ui/version/{lab.ids['core-1'][-1]}"):
            _, page, _ = await br.get(path)
            assert '<form class="top-search" method="get" action="/ui/search" role="search">' in page, path
        _, page, _ = await br.get("/ui/device/hq/core-1")
        assert '<input type="hidden" name="device" value="core-1">' in page
