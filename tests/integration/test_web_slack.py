"""Slack and the browser pages together: answers only the requester sees carry a URL button with
THEIR signed link; channel messages carry an action button that answers each presser with their
own link after checking their access. Real signed Slack requests to the bot's real server."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime, timezone
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from bot.slack import blocks
from bot.ssh.simulator import Simulator
from bot.web import links
from tests.helpers import until
from tests.integration.helpers import GENERAL, WEB_SECRET, answer, buttons, is_error, settle
from tests.integration.slack_fake import FakeSlack
from tests.integration.weblab import ALICE, BOB, WebLab, body, browser, web_lab


@pytest.fixture
async def lab(tmp_path: Path, slack: FakeSlack, simulator: Simulator) -> AsyncIterator[WebLab]:
    async with web_lab(tmp_path, slack, simulator) as lab:
        yield lab


def url_buttons(message: dict[str, Any]) -> list[str]:
    found: list[str] = []

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            if node.get("type") == "button" and "url" in node:
                assert node["action_id"] == blocks.OPEN_WEB
                found.append(node["url"])
            for v in node.values():
                walk(v)
        elif isinstance(node, list):
            for v in node:
                walk(v)

    walk(message)
    return found


def link_of(lab: WebLab, url: str) -> links.Link:
    """What a URL button's link says, checked as the bot checks it."""
    parts = urlsplit(url)
    assert f"{parts.scheme}://{parts.netloc}" == lab.base_url and parts.path == "/ui/open"
    return links.verify(WEB_SECRET, parse_qs(parts.query)["t"][0], datetime.now(timezone.utc))


async def test_answers_to_the_requester_carry_their_own_link(lab: WebLab) -> None:
    old, new = lab.ids["core-1"]
    for text, page in (("hq", "/ui/site/hq"), ("hq core-1", "/ui/device/hq/core-1"), ("sites", "/ui/"),
                       (f"diff {old} {new}", f"/ui/compare?v={old}&v={new}")):
        msg = await answer(lab.slack, await lab.bot.command(text, user=BOB))
        (url,) = url_buttons(msg)
        link = link_of(lab, url)
        assert (link.user, link.page) == (BOB, page), text
    async with browser(lab.base_url) as br:
        status, html, _ = await br.get(url)
        assert status == 200 and ">U0BOB00001<" in html and "Header: RouterOS 7.18.2 → 7.19.1" in html


async def test_show_posts_the_snippet_and_the_link_to_the_requester_alone(lab: WebLab) -> None:
    new = lab.ids["core-1"][-1]
    reply = await lab.bot.command(f"show {new}", user=BOB)
    await settle(lab.bot)
    (upload,) = lab.slack.completed_uploads()
    assert upload.channel == GENERAL
    note = await answer(lab.slack, reply)  # ephemeral: only BOB sees it
    (url,) = url_buttons(note)
    assert link_of(lab, url).page == f"/ui/version/{new}" and "link is yours" in note["text"]
    assert "bbw1." not in upload.content.decode() + str(upload.title)


async def test_no_link_for_a_site_kept_from_that_user(lab: WebLab) -> None:
    reply = await lab.bot.command("vault", user=BOB)
    assert reply.status == 200 and "not allowed to see vault" in reply.text and "bbw1." not in reply.text


async def test_channel_messages_answer_each_presser_with_their_own_link(lab: WebLab) -> None:
    old, new = lab.ids["core-1"]
    for user in (ALICE, BOB):
        reply = await lab.bot.action(blocks.OPEN_IN_BROWSER, blocks.web_value("compare", old, new), user=user)
        assert reply.status == 200
        (url,) = url_buttons(await answer(lab.slack, reply))
        assert (link_of(lab, url).user, link_of(lab, url).page) == (user, f"/ui/compare?v={old}&v={new}")
    vault = lab.ids["vault-1"][0]
    refusal = await answer(lab.slack, await lab.bot.action(blocks.OPEN_IN_BROWSER, f"version {vault}", user=BOB))
    assert is_error(refusal) and url_buttons(refusal) == [] and "not allowed to see vault" in refusal["text"]
    odd = await answer(lab.slack, await lab.bot.action(blocks.OPEN_IN_BROWSER, "site", user=BOB))
    assert is_error(odd) and "not one I understand" in odd["text"]


async def test_a_url_button_press_is_only_acked(lab: WebLab) -> None:
    before = len(lab.slack.calls)
    reply = await lab.bot.action(blocks.OPEN_WEB, action={"url": f"{lab.base_url}/ui/open?t=x"})
    await settle(lab.bot)
    assert reply.status == 200 and reply.text == ""
    assert [c.method for c in lab.slack.calls[before:]] in ([], ["auth.test"])


async def test_a_change_notice_in_the_channel_has_the_open_in_browser_action(lab: WebLab) -> None:
    lab.routers["edge-1"].body = body(["/system identity", "set name=edge-2"])
    reply = await lab.bot.command("hq edge-1 now", user=BOB)
    await answer(lab.slack, reply, timeout=30)  # the run summary
    await until(lambda: any("Config changed: hq/edge-1" in (m["text"] or "") for m in lab.slack.posts(GENERAL)))
    notice = next(m for m in lab.slack.posts(GENERAL) if "Config changed: hq/edge-1" in (m["text"] or ""))
    (value,) = [v for a, v in buttons(notice) if a == blocks.OPEN_IN_BROWSER]
    kind, (first, second) = blocks.parse_web(value)
    assert kind == "compare" and int(first) == lab.ids["edge-1"][0] and int(second) > int(first)
    assert url_buttons(notice) == []  # nobody's own link in a message many read


async def test_a_grep_answer_opens_the_same_search_in_the_browser(lab: WebLab) -> None:
    """The answer only the requester sees carries their link to the search page, with the same
    pattern, options and scope; --history (not on the page) carries none."""
    msg = await answer(lab.slack, await lab.bot.command('grep "allow ssh"', user=BOB))
    assert "allow ssh" in msg["text"]
    (url,) = url_buttons(msg)
    link = link_of(lab, url)
    assert (link.user, link.site, link.page) == (BOB, None, "/ui/search?q=allow+ssh")
    async with browser(lab.base_url) as br:
        status, page, _ = await br.get(url)
        assert status == 200 and "<strong>1 device, 1 line</strong> match “allow ssh”" in page
        assert "<mark>allow ssh</mark>" in page and ">U0BOB00001<" in page

    msg = await answer(lab.slack, await lab.bot.command(r"grep -E -i ALLOW.SSH hq core-1", user=BOB))
    (url,) = url_buttons(msg)
    link = link_of(lab, url)
    assert (link.site, link.page) == ("hq", "/ui/search?q=ALLOW.SSH&re=1&i=1&site=hq&device=core-1")

    msg = await answer(lab.slack, await lab.bot.command("grep list=customers", user=BOB))  # too long: a file
    assert "full result in grep-list-customers.txt" in msg["text"]
    (url,) = url_buttons(msg)
    assert link_of(lab, url).page == "/ui/search?q=list%3Dcustomers"

    msg = await answer(lab.slack, await lab.bot.command("grep --history ssh hq core-1", user=BOB))
    assert "grep --history" in str(msg) and url_buttons(msg) == []
