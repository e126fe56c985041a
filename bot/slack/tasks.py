"""Work that outlives a Slack ack: tracked tasks, never fire-and-forget.

Slack wants an answer within 3 s; a backup or a large diff takes longer. Handlers ack, then hand
the rest to `TaskTracker.spawn`. The tracker keeps a strong reference to every task (the event loop
only holds tasks weakly), bounds how many run at once, reports every failure (logged AND passed to
the caller's `on_error`, which tells the user), and on shutdown waits for the tasks to finish for a
while, then cancels what is left.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

from bot.core.errors import Busy, UserError

log = logging.getLogger(__name__)

OnError = Callable[[BaseException], Awaitable[None]]
REPORT_TIMEOUT = 10.0  # telling the user must not hold up shutdown for long
LIMIT = 200  # tasks at once; more requests are refused with Busy


class TaskTracker:
    def __init__(self, limit: int = LIMIT) -> None:
        self.limit = limit
        self._tasks: set[asyncio.Task[Any]] = set()
        self._closing = False

    def __len__(self) -> int:
        return len(self._tasks)

    @property
    def closing(self) -> bool:
        return self._closing

    def spawn(self, coro: Coroutine[Any, Any, Any], *, name: str, on_error: OnError | None = None) -> asyncio.Task[Any]:
        """Run `coro` as a tracked task. Raises Busy (closing the coroutine) when full or shutting down."""
        if self._closing or len(self._tasks) >= self.limit:
            coro.close()
            reason = "shutting down" if self._closing else f"already running {len(self._tasks)} jobs"
            raise Busy(f"backupbot is busy ({reason}); please try again in a minute.")
        task = asyncio.create_task(self._guard(coro, name, on_error), name=name)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    async def _guard(self, coro: Coroutine[Any, Any, Any], name: str, on_error: OnError | None) -> None:
        try:
            await coro
        except asyncio.CancelledError:
            log.warning("task cancelled: %s", name)
            if on_error is not None and self._closing:  # shutdown: say so rather than go quiet
                await self._report(on_error, Busy("backupbot is restarting and had to stop this request;"
                                                  " please ask again in a minute."), name)
            raise
        except Exception as exc:
            if isinstance(exc, UserError):
                log.info("task %s ended with a user error: %s", name, exc)
            else:
                log.exception("task failed: %s", name)
            if on_error is not None:
                await self._report(on_error, exc, name)

    @staticmethod
    async def _report(on_error: OnError, exc: BaseException, name: str) -> None:
        try:
            await asyncio.wait_for(on_error(exc), REPORT_TIMEOUT)
        except Exception:
            log.exception("could not report the failure of task %s", name)

    async def idle(self) -> None:
        """Wait until no task is running (tasks started meanwhile are waited for too)."""
        while self._tasks:
            await asyncio.wait(set(self._tasks))

    async def drain(self, timeout: float) -> tuple[int, int]:
        """Refuse new tasks, wait up to `timeout` s for running ones, cancel the rest.

        Returns (finished, cancelled).
        """
        self._closing = True
        pending = set(self._tasks)
        if not pending:
            return 0, 0
        log.info("waiting up to %.0fs for %d running task(s)", timeout, len(pending))
        done, still = await asyncio.wait(pending, timeout=timeout)
        for task in still:
            task.cancel()
        if still:
            log.warning("cancelling %d task(s) still running after %.0fs: %s", len(still), timeout,
                        ", ".join(sorted(t.get_name() for t in still)))
            await asyncio.gather(*still, return_exceptions=True)
        return len(done), len(still)

