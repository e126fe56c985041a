"""What goes into git, pure (bot.interop.commits): commits per run, their messages and bookmarks."""

from __future__ import annotations

from bot.core.kinds import Trigger
from bot.core.models import Attempt, Status
from bot.interop.commits import Bookmark, bookmark_of, file_content, run_commits
from bot.interop.mirror import scrub
from bot.routeros import export as routeros
from tests.interop.repos import day, fixture


def attempt(version: int, device: str, status: Status = Status.CHANGED, at_day: int = 1, **kw: object) -> Attempt:
    return Attempt(version, 7, "lab", device, day(at_day), status, version_id=None if status is Status.FAILED
                   else version, error_kind="timeout" if status is Status.FAILED else None, **kw)  # type: ignore[arg-type]


def test_a_run_is_one_commit_of_its_new_and_changed_versions() -> None:
    attempts = [attempt(12, "r2", Status.NEW), attempt(0, "r3", Status.FAILED), attempt(10, "r9", Status.UNCHANGED),
                attempt(11, "r1", added=3, removed=1, note="RouterOS 7.20 → 7.21"),
                attempt(13, "r4", Status.NEW), attempt(14, "r5", Status.NEW)]
    [commit] = run_commits(7, Trigger.SCHEDULE, day(5), attempts)
    assert commit.at == day(5)  # the run's time, whatever each device's
    assert [a.version_id for a in commit.attempts] == [11, 12, 13, 14]
    assert commit.bookmark == Bookmark(7, 14)
    assert commit.message == (
        "Scheduled run #7: lab/r1 changed, lab/r2 new, lab/r4 new and 1 more\n\n"
        "lab/r1: changed, +3 -1 (RouterOS 7.20 → 7.21)\nlab/r2: new\nlab/r4: new\nlab/r5: new\n\n"
        "Backupbot-Run: 7\nBackupbot-Version: 14\n")
    assert bookmark_of(commit.message) == Bookmark(7, 14)
    assert run_commits(7, Trigger.SCHEDULE, day(5), attempts, after=14) == []  # all committed already
    assert run_commits(7, Trigger.CLI, day(5), [attempt(10, "r9", Status.UNCHANGED)]) == []


def test_an_import_is_one_commit_per_date() -> None:
    attempts = [attempt(1, "a", Status.NEW, 1), attempt(2, "b", Status.NEW, 1), attempt(3, "a", at_day=2),
                attempt(4, "b", Status.UNCHANGED, 3), attempt(5, "b", at_day=4)]
    commits = run_commits(9, Trigger.IMPORT, day(30), attempts)
    assert [(c.at, [a.version_id for a in c.attempts]) for c in commits] == [
        (day(1), [1, 2]), (day(2), [3]), (day(4), [5])]
    assert [c.bookmark.version for c in commits] == [2, 3, 5]
    assert [c.at for c in run_commits(9, Trigger.IMPORT, day(30), attempts, after=3)] == [day(4)]
    assert commits[0].message.startswith("History import #9: lab/a new, lab/b new\n")


def test_bookmarks_are_read_only_from_backupbots_commits() -> None:
    assert bookmark_of("Initial commit\n") is None
    assert bookmark_of("x\n\nBackupbot-Run: 3\n") is None
    assert bookmark_of("x\n\nBackupbot-Run: 3\nBackupbot-Version: 40\n") == Bookmark(3, 40)


def test_file_content_is_raw_or_redacted_normalized() -> None:
    raw = fixture("v6-hap-lite-951-compact-wrapped.rsc")
    assert file_content(raw, None) == raw
    redacted = file_content(raw, b"k" * 32).decode()
    assert "<redacted:" in redacted and redacted.count("\n") == routeros.normalize(raw).count("\n")
    assert "wpa2-pre-shared-key=<redacted:" in redacted


def test_credentials_are_scrubbed_from_urls() -> None:
    assert scrub("fatal: unable to access 'https://bot:glpat-XYZ@git.example.net/net/backups.git/': 403") == \
        "fatal: unable to access 'https://***@git.example.net/net/backups.git/': 403"
    assert scrub("git@github.com:net/backups.git") == "git@github.com:net/backups.git"
