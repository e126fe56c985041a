"""Run pure-Python CPU work on configs (normalize, check, diff, redact) off the event loop.

One worker thread, on purpose. Under the GIL, CPU-bound Python runs one thread at a time, so more
workers add no throughput; each extra busy thread is one more contender the event loop must queue
behind for the GIL. With a single worker the loop waits at most for one C-level call (a regex pass
over a 1 MB export, ~15 ms) before it runs again, so 1 MB exports never stall other SSH sessions.
(hashlib and zlib release the GIL and stay in the default executor.)
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

T = TypeVar("T")

_worker: ThreadPoolExecutor | None = None


async def cpu(fn: Callable[..., T], *args: object) -> T:
    global _worker
    if _worker is None:  # created on first use: nothing happens at import time
        _worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="backupbot-cpu")
    return await asyncio.get_running_loop().run_in_executor(_worker, fn, *args)
