"""Run pure-Python CPU work on configs (normalize and diff, redact, render) in a worker process.

Checking and hashing each collected export is not done here but in the SSH worker, which holds
its bytes (bot.ssh.collector): shipping every export here and its normalized text back cost more
CPU than the work itself.

Why a process and not a thread: this work is Python under the GIL. In a thread it still takes the
GIL from the event loop, and every socket read or write the loop makes waits up to a switch
interval (5 ms) to get it back; an ack needs a dozen of those, so one 1 MB redaction pushed Slack
acks past 100 ms (measured with benchmarks/ack_latency.py). In a process it costs the loop a
pickle of the arguments and nothing else. One worker: the work is rare next to the I/O, and it
keeps the second CPU for the SSH worker. A worker that dies is replaced on the next call.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import os
import signal
import threading
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import TypeVar

T = TypeVar("T")

_pool: ProcessPoolExecutor | None = None


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


def _executor() -> ProcessPoolExecutor:
    global _pool
    if _pool is None:  # created on first use: nothing happens at import time
        # "spawn": forking a process that runs threads (aiosqlite, executors) is unsafe
        _pool = ProcessPoolExecutor(max_workers=1, mp_context=multiprocessing.get_context("spawn"),
                                    initializer=_exit_with, initargs=(os.getpid(),))
    return _pool


async def cpu(fn: Callable[..., T], *args: object) -> T:
    """fn(*args) in the worker process; fn and args must pickle (module-level functions, models)."""
    global _pool
    loop = asyncio.get_running_loop()
    try:
        return await loop.run_in_executor(_executor(), fn, *args)
    except BrokenProcessPool:
        _pool = None  # the worker died (OOM killer?): start a new one and try once more
        return await loop.run_in_executor(_executor(), fn, *args)
