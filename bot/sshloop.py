"""Every SSH session runs on an event loop of its own, in one thread, beside the main loop.

Why: a 1,000-device run keeps ~100 sessions busy with packet crypto and parsing. On the loop that
also answers Slack, that work sits in front of every ack (p99 > 100 ms measured). On its own loop
it only competes for the GIL, which the interpreter hands over every few milliseconds, so acks,
/healthz and the scheduler stay prompt. It is also why the collector is a Protocol in bot.backup:
this wrapper has the same `collect()` and nothing else changes.
"""

from __future__ import annotations

import asyncio
import threading

from bot.backup import Collecting
from bot.models import Device, Export, HostKey


class SshLoop:
    """`collect()` on the SSH thread's loop; cancelling the caller cancels the session there."""

    def __init__(self, collector: Collecting) -> None:
        self._collector = collector
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="backupbot-ssh", daemon=True)

    def __enter__(self) -> SshLoop:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        async def finish() -> None:
            tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

        asyncio.run_coroutine_threadsafe(finish(), self._loop).result(timeout=30)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=30)
        self._loop.close()

    async def collect(self, device: Device, trusted: HostKey | None) -> Export:
        future = asyncio.run_coroutine_threadsafe(self._collector.collect(device, trusted), self._loop)
        return await asyncio.wrap_future(future)
