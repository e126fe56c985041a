"""Run pure-Python CPU work on configs (normalize and diff, redact, render) in a worker process.

Checking and hashing each collected export is not done here but in the SSH worker, which holds
its bytes (bot.ssh.collector): shipping every export here and its normalized text back cost more
CPU than the work itself.

Why a process and not a thread: this work is Python under the GIL. In a thread it still takes the
GIL from the event loop, and every socket read or write the loop makes waits up to a switch
interval (5 ms) to get it back; an ack needs a dozen of those, so one 1 MB redaction pushed Slack
acks past 100 ms (measured with benchmarks/ack_latency.py). In a process it costs the loop a
pickle of the arguments and nothing else. One worker (`cpu`): the work is rare next to the I/O,
and it keeps the second CPU for the SSH worker. A worker that dies is replaced on the next call.

A second worker (`cpu_aside`) is for the one request a user waits on that splits into independent
halves of the same size: the browser's Compare page, whose versions are made into redacted texts
(0.1 s each for a 100,000-line export) before they can be diffed (bot.web.texts). It starts on first
use, keeps nothing between calls, and hands its big results to the first worker through a file
(`Parcel`), not back through the bot's process.
"""

from __future__ import annotations

import asyncio
import contextlib
import multiprocessing
import os
import signal
import tempfile
import threading
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import NamedTuple, TypeVar

T = TypeVar("T")

_pools: dict[str, ProcessPoolExecutor] = {}  # by lane: "main" (`cpu`) and "aside" (`cpu_aside`)


def _exit_with(parent: int) -> None:
    """Worker initializer: leave when the bot does, even when it was SIGKILLed and ran no cleanup
    (an orphan would hold the bot's stdout and stderr open). Ctrl-C in a terminal reaches the whole
    process group: the bot decides when the worker stops, so the worker ignores it."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(0.5)
        os._exit(0)

    threading.Thread(target=watch, name="exit-with-parent", daemon=True).start()


def _executor(lane: str) -> ProcessPoolExecutor:
    if lane not in _pools:  # created on first use: nothing happens at import time
        # "spawn": forking a process that runs threads (aiosqlite, executors) is unsafe
        _pools[lane] = ProcessPoolExecutor(max_workers=1, mp_context=multiprocessing.get_context("spawn"),
                                           initializer=_exit_with, initargs=(os.getpid(),))
    return _pools[lane]


async def _run(lane: str, fn: Callable[..., T], args: tuple[object, ...]) -> T:
    loop = asyncio.get_running_loop()
    try:
        return await loop.run_in_executor(_executor(lane), fn, *args)
    except BrokenProcessPool:
        del _pools[lane]  # the worker died (OOM killer?): start a new one and try once more
        return await loop.run_in_executor(_executor(lane), fn, *args)


async def cpu(fn: Callable[..., T], *args: object) -> T:
    """fn(*args) in the worker process; fn and args must pickle (module-level functions, models)."""
    return await _run("main", fn, args)


async def cpu_aside(fn: Callable[..., T], *args: object) -> T:
    """fn(*args) in a second worker process, beside the one `cpu` uses: for one half of a request
    whose other half runs there at the same time (the two versions of a comparison), so that a
    user waiting for it gets both CPUs. It starts on first use and keeps nothing between calls."""
    return await _run("aside", fn, args)


class Parcel(NamedTuple):
    """Bytes one worker process left in a file (`leave`) for the other to `take`: a big result of
    `cpu_aside` that `cpu` needs crosses once, as a copy through the page cache, instead of through
    two pipes and two pickles by way of the bot's process (9 MB: some 5 ms instead of 50)."""

    path: str


def leave(data: bytes) -> Parcel:
    """(worker) `data` in a new private file (mode 0600) of the temporary directory."""
    fd, path = tempfile.mkstemp(prefix="backupbot-parcel-")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(path)
        raise
    return Parcel(path)


def take(parcel: Parcel) -> bytes:
    """(worker) The parcel's bytes; its file is gone after."""
    try:
        with open(parcel.path, "rb") as f:
            return f.read()
    finally:
        discard(parcel)


def discard(parcel: Parcel) -> None:
    """Remove the parcel's file if it is still there (its taker failed, or never ran)."""
    with contextlib.suppress(FileNotFoundError):
        os.unlink(parcel.path)
