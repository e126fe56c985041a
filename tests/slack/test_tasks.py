"""bot.slack.tasks.TaskTracker: strong references, a bound, errors reported, drain then cancel."""

from __future__ import annotations

import asyncio
import gc
import logging

import pytest

from bot.core.errors import Busy, Forbidden, UserError
from bot.slack.tasks import TaskTracker


async def test_errors_are_logged_and_reported() -> None:
    """A failing task's exception reaches on_error (and the log); a UserError is passed as-is."""
    tracker = TaskTracker()
    seen: list[BaseException] = []

    async def report(exc: BaseException) -> None:
        seen.append(exc)

    async def boom() -> None:
        raise RuntimeError("bug")

    async def refuse() -> None:
        raise UserError("no such site")

    tracker.spawn(boom(), name="boom", on_error=report)
    tracker.spawn(refuse(), name="refuse", on_error=report)
    await tracker.idle()
    assert [type(e) for e in seen] == [RuntimeError, UserError]


async def test_tasks_are_strongly_referenced_until_done() -> None:
    """A spawned task survives garbage collection while it runs (the loop holds tasks weakly)."""
    tracker = TaskTracker()
    done = asyncio.Event()
    release = asyncio.Event()

    async def job() -> None:
        await release.wait()
        done.set()

    tracker.spawn(job(), name="job")
    gc.collect()
    assert len(tracker) == 1
    release.set()
    await asyncio.wait_for(done.wait(), 1)
    await tracker.idle()
    assert len(tracker) == 0


async def test_bound_refuses_instead_of_queueing() -> None:
    """Past `limit` running tasks, spawn raises Busy (and closes the coroutine it was given)."""
    tracker = TaskTracker(limit=1)
    gate = asyncio.Event()
    tracker.spawn(gate.wait(), name="first")

    async def second() -> None:
        raise AssertionError("must not run")

    coro = second()
    with pytest.raises(Busy):
        tracker.spawn(coro, name="second")
    assert coro.cr_frame is None  # closed, so no "never awaited" warning
    gate.set()
    await tracker.idle()


async def test_drain_waits_then_cancels_and_tells(caplog: pytest.LogCaptureFixture) -> None:
    """drain(timeout): quick tasks finish, slow ones are cancelled and their requester told; no new tasks."""
    tracker = TaskTracker()
    told: list[str] = []

    async def report(exc: BaseException) -> None:
        told.append(str(exc))

    finished = asyncio.Event()

    async def quick() -> None:
        await asyncio.sleep(0.01)
        finished.set()

    tracker.spawn(quick(), name="quick", on_error=report)
    tracker.spawn(asyncio.sleep(30), name="slow", on_error=report)
    with caplog.at_level(logging.WARNING, logger="bot.slack.tasks"):
        assert await tracker.drain(0.2) == (1, 1)
    assert finished.is_set() and len(tracker) == 0
    assert len(told) == 1 and "restarting" in told[0]
    assert "slow" in caplog.text
    with pytest.raises(Busy):
        tracker.spawn(asyncio.sleep(0), name="late")


async def test_a_refusal_is_an_answer_not_a_crash(caplog: pytest.LogCaptureFixture) -> None:
    """Forbidden is a UserError: the requester is told, and the log has one INFO line, no traceback."""
    tracker = TaskTracker()
    told: list[str] = []

    async def report(exc: BaseException) -> None:
        told.append(str(exc))

    async def refused() -> None:
        raise Forbidden("You are not allowed to see hq. Ask a backupbot admin.")

    with caplog.at_level(logging.INFO, logger="bot.slack.tasks"):
        tracker.spawn(refused(), name="refused", on_error=report)
        await tracker.idle()
    assert told == ["You are not allowed to see hq. Ask a backupbot admin."]
    [record] = [r for r in caplog.records if r.name == "bot.slack.tasks"]
    assert record.levelno == logging.INFO and record.exc_info is None
