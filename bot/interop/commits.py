"""PURE. What goes into git: each version's file (`SITE/DEVICE.rsc`) and content, how a run's versions
become commits, their messages, and the trailers that say how far a mirror has come.

A commit's message names the run's trigger and the devices it changed; its last lines are trailers
(`git interpret-trailers` reads them):

    Scheduled run #57: lab/core-1 changed, lab/ap-1 new

    lab/core-1: changed, +3 -1 (RouterOS 7.20 → 7.21)
    lab/ap-1: new

    Backupbot-Run: 57
    Backupbot-Version: 1234

`Backupbot-Run` and `Backupbot-Version` are the mirror's bookmark: every run before that run is in
git, and of that run every version up to that id. It lives in the commit it describes, so the
bookmark and what it marks can never disagree, whatever is killed when.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from bot.core.kinds import Trigger
from bot.core.models import Attempt, Status, Version
from bot.core.text import changes
from bot.routeros import export as routeros
from bot.routeros import redact as redaction

NAMED_IN_SUBJECT = 3  # devices named in a subject line; the body lists them all


def path_of(site: str, device: str) -> str:
    return f"{site}/{device}.rsc"


def file_content(raw: bytes, key: bytes | None) -> bytes:
    """What a version's file holds: the exact bytes received (key None), or the normalized config with
    every secret replaced by its keyed fingerprint, as Slack shows it (bot.routeros.redact)."""
    if key is None:
        return raw
    return redaction.redact(routeros.normalize(raw), key).encode()


@dataclass(frozen=True)
class Bookmark:
    """How far a mirror has come: every run before `run`, and of `run` the versions up to `version`."""

    run: int = 0
    version: int = 0


_TRAILER = re.compile(r"^Backupbot-(Run|Version): (\d+)$", re.MULTILINE)


def bookmark_of(message: str) -> Bookmark | None:
    """The bookmark in a commit message; None if it has none (a commit backupbot did not make)."""
    found = {key: int(value) for key, value in _TRAILER.findall(message)}
    if "Run" not in found or "Version" not in found:
        return None
    return Bookmark(found["Run"], found["Version"])


@dataclass(frozen=True)
class RunCommit:
    """One commit: versions one run recorded, dated by the run (an import's: by the version)."""

    run_id: int
    trigger: str
    at: datetime
    attempts: tuple[Attempt, ...]  # new/changed attempts, by version id

    @property
    def bookmark(self) -> Bookmark:
        return Bookmark(self.run_id, max(a.version_id or 0 for a in self.attempts))

    @property
    def message(self) -> str:
        return run_message(self)


def run_commits(run_id: int, trigger: str, started_at: datetime, attempts: Sequence[Attempt],
                after: int = 0) -> list[RunCommit]:
    """The commits of a run's versions above version id `after`: one for the run, dated when it started;
    an import's one per date its versions were first seen (history reads as history)."""
    recorded = sorted((a for a in attempts if a.status in (Status.NEW, Status.CHANGED)
                       and a.version_id is not None and a.version_id > after), key=lambda a: a.version_id or 0)
    if trigger != Trigger.IMPORT:
        return [RunCommit(run_id, trigger, started_at, tuple(recorded))] if recorded else []
    commits: list[RunCommit] = []
    for a in recorded:
        if commits and commits[-1].at == a.at:
            commits[-1] = RunCommit(run_id, trigger, a.at, (*commits[-1].attempts, a))
        else:
            commits.append(RunCommit(run_id, trigger, a.at, (a,)))
    return commits


def _what(a: Attempt) -> str:
    if a.status is Status.NEW:
        return "new"
    detail = changes(a.added, a.removed) if a.added or a.removed else "header only"
    return f"changed, {detail}" + (f" ({a.note})" if a.note else "")


def run_message(commit: RunCommit) -> str:
    attempts = sorted(commit.attempts, key=lambda a: (a.site, a.device))
    named = [f"{a.site}/{a.device} {a.status.value}" for a in attempts[:NAMED_IN_SUBJECT]]
    more = len(attempts) - len(named)
    subject = f"{Trigger.words_for(commit.trigger)} #{commit.run_id}: {', '.join(named)}"
    if more:
        subject += f" and {more} more"
    body = "\n".join(f"{a.site}/{a.device}: {_what(a)}" for a in attempts)
    mark = commit.bookmark
    return f"{subject}\n\n{body}\n\nBackupbot-Run: {mark.run}\nBackupbot-Version: {mark.version}\n"


def version_message(version: Version) -> str:
    """The message of one version's commit in `backupbot export git`."""
    os = f" (RouterOS {version.meta.ros_version})" if version.meta.ros_version else ""
    return f"{version.site}/{version.device}: version #{version.id}{os}\n"
