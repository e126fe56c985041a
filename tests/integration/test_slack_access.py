"""Authorization on every command and every button, from the payload's user and channel."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from bot.slack import blocks
from bot.serve.server import BACKEND
from bot.ssh.simulator import SimDevice, Simulator
from tests.integration.helpers import ADMIN, ALICE, GENERAL, SlackBot, add_routers, answer, config_for, run_bot
from tests.integration.slack_fake import FakeSlack

BOB = "U0BOB00001"  # download user of "ops"
OPS_CHANNEL = "C0OPSCHAN1"


@dataclass
class Sites:
    bot: SlackBot
    slack: FakeSlack
    lab: int  # a version id of lab/r1 (open to everyone)
    vault: int  # a version id of vault/v1 (ADMIN only)
    ops: int  # a version id of ops/o1 (only in OPS_CHANNEL; BOB may download)


@pytest.fixture
async def sites(tmp_path: Path, simulator: Simulator, slack: FakeSlack) -> AsyncIterator[Sites]:
    r1, v1, o1 = await add_routers(simulator, SimDevice("r1"), SimDevice("v1"), SimDevice("o1"))
    settings = config_for(tmp_path, {"lab": [r1], "vault": [v1], "ops": [o1]}, site_options={
        "vault": {"allowed_users": [ADMIN]},
        "ops": {"allowed_channels": [OPS_CHANNEL], "download_users": [BOB]},
    })
    async with run_bot(settings, slack) as bot:
        summary = await bot.app[BACKEND].service.run(settings.devices(), "test")
        ids = {r.device.site: r.version.id for r in summary.results if r.version}
        yield Sites(bot, slack, ids["lab"], ids["vault"], ids["ops"])


async def nothing_uploaded(slack: FakeSlack) -> None:
    await asyncio.sleep(0.1)  # give a wrongly started upload time to show up
    assert slack.calls_to("files.getUploadURLExternal", "files.completeUploadExternal", "upload") == []


async def test_forged_button_with_another_sites_version_is_refused(sites: Sites) -> None:
    """Alice presses buttons whose values name vault's version (forged or forwarded): each one is
    looked up, its site found, and refused; nothing of vault is posted."""
    forged = [
        (blocks.VIEW_VERSION, str(sites.vault), None),
        (blocks.DOWNLOAD_VERSION, str(sites.vault), None),
        (blocks.SHOW_DIFF, f"{sites.lab} {sites.vault}", None),
        (blocks.COMPARE_SELECTED, "lab r1", {"v": {blocks.SELECT_VERSIONS: {"type": "checkboxes",
                                                                            "selected_options": [
                                                                                {"value": str(sites.lab)},
                                                                                {"value": str(sites.vault)}]}}}),
        (blocks.OPEN_DEVICE, "vault v1", None),
        (blocks.BACKUP_SITE, "vault", None),
        (blocks.PAGE_VERSIONS, "vault v1 0", None),
    ]
    for action_id, value, state in forged:
        reply = await sites.bot.action(action_id, value, user=ALICE, state=state)
        assert reply.status == 200
        msg = await answer(sites.slack, reply)
        assert "not allowed to see vault" in msg["text"], action_id
    await nothing_uploaded(sites.slack)
    # every answer was a refusal: nothing about vault's devices or versions was posted anywhere
    assert [r["text"] for r in sites.slack.responses() if "not allowed to see vault" not in r["text"]] == []
    assert sites.slack.calls_to("chat.postMessage", "views.publish") == []


async def test_commands_naming_a_hidden_site_or_its_versions_are_refused(sites: Sites) -> None:
    """Commands are checked the same way: by site name, and by the site of a version id."""
    for text in ("vault", "vault v1", "vault now", "diff vault v1"):
        reply = await sites.bot.command(text, user=ALICE)
        assert "not allowed to see vault" in reply.json["text"], text
    for text in (f"show {sites.vault}", f"download {sites.vault}", f"diff {sites.lab} {sites.vault}"):
        msg = await answer(sites.slack, await sites.bot.command(text, user=ALICE))
        assert "not allowed to see vault" in msg["text"], text
    await nothing_uploaded(sites.slack)


async def test_download_only_for_admins_and_download_users(sites: Sites) -> None:
    """Raw downloads: Alice (ordinary) refused; Bob (ops download user) and the admin get the file in DM."""
    msg = await answer(sites.slack, await sites.bot.command(f"download {sites.ops}", user=ALICE, channel=OPS_CHANNEL))
    assert "only backupbot admins" in msg["text"]
    await nothing_uploaded(sites.slack)

    await sites.bot.command(f"download {sites.ops}", user=BOB, channel=OPS_CHANNEL)
    await sites.bot.command(f"download {sites.lab}", user=ADMIN)
    await sites.slack.wait_for("files.completeUploadExternal", 2)
    assert sorted(u.channel for u in sites.slack.completed_uploads()) == ["D0ADMIN001", "D0BOB00001"]
    msg = await answer(sites.slack, await sites.bot.command(f"download {sites.lab}", user=BOB))
    assert "only backupbot admins" in msg["text"]  # Bob is a download user of ops, not of lab


async def test_allowed_channels_limit_where_a_site_is_seen(sites: Sites) -> None:
    """ops may only be shown in its channel: refused in #general (command, version id and button),
    fine in OPS_CHANNEL, and in a DM for a user named on the site (Bob); `sites` in #general leaves it out."""
    reply = await sites.bot.command("ops", user=ALICE, channel=GENERAL)
    assert "can't be shown" in reply.json["text"]
    msg = await answer(sites.slack, await sites.bot.command(f"show {sites.ops}", user=ALICE, channel=GENERAL))
    assert "can't be shown" in msg["text"]
    await nothing_uploaded(sites.slack)

    ok = await answer(sites.slack, await sites.bot.command("ops", user=ALICE, channel=OPS_CHANNEL))
    assert "o1" in str(ok["blocks"])
    dm = await answer(sites.slack, await sites.bot.command("ops", user=BOB, channel="D0BOB00001"))
    assert "o1" in str(dm["blocks"])
    overview = await answer(sites.slack, await sites.bot.command("sites", user=ALICE, channel=GENERAL))
    assert "*ops*" not in str(overview["blocks"]) and "*lab*" in str(overview["blocks"])

    msg = await answer(sites.slack, await sites.bot.action(blocks.VIEW_VERSION, str(sites.ops), user=ALICE,
                                                           channel=GENERAL))
    assert "can't be shown" in msg["text"]
