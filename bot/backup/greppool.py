"""The child processes searches run in (`python -m bot.backup.grepworker`), kept between searches.

Why kept: starting one costs ~0.1 s of CPU (Python, and the modules it needs), about half of what
its share of a 10,000-router search costs. A child kept waits for its next request on stdin and
costs nothing but its memory (~30 MB).

The kill guard is unchanged: a child that does not answer within its time is killed, as is one
whose caller was cancelled or that failed; only a child that answered is kept for the next search
(at most `keep` of them, and not one that made a very big answer: RETIRE_AFTER), so a killed one
is replaced by a new one when next needed. A kept child found dead when asked is replaced at once.
A child leaves when its stdin closes (the bot exited, however it died) and ignores Ctrl-C, which a
terminal sends the whole process group: the bot decides when a search stops.

Each message is 8 bytes of length, then a marshal: both ends are this program, run by the same
Python (bot.backup.grepworker).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import sys
from typing import Final

from bot.backup.grepworker import HEADER
from bot.core.errors import ChildFailed

log = logging.getLogger(__name__)
# The child reads thousands of files of up to a few MB each. glibc would map each one above its
# threshold afresh (and the kernel zero its pages) and hand back the heap's free top after each:
# a third of the child's CPU time. These keep that memory in the heap, up to a bound.
_MALLOC: Final = {"MALLOC_MMAP_THRESHOLD_": str(16 << 20), "MALLOC_TRIM_THRESHOLD_": str(16 << 20)}
# A child that has made an answer this big (100,000 lines listed) holds on to about twice as much
# memory when idle: it is not kept (an idle child that made only smaller ones holds ~30 MB).
RETIRE_AFTER: Final = 8 << 20


class Child:
    """One child process, and the event loop its pipes belong to."""

    def __init__(self, proc: asyncio.subprocess.Process, loop: asyncio.AbstractEventLoop) -> None:
        self.proc = proc
        self.loop = loop
        self.answered = 0  # requests answered so far

    async def exchange(self, payload: bytes) -> bytes:
        """Send one request, return its answer (raises asyncio.IncompleteReadError, BrokenPipeError
        or ConnectionResetError if the child is gone)."""
        stdin, stdout = self.proc.stdin, self.proc.stdout
        assert stdin is not None and stdout is not None
        stdin.write(HEADER.pack(len(payload)) + payload)
        await stdin.drain()
        (size,) = HEADER.unpack(await stdout.readexactly(HEADER.size))
        answer = await stdout.readexactly(size)
        self.answered += 1
        return answer

    async def kill(self) -> None:
        if self.proc.returncode is None:
            # Not Process.kill(): it first polls the child, and a child that has just died is then
            # reaped there, before asyncio's watcher, which logs it as unknown and loses its code.
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.proc.pid, signal.SIGKILL)
            await self.proc.wait()

    async def failure(self) -> ChildFailed:
        """Why it exited (it has been killed if it had not)."""
        await self.kill()
        err = b""
        if self.proc.stderr is not None:
            with contextlib.suppress(OSError, ValueError):
                err = await self.proc.stderr.read()
        tail = err.decode(errors="replace").strip().splitlines()[-3:]
        return ChildFailed(f"grep worker exited with code {self.proc.returncode}: {' | '.join(tail)}")


class Pool:
    """Children ready for requests. `lease` takes some (started now if too few are waiting); each
    is then handed back (`ask`: it answered; `give_back`: it was not asked) or killed."""

    def __init__(self, keep: int) -> None:
        self.keep = keep
        self._idle: list[Child] = []

    async def lease(self, count: int) -> list[Child]:
        loop = asyncio.get_running_loop()
        for child in [c for c in self._idle if c.loop is not loop or c.proc.returncode is not None]:
            self._idle.remove(child)
            if child.proc.returncode is None:  # left by an event loop that is gone: it can't wait for it
                with contextlib.suppress(ProcessLookupError):
                    os.kill(child.proc.pid, signal.SIGKILL)
        taken, self._idle = self._idle[:count], self._idle[count:]
        try:
            while len(taken) < count:
                taken.append(await _spawn(loop))
        except BaseException:
            for child in taken:
                await child.kill()
            raise
        return taken

    async def give_back(self, child: Child) -> None:
        """A child that answered, or was never asked, waits for the next request (if there is room)."""
        if child.proc.returncode is not None:
            return
        if len(self._idle) < self.keep:
            self._idle.append(child)
        else:
            await _stop(child)

    async def ask(self, child: Child, payload: bytes, timeout: float) -> bytes:
        """The child's answer to `payload`, the child handed back; TimeoutError after `timeout`
        seconds and ChildFailed if it exited, either way killed (also when the caller is cancelled).
        A kept child found gone (it died while it waited: the OOM killer, a kill by hand) is
        replaced by a new one, asked once."""
        try:
            answer = await asyncio.wait_for(child.exchange(payload), timeout)
        except (asyncio.IncompleteReadError, BrokenPipeError, ConnectionResetError):
            failure = await child.failure()
            if not child.answered or child.proc.returncode == -signal.SIGXCPU:  # not gone: over its CPU time
                raise failure from None
            log.warning("a kept grep worker was gone (%s): asking a new one", failure)
            return await self.ask(await _spawn(asyncio.get_running_loop()), payload, timeout)
        except BaseException:
            await child.kill()  # timed out, or the caller was cancelled: it must not run on
            raise
        if len(answer) > RETIRE_AFTER:
            await _stop(child)
        else:
            await self.give_back(child)
        return answer

    async def close(self) -> None:
        """Stop the children waiting (any being asked are killed by their callers)."""
        idle, self._idle = self._idle, []
        for child in idle:
            await _stop(child)


async def _spawn(loop: asyncio.AbstractEventLoop) -> Child:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bot.backup.grepworker", env={**os.environ, **_MALLOC},
        stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    return Child(proc, loop)


async def _stop(child: Child) -> None:
    """Close its stdin (it leaves on its own), and kill it if it has not after a moment."""
    if child.proc.stdin is not None:
        child.proc.stdin.close()
    try:
        await asyncio.wait_for(child.proc.wait(), 1.0)
    except TimeoutError:
        await child.kill()
