"""/backup grep over signed HTTP, as Slack sends it, against the bot's real server, the fake Slack Web
API, routers backed up over real SSH from the simulator and a real SQLite file."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from bot.core.kinds import Trigger
from bot.serve.server import BACKEND
from bot.ssh.simulator import SimDevice, Simulator
from tests.helpers import secrets_in
from tests.integration.helpers import (
    ADMIN, GENERAL, add_routers, answer, blocks_text, config_for, is_error, run_bot, settle,
)
from tests.integration.slack_fake import FakeSlack

BOB = "U0BOB00001"


async def fleet(tmp_path: Path, simulator: Simulator, n: int = 12) -> Any:
    """`lab` with n routers everyone may see; `vault` with one only Bob may see."""
    lab = [SimDevice(f"r{i:02d}") for i in range(1, n + 1)]
    vault = [SimDevice("vault-gw", body='/ip service\nset winbox address=10.99.0.0/16 comment="vault-only"\n')]
    await add_routers(simulator, *lab, *vault)
    return config_for(tmp_path, {"lab": lab, "vault": vault}, site_options={"vault": {"allowed_users": [BOB]}})


def upload_text(slack: FakeSlack) -> tuple[str, str | None, str]:
    (upload,) = slack.completed_uploads()
    return upload.content.decode(), upload.channel, upload.filename


async def test_many_results_show_the_first_devices_with_counts_and_upload_everything(
        tmp_path: Path, simulator: Simulator, slack: FakeSlack) -> None:
    settings = await fleet(tmp_path, simulator)
    async with run_bot(settings, slack) as bot:
        await bot.app[BACKEND].service.run(settings.devices(), Trigger.CLI)
        reply = await bot.command("grep winbox")
        assert reply.status == 200 and reply.elapsed < 3
        assert "Searching the latest backup of 12 devices for “winbox”…" in reply.json["text"]  # vault not counted
        message = await answer(slack, reply)
        await settle(bot)
    text, channel, name = upload_text(slack)
    assert (channel, name) == (GENERAL, "grep-winbox.txt")
    assert text.startswith("grep “winbox”: 12 devices, 12 lines — searched the latest backups of 12 devices\n")
    assert [line.split(" #")[0] for line in text.splitlines() if line.startswith("lab/")] == [
        f"lab/r{i:02d}" for i in range(1, 13)]
    assert text.count("  /ip firewall filter\n") == 12 and text.count(": add action=accept chain=input") == 12
    assert "vault" not in text and "vault" not in slack.everything_sent()
    shown = blocks_text(message)
    assert message["text"].startswith("“winbox”: 12 devices, 12 lines (full result in grep-winbox.txt)")
    assert "*12 devices, 12 lines* match" in shown
    first = [b for b in message["blocks"] if b["type"] == "section" and b["text"]["text"].startswith("*lab/")]
    assert 1 <= len(first) < 12
    assert f"First {len(first)} of 12 devices shown. The full result, every line, is in *grep-winbox.txt*" in shown
    assert "/ip firewall filter" in first[0]["text"]["text"] and ":" in first[0]["text"]["text"]


async def test_a_small_result_is_answered_in_the_message(tmp_path: Path, simulator: Simulator,
                                                         slack: FakeSlack) -> None:
    settings = await fleet(tmp_path, simulator, n=2)
    async with run_bot(settings, slack) as bot:
        await bot.app[BACKEND].service.run(settings.devices(), Trigger.CLI)
        reply = await bot.command(r"""grep -i -E 'WINBOX FROM mgmt" dst-port=\d+' lab r01""")
        message = await answer(slack, reply)
        none = await answer(slack, await bot.command("grep vault-only"))  # Alice may not see the vault
        bobs = await answer(slack, await bot.command("grep vault-only", user=BOB))
        await settle(bot)
    assert slack.completed_uploads() == []
    shown = blocks_text(message)
    assert message["text"] == 'regex “WINBOX FROM mgmt" dst-port=\\d+” (ignoring case): 1 device, 1 line'
    assert "*lab/r01*" in shown and "/ip firewall filter" in shown and "dst-port=22,8291" in shown
    assert "searched the latest backups of 1 device" in shown
    assert none["text"] == "No line matches “vault-only” in the latest backups of 2 devices."
    assert "vault/vault-gw" in blocks_text(bobs)


async def test_secrets_are_not_probeable_and_never_posted(tmp_path: Path, simulator: Simulator,
                                                          slack: FakeSlack) -> None:
    """Alice (no download rights) finds nothing by guessing a password; the admin finds it, sees
    the line redacted, and the file goes to the admin's DM, not the channel."""
    settings = await fleet(tmp_path, simulator)
    async with run_bot(settings, slack) as bot:
        backend = bot.app[BACKEND]
        await backend.service.run(settings.devices(), Trigger.CLI)
        latest = await backend.store.latest_version("lab", "r01")
        values, _ = secrets_in(await backend.catalog.config(latest.id))
        password = next(v for v in values if v.startswith("l2tp-"))
        alice = await answer(slack, await bot.command(f"grep {password}"))
        alice_prefix = await answer(slack, await bot.command("grep -E password=l2tp-[0-9a-f]+"))
        admin_reply = await bot.command("grep l2tp-", user=ADMIN)
        admin = await answer(slack, admin_reply)
        await settle(bot)
    assert alice["text"] == f"No line matches “{password}” in the latest backups of 12 devices."
    assert alice_prefix["text"].startswith("No line matches")
    text, channel, _ = upload_text(slack)
    assert channel == "D0ADMIN001"  # the admin's DM: the lines matched inside secret values
    assert text.count("password=<redacted:") == 12 and password not in text
    assert "sent to our direct messages: some lines matched inside secret values" in blocks_text(admin)
    sent = slack.everything_sent() + text
    assert not any(v in sent for v in values if v != password)  # Alice typed that one herself


async def test_bad_requests_are_answered_in_the_ack(tmp_path: Path, simulator: Simulator, slack: FakeSlack) -> None:
    settings = await fleet(tmp_path, simulator, n=1)
    async with run_bot(settings, slack) as bot:
        answers = {}
        for text in ("grep -E (a+", "grep --history winbox lab", "grep winbox nowhere", "grep winbox vault",
                     "grep", "grep -x winbox", f"grep {'x' * 201}"):
            reply = await bot.command(text)
            assert reply.status == 200
            answers[text] = reply.json
        await settle(bot)
    assert all(is_error(a) for a in answers.values()), json.dumps(answers, indent=1)
    said = {k: v["text"] for k, v in answers.items()}
    assert said["grep -E (a+"] == "Not a valid regular expression: missing ), unterminated subpattern at position 0."
    assert said["grep --history winbox lab"].startswith("--history follows the matching lines through one device")
    assert said["grep winbox nowhere"].startswith('Unknown site "nowhere".')
    assert said["grep winbox vault"] == "You are not allowed to see vault. Ask a backupbot admin."
    assert said["grep"].startswith("Search for what?")
    assert said["grep -x winbox"].startswith("Unknown option -x.")
    assert said[f"grep {'x' * 201}"] == "The pattern is 201 characters long; at most 200 are allowed."
    assert slack.responses() == []  # nothing was searched


async def test_history_of_a_line_in_slack(tmp_path: Path, simulator: Simulator, slack: FakeSlack) -> None:
    r1 = SimDevice("r1")
    await add_routers(simulator, r1)
    settings = config_for(tmp_path, {"lab": [r1]})
    async with run_bot(settings, slack) as bot:
        service = bot.app[BACKEND].service
        await service.run(settings.devices(), Trigger.CLI)
        r1.change(1)  # a "block scanner 1" rule
        await service.run(settings.devices(), Trigger.CLI)
        r1.change(2)  # then the management comment edited twice (changes 2 and 3)
        await service.run(settings.devices(), Trigger.CLI)
        ids = [v.id for v in reversed(await bot.app[BACKEND].store.versions("lab", "r1"))]
        reply = await bot.command("grep --history scanner lab r1")
        assert "Searching every version of 1 device" in reply.json["text"]
        message = await answer(slack, reply)
        await settle(bot)
    shown = blocks_text(message)
    assert "grep --history “scanner”" in shown and "1 device, 1 line" in shown
    assert f"appeared in #{ids[1]} (" in shown and "still there (line" in shown
