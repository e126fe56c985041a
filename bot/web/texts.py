"""The pages' questions about versions and comparisons, answered by the CPU worker, which computes and
keeps the texts and diffs (bot.web.kept says why there): a comparison's counts and the rows of one
of its parts, unchanged lines for a fold, a window of a config for the View page, the View line
of a search hit.

A version never changes once stored, and neither does the redaction key, so what is computed from
versions is kept as long as the worker's budgets allow. When the worker does not hold a version a
question needs, it says so (kept.Missing); the versions' blobs are then read from the store and
the question asked again with them, so the exports themselves never cross between processes. When
a comparison needs two versions or more, the second CPU worker makes half of their texts meanwhile
(bot.backup.offload.cpu_aside). Each Texts is one scope of values in the worker (its store, its
key): a new one starts with nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Protocol, TypeVar, cast

from bot.backup.catalog import Chain
from bot.backup.offload import Parcel, cpu, cpu_aside, discard
from bot.core.logs import log_event
from bot.core.models import Version
from bot.web import kept
from bot.web.configview import ConfigWindow
from bot.web.kept import Compared, Missing, Scope
from storage.codec import StoredBlob

T = TypeVar("T")

log = logging.getLogger(__name__)


class Sources(Protocol):
    """Where versions are read from (storage.store.Store)."""

    async def chains(self, version_ids: Sequence[int]) -> list[list[StoredBlob]]: ...
    async def instance_key(self) -> bytes: ...


class Texts:
    def __init__(self, store: Sources) -> None:
        self.store = store
        self.name = secrets.token_hex(8)
        self._scope: Scope | None = None
        self._asking: dict[tuple[object, ...], asyncio.Future[Any]] = {}  # questions being answered
        self._given: set[int] = set()  # versions given to the worker: the only ones it can hold

    async def scope(self) -> Scope:
        if self._scope is None:
            self._scope = Scope(self.name, await self.store.instance_key())
        return self._scope

    async def _ask(self, question: Callable[..., T | Missing], needs: Sequence[int], *args: object) -> T:
        """question(scope, sources, *args), which needs the versions `needs`, in the CPU worker
        (`_answer`). The same question asked
        again while it is being answered (a page reloaded while it loads) waits for that answer
        instead of making the same texts a second time; if the request answering it is cancelled
        (its browser went away), the next one waiting answers it."""
        key = (question.__name__, args)
        while (pending := self._asking.get(key)) is not None:
            try:
                return cast(T, await asyncio.shield(pending))
            except asyncio.CancelledError:
                task = asyncio.current_task()
                if task is None or task.cancelling():
                    raise  # this request is cancelled, not the one it waited for
        future: asyncio.Future[T] = asyncio.get_running_loop().create_future()
        self._asking[key] = future
        try:
            answer = await self._answer(question, needs, *args)
        except asyncio.CancelledError:
            future.cancel()
            raise
        except BaseException as exc:
            future.set_exception(exc)
            future.exception()  # retrieved: nobody else may be waiting
            raise
        finally:
            del self._asking[key]
        future.set_result(answer)
        return answer

    async def _answer(self, question: Callable[..., T | Missing], needs: Sequence[int], *args: object) -> T:
        """question(scope, sources, *args) in the CPU worker, with what it needs to make the versions
        it misses: those never given to it, and those it says it misses (it may have dropped some,
        or died). It gets the texts made beside it (`_make`), else the blobs of every version read so
        far; given the blobs, it misses only versions not read yet, so every round after one with
        blobs reads one more, and this ends (in one round; more only when the worker dropped a
        version, or died, since it was given)."""
        scope = await self.scope()
        chains: dict[int, Chain] = {}
        parcels: dict[int, Parcel] = {}  # texts made beside, for the next round only (taken once)
        missing = [i for i in dict.fromkeys(needs) if i not in self._given]
        try:
            while True:
                if unread := [i for i in missing if i not in chains]:
                    made = dict(zip(unread, await self.store.chains(unread)))
                    chains.update(made)
                    self._given.update(made)
                    parcels = await self._make(scope, made)
                given: Mapping[int, Chain | Parcel] = parcels or chains
                answer = await cpu(question, scope, given, *args)
                gave_texts = bool(parcels)
                for parcel in parcels.values():
                    discard(parcel)  # taken, unless the worker did not need it after all
                parcels = {}
                if not isinstance(answer, Missing):
                    return answer
                # A text made beside can be missed (taken by a call that died); blobs cannot.
                assert gave_texts or not chains.keys() & answer.versions, "the worker missed a version given"
                missing = list(answer.versions)
        finally:
            for parcel in parcels.values():
                discard(parcel)

    async def _make(self, scope: Scope, chains: Mapping[int, Chain]) -> dict[int, Parcel]:
        """When the worker misses two versions or more (a comparison), half of them are made into
        texts in the second worker at the same time as the first makes and keeps the others; the
        texts made beside are returned, to be given to the first. One version: nothing (the
        question itself makes it). The second worker only saves time: if it fails (a temporary
        directory it cannot write to, say), the first is given the blobs and makes those texts
        too, and any fault of the versions themselves is reported from there."""
        if len(chains) < 2:
            return {}
        # The heavier chains beside: the first worker also cuts its texts into lines.
        versions = sorted(chains, key=lambda i: -sum(len(blob.data) for blob in chains[i]))
        aside, here = versions[::2], versions[1::2]
        made = asyncio.ensure_future(cpu_aside(kept.redacted, [chains[i] for i in aside], scope.key))
        try:
            await cpu(kept.hold, scope, {i: chains[i] for i in here})
        except BaseException:
            with contextlib.suppress(Exception):
                for parcel in await made:  # the worker beside finishes soon: its files must go
                    discard(parcel)
            raise
        try:
            return dict(zip(aside, await made))
        except Exception as exc:  # noqa: BLE001 - it only saves time: the first worker does it all
            log_event(log, logging.WARNING, "second CPU worker failed; the first makes its texts",
                      error=type(exc).__name__, reason=str(exc)[:200])
            return {}

    async def compare(self, versions: Sequence[Version], pair: int | None = None, part: int = 0) -> Compared:
        """The comparison of the versions, each consecutive pair oldest first (as Catalog.compare
        orders them): its counts, and the rows of part `part` of pair `pair` (of every pair: None)."""
        ordered = sorted(versions, key=lambda v: (v.first_seen, v.id))
        ids = tuple(v.id for v in ordered)
        return await self._ask(kept.comparison, ids, ids, pair, part)

    async def lines(self, version_id: int, start: int, count: int) -> tuple[str, ...]:
        """The version's display lines [start, start + count), redacted as Slack shows them."""
        return await self._ask(kept.lines, [version_id], version_id, start, count)

    async def line_at(self, version_id: int, normalized: int) -> tuple[int, int]:
        """(the display line where normalized line `normalized` starts, the version's display lines
        in all): where the View page shows a search hit (both 0-based)."""
        return await self._ask(kept.line_at, [version_id], version_id, normalized)

    async def window(self, version_id: int, at: int) -> ConfigWindow:
        """The View page's window of the version's lines that holds line `at`, and its sections."""
        return await self._ask(kept.window, [version_id], version_id, at)
