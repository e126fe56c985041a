"""/backup end to end: signed slash commands over real HTTP to the bot's aiohttp server, backups
from simulated routers over real SSH into SQLite, answers recorded by the fake Slack Web API."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from bot.slack import blocks
from bot.routeros import export as routeros
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
from tests.helpers import secrets_in

ACK_BUDGET = 3.0


@dataclass
class World:
    bot: SlackBot
    slack: FakeSlack
    settings: Settings
    routers: dict[str, SimDevice]


@pytest.fixture
async def world(tmp_path: Path, simulator: Simulator, slack: FakeSlack) -> AsyncIterator[World]:
    """Site "lab" (core-1, edge-1 and sw-1 which refuses SSH) backed up once; site "vault" only for ADMIN."""
    core, edge, sw, safe = await add_routers(simulator, SimDevice("core-1"), SimDevice("edge-1", ros_version="6.49.7"),
                                             SimDevice("sw-1", behaviour="refuse"), SimDevice("safe-1"))
    settings = config_for(tmp_path, {"lab": [core, edge, sw], "vault": [safe]},
                          site_options={"vault": {"allowed_users": [ADMIN]}}, timeout=2.0)
    async with run_bot(settings, slack) as bot:
        await bot.app[BACKEND].service.run(settings.devices(), "test")
        yield World(bot, slack, settings, {"core-1": core, "edge-1": edge, "sw-1": sw, "safe-1": safe})


async def latest_id(w: World, device: str, site: str = "lab") -> int:
    version = await w.bot.app[BACKEND].store.latest_version(site, device)
    assert version is not None
    return version.id


async def test_help_and_empty_answer_usage_in_the_ack(world: World) -> None:
    """`/backup` and `/backup help` are answered in the ack itself with the usage and examples."""
    for text in ("", "help", "  help  "):
        reply = await world.bot.command(text)
        assert reply.status == 200 and reply.elapsed < ACK_BUDGET
        assert reply.json == blocks.usage()
        assert "/backup diff 120 123" in reply.text
    assert world.slack.responses() == []


@pytest.mark.parametrize("text", ["diff 1", "diff 1 lab", "show", "show abc", "download 1 2", "sites extra",
                                  "lab core-1 now please", "search"])
async def test_malformed_text_answers_usage(world: World, text: str) -> None:
    """Text that fits no row of the table gets the usage, never silence or a stack trace."""
    reply = await world.bot.command(text)
    assert reply.status == 200
    assert reply.json == blocks.usage()


async def test_sites_lists_only_sites_the_user_may_see(world: World) -> None:
    """`sites`: every visible site with its device count and ok/changed/failed; vault hidden from Alice."""
    reply = await world.bot.command("sites", user=ALICE)
    assert reply.status == 200 and reply.text == ""  # empty ack, the answer follows via response_url
    msg = await answer(world.slack, reply)
    text = blocks_text(msg)
    assert "*lab* · 3 devices" in text and "2 ok · 0 changed · 1 failed" in text
    assert "vault" not in text
    assert msg["response_type"] == "ephemeral"

    admin = await answer(world.slack, await world.bot.command("sites", user=ADMIN))
    assert "*vault* · 1 device" in blocks_text(admin)


async def test_site_shows_devices_latest_versions_failures_and_buttons(world: World) -> None:
    """`SITE`: each device's latest version (RouterOS version) or its failure reason; View ·
    Download · Compare per backed-up device and "Back up site now" at the top."""
    core, edge = await latest_id(world, "core-1"), await latest_id(world, "edge-1")
    msg = await answer(world.slack, await world.bot.command("lab"))
    text = blocks_text(msg)
    assert f"#{core}" in text and "RouterOS 7.20.1" in text and "RouterOS 6.49.7" in text
    assert "sw-1" in text and "refused" in text.lower()
    btns = buttons(msg)
    assert btns[0] == (blocks.BACKUP_SITE, "lab")
    for vid, name in ((core, "core-1"), (edge, "edge-1")):
        assert (blocks.VIEW_VERSION, str(vid)) in btns
        assert (blocks.DOWNLOAD_VERSION, str(vid)) in btns
        assert (blocks.OPEN_DEVICE, f"lab {name}") in btns


async def test_site_device_lists_versions_newest_first(world: World) -> None:
    """`SITE DEVICE`: the device's versions newest first, as checkboxes with Compare selected."""
    service = world.bot.app[BACKEND].service
    world.routers["core-1"].change(1)
    await service.run(world.settings.devices("lab", "core-1"), "test")
    msg = await answer(world.slack, await world.bot.command("lab core-1"))
    ids = [int(v) for v in checkbox_values(msg)]
    assert len(ids) == 2 and ids == sorted(ids, reverse=True)
    assert (blocks.COMPARE_SELECTED, "lab core-1") in buttons(msg)


async def test_backup_now_acks_at_once_then_reports_and_a_second_request_joins(world: World) -> None:
    """`SITE now` is acked ("Backing up lab: 3 devices…") before the slow backup finishes; a second
    request meanwhile says it joined, collects nothing twice, and both get the run summary."""
    for r in world.routers.values():
        r.delay = 1.0
    sessions = world.routers["core-1"].sessions
    first = await world.bot.command("lab now")
    assert first.elapsed < 0.5
    assert "Backing up lab: 3 devices" in first.text
    # BackupService registers devices as in flight after recording the run's start (a database
    # write): only from then on can a second request be told it joined.
    service = world.bot.app[BACKEND].service
    while not service.busy(world.settings.devices("lab")):
        await asyncio.sleep(0.01)
    second = await world.bot.command("lab core-1 now")
    assert second.elapsed < 0.5
    assert "already running" in second.text
    assert world.slack.responses(first.response_key) == []  # the work is still going on
    summary = await answer(world.slack, first)
    assert "Backup of lab" in summary["text"]
    joined = await answer(world.slack, second)
    assert "lab/core-1" in joined["text"]
    assert world.routers["core-1"].sessions - sessions == 1  # one run: one export, not two


async def test_device_backup_now_reports_that_device_only(world: World) -> None:
    """`SITE DEVICE now` backs up just that device and answers with its summary."""
    old = await latest_id(world, "edge-1")
    world.routers["edge-1"].change(2)
    reply = await world.bot.command("lab edge-1 now")
    assert "Backing up lab/edge-1: 1 device" in reply.text
    summary = await answer(world.slack, reply)
    assert "lab/edge-1" in summary["text"] and "1 changed" in summary["text"]
    assert "core-1" not in blocks_text(summary)
    assert buttons(summary) == [(blocks.SHOW_DIFF, f"{old} {await latest_id(world, 'edge-1')}")]


async def test_show_uploads_redacted_snippet_to_the_channel(world: World) -> None:
    """`show ID` uploads the redacted config as a snippet to the channel the command came from."""
    vid = await latest_id(world, "core-1")
    reply = await world.bot.command(f"show {vid}")
    assert reply.text == ""
    await world.slack.wait_for("files.completeUploadExternal")
    (upload,) = world.slack.completed_uploads()
    assert upload.channel == GENERAL and upload.snippet_type == "text"
    content = upload.content.decode()
    assert "/system identity" in content and "<redacted:" in content
    secrets, _ = secrets_in(routeros.normalize(world.routers["core-1"].export_text("/export show-sensitive")))
    # (the simulator's v7 wifi line prints a literal, unexpanded "{psk}": not a secret)
    secrets = [s for s in secrets if not s.startswith("{")]
    assert secrets and "password=<redacted:" in content
    assert not [s for s in secrets if s in content]


async def test_show_falls_back_to_dm_where_the_bot_cannot_post(world: World) -> None:
    """Where the bot is not a member (not_in_channel), the snippet goes to the requester's DM and
    the requester is told so ephemerally."""
    world.slack.not_in_channel.add("C0PRIVATE1")
    vid = await latest_id(world, "core-1")
    reply = await world.bot.command(f"show {vid}", channel="C0PRIVATE1")
    note = await answer(world.slack, reply)
    assert "direct messages" in note["text"]
    (upload,) = world.slack.completed_uploads()
    assert upload.channel == "D0ALICE001"
    assert world.slack.calls_to("conversations.open")[0].params["users"] == ALICE


async def test_download_sends_raw_file_to_admins_dm(world: World) -> None:
    """`download ID` (admin): the exact bytes received, named SITE-DEVICE-YYYYMMDD-HHMM.rsc, in the DM."""
    vid = await latest_id(world, "core-1")
    version = await world.bot.app[BACKEND].store.version(vid)
    raw = await world.bot.app[BACKEND].store.raw(vid)
    reply = await world.bot.command(f"download {vid}", user=ADMIN)
    note = await answer(world.slack, reply)
    assert "direct messages" in note["text"]
    (upload,) = world.slack.completed_uploads()
    assert upload.channel == "D0ADMIN001" and upload.snippet_type is None
    assert upload.filename == f"lab-core-1-{version.first_seen:%Y%m%d-%H%M}.rsc"
    assert upload.content == raw
    assert secrets_in(raw.decode())[0]  # secrets included: that is what a restore needs


async def test_download_refused_for_ordinary_user(world: World) -> None:
    """A user who is neither admin nor download user gets a refusal and no file is uploaded."""
    reply = await world.bot.command(f"download {await latest_id(world, 'core-1')}", user=ALICE)
    msg = await answer(world.slack, reply)
    assert "only backupbot admins" in msg["text"]
    await asyncio.sleep(0.1)
    assert world.slack.calls_to("files.getUploadURLExternal", "conversations.open") == []


async def test_diff_ids_and_latest_change_inline(world: World) -> None:
    """`diff ID1 ID2` and `diff SITE DEVICE` show the highlighted (redacted) change inline when short."""
    old = await latest_id(world, "core-1")
    world.routers["core-1"].change(1)
    await world.bot.app[BACKEND].service.run(world.settings.devices("lab", "core-1"), "test")
    new = await latest_id(world, "core-1")
    by_ids = await answer(world.slack, await world.bot.command(f"diff {old} {new}"))
    latest = await answer(world.slack, await world.bot.command("diff lab core-1"))
    for msg in (by_ids, latest):
        text = blocks_text(msg)
        assert f"#{old}" in text and f"#{new}" in text
        assert "block scanner 1" in text and "```" in text
    assert world.slack.completed_uploads() == []


async def test_large_diff_is_uploaded_as_diff_snippet(world: World) -> None:
    """A diff too long for a message goes whole, as a snippet_type=diff file (never truncated)."""
    old = await latest_id(world, "core-1")
    world.routers["core-1"].change(80)
    await world.bot.app[BACKEND].service.run(world.settings.devices("lab", "core-1"), "test")
    new = await latest_id(world, "core-1")
    await world.bot.command(f"diff {old} {new}")
    await world.slack.wait_for("files.completeUploadExternal")
    (upload,) = world.slack.completed_uploads()
    assert upload.snippet_type == "diff" and upload.channel == GENERAL
    text = upload.content.decode()
    assert all(f"block scanner {k}" in text for k in range(1, 80, 3))


async def test_search_finds_devices_in_visible_sites_only(world: World) -> None:
    """`search TEXT` matches site, name or host, only in sites the user may see."""
    msg = await answer(world.slack, await world.bot.command("search -1", user=ALICE))
    text = blocks_text(msg)
    assert "core-1" in text and "edge-1" in text and "sw-1" in text and "safe-1" not in text
    admin = await answer(world.slack, await world.bot.command("search safe", user=ADMIN))
    assert "safe-1" in blocks_text(admin)


async def test_unknown_site_or_device_suggests_close_matches(world: World) -> None:
    """Unknown names get an ephemeral error naming the closest matches the user may see."""
    reply = await world.bot.command("lba")
    assert reply.json["text"] == 'Unknown site "lba". Did you mean: lab?'
    reply = await world.bot.command("lab core1")
    assert 'Unknown device "core1"' in reply.json["text"] and "core-1" in reply.json["text"]
    reply = await world.bot.command("vaul", user=ALICE)  # vault exists, but Alice may not see it
    assert "vault" not in reply.json["text"]
    reply = await world.bot.command(f"show {10_000}")
    assert "No backup with id 10000" in (await answer(world.slack, reply))["text"]


async def test_every_command_is_acked_within_budget(world: World) -> None:
    """Every row of the table is answered over HTTP well within Slack's 3 s, whatever it triggers."""
    for r in world.routers.values():
        r.delay = 2.0
    vid = await latest_id(world, "core-1")
    texts = ["", "sites", "lab", "lab core-1", "lab now", "lab core-1 now", f"show {vid}",
             f"download {vid}", f"diff {vid} {vid}", "diff lab core-1", "search core", "nope", "diff x"]
    replies = await asyncio.gather(*(world.bot.command(t, user=ADMIN) for t in texts))
    for text, reply in zip(texts, replies):
        assert reply.status == 200, text
        assert reply.elapsed < 1.0, (text, reply.elapsed)
