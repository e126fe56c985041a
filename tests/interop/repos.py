"""What the bot.interop tests share: Oxidized-style repositories built from the real fixture
sequences, configs naming their routers, and reading what a git repository holds."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from bot.config.load import parse_settings
from bot.core.models import Settings
from tests.helpers import FIXTURES

# No user or system git config: a developer's commit.gpgsign or hooks must not change what tests see.
GIT_ENV = {**os.environ, "GIT_CONFIG_GLOBAL": os.devnull, "GIT_CONFIG_NOSYSTEM": "1",
           "GIT_AUTHOR_NAME": "oxidized", "GIT_AUTHOR_EMAIL": "oxidized@example.net",
           "GIT_COMMITTER_NAME": "oxidized", "GIT_COMMITTER_EMAIL": "oxidized@example.net"}

# What Oxidized's RouterOS model puts above the export: `/system routerboard print` and
# `/system package update print`, each line commented with "# ".
ROUTERBOARD = """\
#        routerboard: yes
#              model: {model}
#      serial-number: {serial}
#      firmware-type: al2
#   factory-firmware: 6.45.9
#   current-firmware: {version}
#   upgrade-firmware: {version}
#            channel: stable
#  installed-version: {version}
#     latest-version: {latest}
#             status: {status}
"""


def fixture(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


def oxidized_text(raw: bytes, *, keep_date: bool = False, latest: str | None = None) -> bytes:
    """A real export as Oxidized's RouterOS model stores it: its routerboard and package prints as
    comments on top, wrapped lines joined, lines right-stripped (CRs gone), and the date line dropped
    (older Oxidized releases kept v7's ISO date line: `keep_date`)."""
    text = raw.decode("utf-8", "replace").replace("\\\r\n    ", "").replace("\\\n    ", "")
    lines = [line.rstrip() for line in text.split("\n")]
    if not keep_date:
        lines = [line for line in lines if " by RouterOS " not in line]
    header = {line.split(" = ", 1)[0][2:]: line.split(" = ", 1)[1] for line in lines if " = " in line[:20]}
    version = next((line.split("RouterOS ")[1].split()[0] for line in text.split("\n") if " by RouterOS " in line),
                   "7.0")
    top = ROUTERBOARD.format(model=header.get("model", "CHR"), serial=header.get("serial number", "-"),
                             version=version, latest=latest or version,
                             status="New version is available" if latest else "System is already up to date")
    return top.encode() + "\n".join(lines).rstrip("\n").encode() + b"\n"


def git(repo: Path, *args: str, env: Mapping[str, str] | None = None, input: bytes | None = None) -> str:
    done = subprocess.run(["git", *args], cwd=repo, env={**GIT_ENV, **(env or {})}, input=input,
                          capture_output=True, check=True)
    return done.stdout.decode()


@dataclass(frozen=True)
class Commit:
    at: datetime
    files: Mapping[str, bytes | None]  # path -> content (None: deleted)
    message: str = "update"


def oxidized_repo(path: Path, commits: Sequence[Commit], *, bare: bool = True) -> Path:
    """A repository with these commits, each dated (author and committer) as given; bare by default,
    as Oxidized's git output is."""
    work = path.with_name(path.name + "-work") if bare else path
    work.mkdir(parents=True)
    git(work, "init", "--quiet", "--initial-branch=master")
    for c in commits:
        for name, content in c.files.items():
            file = work / name
            if content is None:
                file.unlink()
                continue
            file.parent.mkdir(parents=True, exist_ok=True)
            file.write_bytes(content)
        stamp = c.at.strftime("%Y-%m-%dT%H:%M:%SZ")
        git(work, "add", "--all")
        git(work, "commit", "--quiet", "--allow-empty", "-m", c.message,
            env={"GIT_AUTHOR_DATE": stamp, "GIT_COMMITTER_DATE": stamp})
    if bare:
        git(path.parent, "clone", "--quiet", "--bare", str(work), str(path))
    return path


def day(n: int, hour: int = 2) -> datetime:
    """Day n of 2024, at `hour`:00 UTC."""
    return datetime(2024, 1, 1, hour, tzinfo=timezone.utc) + timedelta(days=n - 1)


def settings(tmp_path: Path, sites: Mapping[str, Sequence[str | tuple[str, str]]],
             git_section: Mapping[str, Any] | None = None, **top: Any) -> Settings:
    """A real config (parsed by bot.config): each site's devices by name (or (name, host))."""
    data: dict[str, Any] = {
        "storage": {"path": "backups.db"},
        "defaults": {"username": "backup", "password": "${ROUTER_PASSWORD}"},
        "sites": {site: {"devices": [{"name": d, "host": "127.0.0.1"} if isinstance(d, str)
                                     else {"name": d[0], "host": d[1]} for d in devices]}
                  for site, devices in sites.items()},
        **top,
    }
    if git_section is not None:
        data["git"] = dict(git_section)
    return parse_settings(data, {"ROUTER_PASSWORD": "pw"}, tmp_path)


@dataclass(frozen=True)
class LoggedCommit:
    sha: str
    author: str
    author_date: datetime
    committer_date: datetime
    message: str
    files: tuple[str, ...]


def log(repo: Path, ref: str = "HEAD") -> list[LoggedCommit]:
    """The commits on `ref`, oldest first, with the files each one touched."""
    out = git(repo, "log", "--reverse", "--format=%x01%H%x00%an <%ae>%x00%at%x00%ct%x00%B%x00", "--name-only", ref)
    commits = []
    for chunk in out.split("\x01")[1:]:
        sha, author, at, ct, message, names = chunk.split("\x00")
        commits.append(LoggedCommit(sha, author, datetime.fromtimestamp(int(at), timezone.utc),
                                    datetime.fromtimestamp(int(ct), timezone.utc), message,
                                    tuple(n for n in names.split("\n") if n)))
    return commits


def show(repo: Path, ref: str, path: str) -> bytes:
    return subprocess.run(["git", "show", f"{ref}:{path}"], cwd=repo, env=GIT_ENV, capture_output=True,
                          check=True).stdout
