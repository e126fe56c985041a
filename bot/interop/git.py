"""Running `git` for bot.interop: one subprocess per command, each with a deadline, never a prompt.

Why git itself and not a library: it is on every machine that pushes to a git server, it reads any
repository Oxidized wrote (bare or not, packed or loose), and `git fast-import` writes a year of
history in one process. pygit2 would add a C library to install for the same calls, and dulwich
(pure Python) is slower on packs and would run on the event loop's GIL.

Every command:
- runs under a deadline; past it, its whole process group is killed (`git push` starts ssh);
- never asks anything: stdin is closed (or ours), GIT_TERMINAL_PROMPT=0, and ssh runs in BatchMode
  unless GIT_SSH_COMMAND/GIT_SSH say otherwise: a missing credential is an error, not a hang;
- fails with GitError naming the command and git's own last words.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
from collections.abc import Awaitable, Mapping, Sequence
from datetime import datetime
from pathlib import Path
from types import TracebackType
from typing import Self, TypeVar

from bot.core.errors import GitError

T = TypeVar("T")

TIMEOUT = 60.0  # seconds for one local git command; pushes get their own (bot.interop.mirror)


def environment(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    env = {**os.environ, "GIT_TERMINAL_PROMPT": "0", "LC_ALL": "C", **(extra or {})}
    if "GIT_SSH_COMMAND" not in env and "GIT_SSH" not in env:
        env["GIT_SSH_COMMAND"] = "ssh -o BatchMode=yes"
    return env


def _last_words(stderr: bytes) -> str:
    lines = [line.strip() for line in stderr.decode("utf-8", "replace").splitlines() if line.strip()]
    return lines[-1] if lines else "no message"


async def _spawn(args: Sequence[str], cwd: Path | None, stdin: int, env: Mapping[str, str] | None
                 ) -> asyncio.subprocess.Process:
    try:
        return await asyncio.create_subprocess_exec(
            "git", *args, cwd=cwd, stdin=stdin, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
            env=environment(env), start_new_session=True)  # its own group: killed whole on a timeout
    except FileNotFoundError:
        raise GitError("git is not installed (it is needed to read and write git repositories)") from None


async def _kill(proc: asyncio.subprocess.Process) -> None:
    if proc.returncode is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
    with contextlib.suppress(ProcessLookupError):
        await proc.wait()


async def run(*args: str, cwd: Path | None = None, input: bytes | None = None, timeout: float = TIMEOUT,
              env: Mapping[str, str] | None = None) -> bytes:
    """`git ARGS` in `cwd`; its stdout. GitError if it fails or takes longer than `timeout` seconds."""
    proc = await _spawn(args, cwd, asyncio.subprocess.PIPE if input is not None else asyncio.subprocess.DEVNULL, env)
    try:
        out, err = await asyncio.wait_for(proc.communicate(input), timeout)
    except TimeoutError:
        raise GitError(f"git {args[0]} took longer than {timeout:.0f} s") from None
    finally:
        await _kill(proc)  # nothing left behind, also when the caller is cancelled
    if proc.returncode != 0:
        raise GitError(f"git {args[0]} failed: {_last_words(err)}")
    return out


async def repository_at(path: Path, timeout: float = TIMEOUT) -> bool | None:
    """Whether `path` is a bare repository (True) or a work tree's top (False); None if it is neither
    (not a repository at all, or a folder inside some other repository's work tree)."""
    try:
        bare, git_dir = (await run("rev-parse", "--is-bare-repository", "--absolute-git-dir", cwd=path,
                                   timeout=timeout)).decode().split("\n")[:2]
        if bare == "true":
            return True if Path(git_dir).resolve() == path.resolve() else None
        top = (await run("rev-parse", "--show-toplevel", cwd=path, timeout=timeout)).decode().strip()
    except GitError:
        return None
    return False if Path(top).resolve() == path.resolve() else None


def git_time(at: datetime) -> str:
    """A time as git's raw date format writes it: seconds since the epoch and a zone (UTC)."""
    return f"{int(at.timestamp())} +0000"


class _Streaming:
    """A git process fed and read incrementally, each exchange under `timeout`."""

    def __init__(self, args: Sequence[str], cwd: Path, timeout: float) -> None:
        self._args, self._cwd, self.timeout = list(args), cwd, timeout
        self._proc: asyncio.subprocess.Process | None = None

    async def __aenter__(self) -> Self:
        self._proc = await _spawn(self._args, self._cwd, asyncio.subprocess.PIPE, None)
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        if self._proc is not None:
            await _kill(self._proc)

    @property
    def proc(self) -> asyncio.subprocess.Process:
        assert self._proc is not None, "use it as an async context manager"
        return self._proc

    async def _within(self, what: str, awaitable: Awaitable[T]) -> T:
        try:
            return await asyncio.wait_for(awaitable, self.timeout)
        except TimeoutError:
            raise GitError(f"git {self._args[0]} took longer than {self.timeout:.0f} s to {what}") from None

    async def _failure(self) -> GitError:
        assert self.proc.stderr is not None
        await _kill(self.proc)
        return GitError(f"git {self._args[0]} failed: {_last_words(await self.proc.stderr.read())}")


class CatFile(_Streaming):
    """`git cat-file --batch`: object contents by name (a blob id, or `COMMIT:PATH`), one process for all."""

    def __init__(self, repo: Path, timeout: float = TIMEOUT) -> None:
        super().__init__(["cat-file", "--batch"], repo, timeout)

    async def read(self, name: str) -> bytes:
        """The object's bytes. GitError if it does not exist or git fails."""
        if "\n" in name:
            raise GitError(f"not an object name: {name!r}")
        stdin, stdout = self.proc.stdin, self.proc.stdout
        assert stdin is not None and stdout is not None
        try:
            stdin.write(name.encode() + b"\n")
            await self._within("answer", stdin.drain())
            header = await self._within("answer", stdout.readline())
        except (BrokenPipeError, ConnectionResetError):
            raise await self._failure() from None
        fields = header.split()
        if len(fields) != 3 or not fields[2].isdigit():
            if not header:
                raise await self._failure()
            raise GitError(f"git cat-file: {header.decode('utf-8', 'replace').strip() or 'no answer'}")
        body = await self._within("answer", stdout.readexactly(int(fields[2]) + 1))
        return body[:-1]


class FastImport(_Streaming):
    """`git fast-import` writing commits to one branch. Nothing is visible until `done()` returns:
    fast-import moves the branch once, at the end, and refuses (GitError) if the branch moved since
    `parent` was read. A process killed before that leaves only unreferenced objects behind."""

    def __init__(self, repo: Path, branch: str, parent: str | None, timeout: float = TIMEOUT) -> None:
        super().__init__(["fast-import", "--quiet", "--done"], repo, timeout)
        self._ref = f"refs/heads/{branch}"
        self._parent = parent
        self._count = 0

    async def commit(self, author: str, at: datetime, message: str, files: Mapping[str, bytes]) -> None:
        """One commit on top of the previous one: `files` (path -> content) written, the rest kept."""
        when = git_time(at)
        text = message.encode()
        head = [f"commit {self._ref}", f"author {author} {when}", f"committer {author} {when}",
                f"data {len(text)}"]
        chunks = ["\n".join(head).encode() + b"\n" + text + b"\n"]
        if self._count == 0 and self._parent is not None:
            chunks.append(f"from {self._parent}\n".encode())  # else fast-import would start a new history
        for path, content in files.items():
            chunks.append(f'M 100644 inline "{_quoted(path)}"\ndata {len(content)}\n'.encode() + content + b"\n")
        await self._send(b"".join(chunks) + b"\n")
        self._count += 1

    async def done(self) -> None:
        """Finish: the branch points at the last commit (if any was made)."""
        await self._send(b"done\n")
        stdin = self.proc.stdin
        assert stdin is not None
        stdin.close()
        await self._within("finish", self.proc.wait())
        if self.proc.returncode != 0:
            raise await self._failure()

    async def _send(self, data: bytes) -> None:
        stdin = self.proc.stdin
        assert stdin is not None
        try:
            stdin.write(data)
            await self._within("take the commits", stdin.drain())
        except (BrokenPipeError, ConnectionResetError):
            raise await self._failure() from None


def _quoted(path: str) -> str:
    """A path in fast-import's C-style quotes (site and device names are simple words; be safe anyway)."""
    return path.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
