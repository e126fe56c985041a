"""The child process searches run in: `python -m bot.backup.grepworker` (bot.backup.greppool starts
it and keeps it between searches; bot.backup.grep kills it when a search's time is up).

Why a process: Python's `re` cannot be interrupted, neither by a signal handler nor by another
thread, and `(a+)+$` against a long line of "a"s holds its thread for longer than the universe has
left. Plain searches run here too: a fleet's configs are hundreds of MB, a second of CPU that the
bot's event loop must not wait for.

It reads requests on stdin, one after the other, each 8 bytes of length and a marshal (both ends
are this program, run by the same Python); for each it reads the config files the request names
(bot.backup.textcache), matches them (bot.routeros.grep) and writes its findings on stdout the same
way: each hit a tuple, which marshal writes in a quarter of the time pickle takes (100,000 hits:
0.06 s), and pickle several times faster than JSON or than the Hit objects themselves. It writes
nothing anywhere else, so a kill loses nothing, and leaves when its stdin closes. Before each
request it limits its own CPU time (RLIMIT_CPU) to what it has used plus the request's budget, so
it cannot outlive a search even if the bot dies without killing it. It imports as little as it
can (no asyncio).
"""

from __future__ import annotations

import contextlib
import fcntl
import gc
import marshal
import math
import os
import resource
import signal
import struct
import sys
from collections.abc import Callable
from typing import Any, BinaryIO, Final

from bot.core.errors import UserError
from bot.routeros.grep import LineIndex, Query, compile_query, scan

INDEX_SUFFIX = ".idx"  # beside each file bot.backup.textcache keeps: its LineIndex
HEADER: Final = struct.Struct("!Q")  # a message's length, before it (as bot.backup.greppool sends it)
_PIPE_SIZE: Final = 1 << 20  # the most Linux gives a process that is not privileged, by default


def search(request: dict[str, Any]) -> dict[str, Any]:
    """Match every entry of `request` ((key, the file matched, the file shown or None)), in order.
    The answer: {"results": [(key, matching lines, lines listed, a marshal of [the fields of each
    Hit, in order]) for each entry with a match], "missing": [keys of entries whose file was gone]}.
    `limit`: lines given in detail in all (the rest are counted); `each`: at most this many per
    entry; `context`: lines either side; `spans`: where each listed line matches."""
    try:
        matcher = compile_query(Query(**request["query"]))
    except UserError as exc:
        return {"error": str(exc)}
    left: int | None = request.get("limit")
    each: int | None = request.get("each")
    context = int(request.get("context", 2))
    spans = bool(request.get("spans"))
    results, missing = [], []
    for key, path, shown_path in request["entries"]:
        data = _read(path)
        shown = _read(shown_path) if shown_path else None
        if data is None or (shown_path and shown is None):
            missing.append(key)
            continue
        cap = each if left is None else left if each is None else min(each, left)
        found = scan(data, matcher, shown=shown, limit=cap, context=context, index=_index(path), spans=spans)
        if found.count:
            # The hits as a marshal of their own: the bot reads only those it keeps (see bot.backup.grep).
            results.append((key, found.count, len(found.hits), marshal.dumps(
                [(h.number, h.section, h.line, h.before, h.after, h.secret, h.spans) for h in found.hits])))
            if left is not None:
                left -= len(found.hits)
    return {"results": results, "missing": missing}


def _index(path: str) -> Callable[[], LineIndex | None]:
    """Loads the file's LineIndex (scan asks only when a match is far into a big file)."""
    return lambda: LineIndex.decode(_read(path + INDEX_SUFFIX))


def _read(path: str) -> bytes | None:
    """The file's bytes, None if it is gone."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        return None
    try:
        size = os.fstat(fd).st_size
        data = os.read(fd, size + 1)  # a file of the cache never changes once there: one read does
        if len(data) != size:
            parts = [data]
            while more := os.read(fd, 1 << 20):
                parts.append(more)
            data = b"".join(parts)
        return data
    finally:
        os.close(fd)


def main() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # see bot.backup.greppool
    stdin, stdout = sys.stdin.buffer, sys.stdout.buffer
    with contextlib.suppress(OSError, AttributeError):  # Linux: an answer of MBs crosses in fewer reads
        fcntl.fcntl(stdout.fileno(), fcntl.F_SETPIPE_SZ, _PIPE_SIZE)
    while (request := _receive(stdin)) is not None:
        _limit_cpu(int(request.get("cpu_seconds", 0)))
        gc.disable()  # a search makes up to a million tuples and strings, none in a cycle: see bot.backup.grep
        try:
            answer = marshal.dumps(search(request))
        finally:
            gc.enable()
        stdout.write(HEADER.pack(len(answer)))
        stdout.write(answer)
        stdout.flush()


def _receive(stream: BinaryIO) -> dict[str, Any] | None:
    """The next request; None when stdin is closed (the bot is done with this process)."""
    header = stream.read(HEADER.size)
    if len(header) < HEADER.size:
        return None
    (size,) = HEADER.unpack(header)
    payload = stream.read(size)
    if len(payload) < size:
        return None
    request: dict[str, Any] = marshal.loads(payload)  # from our own parent: see bot.backup.greppool
    return request


def _limit_cpu(seconds: int) -> None:
    """At most `seconds` more of CPU time from now on: then the kernel stops this process (SIGXCPU)."""
    if seconds <= 0:
        return
    used = resource.getrusage(resource.RUSAGE_SELF)
    _, hard = resource.getrlimit(resource.RLIMIT_CPU)
    soft = math.ceil(used.ru_utime + used.ru_stime) + seconds
    with contextlib.suppress(ValueError, OSError):
        resource.setrlimit(resource.RLIMIT_CPU, (soft if hard == resource.RLIM_INFINITY else min(soft, hard), hard))


if __name__ == "__main__":
    main()
