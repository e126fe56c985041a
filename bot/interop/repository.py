"""The mirror's repository on disk: created if missing, held exclusively while a sync writes it, cleared
of the lock files a killed git process leaves, and read (its branch, HEAD, a commit's message).

The lock is a file in the git directory held with flock(2): a CLI run and `serve` may both sync the
same mirror, and the kernel releases it when a process dies, so a killed sync never blocks the next.
While we hold it, no git command of backupbot's runs in the repository, so git's own lock files
found there (index.lock, refs/heads/main.lock, ...) were left by a killed one and are removed.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import logging
import os
from collections.abc import AsyncIterator
from pathlib import Path

from bot.core.errors import GitError
from bot.core.logs import log_event
from bot.interop import git

log = logging.getLogger(__name__)

DEFAULT_BRANCH = "main"
_LOCK_FILE = "backupbot-mirror.lock"  # in the git directory
_GIT_LOCKS = ("index.lock", "HEAD.lock", "packed-refs.lock", "config.lock")


class Repository:
    def __init__(self, path: Path, timeout: float = git.TIMEOUT) -> None:
        self.path, self.timeout = path, timeout

    @contextlib.asynccontextmanager
    async def held(self) -> AsyncIterator[tuple[bool, str]]:
        """The repository (created if missing), held exclusively, stale git locks removed: (bare?, branch)."""
        bare = await self._prepare()
        git_dir = self.path if bare else self.path / ".git"
        async with _exclusive(git_dir / _LOCK_FILE, self.timeout):
            branch = await self._branch()
            for name in (*_GIT_LOCKS, f"refs/heads/{branch}.lock"):
                stale = git_dir / name
                if stale.exists():
                    log_event(log, logging.WARNING, "removing a lock file a killed git process left",
                              file=str(stale))
                    stale.unlink(missing_ok=True)
            yield bare, branch

    async def _prepare(self) -> bool:
        """Whether the repository is bare, creating a new (non-bare) one if needed."""
        path = self.path
        if path.exists() and not path.is_dir():
            raise GitError(f"git.path {path} is a file; give the mirror a missing or empty folder")
        if path.is_dir():
            bare = await git.repository_at(path, self.timeout)
            if bare is not None:
                return bare
            if any(p.name != ".git" for p in path.iterdir()):
                raise GitError(f"git.path {path} is a folder that is not a git repository of its own; "
                               "give the mirror a missing or empty folder")
        path.mkdir(parents=True, exist_ok=True)
        # Also re-run over a .git a killed `git init` left half made: git init is safe to repeat.
        await git.run("init", "--quiet", f"--initial-branch={DEFAULT_BRANCH}", str(path), timeout=self.timeout)
        log_event(log, logging.INFO, "git mirror repository created", path=str(path))
        return False

    async def _branch(self) -> str:
        try:
            ref = (await git.run("symbolic-ref", "--quiet", "HEAD", cwd=self.path,
                                 timeout=self.timeout)).decode().strip()
        except GitError:
            raise GitError(f"{self.path}: HEAD is not on a branch; check out the branch to mirror to") from None
        return ref.removeprefix("refs/heads/")

    async def head(self, branch: str) -> str | None:
        """The branch's commit; None before the first one."""
        try:
            out = await git.run("rev-parse", "--verify", "--quiet", f"refs/heads/{branch}^{{commit}}",
                                cwd=self.path, timeout=self.timeout)
        except GitError:
            return None
        return out.decode().strip()

    async def message(self, commit: str) -> str:
        return (await git.run("log", "-1", "--format=%B", commit, cwd=self.path,
                              timeout=self.timeout)).decode("utf-8", "replace")

    async def reset_work_tree(self) -> None:
        """The work tree as HEAD has it (also repairs one a killed sync left half updated)."""
        await git.run("reset", "--hard", "--quiet", cwd=self.path, timeout=self.timeout)

    async def collect_garbage(self) -> None:
        """git's own housekeeping when it is due (packs fast-import left, unreferenced objects)."""
        await git.run("-c", "gc.autoDetach=false", "gc", "--auto", "--quiet", cwd=self.path, timeout=self.timeout * 5)


@contextlib.asynccontextmanager
async def _exclusive(path: Path, timeout: float) -> AsyncIterator[None]:
    """An exclusive lock on `path` across processes (a CLI run and `serve` may both sync), waited for
    without blocking the event loop. The kernel drops it when the process dies."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        deadline = asyncio.get_running_loop().time() + timeout
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if asyncio.get_running_loop().time() > deadline:
                    raise GitError(f"another backupbot process kept the mirror {path.parent} busy for "
                                   f"{timeout:.0f} s") from None
                await asyncio.sleep(0.1)
        yield
    finally:
        os.close(fd)  # releases the lock
