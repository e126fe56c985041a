"""/backup: parse the text into a Command (pure), authorize, ack within 3 s, then do the work.

    /backup [help]                 usage
    /backup sites                  every site the requester may see
    /backup SITE [DEVICE] [now]    a site's devices / a device's versions / back up now
    /backup show ID                a version's config, redacted
    /backup download ID            the raw export, to the requester's DM (download rights)
    /backup diff ID1 ID2           two versions' differences (redacted)
    /backup diff SITE DEVICE       the device's latest change
    /backup search TEXT            devices whose site, name or host contains TEXT
    /backup grep [-E] [-i] [--history] PATTERN [SITE [DEVICE]]
                                   lines of the latest backups (every version: --history) matching PATTERN

Keywords win over site names ("sites", "show", ... cannot be site names here). Parsing and
site-level authorization need no I/O, so their errors are the ack itself; everything that reads
the database runs after the ack as a tracked task that reports back through respond().
"""

from __future__ import annotations

import logging
import re
from collections.abc import Coroutine
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from slack_bolt.async_app import AsyncApp
from slack_bolt.context.ack.async_ack import AsyncAck
from slack_bolt.context.respond.async_respond import AsyncRespond
from slack_sdk.web.async_client import AsyncWebClient

from bot.backup.grep import readings, targets
from bot.routeros.grep import Query, compile_query
from bot.slack import blocks
from bot.core.errors import Busy, UserError
from handlers import work
from handlers.deps import Deps
from handlers.replies import Reply
from handlers.work import Requester

log = logging.getLogger(__name__)

COMMAND = "/backup"


class Kind(StrEnum):
    HELP = "help"
    USAGE = "usage"  # malformed: answer with usage
    SITES = "sites"
    SITE = "site"
    DEVICE = "device"
    BACKUP = "backup"
    SHOW = "show"
    DOWNLOAD = "download"
    DIFF = "diff"  # two ids
    LATEST_CHANGE = "latest_change"  # diff SITE DEVICE
    SEARCH = "search"
    GREP = "grep"


@dataclass(frozen=True)
class Command:
    kind: Kind
    site: str | None = None
    device: str | None = None
    ids: tuple[int, ...] = ()
    text: str = ""
    query: Query | None = None  # grep
    history: bool = False  # grep --history
    problem: str | None = None  # USAGE: what is wrong, when there is more to say than the usage


GREP_USAGE = "`/backup grep [-E] [-i] [--history] PATTERN [SITE [DEVICE]]`"
_OPTIONS = {"-E": "regex", "--regex": "regex", "-i": "ignore_case", "--ignore-case": "ignore_case",
            "-Ei": "both", "-iE": "both", "--history": "history"}
_QUOTES = {'"': '"', "'": "'", "“": "”", "‘": "’"}  # Slack clients may turn quotes into curly ones


def _unescape(text: str) -> str:
    """Slack sends &, < and > in a command's text as &amp;, &lt; and &gt;."""
    return text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")


def _pattern(text: str) -> tuple[str, list[str]]:
    """(PATTERN, the words after it). The pattern is the first word as typed (quotes in it are kept:
    `comment="defconf` is a pattern), or, when it starts with a quote, everything up to the closing
    quote that ends a word: `"allow ssh" hq` is the pattern `allow ssh` and the site hq."""
    close = _QUOTES.get(text[:1])
    if close is not None:
        for m in re.finditer(re.escape(close) + r"(?=\s|$)", text):
            if m.start() > 0:
                return text[1:m.start()], text[m.end():].split()
    first, _, rest = text.partition(" ")
    return first, rest.split()


def _grep(text: str) -> Command:
    """`grep [-E] [-i] [--history] PATTERN [SITE [DEVICE]]` (text after the keyword). Pure."""
    text = _unescape(text).strip()
    flags = set()
    while text.startswith("-"):
        option, _, rest = text.partition(" ")
        if option == "--":
            text = rest.strip()
            break
        if option not in _OPTIONS:
            return Command(Kind.USAGE, problem=f"Unknown option {option}. {GREP_USAGE} (-- before a pattern "
                                               "that starts with -)")
        flags |= {"regex", "ignore_case"} if _OPTIONS[option] == "both" else {_OPTIONS[option]}
        text = rest.strip()
    if not text:
        return Command(Kind.USAGE, problem=f"Search for what? {GREP_USAGE}")
    pattern, where = _pattern(text)
    if len(where) > 2:
        return Command(Kind.USAGE, problem=f"Too many words after the pattern: put a pattern with spaces in "
                                           f"quotes. {GREP_USAGE}")
    if "history" in flags and len(where) < 2:
        return Command(Kind.USAGE, problem="--history follows the matching lines through one device's versions: "
                                           "`/backup grep --history PATTERN SITE DEVICE`")
    query = Query.of(pattern, regex="regex" in flags, ignore_case="ignore_case" in flags)
    return Command(Kind.GREP, site=where[0] if where else None, device=where[1] if len(where) > 1 else None,
                   query=query, history="history" in flags)


def _id(word: str) -> int | None:
    word = word.removeprefix("#")
    return int(word) if word.isdigit() else None


def parse(text: str) -> Command:
    """The command's text as a Command; anything malformed is Kind.USAGE. Pure."""
    words = text.split()
    if not words or (words == ["help"]):
        return Command(Kind.HELP)
    head, rest = words[0].lower(), words[1:]
    if head == "sites" and not rest:
        return Command(Kind.SITES)
    if head in ("show", "download") and len(rest) == 1 and _id(rest[0]) is not None:
        return Command(Kind(head), ids=(_id(rest[0]),))  # type: ignore[arg-type]
    if head == "diff" and len(rest) == 2:
        a, b = _id(rest[0]), _id(rest[1])
        if a is not None and b is not None:
            return Command(Kind.DIFF, ids=(a, b))
        if a is None and b is None:
            return Command(Kind.LATEST_CHANGE, site=rest[0], device=rest[1])
        return Command(Kind.USAGE)
    if head == "search" and rest:
        return Command(Kind.SEARCH, text=text.strip()[len(words[0]):].strip())
    if head == "grep":
        return _grep(text.strip()[len(words[0]):])
    if head in ("help", "sites", "show", "download", "diff", "search"):
        return Command(Kind.USAGE)
    site = words[0]
    match rest:
        case []:
            return Command(Kind.SITE, site=site)
        case ["now"]:
            return Command(Kind.BACKUP, site=site)
        case [device]:
            return Command(Kind.DEVICE, site=site, device=device)
        case [device, "now"]:
            return Command(Kind.BACKUP, site=site, device=device)
    return Command(Kind.USAGE)


Work = Coroutine[Any, Any, None]


def _plan(deps: Deps, cmd: Command, who: Requester, reply: Reply) -> tuple[blocks.Message | None, Work]:
    """(the ack's message or None for an empty ack, the work to run after it). Raises UserError
    for what can be refused without I/O (unknown or forbidden site, unknown device)."""
    match cmd.kind:
        case Kind.SITES:
            return None, work.sites(deps, who, reply)
        case Kind.SEARCH:
            return None, work.search(deps, who, reply, cmd.text)
        case Kind.GREP:
            assert cmd.query is not None
            compile_query(cmd.query)  # a pattern that can't be used is the ack itself
            if cmd.device is not None:
                work.device_for(deps, who, cmd.site or "", cmd.device)
            elif cmd.site is not None:
                work.site_for(deps, who, cmd.site)
            scope = targets(deps.settings, readings(deps.settings, who.user, who.channel), cmd.site, cmd.device)
            return (blocks.grep_started(cmd.query, len(scope), cmd.history),
                    work.grep(deps, who, reply, cmd.query, scope, history=cmd.history, site=cmd.site,
                              device=cmd.device))
        case Kind.SHOW:
            return None, work.show(deps, who, reply, cmd.ids[0])
        case Kind.DOWNLOAD:
            return None, work.download(deps, who, reply, cmd.ids[0])
        case Kind.DIFF:
            return None, work.diff(deps, who, reply, cmd.ids)
        case Kind.SITE:
            return None, work.site(deps, who, reply, work.site_for(deps, who, cmd.site or ""))
        case Kind.DEVICE:
            return None, work.versions(deps, who, reply, work.device_for(deps, who, cmd.site or "", cmd.device or ""))
        case Kind.LATEST_CHANGE:
            device = work.device_for(deps, who, cmd.site or "", cmd.device or "")
            return None, work.latest_change(deps, who, reply, device)
        case Kind.BACKUP:
            devices = work.backup_targets(deps, who, cmd.site or "", cmd.device)
            label = devices[0].label if cmd.device is not None else devices[0].site
            started = blocks.backup_started(label, len(devices), deps.service.busy(devices))
            return started, work.backup(deps, who, reply, devices)
    raise AssertionError(cmd.kind)


def register(app: AsyncApp, deps: Deps) -> None:
    async def backup_command(ack: AsyncAck, command: dict[str, Any], respond: AsyncRespond,
                             client: AsyncWebClient) -> None:
        cmd = parse(command.get("text", ""))
        if cmd.kind in (Kind.HELP, Kind.USAGE):
            await ack(**(blocks.error(cmd.problem) if cmd.problem else blocks.usage()))
            return
        who = Requester(command["user_id"], command.get("channel_id"))
        reply = Reply(client, respond, who.user, who.channel)
        try:
            answer, job = _plan(deps.pinned(), cmd, who, reply)
        except UserError as exc:
            await ack(**blocks.error(str(exc)))
            return
        try:
            deps.tasks.spawn(job, name=f"{COMMAND} {command.get('text', '').strip()} ({who.user})",
                             on_error=reply.failed)
        except Busy as exc:
            await ack(**blocks.error(str(exc)))
            return
        if answer is None:
            await ack()
        else:
            await ack(**answer)

    app.command(COMMAND)(backup_command)

