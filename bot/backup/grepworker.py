"""The process every search runs in, so that a regular expression that backtracks forever can be
stopped.

Python's `re` cannot be interrupted, neither by a signal handler nor by another thread: `(a+)+$`
against a long line of "a"s holds its thread for longer than the universe has left. So the search
runs in `python -m bot.backup.grepworker`, one short-lived process per search (~50 ms to start,
nothing next to reading a fleet's configs): it reads its request (JSON) on stdin, reads the config
files the request names (bot.backup.textcache), matches them (bot.routeros.grep) and writes its
findings as JSON on stdout. `run()` kills it when its time is up; it writes nothing anywhere else,
so a kill loses nothing. The child also limits its own CPU time (RLIMIT_CPU), so it cannot outlive
its budget even if the bot dies without killing it. Plain-text searches run here too: they are
CPU-bound for a second over a big fleet, and the bot's event loop must not wait for them.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import resource
import sys
from typing import Any

from bot.core.errors import UserError
from bot.routeros.grep import Query, compile_query, scan

def too_slow(seconds: float) -> UserError:
    return UserError(
        f"The search was stopped after {seconds:.0f} s without finishing. A regular expression with "
        "nested repeats such as (a+)+ or (x|x.)* can take practically forever on some lines; "
        "simplify the pattern (or search plain text).")


async def run(request: dict[str, Any], timeout: float) -> dict[str, Any]:
    """The child's answer to `request`; UserError (too_slow) if it did not finish within `timeout`
    seconds, RuntimeError if it failed (its stderr is in the message, for the log)."""
    request = {**request, "cpu_seconds": math.ceil(timeout) + 1}
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bot.backup.grepworker",
        stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    try:
        out, err = await asyncio.wait_for(proc.communicate(json.dumps(request).encode()), timeout)
    except TimeoutError:
        raise too_slow(timeout) from None
    finally:
        if proc.returncode is None:  # timed out, or the caller was cancelled: it must not run on
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            await proc.wait()
    if proc.returncode != 0:
        tail = err.decode(errors="replace").strip().splitlines()[-3:]
        raise RuntimeError(f"grep worker exited with code {proc.returncode}: {' | '.join(tail)}")
    answer: dict[str, Any] = json.loads(out)
    if "error" in answer:
        raise UserError(answer["error"])
    return answer


# --- the child ---------------------------------------------------------------------------------


def search(request: dict[str, Any]) -> dict[str, Any]:
    """Match every entry of `request`, in order: {"results": [{"key", "count", "hits"}] for entries
    with a match, "missing": [keys whose file was gone]}. `limit`: lines given in detail in all
    (the rest are counted); `each`: at most this many per entry."""
    query = Query(**request["query"])
    try:
        matcher = compile_query(query)
    except UserError as exc:
        return {"error": str(exc)}
    left: int | None = request.get("limit")
    each: int | None = request.get("each")
    context = int(request.get("context", 2))
    results, missing = [], []
    for entry in request["entries"]:
        data = _read(entry["path"])
        shown = _read(entry["shown"]) if entry.get("shown") else None
        if data is None or (entry.get("shown") and shown is None):
            missing.append(entry["key"])
            continue
        cap = each if left is None else left if each is None else min(each, left)
        found = scan(data, matcher, shown=shown, limit=cap, context=context)
        if found.count:
            results.append({"key": entry["key"], "count": found.count,
                            "hits": [[h.number, h.section, h.line, h.before, h.after, h.secret] for h in found.hits]})
            if left is not None:
                left -= len(found.hits)
    return {"results": results, "missing": missing}


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
    json.dump(search(request), sys.stdout)


if __name__ == "__main__":
    main()
