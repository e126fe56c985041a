"""No secret of any real RouterOS export reaches Slack through show, diff, compare or the listings.

Every fixture in tests/fixtures/routeros is stored as a version (through the Store API, exactly as
a backup stores it); the seq-* families become devices with several versions. Then everything a
user can ask for in a channel is asked for through Slack, and every byte the bot sent to the fake
(API parameters, uploaded files, response_url posts) is searched for every secret value, found by
tests/helpers.py's own independent finder (not by bot.routeros.redact).
"""

from __future__ import annotations

import hashlib
import itertools
import html
import json
import re
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from pathlib import Path

from bot.slack import blocks
from bot.routeros import export as routeros
from bot.core.models import Status
from bot.serve.server import BACKEND
from tests.integration.helpers import ADMIN, config_for, is_error, run_bot, settle
from tests.integration.slack_fake import FakeSlack
from tests.helpers import ALL, FIXTURES, secrets_in

SITE = "fx"
START = datetime(2025, 1, 1, tzinfo=UTC)


def families() -> dict[str, list[str]]:
    """Device name -> its fixture files in order (seq-capxl-1..4 -> "seq-capxl")."""
    out: dict[str, list[str]] = defaultdict(list)
    for name in ALL:
        stem = name.removesuffix(".rsc")
        out[re.sub(r"-\d+$", "", stem) if stem.startswith("seq-") else stem].append(name)
    return dict(out)


def spellings(value: str) -> set[str]:
    """How a value could appear in what was sent: as is, JSON-escaped, mrkdwn-escaped."""
    escaped = html.escape(value, quote=False)
    return {value, json.dumps(value)[1:-1], escaped, json.dumps(escaped)[1:-1]}


async def test_no_fixture_secret_reaches_slack(tmp_path: Path, slack: FakeSlack) -> None:
    """show every version, diff every consecutive pair, latest change and a 3+ compare of every
    family, the site and device listings: no secret value appears in anything sent to Slack."""
    devices = families()
    # The inventory entries are never contacted (no backup runs in this test).
    settings = config_for(tmp_path, {SITE: []}, site_options={SITE: {"devices": [
        {"name": name, "host": "127.0.0.1", "port": 1} for name in devices]}})
    secrets: set[str] = set()
    public = []
    async with run_bot(settings, slack) as bot:
        store = bot.app[BACKEND].store
        run_id = await store.start_run("test", START, SITE)
        ids: dict[str, list[int]] = {}
        for i, (device, files) in enumerate(devices.items()):
            for j, file in enumerate(files):
                raw = (FIXTURES / file).read_bytes()
                normalized = routeros.normalize(raw)
                values, rest = secrets_in(normalized)
                secrets.update(values)
                public.append(rest)
                version = await store.add_version(
                    run_id, SITE, device, START + timedelta(days=j, minutes=i), raw,
                    hashlib.sha256(normalized.encode()).hexdigest(), routeros.parse_header(raw.decode(errors="replace")),
                    Status.NEW if j == 0 else Status.CHANGED, 0, 0, None)
                ids.setdefault(device, []).append(version.id)
        await store.finish_run(run_id, START)

        asked = 0  # show commands: each one uploads a snippet
        for device, versions in ids.items():
            for vid in versions:
                await bot.command(f"show {vid}", user=ADMIN)
                asked += 1
            for old, new in itertools.pairwise(versions):
                await bot.command(f"diff {old} {new}", user=ADMIN)
            if len(versions) > 1:
                await bot.command(f"diff {SITE} {device}", user=ADMIN)
                state = {"v": {blocks.SELECT_VERSIONS: {"type": "checkboxes", "selected_options": [
                    {"value": str(v)} for v in versions]}}}
                await bot.action(blocks.COMPARE_SELECTED, f"{SITE} {device}", state=state, user=ADMIN)
            await bot.command(f"{SITE} {device}", user=ADMIN)
            await settle(bot)
        await bot.command(SITE, user=ADMIN)
        await settle(bot)
        assert len(slack.completed_uploads()) >= asked
        assert [r["text"] for r in slack.responses() if is_error(r)] == []

    sent = slack.everything_sent() + "".join(u.content.decode("utf-8", "replace") for u in slack.uploads.values())
    assert "<redacted:" in sent
    everywhere_public = "\n".join(public)
    checked = [s for s in secrets if len(s) >= 4 and not s.startswith("{") and s not in everywhere_public]
    assert len(checked) > 100  # the fixtures hold hundreds of distinct secrets
    leaked = sorted(s for s in checked if any(form in sent for form in spellings(s)))
    assert leaked == []
