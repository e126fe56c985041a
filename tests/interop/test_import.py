"""Importing history (bot.interop.importing) from Oxidized-style repositories built from the real fixture
sequences, and from folders, into real SQLite files: which versions, dated when, what is refused or
skipped, and that importing twice adds nothing."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import datetime, timezone
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from bot.backup.service import BackupService
from bot.core.kinds import Trigger
from bot.core.models import Settings, Status
from bot.interop.importing import Importer, ImportReport
from bot.interop.planning import examine, match_files
from bot.interop.sources import Folder, OxidizedRepo, SourceFile, dated_name, parse_log
from bot.routeros import export as routeros
from storage.store import Store
from tests.helpers import Clock, FakeCollector
from tests.interop.repos import Commit, day, fixture, git, oxidized_repo, oxidized_text, settings

ERROR = b"expected end of command (line 1 column 9)\n"  # what v6 answers `/export show-sensitive` (oxidized#2427)


def ox(name: str, **kw: object) -> bytes:
    return oxidized_text(fixture(name), **kw)  # type: ignore[arg-type]


def history() -> list[Commit]:
    """Five days of an Oxidized repository: ap-1 at the top (an older Oxidized that kept v7's date
    line, so capxl-3 is a commit of only a new date), gw in group folder riga (its day-4 file without a
    final newline), a node no config names, and a node whose "backup" is RouterOS's error message."""
    gw2 = ox("seq-praze-2.rsc")
    return [
        Commit(day(1), {"ap-1": ox("seq-capxl-1.rsc", keep_date=True), "riga/gw": ox("seq-praze-1.rsc"),
                        "printer": ox("v6-ccr1009-sunny.rsc"), "edge-1": ERROR}),
        Commit(day(2), {"ap-1": ox("seq-capxl-2.rsc", keep_date=True)}),
        Commit(day(3), {"ap-1": ox("seq-capxl-3.rsc", keep_date=True)}),
        Commit(day(4), {"ap-1": ox("seq-capxl-4.rsc", keep_date=True), "riga/gw": gw2.rstrip(b"\n")}),
        Commit(day(5), {"riga/gw": ox("seq-praze-3.rsc")}),
    ]


@pytest.fixture
def config(tmp_path: Path) -> Settings:
    return settings(tmp_path, {"lab": ["AP-1", "edge-1"], "riga": ["gw"]})


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Store]:
    async with await Store.open(tmp_path / "backups.db") as s:
        yield s


async def run_import(config: Settings, store: Store, repo: Path, **kw: object) -> ImportReport:
    async with OxidizedRepo(repo) as source:
        return await Importer(config, store, Clock(day(30))).run(source, **kw)  # type: ignore[arg-type]


def by_device(report: ImportReport) -> dict[str, object]:
    return {d.device.label: d for d in report.devices}


async def test_oxidized_history_lands_as_versions_dated_by_commit(tmp_path: Path, config: Settings,
                                                                  store: Store) -> None:
    repo = oxidized_repo(tmp_path / "oxidized.git", history())
    report = await run_import(config, store, repo)

    ap = await store.versions("lab", "AP-1", limit=10)  # matched case-insensitively, stored under the config's name
    assert [v.first_seen for v in reversed(ap)] == [day(1), day(2), day(4)]  # day 3 changed only the date line
    assert [v.last_verified for v in reversed(ap)] == [day(1), day(3), day(4)]  # ... and verified day 2's config
    assert [await store.raw(v.id) for v in reversed(ap)] == [
        ox("seq-capxl-1.rsc", keep_date=True), ox("seq-capxl-2.rsc", keep_date=True),
        ox("seq-capxl-4.rsc", keep_date=True)]  # the bytes exactly as in git
    gw = list(reversed(await store.versions("riga", "gw", limit=10)))
    assert [v.first_seen for v in gw] == [day(1), day(4), day(5)]
    assert await store.raw(gw[1].id) == ox("seq-praze-2.rsc").rstrip(b"\n")  # kept without its final newline
    # The version comes from Oxidized's `installed-version` comment: Oxidized cut the date line.
    assert [v.meta.ros_version for v in gw] == ["6.48.3", "7.11.2", "7.12"]
    assert gw[2].meta.model == "L009UiGS-2HaxD"

    # The normalized config is what a live backup of the same export would give: Oxidized's comments
    # on top are no part of it, so the first live backup after an import compares cleanly.
    assert routeros.normalize(await store.raw(gw[2].id)) == routeros.normalize(fixture("seq-praze-3.rsc"))

    results = by_device(report)
    assert results["lab/edge-1"].all_refused  # type: ignore[attr-defined]
    assert results["lab/edge-1"].refused[0][1] == "RouterOS error: expected end of command (line 1 column 9)"  # type: ignore[attr-defined]
    assert await store.count_versions("lab", "edge-1") == 0
    assert [(s.file.path, s.reason) for s in report.skipped] == [
        ("printer", 'no device named "printer" in the config')]
    assert report.problems  # a refused file is something asked for that did not get in

    # One run with trigger import records it; every version says so.
    assert report.run_id is not None
    run = await store.run(report.run_id)
    assert run is not None and run.trigger == Trigger.IMPORT and run.status == "finished"
    assert set((await store.version_origins("lab", "AP-1", [v.id for v in ap])).values()) == {"import"}
    attempts = await store.run_attempts(report.run_id)
    assert [a.at for a in attempts if a.device == "AP-1"] == [day(1), day(2), day(3), day(4)]
    assert [a.status for a in attempts if a.device == "AP-1"] == [
        Status.NEW, Status.CHANGED, Status.UNCHANGED, Status.CHANGED]
    assert [(a.added, a.removed) for a in attempts if a.device == "gw"][1] != (0, 0)
    # The ids follow time across devices, as those of live backups do.
    ids = sorted((v.first_seen, v.id) for v in [*ap, *gw])
    assert [i for _, i in ids] == sorted(i for _, i in ids)


async def test_importing_twice_adds_nothing(tmp_path: Path, config: Settings, store: Store) -> None:
    repo = oxidized_repo(tmp_path / "oxidized.git", history())
    first = await run_import(config, store, repo)
    again = await run_import(config, store, repo)
    assert first.versions == 6 and again.versions == 0 and again.run_id is None
    assert await store.count_versions("lab", "AP-1") == 3 and await store.count_versions("riga", "gw") == 3
    ap = by_device(again)["lab/AP-1"]
    assert (ap.timeline.already, ap.timeline.older, ap.timeline.unchanged) == (3, 0, 1)  # type: ignore[attr-defined]
    assert len(await store.runs_after(0)) == 1


async def test_a_longer_history_later_adds_only_what_is_new(tmp_path: Path, config: Settings, store: Store) -> None:
    """Oxidized kept running: the same repository, two more days of commits, imported again."""
    await run_import(config, store, oxidized_repo(tmp_path / "first.git", history()[:3]))
    assert await store.count_versions("lab", "AP-1") == 2
    report = await run_import(config, store, oxidized_repo(tmp_path / "later.git", history()))
    assert {d.device.label: len(d.timeline.new) for d in report.devices} == {
        "lab/AP-1": 1, "lab/edge-1": 0, "riga/gw": 2}
    latest = await store.latest_version("lab", "AP-1")
    assert latest is not None and latest.first_seen == day(4)


async def test_history_older_than_a_live_backup_is_left_out(tmp_path: Path, config: Settings, store: Store) -> None:
    """The store's latest version is its highest id: older history is never slipped in behind it.
    What came after the live backup is appended."""
    collector = FakeCollector(lambda device: fixture("seq-capxl-2.rsc"))
    service = BackupService(config, collector, store, Clock(day(3, hour=12)))
    live = (await service.run(config.devices("lab", "AP-1"), Trigger.CLI)).results[0].version
    assert live is not None

    report = await run_import(config, store, oxidized_repo(tmp_path / "oxidized.git", history()))
    ap = by_device(report)["lab/AP-1"]
    assert ap.timeline.older == 2  # type: ignore[attr-defined] # capxl-1 (day 1) and capxl-2 (day 2): before day 3 12:00
    assert [p.snapshot.at for p in ap.timeline.new] == [day(4)]  # type: ignore[attr-defined]
    assert report.problems
    versions = await store.versions("lab", "AP-1", limit=10)
    assert [v.first_seen for v in versions] == [day(4), day(3, hour=12)]
    assert versions[1].id == live.id
    assert versions[0].id > live.id


async def test_dry_run_reads_everything_and_writes_nothing(tmp_path: Path, config: Settings, store: Store) -> None:
    report = await run_import(config, store, oxidized_repo(tmp_path / "oxidized.git", history()), dry_run=True)
    assert report.versions == 6 and report.run_id is None
    assert by_device(report)["lab/edge-1"].all_refused  # type: ignore[attr-defined]
    assert await store.runs_after(0) == [] and await store.count_versions("lab", "AP-1") == 0


async def test_site_from_group_folders(tmp_path: Path, store: Store) -> None:
    """Oxidized's groups: the folder names the site; a file outside any group or in a group no site
    is named after is skipped and says why. A normal (non-bare) clone reads the same."""
    config = settings(tmp_path, {"riga": ["gw"], "lab": ["gw"]})
    repo = oxidized_repo(tmp_path / "oxidized", [
        Commit(day(1), {"riga/gw": ox("seq-praze-1.rsc"), "lab/gw": ox("seq-tvroom-1.rsc"),
                        "gw": ox("seq-praze-1.rsc"), "paris/gw": ox("seq-tvroom-1.rsc")})], bare=False)
    report = await run_import(config, store, repo, site_from_group=True)
    assert {d.device.label: d.file.path for d in report.devices} == {"riga/gw": "riga/gw", "lab/gw": "lab/gw"}
    assert {s.file.path: s.reason for s in report.skipped} == {
        "gw": "not in a group folder (--site-from group names the site by its folder)",
        "paris/gw": 'no site "paris" in the config'}
    assert await store.count_versions("lab", "gw") == 1 and await store.count_versions("riga", "gw") == 1


def test_matching_by_name_host_and_site() -> None:
    config = settings(Path("/tmp"), {"lab": ["core-1", ("edge", "10.0.0.7")], "riga": ["core-1"]})

    def f(path: str) -> SourceFile:
        group, _, name = path.rpartition("/")
        return SourceFile(path, name, group or None)

    matched, skipped = match_files([f("CORE-1"), f("10.0.0.7"), f("edge.rsc"), f("nope")], config)
    assert [(d.label, s.path) for d, s in matched] == []  # edge is claimed twice; core-1 is in two sites
    assert {s.file.path: s.reason for s in skipped} == {
        "CORE-1": "matches lab/core-1, riga/core-1: say which site with --site",
        "10.0.0.7": "lab/edge is claimed by 2 files (10.0.0.7, edge.rsc); import them one at a time, or with "
                    "--site-from group",
        "edge.rsc": "lab/edge is claimed by 2 files (10.0.0.7, edge.rsc); import them one at a time, or with "
                    "--site-from group",
        "nope": 'no device named "nope" in the config'}
    matched, skipped = match_files([f("g/CORE-1"), f("10.0.0.7")], config, site="lab")
    assert [(d.label, s.path) for d, s in matched] == [("lab/core-1", "g/CORE-1"), ("lab/edge", "10.0.0.7")]
    assert skipped == []


def retire(config: Settings, site: str, name: str) -> Settings:
    """The inventory after the source stopped listing site/name (bot.inventory.merge does it for real)."""
    old = config.sites[site]
    gone = replace(old.device(name), retired_at=day(20))  # type: ignore[arg-type]
    left = tuple(d for d in old.devices if d.name != name)
    return replace(config, sites={**config.sites, site: replace(old, devices=left, retired=(*old.retired, gone))})


def test_a_retired_devices_history_may_be_imported_but_an_active_namesake_wins() -> None:
    """A router the inventory source stopped listing is retired, its history kept: a file named after
    it still lands on it. A router moved to another site is retired in the old one and active in the
    new one: its file goes to the active one, never refused as ambiguous."""
    config = retire(retire(settings(Path("/tmp"), {"lab": ["core-1", "old-1"], "riga": ["core-1"]}),
                           "lab", "old-1"), "lab", "core-1")

    def f(name: str) -> SourceFile:
        return SourceFile(name, name, None)

    matched, skipped = match_files([f("old-1"), f("CORE-1"), f("nope")], config)
    assert [(d.label, s.path) for d, s in matched] == [("lab/old-1", "old-1"), ("riga/core-1", "CORE-1")]
    assert matched[0][0].retired_at == day(20)
    assert [(s.file.path, s.reason) for s in skipped] == [("nope", 'no device named "nope" in the config')]
    matched, _ = match_files([f("core-1")], config, site="lab")  # only lab's: the retired one is its core-1
    assert [d.label for d, _ in matched] == ["lab/core-1"] and matched[0][0].retired_at == day(20)


def test_examine_accepts_a_missing_final_newline_only_on_import() -> None:
    cut = fixture("seq-tvroom-1.rsc").rstrip(b"\n")
    assert routeros.check_export(cut) == "export truncated"  # a live backup refuses it ...
    assert examine(cut).refusal is None  # ... an imported file is accepted
    assert examine(cut).norm_hash == examine(fixture("seq-tvroom-1.rsc")).norm_hash
    assert examine(b"\x00\x01binary").refusal == "not a RouterOS export"
    assert examine(ERROR).refusal == "RouterOS error: expected end of command (line 1 column 9)"


def test_parse_log_reads_paths_verbatim_and_ignores_deletions(tmp_path: Path) -> None:
    repo = oxidized_repo(tmp_path / "r.git", [
        Commit(day(1), {"grp/rôuter 1": b"a\n", "gone": b"b\n"}),
        Commit(day(2), {"gone": None, "grp/rôuter 1": b"c\n"})])
    files = parse_log(git(repo, "log", "--reverse", "--first-parent", "--diff-merges=first-parent", "--no-renames",
                          "--raw", "--no-abbrev", "-z", "--format=%x01%H %at", "HEAD").encode())
    assert [(f.path, f.group, f.name, [s.at for s in f.snapshots]) for f in files] == [
        ("gone", None, "gone", [day(1)]), ("grp/rôuter 1", "grp", "rôuter 1", [day(1), day(2)])]


async def test_not_a_repository_is_a_clear_error(tmp_path: Path) -> None:
    from bot.core.errors import UserError

    with pytest.raises(UserError, match="no such directory"):
        async with OxidizedRepo(tmp_path / "missing"):
            pass
    (tmp_path / "plain").mkdir()
    with pytest.raises(UserError, match="is not a git repository"):
        async with OxidizedRepo(tmp_path / "plain"):
            pass
    git(tmp_path, "init", "--quiet", "empty")
    with pytest.raises(UserError, match="has no commits"):
        async with OxidizedRepo(tmp_path / "empty"):
            pass
    inside = oxidized_repo(tmp_path / "work", [Commit(day(1), {"x": b"y\n"})], bare=False) / "sub"
    inside.mkdir()
    with pytest.raises(UserError, match="is not a git repository"):  # never the repository around it
        async with OxidizedRepo(inside):
            pass


# -- a folder of .rsc files --------------------------------------------------------------------------


def test_dated_names_are_read_in_the_sites_zone() -> None:
    riga = ZoneInfo("Europe/Riga")
    assert dated_name("core-1_20240105-0200.rsc", riga) == ("core-1", day(5, hour=0))  # 02:00 EET = 00:00 UTC
    assert dated_name("my_router_20240705-0200.rsc", riga) == ("my_router", datetime(2024, 7, 4, 23, tzinfo=timezone.utc))
    assert dated_name("core-1.rsc", riga) is None
    assert dated_name("core-1_20241345-0200.rsc", riga) is None  # no such date: dated by mtime instead


async def test_folder_import(tmp_path: Path, store: Store) -> None:
    config = settings(tmp_path, {"lab": ["core-1", "tv"]}, schedule={"timezone": "Europe/Riga"})
    folder = tmp_path / "backups"
    (folder / "old").mkdir(parents=True)
    (folder / "core-1_20240101-0300.rsc").write_bytes(fixture("seq-ccr2004-lab-1.rsc"))
    (folder / "old" / "core-1_20240201-0300.rsc").write_bytes(fixture("seq-ccr2004-lab-2.rsc"))
    (folder / "tv.rsc").write_bytes(fixture("seq-tvroom-2.rsc"))
    os.utime(folder / "tv.rsc", (day(10).timestamp(), day(10).timestamp()))
    (folder / "notes.txt").write_text("not an export")
    (folder / ".git").mkdir()
    (folder / ".git" / "tv_20240101-0000.rsc").write_bytes(b"hidden")
    (folder / "unknown.rsc").write_bytes(fixture("seq-tvroom-1.rsc"))

    async with Folder(folder, ZoneInfo("Europe/Riga")) as source:
        report = await Importer(config, store, Clock(day(30))).run(source, site="lab")
    core = list(reversed(await store.versions("lab", "core-1")))
    assert [v.first_seen for v in core] == [day(1, hour=1), day(32, hour=1)]
    assert [v.first_seen for v in await store.versions("lab", "tv")] == [day(10)]
    assert [(s.file.path, s.reason) for s in report.skipped] == [
        ("unknown.rsc", 'no device named "unknown" in site "lab"')]
    assert {d.device.label: d.file.path for d in report.devices} == {
        "lab/core-1": "core-1_20240101-0300.rsc (+1 more)", "lab/tv": "tv.rsc"}
    assert not report.problems
    assert all(v.first_seen.tzinfo == timezone.utc for v in core)
