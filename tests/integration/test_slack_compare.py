"""The interactive compare flow and the buttons, end to end: block_actions payloads signed as
Slack signs them, versions made by real SSH backups of a simulated router that changes."""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from bot.slack import blocks
from bot.core.models import Settings
from bot.serve.server import BACKEND
from bot.ssh.simulator import SimDevice, Simulator
from tests.integration.helpers import (
    ADMIN,
    ALICE,
    GENERAL,
    SlackBot,
    add_routers,
    answer,
    blocks_text,
    buttons,
    checkbox_values,
    config_for,
    run_bot,
)
from tests.integration.slack_fake import FakeSlack

PAIR = re.compile(r"#(\d+) \([^)]*\) → #(\d+)")


@dataclass
class Lab:
    bot: SlackBot
    slack: FakeSlack
    settings: Settings
    router: SimDevice
    ids: list[int]  # core-1's versions, oldest first


async def make_versions(bot: SlackBot, settings: Settings, router: SimDevice, n: int) -> list[int]:
    service = bot.app[BACKEND].service
    ids = []
    for i in range(n):
        if i:
            router.change(1)
        summary = await service.run(settings.devices("lab", router.name), "test")
        ids.append(summary.results[0].version.id)
    return ids


@pytest.fixture
async def lab(tmp_path: Path, simulator: Simulator, slack: FakeSlack) -> AsyncIterator[Lab]:
    """lab/core-1 with four versions, each one firewall change apart."""
    (core,) = await add_routers(simulator, SimDevice("core-1"))
    settings = config_for(tmp_path, {"lab": [core]})
    async with run_bot(settings, slack) as bot:
        yield Lab(bot, slack, settings, core, await make_versions(bot, settings, core, 4))


def pairs(msg: dict[str, Any]) -> list[tuple[str, str]]:
    """(old id, new id) of each pair header in the message's blocks, in order."""
    return PAIR.findall(json.dumps(msg["blocks"], ensure_ascii=False))


def ticked(*ids: int) -> dict[str, Any]:
    """body["state"]["values"] with these versions ticked in the list's checkboxes."""
    return {"versions": {blocks.SELECT_VERSIONS: {"type": "checkboxes", "selected_options": [
        {"value": str(i), "text": {"type": "plain_text", "text": f"#{i}"}} for i in ids]}}}


async def compare(lab: Lab, *ids: int, user: str = ALICE) -> Any:
    return await lab.bot.action(blocks.COMPARE_SELECTED, "lab core-1", state=ticked(*ids), user=user)


async def test_checkbox_ticks_are_acked_and_do_nothing_else(lab: Lab) -> None:
    """Each tick is a block_actions of its own: acked with 200 at once, nothing posted."""
    before = len(lab.slack.calls)
    reply = await lab.bot.action(blocks.SELECT_VERSIONS, action={"type": "checkboxes", "selected_options": []},
                                 state=ticked(lab.ids[0]))
    assert reply.status == 200 and reply.elapsed < 1.0
    assert lab.slack.calls[before:] == [] or all(c.method == "auth.test" for c in lab.slack.calls[before:])


async def test_compare_two_selected_versions(lab: Lab) -> None:
    """Two ticked versions give one diff between them, inline, older side first."""
    reply = await compare(lab, lab.ids[2], lab.ids[0])
    assert reply.status == 200 and reply.elapsed < 1.0
    msg = await answer(lab.slack, reply)
    assert pairs(msg) == [(str(lab.ids[0]), str(lab.ids[2]))]
    assert "block scanner 1" in blocks_text(msg)


async def test_compare_three_or_more_one_diff_with_a_header_per_pair_oldest_first(lab: Lab) -> None:
    """Three or more ticked: compared oldest first, each consecutive pair under its own header."""
    a, b, c, d = lab.ids
    msg = await answer(lab.slack, await compare(lab, d, a, c))
    assert pairs(msg) == [(str(a), str(c)), (str(c), str(d))]
    msg = await answer(lab.slack, await compare(lab, d, c, b, a))
    assert pairs(msg) == [(str(a), str(b)), (str(b), str(c)), (str(c), str(d))]


async def test_long_multi_pair_compare_goes_as_diff_snippet(lab: Lab) -> None:
    """When the pairs do not fit a message, the whole comparison is one snippet_type=diff file."""
    lab.router.change(120)
    (big,) = await make_versions(lab.bot, lab.settings, lab.router, 1)
    await compare(lab, lab.ids[0], lab.ids[3], big)
    await lab.slack.wait_for("files.completeUploadExternal")
    (upload,) = lab.slack.completed_uploads()
    assert upload.snippet_type == "diff" and upload.channel == GENERAL
    text = upload.content.decode()
    assert PAIR.findall(text) == [(str(lab.ids[0]), str(lab.ids[3])), (str(lab.ids[3]), str(big))]
    assert text.count("===== ") == 2 and "block scanner 121" in text


async def test_one_selected_version_is_viewed(lab: Lab) -> None:
    """One ticked version: its redacted config as a snippet (as View would)."""
    await compare(lab, lab.ids[1])
    await lab.slack.wait_for("files.completeUploadExternal")
    (upload,) = lab.slack.completed_uploads()
    assert upload.filename == f"lab-core-1-{lab.ids[1]}-redacted.rsc"
    assert "<redacted:" in upload.content.decode()


async def test_nothing_selected_says_what_to_do(lab: Lab) -> None:
    """Compare selected with no ticks answers with a hint, not silence."""
    msg = await answer(lab.slack, await compare(lab))
    assert "Tick one or more versions" in msg["text"]


async def test_paging_older_and_newer_replace_the_list(tmp_path: Path, simulator: Simulator,
                                                       slack: FakeSlack) -> None:
    """12 versions: page 0 shows the newest 10 with Older; Older shows the 2 oldest with Newer,
    replacing the original message."""
    (core,) = await add_routers(simulator, SimDevice("core-1"))
    settings = config_for(tmp_path, {"lab": [core]})
    async with run_bot(settings, slack) as bot:
        ids = await make_versions(bot, settings, core, 12)
        first = await answer(slack, await bot.command("lab core-1"))
        assert [int(v) for v in checkbox_values(first)] == ids[::-1][:10]
        older = [v for a, v in buttons(first) if a == blocks.PAGE_VERSIONS]
        assert older == ["lab core-1 1"]

        reply = await bot.action(blocks.PAGE_VERSIONS, older[0])
        page1 = await answer(slack, reply)
        assert page1["replace_original"] is True
        assert [int(v) for v in checkbox_values(page1)] == ids[1::-1]
        assert [v for a, v in buttons(page1) if a == blocks.PAGE_VERSIONS] == ["lab core-1 0"]

        newer = await answer(slack, await bot.action(blocks.PAGE_VERSIONS, "lab core-1 0"))
        assert [int(v) for v in checkbox_values(newer)] == ids[::-1][:10]


async def test_compare_button_opens_the_device_list(lab: Lab) -> None:
    """The per-device Compare button (OPEN_DEVICE) answers with the device's selectable versions."""
    msg = await answer(lab.slack, await lab.bot.action(blocks.OPEN_DEVICE, "lab core-1"))
    assert [int(v) for v in checkbox_values(msg)] == lab.ids[::-1]


async def test_view_download_and_show_diff_buttons(lab: Lab) -> None:
    """View uploads the redacted snippet; Download (admin) DMs the raw file; Show diff shows the pair."""
    await lab.bot.action(blocks.VIEW_VERSION, str(lab.ids[0]))
    await lab.slack.wait_for("files.completeUploadExternal")
    await lab.bot.action(blocks.DOWNLOAD_VERSION, str(lab.ids[0]), user=ADMIN)
    await lab.slack.wait_for("files.completeUploadExternal", 2)
    view, raw = lab.slack.completed_uploads()
    assert view.channel == GENERAL and "<redacted:" in view.content.decode()
    assert raw.channel == "D0ADMIN001" and raw.content == await lab.bot.app[BACKEND].store.raw(lab.ids[0])

    msg = await answer(lab.slack, await lab.bot.action(blocks.SHOW_DIFF, f"{lab.ids[0]} {lab.ids[1]}"))
    assert pairs(msg) == [(str(lab.ids[0]), str(lab.ids[1]))]


async def test_back_up_site_button_acks_then_reports(lab: Lab) -> None:
    """"Back up site now": acked at once, "Backing up lab…" then the run summary, via response_url."""
    lab.router.delay = 1.5
    reply = await lab.bot.action(blocks.BACKUP_SITE, "lab")
    assert reply.status == 200 and reply.elapsed < 1.0  # did not wait for the 1.5 s backup
    started = await answer(lab.slack, reply)
    assert "Backing up lab: 1 device" in started["text"]
    summary = await answer(lab.slack, reply, 2)
    assert "Backup of lab" in summary["text"]


async def test_malformed_button_value_is_answered(lab: Lab) -> None:
    """A value that does not parse is answered with a plain sentence (and logged), never a trace."""
    msg = await answer(lab.slack, await lab.bot.action(blocks.VIEW_VERSION, "12; drop table"))
    assert "not one I understand" in msg["text"]


async def test_app_home_lists_visible_sites_and_its_buttons_answer_in_dm(tmp_path: Path, simulator: Simulator,
                                                                          slack: FakeSlack) -> None:
    """app_home_opened (tab home) publishes the dashboard of sites the user may see; a View button
    pressed in the Home tab (no channel, no response_url) uploads to the user's DM."""
    core, safe = await add_routers(simulator, SimDevice("core-1"), SimDevice("safe-1", behaviour="auth_fail"))
    settings = config_for(tmp_path, {"lab": [core], "vault": [safe]},
                          site_options={"vault": {"allowed_users": [ADMIN]}})
    async with run_bot(settings, slack) as bot:
        summary = await bot.app[BACKEND].service.run(settings.devices(), "test")
        vid = next(r.version.id for r in summary.results if r.version)
        assert (await bot.event({"type": "app_home_opened", "user": ALICE, "channel": "D0ALICE001",
                                 "tab": "messages"})).status == 200
        reply = await bot.event({"type": "app_home_opened", "user": ALICE, "channel": "D0ALICE001", "tab": "home"})
        assert reply.status == 200
        (call,) = await slack.wait_for("views.publish")
        assert call.params["user_id"] == ALICE
        view = blocks_text(call.params["view"]) if isinstance(call.params["view"], dict) else call.params["view"]
        assert "lab" in view and "vault" not in view and "safe-1" not in view

        await bot.event({"type": "app_home_opened", "user": ADMIN, "channel": "D0ADMIN001", "tab": "home"})
        calls = await slack.wait_for("views.publish", 2)
        assert "safe-1" in str(calls[1].params["view"])  # failing device, visible to the admin

        await bot.action(blocks.VIEW_VERSION, str(vid), view=True)
        await slack.wait_for("files.completeUploadExternal")
        (upload,) = slack.completed_uploads()
        assert upload.channel == "D0ALICE001"
