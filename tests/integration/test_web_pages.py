"""The browser pages over real HTTP against the bot's real server (bot.serve.server with web.base_url):
signed links and sessions, every page, refusals as plain 403 pages, logout, CSRF, the fold and
"more changes" endpoints, and "Back up site now" answered in the requester's Slack DM. Versions are
made by real SSH backups of simulated routers (tests/integration/weblab.py)."""

from __future__ import annotations

import logging
import re
from collections.abc import AsyncIterator
from datetime import datetime, timedelta, timezone
from http.cookies import SimpleCookie
from pathlib import Path

import pytest

from bot.ssh.simulator import Simulator
from bot.web import sessions
from bot.web.app import CSP
from tests.helpers import until
from tests.integration.helpers import settle
from tests.integration.slack_fake import FakeSlack
from tests.integration.weblab import ADMIN, ALICE, BOB, PASSWORD, SCRIPT, WebLab, body, browser, web_lab

TRACEBACK = re.compile(r"Traceback|File \"|line \d+, in ")


@pytest.fixture
async def lab(tmp_path: Path, slack: FakeSlack, simulator: Simulator) -> AsyncIterator[WebLab]:
    async with web_lab(tmp_path, slack, simulator) as lab:
        yield lab


def compare_page(lab: WebLab) -> str:
    old, new = lab.ids["core-1"]
    return f"/ui/compare?v={old}&v={new}"


async def test_a_signed_link_gives_a_session_cookie_and_its_page(lab: WebLab) -> None:
    async with browser(lab.base_url) as br:
        status, text, resp = await br.get(lab.link(ALICE, compare_page(lab)), allow_redirects=False)
        assert status == 303 and resp.headers["Location"] == compare_page(lab)
        cookie = SimpleCookie(resp.headers["Set-Cookie"])[sessions.COOKIE]
        assert cookie["httponly"] and cookie["samesite"] == "Lax" and cookie["path"] == "/ui/"
        assert int(cookie["max-age"]) == 12 * 3600 and not cookie["secure"]  # http base URL: not Secure
        status, text, resp = await br.get(resp.headers["Location"])
        assert status == 200 and "t=" not in str(resp.url)
        assert resp.headers["Content-Security-Policy"] == CSP
        assert resp.headers["X-Content-Type-Options"] == "nosniff" and resp.headers["Referrer-Policy"] == "no-referrer"
        assert resp.headers["Cache-Control"] == "no-store"
        assert "+3" in text and "-2" in text and "Header: RouterOS 7.18.2 → 7.19.1" in text
        assert 'list=<mark>customers</mark>' in text and 'list=<mark>blocked</mark>' in text  # word-level
        assert SCRIPT not in text and "&lt;script&gt;alert(1)&lt;/script&gt;" in text  # text, escaped
        assert PASSWORD not in text and "password=&lt;redacted:" in text  # redacted as in Slack
        assert "<script>" not in text.replace('<script src="/ui/static/ui.js"></script>', "")  # no inline script
        assert "style=" not in text  # no inline style (the CSP would block it)


async def test_every_page_for_a_user_who_may_see_the_site(lab: WebLab) -> None:
    old, new = lab.ids["core-1"]
    async with browser(lab.base_url) as br:
        await br.get(lab.link(ALICE, "/ui/", site=None))
        status, text, _ = await br.get("/ui/")
        assert status == 200 and 'href="/ui/site/hq"' in text and "vault" not in text  # only what ALICE may see
        status, text, _ = await br.get("/ui/site/hq")
        assert status == 200 and "core-1" in text and "edge-1" in text and "Back up site now" in text
        assert f'href="/ui/version/{new}"' in text and "RouterOS 7.19.1" in text
        status, text, _ = await br.get("/ui/site/hq?q=EDGE")
        assert status == 200 and "edge-1" in text and "/ui/device/hq/core-1" not in text and "1 of 2 devices" in text
        status, text, _ = await br.get("/ui/device/hq/core-1")
        assert status == 200 and "+3 -2 · RouterOS 7.18.2 → 7.19.1" in text and "first backup" in text
        assert f'name="v" value="{old}"' in text and f'href="/ui/version/{new}/download"' in text  # ALICE may download
        status, text, _ = await br.get(f"/ui/version/{new}")
        assert status == 200 and 'id="L406" class="sec"' in text and 'href="#L406">/ip firewall filter</a>' in text
        assert PASSWORD not in text and f'href="/ui/compare?v={old}&amp;v={new}"' in text
        status, raw, resp = await br.get(f"/ui/version/{new}/download")
        assert status == 200 and PASSWORD in raw and "by RouterOS 7.19.1" in raw  # the raw export, secrets and all
        assert re.fullmatch(r'attachment; filename="hq-core-1-\d{8}-\d{4}\.rsc"', resp.headers["Content-Disposition"])
        status, _, resp = await br.get(f"/ui/compare?v={new}", allow_redirects=False)
        assert status == 303 and resp.headers["Location"] == f"/ui/version/{new}"  # one ticked: View


async def test_downloads_only_for_download_users(lab: WebLab) -> None:
    new = lab.ids["core-1"][-1]
    async with browser(lab.base_url) as br:
        await br.get(lab.link(BOB, "/ui/site/hq"))
        status, text, _ = await br.get("/ui/device/hq/core-1")
        assert status == 200 and "/download" not in text
        status, text, _ = await br.get(f"/ui/version/{new}/download")
        assert status == 403 and PASSWORD not in text and "Raw downloads contain passwords" in text


async def refused(br, url: str) -> str:
    status, text, resp = await br.get(url)
    assert status == 403, text
    assert resp.headers["Content-Security-Policy"] == CSP
    assert "/backup " in text and "Open in browser" in text and not TRACEBACK.search(text)
    return text


async def test_refusals_are_plain_403_pages_and_logged(lab: WebLab, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="bot.web.app")
    vault = lab.ids["vault-1"][0]
    async with browser(lab.base_url) as br:
        text = await refused(br, "/ui/site/hq")  # no cookie
        assert "not signed in" in text and "<code>/backup hq</code>" in text
        link = lab.link(ALICE, "/ui/site/hq")
        prefix, payload, signature = link.split("t=")[1].split(".")
        tampered = lab.link(ALICE, "/ui/site/vault").split("t=")[0] + f"t={prefix}.{payload}.{signature[::-1]}"
        assert "signature" in await refused(br, tampered)
        forged = link.replace(payload, lab.link(ADMIN, "/ui/site/vault").split("t=")[1].split(".")[1])
        assert "signature" in await refused(br, forged)  # another user's payload under this signature
        expired = lab.link(ALICE, "/ui/site/hq", issued=datetime.now(timezone.utc) - timedelta(minutes=16))
        assert "expired" in await refused(br, expired)
        assert "not a backupbot link" in await refused(br, f"{lab.base_url}/ui/open?t=garbage")
        await br.get(link)  # a good session from now on: ids of other sites are still refused
        assert "belongs to a site you may not see" in await refused(br, f"/ui/version/{vault}")
        assert "belongs to a site" in await refused(br, f"/ui/compare?v={lab.ids['core-1'][0]}&v={vault}")
        await refused(br, f"/ui/version/{vault}/lines?start=0&count=5")
        await refused(br, "/ui/site/vault")
        status, text, _ = await br.get("/ui/version/999999")
        assert status == 404 and "No backup with id 999999" in text
        status, text, _ = await br.get("/ui/site/hq?q=x&page=x")
        assert status == 200
        status, text, _ = await br.get("/ui/device/hq/core-1?page=-1")
        assert status == 400 and not TRACEBACK.search(text)
    refusals = [r for r in caplog.records if r.getMessage() == "browser request refused"]
    assert len(refusals) >= 9
    assert all("bbw1." not in str(getattr(r, "fields", {})) for r in refusals)  # links are never logged


async def test_a_link_opens_again_until_its_user_logs_out(lab: WebLab) -> None:
    """Desktop, then phone: the same link twice. After logging out, every session of that user ends
    and links issued before are refused; a fresh link works."""
    link = lab.link(ALICE, "/ui/site/hq", issued=datetime.now(timezone.utc) - timedelta(seconds=2))
    async with browser(lab.base_url) as desktop, browser(lab.base_url) as phone:
        assert (await desktop.get(link))[0] == 200
        assert (await phone.get(link))[0] == 200
        status, text, _ = await desktop.post("/ui/logout", {"csrf": "wrong"})
        assert status == 403 and "token does not match" in text
        csrf = re.search(r'name="csrf" value="([0-9a-f]+)"', (await desktop.get("/ui/site/hq"))[1])[1]
        status, text, _ = await desktop.post("/ui/logout", {"csrf": csrf})
        assert status == 200 and "Logged out" in text
        assert "session has ended" in await refused(phone, "/ui/site/hq")  # the phone's session ended too
        assert "logged out after this link was made" in await refused(phone, link)
        assert (await phone.get(lab.link(ALICE, "/ui/site/hq")))[0] == 200  # a link made after the logout


async def test_back_up_site_now_needs_the_csrf_token_and_answers_in_slack(lab: WebLab) -> None:
    lab.routers["edge-1"].body = body(["/system identity", "set name=edge-renamed"])
    async with browser(lab.base_url) as br:
        await br.get(lab.link(BOB, "/ui/site/hq"))
        status, text, _ = await br.post("/ui/site/hq/backup", {})
        assert status == 403 and "token does not match" in text
        csrf = re.search(r'name="csrf" value="([0-9a-f]+)"', (await br.get("/ui/site/hq"))[1])[1]
        status, text, resp = await br.post("/ui/site/hq/backup", {"csrf": csrf})
        assert status == 200 and str(resp.url).endswith("/ui/site/hq?backup=started")
        assert "Backing up hq: 2 devices… The result will be sent to you in Slack." in text
        await settle(lab.bot)
        await until(lambda: lab.slack.posts("D0BOB00001"))
        (summary,) = lab.slack.posts("D0BOB00001")
        assert "Backup of hq" in summary["text"] and "1 changed" in summary["text"]
        status, text, _ = await br.post("/ui/site/vault/backup", {"csrf": csrf})
        assert status == 403  # BOB may not see vault: nothing runs


async def test_folds_open_redacted_lines_numbered_on_both_sides(lab: WebLab) -> None:
    new = lab.ids["core-1"][-1]
    async with browser(lab.base_url) as br:
        await br.get(lab.link(ALICE, compare_page(lab)))
        status, rows = await br.json(f"/ui/version/{new}/lines?start=407&count=5&old=406")
        assert status == 200 and rows["count"] == 5
        assert '<td class="n">407</td><td class="n">408</td>' in rows["uni"]  # old 407 is new 408
        assert PASSWORD not in rows["sbs"] + rows["uni"] and "&lt;redacted:" in rows["uni"]
        status, rows = await br.json(f"/ui/version/{new}/lines?start=400&count=100000&old=400")
        assert status == 200 and rows["count"] == 13  # to the end, never past it
        status, _ = await br.json(f"/ui/version/{new}/lines?start=x")
        assert status == 400


async def test_a_big_comparison_comes_in_parts(lab: WebLab) -> None:
    """Over a part's worth of rows: the page carries the first part and a link to the next, which
    comes as rows of both layouts (JSON for the script, or a page of its own without it)."""
    router = lab.routers["core-1"]
    lines = [f"add address=10.1.{k // 200}.{k % 200} list=moved" for k in range(400)]
    router.body = body(["/ip firewall address-list", *lines])
    old, new = lab.ids["core-1"][-1], await lab.backup("core-1")
    async with browser(lab.base_url) as br:
        await br.get(lab.link(ALICE, f"/ui/compare?v={old}&v={new}"))
        status, text, _ = await br.get(f"/ui/compare?v={old}&v={new}")
        more = re.search(r'class="button more" href="([^"]+)"', text)
        assert status == 200 and more is not None
        status, part = await br.json(more[1].replace("&amp;", "&") + "&fragment=1")
        assert status == 200 and 'class="t del"' in part["sbs"] and 'class="t add"' in part["uni"]
        status, text, _ = await br.get(more[1].replace("&amp;", "&"))
        assert status == 200 and "part 2 of" in text
