"""`backupbot export git` (bot.interop.gitexport): every version of every device, one commit each, in
date order; and back again: the exported repository imported into a fresh database gives the same
versions, byte for byte."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bot.backup.service import BackupService
from bot.core.errors import UserError
from bot.core.kinds import Trigger
from bot.interop.gitexport import export_git
from bot.interop.importing import Importer
from bot.interop.sources import OxidizedRepo
from storage.store import Store
from tests.helpers import Clock, FakeCollector
from tests.interop.repos import Commit, day, fixture, log, oxidized_repo, oxidized_text, settings, show

AUTHOR = "backupbot <backupbot@localhost>"


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Store]:
    async with await Store.open(tmp_path / "backups.db") as s:
        yield s


async def history(tmp_path: Path, store: Store) -> None:
    """Imported Oxidized history for gw (days 1-3), then live backups of gw and tv (days 10, 11)."""
    config = settings(tmp_path, {"lab": ["gw", "tv"]})
    repo = oxidized_repo(tmp_path / "ox.git", [
        Commit(day(1), {"gw": oxidized_text(fixture("seq-praze-1.rsc"))}),
        Commit(day(3), {"gw": oxidized_text(fixture("seq-praze-2.rsc"))})])
    async with OxidizedRepo(repo) as source:
        await Importer(config, store, Clock(day(5))).run(source)
    exports = {"gw": fixture("seq-praze-3.rsc"), "tv": fixture("seq-tvroom-1.rsc")}
    clock = Clock(day(10))
    service = BackupService(config, FakeCollector(lambda d: exports[d.name]), store, clock)
    await service.run(config.devices(), Trigger.SCHEDULE)
    clock.now, exports["tv"] = day(11), fixture("seq-tvroom-2.rsc")
    await service.run(config.devices(), Trigger.SCHEDULE)


async def test_every_version_one_commit_in_date_order(tmp_path: Path, store: Store) -> None:
    await history(tmp_path, store)
    exported = await export_git(store, tmp_path / "out", AUTHOR, raw=True)
    assert (exported.versions, exported.devices) == (5, 2)
    commits = log(tmp_path / "out")
    assert sorted((c.author_date, c.files) for c in commits) == [  # gw and tv of day 10: either first
        (day(1), ("lab/gw.rsc",)), (day(3), ("lab/gw.rsc",)), (day(10), ("lab/gw.rsc",)), (day(10), ("lab/tv.rsc",)),
        (day(11), ("lab/tv.rsc",))]
    assert [c.author_date for c in commits] == sorted(c.author_date for c in commits)
    versions = await store.versions_by_date(limit=10)
    for commit, version in zip(commits, versions):
        assert show(tmp_path / "out", commit.sha, f"lab/{version.device}.rsc") == await store.raw(version.id)
        assert commit.message.startswith(f"lab/{version.device}: version #{version.id}")
    assert (tmp_path / "out" / "lab" / "tv.rsc").read_bytes() == fixture("seq-tvroom-2.rsc")  # checked out

    redacted = await export_git(store, tmp_path / "safe", AUTHOR)
    assert redacted.versions == 5
    assert show(tmp_path / "safe", "HEAD", "lab/tv.rsc") != fixture("seq-tvroom-2.rsc")  # normalized


async def test_exported_history_imports_back_the_same(tmp_path: Path, store: Store) -> None:
    await history(tmp_path, store)
    await export_git(store, tmp_path / "out", AUTHOR, raw=True)
    async with await Store.open(tmp_path / "fresh.db") as fresh:
        config = settings(tmp_path, {"lab": ["gw", "tv"]})
        async with OxidizedRepo(tmp_path / "out") as source:
            report = await Importer(config, fresh, Clock(day(30))).run(source, site_from_group=True)
        assert not report.problems and report.versions == 5
        for device in ("gw", "tv"):
            before = await store.versions("lab", device)
            after = await fresh.versions("lab", device)
            assert [(v.first_seen, v.hash, v.meta) for v in after] == [(v.first_seen, v.hash, v.meta) for v in before]
            assert [await fresh.raw(v.id) for v in after] == [await store.raw(v.id) for v in before]


async def test_refuses_a_folder_with_anything_in_it(tmp_path: Path, store: Store) -> None:
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "keep.txt").write_text("mine")
    with pytest.raises(UserError, match="is not empty"):
        await export_git(store, tmp_path / "busy", AUTHOR)
    assert (tmp_path / "busy" / "keep.txt").read_text() == "mine"
    (tmp_path / "empty").mkdir()
    assert (await export_git(store, tmp_path / "empty", AUTHOR)).versions == 0  # an empty database: an empty repo
