"""The git mirror (bot.interop.mirror) after real BackupService runs on a real SQLite file (the collector is
tests.helpers.FakeCollector: SSH is not the point here; tests/integration/test_git_mirror.py runs it in
`serve` over SSH): commits, files, dates, messages, redaction, pushes that fail, catching up, repairs."""

from __future__ import annotations

import asyncio
import contextlib
import sys
import subprocess
from collections.abc import AsyncIterator, Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from bot.backup.service import BackupService
from bot.core.kinds import Trigger
from bot.core.models import Device, Settings, Status
from bot.interop import git as gitrun
from bot.interop.commits import bookmark_of, file_content
from bot.interop.importing import Importer
from bot.interop.mirror import RUN_SETTLES, GitMirror
from bot.interop.sources import OxidizedRepo
from bot.routeros import export as routeros
from storage.store import Store
from tests.helpers import Clock, FakeCollector, secrets_in, until
from tests.interop.repos import Commit, day, fixture, git, log, oxidized_repo, oxidized_text, settings, show


def whole(name: str) -> bytes:
    """A fixture as the router printed it: the two published without their final newline get it back."""
    raw = fixture(name)
    return raw if raw.endswith(b"\n") else raw + b"\n"


class Lab:
    """Site "lab" with r1 and r2 whose exports the test sets, a store, a service and the mirror kicked
    after every run (as bot.app wires them)."""

    def __init__(self, config: Settings, store: Store, clock: Clock) -> None:
        self.config, self.store, self.clock = config, store, clock
        self.exports: dict[str, bytes] = {"r1": whole("seq-sara-951-1.rsc"), "r2": fixture("seq-tvroom-1.rsc")}
        self.mirror = GitMirror(config.git, store, clock) if config.git else None  # type: ignore[arg-type]
        self.service = BackupService(config, FakeCollector(lambda d: self.exports[d.name]), store, clock,
                                     observe=lambda summary: self.mirror.kick() if self.mirror else None)

    async def run(self, at_day: int, trigger: Trigger = Trigger.SCHEDULE, devices: list[Device] | None = None) -> int:
        self.clock.now = day(at_day)
        summary = await self.service.run(devices or self.config.devices(), trigger)
        assert not summary.failed
        return summary.run_id

    async def synced(self) -> None:
        assert self.mirror is not None
        await self.mirror.close()


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Store]:
    async with await Store.open(tmp_path / "backups.db") as s:
        yield s


def lab(tmp_path: Path, store: Store, **git_section: Any) -> Lab:
    section = {"path": "mirror", **git_section}
    return Lab(settings(tmp_path, {"lab": ["r1", "r2"]}, git_section=section), store, Clock(day(1)))


async def test_two_runs_make_two_commits_dated_by_the_run(tmp_path: Path, store: Store) -> None:
    site = lab(tmp_path, store)
    first = await site.run(1)
    site.exports["r1"] = whole("seq-sara-951-2.rsc")
    second = await site.run(2, Trigger.SLACK)
    await site.synced()

    mirror = tmp_path / "mirror"
    commits = log(mirror)
    assert [c.files for c in commits] == [("lab/r1.rsc", "lab/r2.rsc"), ("lab/r1.rsc",)]  # r2 unchanged: not in it
    assert [c.author_date for c in commits] == [day(1), day(2)]
    assert [c.committer_date for c in commits] == [day(1), day(2)]
    assert {c.author for c in commits} == {"backupbot <backupbot@localhost>"}
    assert commits[0].message.splitlines()[0] == f"Scheduled run #{first}: lab/r1 new, lab/r2 new"
    assert commits[1].message.splitlines()[0] == f"Run from Slack #{second}: lab/r1 changed"
    assert "lab/r1: changed, +" in commits[1].message
    assert bookmark_of(commits[1].message) is not None

    # Redacted by default: the normalized config with each secret a keyed fingerprint, as Slack shows it.
    key = await store.instance_key()
    committed = show(mirror, "HEAD", "lab/r1.rsc")
    assert committed == file_content(whole("seq-sara-951-2.rsc"), key)
    secrets, _ = secrets_in(routeros.normalize(whole("seq-sara-951-2.rsc")))
    assert secrets and not [s for s in secrets if s.encode() in committed]
    assert b"<redacted:" in committed
    assert (mirror / "lab" / "r1.rsc").read_bytes() == committed  # the work tree follows HEAD
    assert site.mirror is not None and site.mirror.health()["ok"] is True


async def test_raw_exports_with_redact_false(tmp_path: Path, store: Store) -> None:
    site = lab(tmp_path, store, redact=False, author="Ops <ops@example.net>")
    await site.run(1)
    await site.synced()
    assert show(tmp_path / "mirror", "HEAD", "lab/r1.rsc") == whole("seq-sara-951-1.rsc")  # secrets included
    assert log(tmp_path / "mirror")[0].author == "Ops <ops@example.net>"


async def test_a_mirror_behind_catches_up_from_the_database(tmp_path: Path, store: Store) -> None:
    """Runs made with no mirror (git failing, or added to the config later) are committed run by run at
    the next sync; a deleted mirror is rebuilt commit for commit (same ids: same content and dates)."""
    site = lab(tmp_path, store)
    assert site.mirror is not None
    mirror, site.mirror = site.mirror, None  # not kicked
    await site.run(1)
    site.exports["r2"] = fixture("seq-tvroom-2.rsc")
    await site.run(2)
    site.exports["r1"] = whole("seq-sara-951-2.rsc")
    site.mirror = mirror
    await site.run(3)
    await site.synced()
    commits = log(tmp_path / "mirror")
    assert [c.author_date for c in commits] == [day(1), day(2), day(3)]
    assert [c.files for c in commits] == [("lab/r1.rsc", "lab/r2.rsc"), ("lab/r2.rsc",), ("lab/r1.rsc",)]

    rebuilt = tmp_path / "mirror"
    for path in sorted(rebuilt.rglob("*"), reverse=True):
        path.unlink() if path.is_file() else path.rmdir()
    rebuilt.rmdir()
    await GitMirror(site.config.git, store, site.clock).sync()  # type: ignore[arg-type]
    assert [c.sha for c in log(rebuilt)] == [c.sha for c in commits]


async def test_a_failing_push_never_fails_the_run_and_is_retried(tmp_path: Path, store: Store) -> None:
    remote = tmp_path / "remote.git"  # not there yet: every push fails
    site = lab(tmp_path, store, remote="remote.git")
    assert site.mirror is not None
    await site.run(1)
    await site.synced()
    health = site.mirror.health()
    assert health["ok"] is False and "git push failed" in health["push_error"]
    assert health["head"] is not None and "error" not in health  # the commit itself is made

    git(tmp_path, "init", "--quiet", "--bare", str(remote))
    site.exports["r1"] = whole("seq-sara-951-2.rsc")
    await site.run(2)
    await site.synced()
    assert site.mirror.health()["ok"] is True and site.mirror.health()["push_error"] is None
    assert [c.author_date for c in log(remote, "main")] == [day(1), day(2)]  # the retry took both runs


async def test_a_remote_that_hangs_does_not_hold_up_the_run(tmp_path: Path, store: Store) -> None:
    """A remote that accepts the connection and never answers: the run returns at once; the push gives
    up after its deadline and says so."""
    accepted: list[asyncio.StreamWriter] = []

    async def hang(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        accepted.append(writer)

    server = await asyncio.start_server(hang, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        site = lab(tmp_path, store, remote=f"http://127.0.0.1:{port}/mirror.git")
        assert site.mirror is not None
        site.mirror.push_timeout = 2.0
        await site.run(1)
        assert site.mirror.status.push_error is None and site.mirror.status.pushed_at is None  # still pushing
        await until(lambda: site.mirror is not None and site.mirror.status.push_error is not None, timeout=30)
        assert "took longer than 2 s" in site.mirror.status.push_error  # type: ignore[operator]
        assert accepted
    finally:
        for w in accepted:
            w.close()
        server.close()
        await server.wait_closed()


async def test_credentials_in_a_remote_url_are_not_shown(tmp_path: Path, store: Store) -> None:
    site = lab(tmp_path, store, remote="http://mirror:s3cr3t-t0ken@127.0.0.1:9/x.git")
    await site.run(1)
    await site.synced()
    assert site.mirror is not None
    error = site.mirror.health()["push_error"]
    assert error and "s3cr3t-t0ken" not in error


async def test_a_killed_commit_leaves_a_usable_mirror_and_the_next_run_repairs_it(tmp_path: Path,
                                                                                   store: Store) -> None:
    """What a kill at the worst moments leaves behind: a fast-import that never finished (objects and no
    branch move), the lock files git holds while it writes, a work tree half updated."""
    site = lab(tmp_path, store)
    await site.run(1)
    await site.synced()
    mirror = tmp_path / "mirror"
    head = git(mirror, "rev-parse", "HEAD").strip()

    async with gitrun.FastImport(mirror, "main", head) as stream:  # killed mid-commit
        await stream.commit("x <x@y>", day(9), "half\n", {"lab/r1.rsc": b"not a config\n"})
    assert git(mirror, "rev-parse", "HEAD").strip() == head
    for lock in (".git/index.lock", ".git/refs/heads/main.lock", ".git/HEAD.lock"):
        (mirror / lock).write_text("")
    (mirror / "lab" / "r2.rsc").unlink()
    (mirror / "lab" / "r1.rsc").write_text("half written")

    site.exports["r1"] = whole("seq-sara-951-2.rsc")
    await site.run(2)
    await site.synced()
    commits = log(mirror)
    assert [c.author_date for c in commits] == [day(1), day(2)]
    assert not any((mirror / lock).exists() for lock in (".git/index.lock", ".git/refs/heads/main.lock"))
    assert git(mirror, "status", "--porcelain") == ""
    assert (mirror / "lab" / "r2.rsc").read_bytes() == show(mirror, "HEAD", "lab/r2.rsc")
    assert git(mirror, "fsck", "--no-dangling").strip() == ""


async def test_a_run_in_progress_is_committed_whole_when_it_ends(tmp_path: Path, store: Store) -> None:
    """A run of another process, still going: what it recorded so far waits, so its commit is whole.
    One left running by a killed process counts as ended after RUN_SETTLES."""
    site = lab(tmp_path, store)
    assert site.mirror is not None
    running = await store.start_run(Trigger.CLI, day(1), "lab")
    export = FakeCollector(lambda d: fixture("seq-tvroom-1.rsc"))
    got = await export.collect(site.config.devices("lab", "r2")[0], None)
    await store.add_version(running, "lab", "r2", day(1), got.raw, got.norm_hash, got.meta, Status.NEW, 0, 0, None)
    site.clock.now = day(1) + timedelta(hours=1)
    await site.mirror.sync()
    assert site.mirror.status.head is None  # nothing committed yet

    site.clock.now = day(1) + RUN_SETTLES + timedelta(minutes=1)
    await site.mirror.sync()
    assert [c.files for c in log(tmp_path / "mirror")] == [("lab/r2.rsc",)]


async def test_a_repository_of_someone_else_is_left_alone(tmp_path: Path, store: Store) -> None:
    theirs = oxidized_repo(tmp_path / "mirror", [Commit(day(1), {"README": b"ours\n"})], bare=False)
    site = lab(tmp_path, store)
    await site.run(1)
    await site.synced()
    assert site.mirror is not None
    health = site.mirror.health()
    assert health["ok"] is False and "was not made by backupbot" in health["error"]
    assert len(log(theirs)) == 1
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "elsewhere" / "file").write_text("x")
    other = GitMirror(settings(tmp_path, {"lab": ["r1"]}, git_section={"path": "elsewhere"}).git,  # type: ignore[arg-type]
                      store, site.clock)
    await other.sync()
    assert "is a folder that is not a git repository" in (other.status.error or "")


async def test_an_import_is_mirrored_date_by_date(tmp_path: Path, store: Store) -> None:
    config = settings(tmp_path, {"lab": ["ap-1", "gw"]}, git_section={"path": "mirror"})
    repo = oxidized_repo(tmp_path / "ox.git", [
        Commit(day(1), {"ap-1": oxidized_text(fixture("seq-capxl-1.rsc")), "gw": oxidized_text(fixture("seq-praze-1.rsc"))}),
        Commit(day(2), {"ap-1": oxidized_text(fixture("seq-capxl-2.rsc"))}),
        Commit(day(3), {"gw": oxidized_text(fixture("seq-praze-2.rsc"))})])
    async with OxidizedRepo(repo) as source:
        report = await Importer(config, store, Clock(day(30))).run(source)
    mirror = GitMirror(config.git, store, Clock(day(30)))  # type: ignore[arg-type]
    await mirror.sync()
    commits = log(tmp_path / "mirror")
    assert [(c.author_date, c.files) for c in commits] == [
        (day(1), ("lab/ap-1.rsc", "lab/gw.rsc")), (day(2), ("lab/ap-1.rsc",)), (day(3), ("lab/gw.rsc",))]
    assert commits[0].message.startswith(f"History import #{report.run_id}: lab/ap-1 new, lab/gw new")


@pytest.mark.parametrize("bare", [False, True])
async def test_an_existing_repository_of_its_own_is_used_as_it_is(tmp_path: Path, store: Store, bare: bool) -> None:
    """git.path may be a repository made with `git init` (bare or not, any branch name)."""
    git(tmp_path, "init", "--quiet", "--initial-branch=backups", *(["--bare"] if bare else []), "mirror")
    site = lab(tmp_path, store)
    await site.run(1)
    await site.synced()
    assert [c.files for c in log(tmp_path / "mirror", "backups")] == [("lab/r1.rsc", "lab/r2.rsc")]



KILLED_SYNC = """
import asyncio, sys
from pathlib import Path
from bot.config.load import parse_settings
from bot.interop import mirror
from storage.store import Store

mirror.COMMITS_PER_IMPORT = 2  # many small batches: more moments to be killed in

async def main():
    git = parse_settings({"sites": {"lab": {"devices": [{"name": "r1", "host": "h", "username": "u",
                          "password": "${P}"}]}}, "git": {"path": sys.argv[2]}}, {"P": "x"}, Path("/")).git
    async with await Store.open(sys.argv[1]) as store:
        await mirror.GitMirror(git, store).sync()

if __name__ == "__main__":
    asyncio.run(main())
"""


def exited_or(proc: asyncio.subprocess.Process, condition: Callable[[], bool]) -> Callable[[], bool]:
    return lambda: proc.returncode is not None or condition()


async def test_a_sync_killed_at_any_moment_ends_where_an_uninterrupted_one_does(tmp_path: Path, store: Store) -> None:
    """A real process syncing a long history, SIGKILLed again and again (before it starts, while it
    creates the repository, between and inside its commits): the repository stays sound, what it holds
    is always a beginning of the right history, and the next sync ends with the very commits an
    uninterrupted sync makes."""
    site = lab(tmp_path, store)
    site.mirror = None
    for n in range(1, 41):
        site.exports["r1"] = whole("seq-sara-951-1.rsc" if n % 2 else "seq-sara-951-2.rsc")
        site.exports["r2"] = fixture("seq-tvroom-1.rsc" if n % 3 else "seq-tvroom-2.rsc")
        await site.run(n)
    await store.instance_key()  # made now, so the killed processes only read the database
    reference = settings(tmp_path, {"lab": ["r1"]}, git_section={"path": "reference"}).git
    await GitMirror(reference, store, site.clock).sync()  # type: ignore[arg-type]
    expected = [c.sha for c in log(tmp_path / "reference")]
    assert len(expected) == 40

    mirror = tmp_path / "mirror"
    root = Path(__file__).resolve().parents[2]

    seen: list[str] = []

    def committed() -> list[str]:
        """What the mirror holds. Until its first commit a killed or running `git init` may have left
        a .git that git cannot read yet: that holds nothing. From then on git must always read it."""
        try:
            if not (mirror / ".git" / "HEAD").exists() or not git(mirror, "branch", "--list", "main").strip():
                assert not seen, "the mirror lost its history"
                return []
        except subprocess.CalledProcessError:
            if seen:
                raise
            return []
        seen[:] = [c.sha for c in log(mirror)]
        return list(seen)

    partial = 0
    for moment in ("at once", "repository", "commits", "commits", "commits", "commits"):
        before = len(committed())
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-c", KILLED_SYNC, str(tmp_path / "backups.db"), str(mirror), cwd=root,
            stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL)
        if moment == "repository":
            await until(exited_or(proc, lambda: (mirror / ".git").exists()))
        elif moment == "commits":
            await until(exited_or(proc, lambda n=before: len(committed()) > n), timeout=60)
        with contextlib.suppress(ProcessLookupError):
            proc.kill()
        await proc.wait()
        now = committed()
        assert now == expected[:len(now)]  # whatever was committed is right, in order
        partial += 0 < len(now) < len(expected)

    assert partial  # some kill landed in the middle of the history
    await GitMirror(site.config.git, store, site.clock).sync()  # type: ignore[arg-type]
    assert [c.sha for c in log(mirror)] == expected
    assert git(mirror, "fsck", "--no-dangling").strip() == "" and git(mirror, "status", "--porcelain") == ""
