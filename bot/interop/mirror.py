"""The git mirror (`git:` in the config): after each run, the versions it recorded are committed to a
local repository as `SITE/DEVICE.rsc`, one commit per run dated by the run, and pushed to
`git.remote` if one is set.

Never part of the backup. The service kicks the mirror after a run is recorded (`kick`), and the
work happens in a background task of its own: git runs as subprocesses under deadlines, redaction
in the CPU worker. A mirror that fails (git missing, a disk full, a remote refusing the push) is
logged and shown in readiness (`status`), and simply tried again after the next run.

What is in git comes from the database, never from memory: each commit carries a bookmark (the
run, and the highest version of it committed: bot.interop.commits) and a sync commits every run
after HEAD's bookmark. So a mirror that fell behind (git failing, a mirror added to an old
database, a run made by another process) catches up, run by run, at the next sync; and one whose
repository was deleted is rebuilt from the whole history.

Crash consistency: commits are written by `git fast-import`, which moves the branch only once it
has written everything, and refuses if the branch moved meanwhile; a process killed before that
leaves unreferenced objects (git's own gc drops them), never a half commit. A lock file git leaves
behind when killed (`index.lock`, `refs/heads/main.lock`) is removed by the next sync, which holds
an exclusive lock of its own on the repository first (bot.interop.repository), and the work tree of
a non-bare repository is reset to HEAD after every sync.

A run still in progress (in this process or another) is committed once it ends; one left
`running` by a process that was killed is taken as ended after RUN_SETTLES.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol

from bot.backup.offload import cpu
from bot.core.clock import Clock, utcnow
from bot.core.errors import BackupbotError, GitError
from bot.core.logs import log_event
from bot.core.models import Attempt, GitSettings
from bot.interop import git
from bot.interop.commits import Bookmark, RunCommit, bookmark_of, file_content, path_of, run_commits
from bot.interop.repository import Repository
from storage.records import RunInfo, RunStatus

log = logging.getLogger(__name__)

PUSH_TIMEOUT = 120.0  # seconds for one push: a slow link, a big first push
CLOSE_TIMEOUT = 300.0  # at exit, how long the last sync may still run before it is cancelled
RUN_SETTLES = timedelta(hours=6)  # a run "running" for longer was left by a killed process
COMMITS_PER_IMPORT = 200  # commits per fast-import process: progress is kept after each batch
RUNS_PER_READ = 100
_CREDENTIALS = re.compile(r"(\b[A-Za-z][A-Za-z0-9+.-]*://)[^/@\s]+@")


def scrub(text: str) -> str:
    """A git message or URL without the user:password part of any URL in it."""
    return _CREDENTIALS.sub(r"\1***@", text)


class MirrorStore(Protocol):
    """The part of storage.store.Store the mirror reads."""

    async def runs_after(self, run_id: int, limit: int = 100) -> list[RunInfo]: ...
    async def run_attempts(self, run_id: int) -> list[Attempt]: ...
    async def raw(self, version_id: int) -> bytes: ...
    async def instance_key(self) -> bytes: ...


@dataclass
class MirrorStatus:
    """What readiness shows (bot.serve.health)."""

    head: str | None = None
    synced_at: datetime | None = None  # the last sync that finished without error
    error: str | None = None  # the last sync's error; None once a sync succeeds
    pushed_at: datetime | None = None
    push_error: str | None = None
    commits: int = 0  # made by this process


class GitMirror:
    def __init__(self, settings: GitSettings, store: MirrorStore, clock: Clock = utcnow, *,
                 timeout: float = git.TIMEOUT, push_timeout: float = PUSH_TIMEOUT) -> None:
        self.settings, self.store, self.clock = settings, store, clock
        self.timeout, self.push_timeout = timeout, push_timeout
        self.repository = Repository(settings.path, timeout)
        self.status = MirrorStatus()
        self._task: asyncio.Task[None] | None = None
        self._again = False
        self._lock = asyncio.Lock()
        self._pushed: str | None = None  # the last commit the remote took
        self._scanned: tuple[str | None, int] | None = None  # (HEAD, last run read) with nothing after

    # -- the background task --------------------------------------------------------------------

    def kick(self) -> None:
        """Sync soon, in the background (after a run was recorded). Kicks while a sync runs make one more."""
        if self._task is not None and not self._task.done():
            self._again = True
            return
        self._task = asyncio.get_running_loop().create_task(self._syncs(), name="git mirror")

    async def _syncs(self) -> None:
        self._again = True
        while self._again:
            self._again = False
            await self.sync()

    async def close(self, timeout: float = CLOSE_TIMEOUT) -> None:
        """Let a sync in progress finish (up to `timeout` seconds, then it is cancelled: whatever it
        had not committed is committed by the next one)."""
        task = self._task
        if task is None or task.done():
            return
        try:
            await asyncio.wait_for(asyncio.shield(task), timeout)
        except TimeoutError:
            log_event(log, logging.WARNING, "git mirror still busy at exit; the next run catches up",
                      path=str(self.settings.path))
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    def health(self) -> dict[str, Any]:
        s = self.status
        body: dict[str, Any] = {
            "ok": s.error is None and s.push_error is None, "head": s.head[:12] if s.head else None,
            "synced_at": s.synced_at.isoformat() if s.synced_at else None, "commits": s.commits,
            "redact": self.settings.redact, "remote": self.settings.remote is not None}
        if s.error is not None:
            body["error"] = s.error
        if self.settings.remote is not None:
            body.update(pushed_at=s.pushed_at.isoformat() if s.pushed_at else None, push_error=s.push_error)
        return body

    # -- one sync ------------------------------------------------------------------------------

    async def sync(self) -> None:
        """Commit every run after HEAD's bookmark, then push. Failures are logged and kept in `status`,
        never raised: the mirror must not break what called it."""
        async with self._lock:
            try:
                await self._sync()
            except (BackupbotError, OSError) as exc:
                self.status.error = scrub(str(exc))
                log_event(log, logging.WARNING, "git mirror failed; retried after the next run",
                          path=str(self.settings.path), error=self.status.error)
            except Exception as exc:
                self.status.error = f"internal error: {type(exc).__name__}"
                log.exception("git mirror crashed")

    async def _sync(self) -> None:
        async with self.repository.held() as (bare, branch):
            head = await self.repository.head(branch)
            bookmark = bookmark_of(await self.repository.message(head)) if head else Bookmark()
            if head is not None and bookmark is None:
                raise GitError(f"{self.settings.path}: the last commit on {branch} was not made by backupbot; "
                               "give the mirror a repository of its own")
            assert bookmark is not None
            head = await self._catch_up(head, bookmark, branch)
            if not bare:
                await self.repository.reset_work_tree()
            await self.repository.collect_garbage()
            self.status.head = head
        self.status.error, self.status.synced_at = None, self.clock()
        if self.settings.remote is not None and head is not None:
            await self._push(head, branch)

    async def _catch_up(self, head: str | None, bookmark: Bookmark, branch: str) -> str | None:
        """Commit the finished runs after `bookmark`, a batch per fast-import; the new HEAD."""
        key = await self.store.instance_key() if self.settings.redact else None
        after = bookmark.run - 1 if bookmark.version else bookmark.run  # the bookmarked run may have more
        if self._scanned is not None and self._scanned[0] == head:
            after = max(after, self._scanned[1])  # runs this process already found nothing more in
        while True:
            batch, after, more = await self._pending(after, bookmark)
            if batch:
                head = await self._commit(head, branch, batch, key)
                bookmark = batch[-1].bookmark
            if not more:
                self._scanned = (head, after)
                return head

    async def _pending(self, after: int, bookmark: Bookmark) -> tuple[list[RunCommit], int, bool]:
        """The commits of the finished runs after run `after` (whole runs, about a batch of them), the
        last run read, and whether there may be more to read now."""
        commits: list[RunCommit] = []
        now = self.clock()
        runs = await self.store.runs_after(after, RUNS_PER_READ)
        for run in runs:
            if run.status == RunStatus.RUNNING and now - run.started_at < RUN_SETTLES:
                return commits, after, False  # committed once it ends, whole
            skip = bookmark.version if run.id == bookmark.run else 0
            commits.extend(run_commits(run.id, run.trigger, run.started_at, await self.store.run_attempts(run.id),
                                       after=skip))
            after = run.id
            if len(commits) >= COMMITS_PER_IMPORT:
                return commits, after, True
        return commits, after, len(runs) == RUNS_PER_READ

    async def _commit(self, head: str | None, branch: str, commits: Sequence[RunCommit], key: bytes | None
                      ) -> str:
        async with git.FastImport(self.settings.path, branch, head, self.timeout) as stream:
            for commit in commits:
                files = {}
                for a in commit.attempts:
                    assert a.version_id is not None
                    files[path_of(a.site, a.device)] = await cpu(file_content, await self.store.raw(a.version_id), key)
                await stream.commit(self.settings.author, commit.at, commit.message, files)
            await stream.done()
        self.status.commits += len(commits)
        new_head = await self.repository.head(branch)
        assert new_head is not None
        log_event(log, logging.INFO, "git mirror committed", commits=len(commits), head=new_head[:12])
        return new_head

    async def _push(self, head: str, branch: str) -> None:
        if self._pushed == head:
            return
        remote = self.settings.remote
        assert remote is not None
        try:
            await git.run("push", "--quiet", remote, f"refs/heads/{branch}:refs/heads/{branch}",
                          cwd=self.settings.path, timeout=self.push_timeout)
        except GitError as exc:
            self.status.push_error = scrub(str(exc))
            log_event(log, logging.WARNING, "git mirror push failed; retried after the next run",
                      remote=scrub(remote), error=self.status.push_error)
            return
        self._pushed, self.status.push_error, self.status.pushed_at = head, None, self.clock()
