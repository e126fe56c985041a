"""What the channel is told, end to end: real backups of simulated routers over SSH into SQLite,
messages committed with the run, delivered by the bot's own deliverer to the fake Slack.

Times are injected (a settable clock); nothing waits for 02:00: scheduled runs are started through
the same BackupService.run the scheduler calls, with trigger "schedule".
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from bot.app import open_backend
from bot.core.clock import utcnow
from bot.slack.blocks.ids import SHOW_DIFF, pair_value
from bot.slack.deliver import Tuning
from bot.core.models import Status
from bot.serve.server import BACKEND, Options
from bot.ssh.simulator import SimDevice, Simulator
from bot.core.text import changes
from tests.integration.helpers import (
    GENERAL,
    ROUTER_PASSWORD,
    add_routers,
    answer,
    buttons,
    config_for,
    fast_collector,
    run_bot,
    settle,
)
from tests.integration.slack_fake import FakeSlack
from tests.helpers import Clock

BRANCH = "C0BRANCH01"
OLD_SECRET, NEW_SECRET = "Old-Ppp-Secr3t-9", "New-Ppp-Secr3t-7"
BODY = "/ppp secret\nadd name=branch password={secret} service=l2tp\n/ip dns\nset servers={dns}\n"


def options(clock: Callable[[], datetime] = utcnow, **tuning: Any) -> Options:
    return Options(clock=clock, collector=fast_collector(), drain_timeout=10.0,
                   delivery=Tuning(spacing=0.0, backoff=0.05, max_backoff=0.2, poll=0.2, **tuning))


def everything(slack: FakeSlack) -> str:
    return slack.everything_sent() + "".join(u.content.decode("utf-8", "replace") for u in slack.uploads.values())


async def test_scheduled_summary_lists_everything_and_threads_redacted_diffs(
        tmp_path: Path, simulator: Simulator, slack: FakeSlack) -> None:
    """One summary: totals, changed devices with +/- and Show diff, the new device, the failure's
    reason and the stale device ("no good backup for 3 days"); in its thread each change's redacted
    diff: the short one inline, the long one as a diff snippet. No router secret reaches Slack."""
    clock = Clock(datetime.now(UTC) - timedelta(days=3))
    small = SimDevice("r-small", body=BODY.format(secret=OLD_SECRET, dns="1.1.1.1"))
    big, same, failing, new = SimDevice("r-big"), SimDevice("r-same"), SimDevice("r-fail"), SimDevice("r-new")
    await add_routers(simulator, small, big, same, failing, new)
    settings = config_for(tmp_path, {"lab": [small, big, same, failing, new]})
    async with run_bot(settings, slack, options=options(clock)) as bot:
        service = bot.app[BACKEND].service
        await service.run(settings.devices("lab")[:4], "cli")  # three days ago: all new, nothing to tell
        clock.now = datetime.now(UTC)
        small.body = BODY.format(secret=NEW_SECRET, dns="9.9.9.9")
        big.change(60)
        failing.behaviour = "auth_fail"
        summary = await service.run(settings.devices("lab"), "schedule")
        await slack.wait_for("chat.postMessage", 2)
        await slack.wait_for("files.completeUploadExternal")

    by = {r.device.name: r for r in summary.results}
    assert [by[n].status for n in ("r-small", "r-big", "r-same", "r-fail", "r-new")] == [
        Status.CHANGED, Status.CHANGED, Status.UNCHANGED, Status.FAILED, Status.NEW]
    [post] = slack.posts(GENERAL)
    text = json.dumps(post, ensure_ascii=False)
    assert "5 devices* · 1 unchanged · 2 changed · 1 new · 1 failed" in text
    for name in ("r-small", "r-big"):
        r = by[name]
        assert f"`{changes(r.added, r.removed)}`" in text
        assert (SHOW_DIFF, pair_value(r.previous.id, r.version.id)) in buttons(post)
    assert "lab/r-fail` — authentication failed" in text
    assert "lab/r-fail` — no good backup for 3 days" in text
    assert "lab/r-new" in text and "Scheduled run" in text
    assert post["metadata"]["event_type"] == "backupbot_outbox"

    inline, snippet = slack.posts(GENERAL, thread_ts=post["ts"])
    assert "lab/r-small" in json.dumps(inline, ensure_ascii=False) and "9.9.9.9" in json.dumps(inline)
    assert "&lt;redacted:" in json.dumps(inline)
    [upload] = slack.completed_uploads()
    assert snippet["files"][0]["id"] == upload.file_id and upload.snippet_type == "diff"
    assert b"+/ip firewall filter" in upload.content or b"+add" in upload.content
    sent = everything(slack)
    assert OLD_SECRET not in sent and NEW_SECRET not in sent and ROUTER_PASSWORD not in sent


async def test_each_channel_gets_its_own_summary(tmp_path: Path, simulator: Simulator, slack: FakeSlack) -> None:
    """A site with its own `channel` is summarised there; the others in slack.channel: one summary
    per channel, each naming only its own devices. A channel-less config enqueues nothing."""
    a, b = await add_routers(simulator, SimDevice("core-a"), SimDevice("edge-b"))
    settings = config_for(tmp_path, {"lab": [a], "branch": [b]}, site_options={"branch": {"channel": BRANCH}})
    async with run_bot(settings, slack, options=options(Clock(datetime.now(UTC)))) as bot:
        await bot.app[BACKEND].service.run(settings.devices(), "schedule")
        await slack.wait_for("chat.postMessage", 2)
    [lab], [branch] = slack.posts(GENERAL), slack.posts(BRANCH)
    assert "lab/core-a" in json.dumps(lab) and "edge-b" not in json.dumps(lab)
    assert "branch/edge-b" in json.dumps(branch) and "core-a" not in json.dumps(branch)

    quiet = config_for(tmp_path / "quiet", {"lab": [a]}, top={"slack": {"admins": []}})
    async with open_backend(quiet, collector=fast_collector()) as backend:
        a.change(1)
        await backend.service.run(quiet.devices(), "schedule")
        assert await backend.store.outbox_depth() == 0


async def test_a_changed_host_key_is_alerted_once(tmp_path: Path, simulator: Simulator, slack: FakeSlack) -> None:
    """The first run that sees a new host key alerts with old and new fingerprints and the trust
    command; the next runs (key still pending) do not alert again; a further new key does."""
    (r1,) = await add_routers(simulator, SimDevice("r1"))
    settings = config_for(tmp_path, {"lab": [r1]})
    old = r1.host_key_fingerprint
    async with run_bot(settings, slack, options=options(Clock(datetime.now(UTC)))) as bot:
        service = bot.app[BACKEND].service
        await service.run(settings.devices(), "schedule")
        r1.rotate_host_key()
        await simulator.restart_device("r1")
        first_new = r1.host_key_fingerprint
        await service.run(settings.devices(), "schedule")
        await service.run(settings.devices(), "slack")
        await service.run(settings.devices(), "schedule")
        r1.rotate_host_key()
        await simulator.restart_device("r1")
        await service.run(settings.devices(), "schedule")
        await slack.wait_for("chat.postMessage", 6)  # 4 summaries, 2 alerts
    alerts = [m for m in slack.posts(GENERAL) if "Host key changed" in (m.get("text") or "")]
    assert len(alerts) == 2
    first = json.dumps(alerts[0], ensure_ascii=False)
    assert old in first and first_new in first and "backupbot trust lab r1" in first
    assert r1.host_key_fingerprint in json.dumps(alerts[1], ensure_ascii=False)


async def test_runs_from_slack_and_the_cli_tell_the_channel_each_change_once(
        tmp_path: Path, simulator: Simulator, slack: FakeSlack) -> None:
    """"/backup lab now": the requester gets the summary; the channel gets only the change (with
    its diff in the thread), once, even though a second request joined the same backup. A CLI run
    in another process enqueues into the same database, and the serving bot delivers it."""
    (r1,) = await add_routers(simulator, SimDevice("r1", delay=1.5))
    settings = config_for(tmp_path, {"lab": [r1]})
    # The real clock: the "CLI" below stamps its messages with it, as another process would.
    async with run_bot(settings, slack, options=options()) as bot:
        await bot.app[BACKEND].service.run(settings.devices(), "schedule")
        await slack.wait_for("chat.postMessage", 1)
        r1.change(2)
        service = bot.app[BACKEND].service
        first = await bot.command("lab now")
        while not service.busy(settings.devices()):
            await asyncio.sleep(0.01)
        second = await bot.command("lab now")  # joins the running backup
        assert "already running" in second.text
        assert "1 changed" in (await answer(slack, first))["text"]
        assert "1 changed" in (await answer(slack, second))["text"]
        await settle(bot)
        await slack.wait_for("chat.postMessage", 3)
        r1.change(1)
        async with open_backend(settings, collector=fast_collector()) as cli:  # what `backupbot backup` opens
            await cli.service.run(settings.devices(), "cli")
        await slack.wait_for("chat.postMessage", 5)
    summary, from_slack, from_cli = slack.posts(GENERAL)
    assert "Scheduled run" in json.dumps(summary)
    assert "Config changed: lab/r1" in from_slack["text"] and "Run from Slack" in json.dumps(from_slack)
    assert "Run from the server" in json.dumps(from_cli)
    for notice in (from_slack, from_cli):
        [diff] = slack.posts(GENERAL, thread_ts=notice["ts"])
        assert "lab/r1" in json.dumps(diff, ensure_ascii=False)
