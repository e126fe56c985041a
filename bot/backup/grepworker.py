"""The child process every search runs in: `python -m bot.backup.grepworker` (bot.backup.grep starts
it, and kills it when its time is up).

Why a process: Python's `re` cannot be interrupted, neither by a signal handler nor by another
thread, and `(a+)+$` against a long line of "a"s holds its thread for longer than the universe has
left. Plain searches run here too: a fleet's configs are hundreds of MB, a second of CPU that the
bot's event loop must not wait for.

It reads its request (JSON) on stdin, reads the config files the request names
(bot.backup.textcache), matches them (bot.routeros.grep) and writes its findings on stdout as one
pickle (both ends are this program; each hit a tuple, which pickles several times faster than JSON
or than the Hit objects themselves, and a line shared by neighbouring hits crosses once);
it writes nothing anywhere else, so a kill loses nothing. It limits its own CPU time (RLIMIT_CPU),
so it cannot outlive its budget even if the bot dies without killing it. It imports as little as
it can (no asyncio): it is started for every search.
"""

from __future__ import annotations

import contextlib
import json
import pickle
import resource
import sys
from collections.abc import Callable
from typing import Any

from bot.core.errors import UserError
from bot.routeros.grep import LineIndex, Query, compile_query, scan

INDEX_SUFFIX = ".idx"  # beside each file bot.backup.textcache keeps: its LineIndex


def search(request: dict[str, Any]) -> dict[str, Any]:
    """Match every entry of `request`, in order. The answer: {"results": [{"key", "count", "hits":
    [the fields of each Hit, in order]} for each entry with a match], "missing": [keys of entries
    whose file was gone]}. `limit`: lines given in detail in all (the rest are counted); `each`: at
    most this many per entry; `context`: lines either side; `spans`: where each listed line matches."""
    try:
        matcher = compile_query(Query(**request["query"]))
    except UserError as exc:
        return {"error": str(exc)}
    left: int | None = request.get("limit")
    each: int | None = request.get("each")
    context = int(request.get("context", 2))
    spans = bool(request.get("spans"))
    results, missing = [], []
    for entry in request["entries"]:
        data = _read(entry["path"])
        shown = _read(entry["shown"]) if entry.get("shown") else None
        if data is None or (entry.get("shown") and shown is None):
            missing.append(entry["key"])
            continue
        cap = each if left is None else left if each is None else min(each, left)
        found = scan(data, matcher, shown=shown, limit=cap, context=context, index=_index(entry["path"]),
                     spans=spans)
        if found.count:
            results.append({"key": entry["key"], "count": found.count,
                            "hits": [(h.number, h.section, h.line, h.before, h.after, h.secret, h.spans)
                                     for h in found.hits]})
            if left is not None:
                left -= len(found.hits)
    return {"results": results, "missing": missing}


def _index(path: str) -> Callable[[], LineIndex | None]:
    """Loads the file's LineIndex (scan asks only when a match is far into a big file)."""
    return lambda: LineIndex.decode(_read(path + INDEX_SUFFIX))


def _read(path: str) -> bytes | None:
    """The file's bytes, None if it is gone."""
    try:
        with open(path, "rb", buffering=0) as f:
            return f.read()
    except FileNotFoundError:
        return None


def main() -> None:
    request = json.load(sys.stdin.buffer)
    cpu_seconds = int(request.get("cpu_seconds", 0))
    if cpu_seconds > 0:
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_CPU, (cpu_seconds, cpu_seconds + 1))
    sys.stdout.buffer.write(pickle.dumps(search(request), protocol=pickle.HIGHEST_PROTOCOL))


if __name__ == "__main__":
    main()
