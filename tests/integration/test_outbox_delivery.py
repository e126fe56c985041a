"""The outbox deliverer against the fake Slack, inside the bot's real aiohttp app and real SQLite:
rate limits, server errors, Slack down, answers lost after the post landed, refused channels and
refused content. Every message ends up in the channel exactly once, in order, replies in their
thread. Waits are shortened through Options.delivery; nothing sleeps for minutes."""

from __future__ import annotations

import asyncio
import sqlite3
from datetime import timedelta
from pathlib import Path
from typing import Any

from bot.core.clock import utcnow
from bot.slack.deliver import Tuning
from bot.core.models import Settings
from bot.serve.server import BACKEND, DELIVERER, Options
from bot.core.messages import OutboxMessage
from storage.store import Store
from tests.integration.helpers import GENERAL, SlackBot, config_for, fast_collector, run_bot
from tests.integration.slack_fake import FakeSlack
from tests.helpers import until

OTHER = "C0OTHER001"
FAST = Tuning(spacing=0.0, backoff=0.05, max_backoff=0.2, blocked_retry=0.3, poll=0.2)


def quiet_settings(tmp_path: Path) -> Settings:
    """A config whose only device is never contacted: these tests feed the outbox directly."""
    return config_for(tmp_path, {"lab": []}, site_options={"lab": {"devices": [
        {"name": "r1", "host": "127.0.0.1", "port": 1}]}})


def options(**tuning: Any) -> Options:
    return Options(collector=fast_collector(), drain_timeout=5.0, delivery=Tuning(**{**FAST.__dict__, **tuning}))


def msg(text: str, parent: int | None = None, channel: str = GENERAL, kind: str = "summary") -> OutboxMessage:
    return OutboxMessage(channel, kind, {"text": text, "blocks": [
        {"type": "section", "text": {"type": "mrkdwn", "text": f"*{text}*"}}]}, parent)


def diff_file(name: str, parent: int) -> OutboxMessage:
    return OutboxMessage(GENERAL, "drift", {"text": f"diff {name}", "file": {
        "content": f"--- a\n+++ b\n-{name} old\n+{name} new\n", "filename": f"{name}.diff",
        "title": name, "snippet_type": "diff"}}, parent)


async def enqueue(bot: SlackBot, *messages: OutboxMessage) -> list[int]:
    ids = await bot.app[BACKEND].store.enqueue(list(messages), utcnow())
    bot.app[DELIVERER].wake()
    return ids


async def drained(bot: SlackBot) -> bool:
    return await bot.app[BACKEND].store.outbox_depth() == 0


def texts(messages: list[dict[str, Any]]) -> list[str]:
    return [m.get("text") or m["files"][0]["name"] for m in messages]


def thread(slack: FakeSlack, text: str, channel: str = GENERAL) -> list[str]:
    [parent] = [m for m in slack.posts(channel) if m.get("text") == text]
    return texts(slack.posts(channel, thread_ts=parent["ts"]))


def posted(slack: FakeSlack) -> list[str]:
    """Texts of chat.postMessage calls Slack accepted, in the order they were made."""
    return [c.params["text"] for c in slack.calls_to("chat.postMessage") if c.status == 200]


async def test_rate_limit_server_errors_and_an_outage_deliver_everything_once_in_order(
        tmp_path: Path, slack: FakeSlack) -> None:
    """429 Retry-After: 1 is honoured (the next post comes >= 1 s later); two 500s and then Slack
    unreachable for a while are retried with backoff; in the end every message is in the channel
    exactly once, summaries in order, replies in their summary's thread after it, and the
    failures were counted in /metrics."""
    slack.fail("chat.postMessage", 429, retry_after=1)
    async with run_bot(quiet_settings(tmp_path), slack, options=options()) as bot:
        await enqueue(bot, msg("A"), msg("A1", -1), msg("A2", -1), msg("B"))
        await until(lambda: drained(bot))
        limited, *_ = slack.calls_to("chat.postMessage")
        assert limited.status == 429
        assert slack.calls_to("chat.postMessage")[1].at - limited.at >= 1.0

        slack.fail("chat.postMessage", 500, times=2)
        await enqueue(bot, msg("C"), msg("C1", -1))
        await until(lambda: drained(bot))

        await slack.go_down()
        await enqueue(bot, msg("D"), msg("D1", -1))

        async def refused() -> bool:
            _, health = await bot.admin_get("/healthz/ready")
            return any(f["error"] == "connection_error" for f in health["outbox"]["failing"])

        await until(refused)
        await asyncio.sleep(0.3)  # Slack stays down through a few more attempts
        await slack.come_up()
        await until(lambda: drained(bot))
        _, metrics = await bot.admin_text("/metrics")

    assert texts(slack.posts(GENERAL)) == ["A", "B", "C", "D"]
    assert thread(slack, "A") == ["A1", "A2"] and thread(slack, "C") == ["C1"] and thread(slack, "D") == ["D1"]
    assert posted(slack) == ["A", "A1", "A2", "B", "C", "C1", "D", "D1"]
    assert 'backupbot_slack_delivery_failures_total{reason="rate_limited"} 1.0' in metrics
    assert 'backupbot_slack_delivery_failures_total{reason="slack_error"} 2.0' in metrics
    assert 'backupbot_slack_delivery_failures_total{reason="network"}' in metrics


def outbox_rows(path: Path) -> dict[int, tuple[str | None, int | None]]:
    with sqlite3.connect(path) as db:
        return {i: (ts, since) for i, ts, since in db.execute("SELECT id, ts, sending_since FROM outbox")}


async def test_a_post_that_landed_but_whose_answer_was_lost_is_found_not_reposted(
        tmp_path: Path, slack: FakeSlack) -> None:
    """Slack posts the message, the file share and the thread reply but answers 500: the next
    attempt finds each one in conversations.history / conversations.replies by its outbox id
    (metadata, file name) and records its ts. Each is in the channel once."""
    slack.fail("chat.postMessage", 500, landed=True)
    slack.fail("chat.postMessage", 500, landed=True)
    slack.fail("files.completeUploadExternal", 500, landed=True)
    settings = quiet_settings(tmp_path)
    async with run_bot(settings, slack, options=options()) as bot:
        summary, reply, file = await enqueue(bot, msg("S"), msg("S1", -1), diff_file("lab-r1-1-2", -1))
        await until(lambda: drained(bot))
    top = slack.posts(GENERAL)
    assert texts(top) == ["S"]
    assert thread(slack, "S") == ["S1", f"lab-r1-1-2.outbox-{file}.diff"]
    assert len(slack.calls_to("chat.postMessage")) == 2 and len(slack.calls_to("files.completeUploadExternal")) == 1
    assert slack.calls_to("conversations.history") and len(slack.calls_to("conversations.replies")) >= 2
    rows = outbox_rows(settings.storage_path)
    replies = slack.posts(GENERAL, thread_ts=top[0]["ts"])
    assert rows[summary][0] == top[0]["ts"] and rows[reply][0] == replies[0]["ts"]
    assert rows[file][0] == replies[1]["ts"]


async def test_a_channel_the_bot_cannot_post_in_waits_without_blocking_others(
        tmp_path: Path, slack: FakeSlack) -> None:
    """not_in_channel: that channel's messages stay queued (error shown in /healthz/ready, retried
    slowly) while another channel's are delivered; once the bot is invited they go out in order."""
    slack.not_in_channel.add(OTHER)
    async with run_bot(quiet_settings(tmp_path), slack, options=options()) as bot:
        await enqueue(bot, msg("X", channel=OTHER), msg("X1", -1, channel=OTHER), msg("G"))
        await until(lambda: texts(slack.posts(GENERAL)) == ["G"])
        _, health = await bot.admin_get("/healthz/ready")
        assert health["outbox"]["depth"] == 2
        assert [(f["channel"], f["error"]) for f in health["outbox"]["failing"]] == [(OTHER, "not_in_channel")]
        slack.not_in_channel.discard(OTHER)
        await until(lambda: drained(bot))
    assert texts(slack.posts(OTHER)) == ["X"] and thread(slack, "X", OTHER) == ["X1"]


async def test_refused_content_is_sent_simpler_and_never_blocks_its_replies(
        tmp_path: Path, slack: FakeSlack) -> None:
    """invalid_blocks: the message goes out as plain text (its replies thread under it). Refused
    in every form: it is given up (kept, counted, shown in /healthz/ready) and its reply is posted on
    its own instead of waiting forever."""
    slack.fail("chat.postMessage", 200, error="invalid_blocks")
    async with run_bot(quiet_settings(tmp_path), slack, options=options()) as bot:
        await enqueue(bot, msg("P"), msg("P1", -1))
        await until(lambda: drained(bot))
        plain = [m for m in slack.posts(GENERAL) if m["text"] == "P"]
        assert plain and plain[0]["blocks"] is None and thread(slack, "P") == ["P1"]

        slack.fail("chat.postMessage", 200, times=3, error="invalid_blocks")
        [dead, _] = await enqueue(bot, msg("Q"), msg("Q1", -1))
        await until(lambda: drained(bot))
        _, health = await bot.admin_get("/healthz/ready")
    assert "Q1" in texts(slack.posts(GENERAL)) and "Q" not in texts(slack.posts(GENERAL))
    assert health["outbox"]["given_up"] == 1
    assert health["outbox"]["last_given_up"] == {"id": dead, "channel": GENERAL, "kind": "summary",
                                                 "error": "invalid_blocks"}


async def test_a_restart_resends_what_was_never_sent(tmp_path: Path, slack: FakeSlack) -> None:
    """Messages enqueued while no bot runs (or left by a stopped one) are delivered, in order, by
    the next start; delivered ones are not sent again."""
    settings = quiet_settings(tmp_path)
    async with await Store.open(settings.storage_path) as store:
        await store.enqueue([msg("old-1"), msg("old-2")], utcnow() - timedelta(hours=2))
    async with run_bot(settings, slack, options=options()) as bot:
        await until(lambda: drained(bot))
    async with run_bot(settings, slack, options=options()) as bot:
        await enqueue(bot, msg("new"))
        await until(lambda: drained(bot))
    assert posted(slack) == ["old-1", "old-2", "new"]
