"""What several test modules share: import from here, never from another test module.

Production code has no test-only paths; what only tests need lives here.
"""

from __future__ import annotations

import asyncio
import hashlib
import inspect
import re
import shlex
from collections import Counter
from collections.abc import Awaitable, Callable, Mapping
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from bot.core.errors import InvalidOutput
from bot.core.models import Device, Export, HostKey, KnownConfig
from bot.routeros import export as routeros
from storage.codec import to_db_time
from storage.outbox import _COLUMNS, _PENDING, OutboxItem, _item
from storage.store import Store

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "tests" / "fixtures" / "routeros"  # byte-exact real exports (SOURCES.md)
EXPECTED = ROOT / "tests" / "fixtures" / "expected"  # golden diffs of the fixture sequences
ALL = sorted(p.name for p in FIXTURES.glob("*.rsc"))


# -- time ------------------------------------------------------------------------------------------

async def until(condition: Callable[[], Any], timeout: float = 30.0) -> None:
    """Wait until `condition()` (a value, or an awaitable one) is true; TimeoutError after `timeout` s."""
    async def poll() -> None:
        while True:
            value = condition()
            if await value if inspect.isawaitable(value) else value:
                return
            await asyncio.sleep(0.02)
    await asyncio.wait_for(poll(), timeout)


class Clock:
    """The clock tests hand to the bot (a bot.core.clock.Clock). `Clock(now)` is fixed at `now`
    (move it by setting `.now`); `Clock(shift=d)` is the real time moved by `d`, so runs take the
    time they take, on a day the test chooses."""

    def __init__(self, now: datetime | None = None, *, shift: timedelta | None = None) -> None:
        if (now is None) == (shift is None):
            raise ValueError("give a fixed time or a shift from the real time, not both")
        self.now, self.shift = now, shift

    def __call__(self) -> datetime:
        if self.now is not None:
            return self.now
        assert self.shift is not None
        return datetime.now(timezone.utc) + self.shift


# -- a collector without SSH -----------------------------------------------------------------------

Handler = Callable[[Device], "bytes | Awaitable[bytes]"]


class FakeCollector:
    """An in-memory stand-in for the SSH collector (bot.backup.service.Collecting), in the manner of
    httpx's MockTransport: `handler(device)` returns the export's bytes (or awaits them) or raises a
    bot.core.errors.CollectError, as the real collector would; output that is not a complete export
    is refused as it would be (InvalidOutput). Each device presents its own fixed host key. `calls`
    counts collections per device name."""

    def __init__(self, handler: Handler) -> None:
        self.handler = handler
        self.calls: Counter[str] = Counter()

    async def collect(self, device: Device, trusted: HostKey | None, ros_major: int | None = None,
                      known: KnownConfig | None = None) -> Export:
        self.calls[device.name] += 1
        raw = self.handler(device)
        if inspect.isawaitable(raw):
            raw = await raw
        reason, normalized = routeros.check_and_normalize(raw)
        if reason is not None:
            raise InvalidOutput(reason)
        meta = routeros.parse_header(raw.decode("utf-8", "replace"))
        return Export(raw=raw, command="/export show-sensitive", host_key=f"ssh-ed25519 FAKE{device.name}",
                      host_key_fingerprint=f"SHA256:fake-{device.name}",
                      norm_hash=hashlib.sha256(normalized.encode()).hexdigest(), meta=meta,
                      ros_major=routeros.release_major(meta.ros_version), undated_hash=routeros.undated_hash(raw))


# -- the store, as tests inspect it ------------------------------------------------------------------

# Undelivered, due, and either top-level or under a delivered (or given-up) parent; oldest first: the
# order a channel reads its messages in. (The deliverer itself takes storage's outbox_heads.)
_DUE = _COLUMNS + f"""
WHERE {_PENDING} AND o.next_attempt_at <= ?
  AND (o.parent_id IS NULL OR p.ts IS NOT NULL OR p.gave_up_at IS NOT NULL)
ORDER BY o.id
LIMIT ?
"""


async def due_outbox(store: Store, now: datetime, limit: int = 50) -> list[OutboxItem]:
    """The outbox items that could be posted at `now`, oldest first."""
    return [_item(row) for row in await store._rows(_DUE, (to_db_time(now), limit))]


async def interrupt_unfinished(store: Store, at: datetime) -> int:
    """Mark every run still 'running' interrupted (as `serve` does at start-up); how many."""
    runs = await store.unfinished_runs()
    return sum([await store.interrupt_run(run.id, at) for run in runs])


# -- RouterOS sections, the plain way (a reference for bot.routeros.export.Sections) ---------------

def walk_back_section(lines: list[str], index: int) -> str | None:
    """Reference: the nearest line at or above `index` (clamped to the last line) starting with
    `/`, its words up to the first verb, property or `[`/`"` - as section_of was first written."""
    for i in range(min(index, len(lines) - 1), -1, -1):
        if lines[i].startswith("/"):
            words = []
            for word in lines[i].split(" "):
                if word in {"add", "set", "remove", "unset", "move", "enable", "disable", "comment", "edit",
                            "export", "import", "print", "reset"} or "=" in word or word.startswith(("[", '"')):
                    break
                words.append(word)
            return " ".join(words)
    return None


# -- the secrets in RouterOS fixtures, found independently of bot.core.secrets --------------------

# Independent of bot.routeros.redact's tables: the property names SOURCES.md counts as "Sensitive data",
# plus script variables holding tokens/passwords, matched with a plain regex on joined lines.
SECRET_NAMES = (
    r"password|secret|passphrase|wpa-pre-shared-key|wpa2-pre-shared-key|ipsec-secret"
    r"|export-passphrase|authentication-password|encryption-password|private-key"
)
PROPERTY = re.compile(
    rf'(?<![\w.-])(?:{SECRET_NAMES})=(?:\\"(?P<e>.*?)\\"|"(?P<q>(?:\\.|[^"\\])*)"|(?P<b>[^\s"]+))'
)
VARIABLE = re.compile(r':(?:global|local) \w*(?:Token|Pass|Password) \\"(?P<e>[^\\"]+)\\"')


def secrets_in(text: str) -> tuple[list[str], str]:
    """(secret values found, the text with every found secret cut out)."""
    values = []
    for rx in (PROPERTY, VARIABLE):
        for m in rx.finditer(text):
            value = next((v for v in m.groupdict().values() if v is not None), "")
            if value:
                values.append(value)
        text = rx.sub("", text)
    return values, text


# -- the backupbot commands README.md and docs/ show -------------------------------------------------

SAMPLES = {"SITE": "site-a", "DEVICE": "core-1", "ID": "12", "ID1": "12", "ID2": "15", "DIR": "/tmp/backupbot-demo",
           "FILE": "backupbot.yml", "COMMAND": "sites", "PATTERN": "winbox",
           "GIT_REPO": "/srv/oxidized/oxidized.git"}
FENCE = re.compile(r"^[ \t]*(?:[-*+]|\d+\.)?[ \t]*```[^\n]*\n(.*?)^[ \t]*```", re.S | re.M)  # also after "4. "
SPAN = re.compile(r"`(backupbot (?![\w-]+:)[^`]+)`")  # not quoted output ("backupbot serve: …")
PLACEHOLDER = re.compile(r"[A-Z][A-Z0-9_]*")
OPERATORS = {"&&", "||", ";", "|", "&"}


def doc_files() -> list[Path]:
    return [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]


def expand(usage: str) -> list[str]:
    """A syntax summary's shortest and longest forms; a line without brackets is itself."""
    if "[" not in usage:
        return [usage]
    shortest = usage
    while (fewer := re.sub(r"\[[^\[\]]*\]", "", shortest)) != shortest:
        shortest = fewer
    return [shortest, usage.replace("[", "").replace("]", "")]


def shell_commands(line: str) -> list[list[str]]:
    """The simple commands of one shell line, comments dropped."""
    lexer = shlex.shlex(line, posix=True, punctuation_chars=True)
    lexer.whitespace_split = True
    commands: list[list[str]] = [[]]
    for token in lexer:
        if token in OPERATORS:
            commands.append([])
        else:
            commands[-1].append(token)
    return [c for c in commands if c]


def commands_in(markdown: str, samples: Mapping[str, str] = SAMPLES) -> list[tuple[int, list[str]]]:
    """(line number, argv after `backupbot`) for every command the markdown shows."""
    found: list[tuple[int, str]] = []
    prose = markdown
    for fence in FENCE.finditer(markdown):
        first = markdown.count("\n", 0, fence.start(1)) + 1
        lines = fence.group(1).split("\n")
        i = 0
        while i < len(lines):
            start, text = i, lines[i]
            while text.endswith("\\") and i + 1 < len(lines):
                i += 1
                text = text[:-1] + " " + lines[i]
            found.append((first + start, text))
            i += 1
        prose = prose.replace(fence.group(0), "\n" * fence.group(0).count("\n"), 1)  # keep line numbers
    for span in SPAN.finditer(prose):
        found.append((prose.count("\n", 0, span.start()) + 1, span.group(1)))

    commands = []
    for number, text in sorted(found):
        for form in expand(text):
            for words in shell_commands(form):
                if words[0] == "backupbot":
                    commands.append((number, [substitute(w, samples) for w in words[1:]]))
    return commands


def substitute(word: str, samples: Mapping[str, str]) -> str:
    if not PLACEHOLDER.fullmatch(word):
        return word
    if word not in samples:
        raise KeyError(f"placeholder {word} has no sample value: add one to SAMPLES")
    return samples[word]


def documented_commands(samples: Mapping[str, str] = SAMPLES) -> list[tuple[str, list[str]]]:
    """("README.md:31", argv) for every command in README.md and docs/."""
    return [(f"{path.relative_to(ROOT)}:{number}", argv)
            for path in doc_files() for number, argv in commands_in(path.read_text(), samples)]
