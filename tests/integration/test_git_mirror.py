"""The git mirror inside `serve`: real runs over SSH against the simulator, the mirror kicked by the
backend after each one, its state in /healthz/ready, a push that fails and then succeeds."""

from __future__ import annotations

import asyncio
import subprocess
from datetime import datetime, timezone
from pathlib import Path

from bot.core.kinds import Trigger
from bot.core.models import Status
from bot.interop.planning import examine
from bot.routeros import export as routeros
from bot.serve.server import BACKEND
from bot.ssh.simulator import SimDevice, Simulator
from tests.helpers import secrets_in, until
from storage.store import Store
from tests.integration.helpers import GENERAL, add_routers, config_for, run_bot
from tests.integration.slack_fake import FakeSlack


def git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=repo, capture_output=True, check=True, text=True).stdout


async def test_serve_mirrors_every_run_and_shows_a_failing_push(tmp_path: Path, simulator: Simulator,
                                                                slack: FakeSlack) -> None:
    r1, r2 = await add_routers(simulator, SimDevice("r1"), SimDevice("r2", ros_version="6.49.7"))
    settings = config_for(tmp_path, {"lab": [r1, r2]}, top={"git": {"path": "mirror", "remote": "remote.git"}})
    async with run_bot(settings, slack) as bot:
        backend = bot.app[BACKEND]
        first = await backend.service.run(settings.devices(), Trigger.SLACK)
        assert not first.failed  # the push failing below changes nothing about the backup

        async def git_part() -> dict[str, object]:
            _, body = await bot.admin_get("/healthz/ready")
            return body["git"]  # type: ignore[no-any-return]

        await until(lambda: _pushed_or_failed(git_part))
        status, body = await bot.admin_get("/healthz/ready")
        assert status == 503 and body["git"]["ok"] is False
        assert "git push failed" in body["git"]["push_error"] and body["git"]["head"]

        subprocess.run(["git", "init", "--quiet", "--bare", str(tmp_path / "remote.git")], check=True)
        r1.change(1)
        second = await backend.service.run(settings.devices(), Trigger.SCHEDULE)
        assert [r.status.value for r in second.results] == ["changed", "unchanged"]
        await until(lambda: _pushed(git_part))
        latest = second.results[0].version
        assert latest is not None
        secrets, _ = secrets_in(routeros.normalize(await backend.store.raw(latest.id)))

    remote = tmp_path / "remote.git"
    subjects = git(remote, "log", "--reverse", "--format=%s", "main").splitlines()
    assert subjects == [f"Run from Slack #{first.run_id}: lab/r1 new, lab/r2 new",
                        f"Scheduled run #{second.run_id}: lab/r1 changed"]
    assert git(remote, "log", "-1", "--format=%ad", "--date=unix", "main").strip() == \
        str(int(second.started_at.timestamp()))
    stat = git(remote, "log", "--stat", "--format=%s", "main")
    assert "lab/r1.rsc | " in stat and "lab/r2.rsc | " in stat
    # Secrets the simulator exports (show-sensitive) never reach the mirror: redacted by default.
    committed = git(remote, "show", "main:lab/r1.rsc")
    assert secrets and not [s for s in secrets if s in committed] and "<redacted:" in committed


async def _pushed_or_failed(part: object) -> bool:
    body = await part()  # type: ignore[operator]
    return bool(body.get("pushed_at") or body.get("push_error"))


async def _pushed(part: object) -> bool:
    body = await part()  # type: ignore[operator]
    return bool(body.get("ok") and body.get("pushed_at"))


async def test_an_import_cut_short_tells_the_channel_nothing(tmp_path: Path, simulator: Simulator,
                                                             slack: FakeSlack) -> None:
    """A run left unfinished is announced at the next start (its changes would go unheard otherwise),
    but not an import's: that history is old news."""
    (r1,) = await add_routers(simulator, SimDevice("r1"))
    settings = config_for(tmp_path, {"lab": [r1]})
    async with await Store.open(settings.storage_path) as store:
        run = await store.start_run(Trigger.IMPORT, datetime(2024, 5, 1, tzinfo=timezone.utc), "lab")
        for n, text in enumerate([b"/system identity\nset name=a\n", b"/system identity\nset name=b\n"]):
            ex = examine(text)
            await store.add_version(run, "lab", "r1", datetime(2024, 1, 1 + n, tzinfo=timezone.utc), text,
                                    ex.norm_hash, ex.meta, Status.CHANGED if n else Status.NEW, n, n, None)
    async with run_bot(settings, slack) as bot:
        store = bot.app[BACKEND].store
        assert (await store.run(run)).status == "interrupted"  # type: ignore[union-attr]
        await asyncio.sleep(0.5)  # a message queued at start-up would be posted by now
    assert slack.posts(GENERAL) == []
