"""SSH collection in a child process, so the bot's own event loop stays free to answer Slack.

Why a process: a 1,000-device run keeps ~100 SSH sessions busy with packet crypto and parsing.
In the bot's process that work holds the GIL the web loop needs, and acks queued behind it
(p99 > 100 ms measured, with SSH on the main loop or on a second thread alike). In a child
process it costs the bot nothing but a pipe read per finished export, which arrives already
checked and hashed (bot.ssh.collector).

`SshWorker.collect()` has the Collector's signature (bot.backup depends only on that Protocol).
The child (`python -m bot.ssh.worker`) is started on first use, runs one Collector with the same
settings, and serves many collections at once. Messages are length-prefixed pickles over its
stdin/stdout: both ends are this program, and the inventory's passwords travel only through
that pipe (never argv or the environment). If the child dies, pending collections fail with a
clear reason and the next one starts a new child.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import functools
import fcntl
import itertools
import json
import logging
import pickle
import signal
import struct
import sys
from typing import Any

from bot.core import errors
from bot.ssh.collector import Collector
from bot.core.errors import CollectError, WorkerDied
from bot.core.logs import configure_logging, register_secret
from bot.core.models import Device, Export, HostKey, KnownConfig

log = logging.getLogger(__name__)

_HEADER = struct.Struct(">I")
# The child enforces each device's deadline; this only catches a child that stopped answering.
GRACE = 15.0
PIPE_SIZE = 1 << 20  # Linux's default limit for an unprivileged process


async def _send(writer: asyncio.StreamWriter, message: object) -> None:
    data = pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL)
    writer.write(_HEADER.pack(len(data)) + data)  # one write: frames from concurrent tasks never interleave
    await writer.drain()


async def _receive(reader: asyncio.StreamReader) -> Any:
    size = _HEADER.unpack(await reader.readexactly(_HEADER.size))[0]
    return pickle.loads(await reader.readexactly(size))


def _error(name: str, fields: dict[str, Any]) -> CollectError:
    """Rebuild a CollectError from the child (their __init__ signatures differ, their state doesn't)."""
    cls = getattr(errors, name, None)
    if not (isinstance(cls, type) and issubclass(cls, CollectError)):
        cls = CollectError
    exc = cls.__new__(cls)
    exc.__dict__.update(fields)
    exc.args = (fields.get("reason", ""),)
    return exc


class SshWorker:
    def __init__(self, collector: Collector) -> None:
        self._options = dataclasses.asdict(collector)
        self._proc: asyncio.subprocess.Process | None = None
        self._reader_task: asyncio.Task[None] | None = None
        self._pending: dict[int, asyncio.Future[Any]] = {}
        self._ids = itertools.count(1)
        self._starting = asyncio.Lock()
        self._ready: asyncio.Future[Any] | None = None

    async def __aenter__(self) -> SshWorker:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def collect(self, device: Device, trusted: HostKey | None, ros_major: int | None = None,
                      known: KnownConfig | None = None) -> Export:
        proc = await self._running()
        assert proc.stdin is not None
        request_id = next(self._ids)
        future: asyncio.Future[Export] = asyncio.get_running_loop().create_future()
        self._pending[request_id] = future
        try:
            await _send(proc.stdin, ("collect", request_id, (device, trusted, ros_major, known)))
            async with asyncio.timeout(device.timeout + GRACE):
                return await future
        except (asyncio.CancelledError, TimeoutError):
            if proc.returncode is None:  # stop the session over there too
                await _send(proc.stdin, ("cancel", request_id, None))
            raise
        finally:
            self._pending.pop(request_id, None)

    async def start(self) -> None:
        """Start the child now and wait until it serves (else the first collect() starts it)."""
        await self._running()
        ready = self._ready
        if ready is not None:
            await ready

    async def close(self) -> None:
        proc, self._proc = self._proc, None
        if proc is None:
            return
        assert proc.stdin is not None
        proc.stdin.close()  # end of input: the child cancels what is left and exits
        try:
            await asyncio.wait_for(proc.wait(), 10)
        except TimeoutError:
            proc.kill()
            await proc.wait()
        if self._reader_task is not None:
            await self._reader_task

    async def _running(self) -> asyncio.subprocess.Process:
        async with self._starting:
            if self._proc is None or self._proc.returncode is not None:
                self._proc = await asyncio.create_subprocess_exec(
                    # the child logs at the bot's level (the CLI is quiet unless -v)
                    sys.executable, "-m", "bot.ssh.worker", json.dumps(self._options),
                    str(logging.getLogger("bot").getEffectiveLevel()),
                    stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE)
                # The child's first message, under id 0, says it is serving.
                self._ready = self._pending[0] = asyncio.get_running_loop().create_future()
                self._ready.add_done_callback(lambda f: f.cancelled() or f.exception())  # start() is optional
                self._reader_task = asyncio.create_task(self._read(self._proc), name="ssh worker reader")
            return self._proc

    async def _read(self, proc: asyncio.subprocess.Process) -> None:
        assert proc.stdout is not None
        try:
            while True:
                request_id, outcome = await _receive(proc.stdout)
                future = self._pending.pop(request_id, None) if request_id == 0 else self._pending.get(request_id)
                if future is None or future.done():
                    continue
                if outcome[0] == "ok":
                    future.set_result(outcome[1])
                else:
                    future.set_exception(_error(outcome[1], outcome[2]))
        except (asyncio.IncompleteReadError, EOFError, pickle.UnpicklingError):
            pass
        code = await proc.wait()
        for future in self._pending.values():
            if not future.done():
                future.set_exception(WorkerDied(f"SSH worker process exited (code {code})"))
        if self._proc is proc and code:
            log.error("SSH worker process exited with code %s; the next backup starts a new one", code)


# --- the child ---------------------------------------------------------------------------------
def _forget(sessions: dict[int, asyncio.Task[None]], request_id: int, _task: object) -> None:
    sessions.pop(request_id, None)


async def _serve(collector: Collector) -> None:
    loop = asyncio.get_running_loop()
    with contextlib.suppress(AttributeError, OSError):  # Linux only; the default 64 KB still works
        # A 1 MB export crosses in a few writes instead of sixteen, each a wakeup on both sides.
        fcntl.fcntl(sys.stdout.fileno(), fcntl.F_SETPIPE_SZ, PIPE_SIZE)
    reader = asyncio.StreamReader(limit=2**26)
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin.buffer)
    transport, protocol = await loop.connect_write_pipe(asyncio.streams.FlowControlMixin, sys.stdout.buffer)
    writer = asyncio.StreamWriter(transport, protocol, None, loop)
    sessions: dict[int, asyncio.Task[None]] = {}
    await _send(writer, (0, ("ok", None)))  # ready

    async def one(request_id: int, device: Device, trusted: HostKey | None, ros_major: int | None,
                  known: KnownConfig | None) -> None:
        if device.password:
            register_secret(device.password)  # this process logs too: mask it like the bot does
        try:
            outcome: tuple[Any, ...] = ("ok", await collector.collect(device, trusted, ros_major, known))
        except CollectError as exc:
            outcome = ("error", type(exc).__name__, dict(vars(exc)))
        except Exception as exc:
            log.exception("collecting %s crashed", device.label)
            outcome = ("error", "CollectError", {"reason": f"internal error: {type(exc).__name__}"})
        await _send(writer, (request_id, outcome))

    while True:
        try:
            op, request_id, args = await _receive(reader)
        except asyncio.IncompleteReadError:
            break  # the bot closed our stdin (or died): stop
        if op == "collect":
            sessions[request_id] = task = asyncio.create_task(one(request_id, *args))
            task.add_done_callback(functools.partial(_forget, sessions, request_id))
        elif op == "cancel" and request_id in sessions:
            sessions[request_id].cancel()
    for task in sessions.values():
        task.cancel()
    await asyncio.gather(*sessions.values(), return_exceptions=True)


def main() -> None:
    configure_logging(int(sys.argv[2]))  # on the bot's own stderr
    # Ctrl-C in a terminal reaches the whole process group; the bot decides when this worker stops
    # (it closes our stdin), instead of each process printing its own KeyboardInterrupt traceback.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    asyncio.run(_serve(Collector(**json.loads(sys.argv[1]))))


if __name__ == "__main__":
    main()
