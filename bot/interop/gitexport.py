"""`backupbot export git DIR`: the whole history, every version of every device in date order, one
commit each, written into a new repository (a one-off move to another tool or a git server).

Each commit writes `SITE/DEVICE.rsc`, dated when the version was first seen: redacted as the mirror
commits it by default, or the exact bytes received (secrets included) with `raw`. DIR must be
missing or empty, so nothing of anyone's is ever overwritten. Written with `git fast-import` in
batches; the work tree is checked out at the end.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from bot.backup.offload import cpu
from bot.core.errors import UserError
from bot.core.models import Version
from bot.interop import git
from bot.interop.commits import file_content, path_of, version_message
from bot.interop.repository import DEFAULT_BRANCH

BATCH = 500  # versions per fast-import process and per page read from the store


class ExportStore(Protocol):
    async def versions_by_date(self, after: Version | None = None, limit: int = 500) -> list[Version]: ...
    async def raw(self, version_id: int) -> bytes: ...
    async def instance_key(self) -> bytes: ...


@dataclass(frozen=True)
class Exported:
    path: Path
    versions: int
    devices: int


async def export_git(store: ExportStore, path: Path, author: str, *, raw: bool = False,
                     progress: Callable[[int], None] | None = None) -> Exported:
    """Write every version into a new repository at `path`. UserError if `path` is a file or a folder
    with anything in it."""
    if path.exists() and (not path.is_dir() or any(path.iterdir())):
        raise UserError(f"{path} is not empty: export git writes a new repository into a missing or empty folder")
    path.mkdir(parents=True, exist_ok=True)
    await git.run("init", "--quiet", f"--initial-branch={DEFAULT_BRANCH}", str(path))
    key = None if raw else await store.instance_key()
    head: str | None = None
    count, devices, last = 0, set(), None
    while page := await store.versions_by_date(last, BATCH):
        async with git.FastImport(path, DEFAULT_BRANCH, head) as stream:
            for version in page:
                content = await cpu(file_content, await store.raw(version.id), key)
                await stream.commit(author, version.first_seen, version_message(version),
                                    {path_of(version.site, version.device): content})
                devices.add((version.site, version.device))
            await stream.done()
        head = (await git.run("rev-parse", f"refs/heads/{DEFAULT_BRANCH}", cwd=path)).decode().strip()
        count, last = count + len(page), page[-1]
        if progress is not None:
            progress(count)
    if head is not None:
        await git.run("reset", "--hard", "--quiet", cwd=path, timeout=git.TIMEOUT * 5)
    return Exported(path, count, len(devices))
