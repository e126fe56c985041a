"""Block Kit builders: content, escaping, and Slack's limits at scale (nothing silently dropped)."""

from __future__ import annotations

import re
from dataclasses import replace
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
from slack_sdk.models.blocks import Block as SdkBlock

from bot.slack import blocks
from bot.routeros import diff as diffing
from bot.slack.blocks.kit import MAX_TEXT, message, section
from bot.slack.blocks.pack import fair_share, fit_lines
from bot.backup.catalog import SiteOverview
from bot.core.models import (
    Attempt,
    Device,
    DeviceResult,
    DeviceStatus,
    ExportMeta,
    NotStarted,
    RunSummary,
    Site,
    Status,
    Version,
)

NOW = datetime(2026, 11, 23, 9, 0, tzinfo=timezone.utc)
TAKEN = datetime(2026, 11, 20, 2, 0, tzinfo=timezone.utc)
KINDS = {"auth": "authentication failed", "host_key": "host key changed", "timeout": "timed out",
         "unreachable": "unreachable", "dropped": "connection dropped", "invalid_output": "invalid output"}


# --- an independent validator -------------------------------------------------------------------
def check_limits(payload: dict[str, Any], max_blocks: int = 50) -> list[dict[str, Any]]:
    """Assert every Block Kit limit the bot relies on; also let slack_sdk parse each block."""
    items = payload["blocks"]
    assert 1 <= len(items) <= max_blocks
    assert isinstance(payload.get("text", ""), str) and len(payload.get("text", "")) <= 3000
    total = 0
    for b in items:
        assert len(b.get("block_id", "")) <= 255
        if b["type"] == "section":
            assert len(b["text"]["text"]) <= 3000
        if b["type"] == "header":
            assert len(b["text"]["text"]) <= 150
        if b["type"] == "context":
            assert len(b["elements"]) <= 10
        elements = b.get("elements", []) if b["type"] == "actions" else []
        elements = elements + ([b["accessory"]] if "accessory" in b else [])
        assert len(elements) <= 25
        ids = [e["action_id"] for e in elements]
        assert len(ids) == len(set(ids)), f"duplicate action_id in {b}"
        for e in elements:
            assert len(e["action_id"]) <= 255
            if e["type"] == "button":
                assert len(e["text"]["text"]) <= 75 and len(e["value"]) <= 2000
            if e["type"] == "checkboxes":
                assert 1 <= len(e["options"]) <= 10
            for o in e.get("options", []):
                assert len(o["text"]["text"]) <= 75 and len(o["value"]) <= 150
                assert len(o.get("description", {}).get("text", "")) <= 75
        total += sum(len(t) for t in _texts(b))
        assert SdkBlock.parse(b).to_dict() == b  # slack_sdk's own validators run in to_dict()
    assert total <= MAX_TEXT  # msg_blocks_too_long starts around 11-13k (bolt-js#2509)
    return items


def _texts(node: Any) -> list[str]:
    if isinstance(node, dict):
        own = [node["text"]] if node.get("type") in ("plain_text", "mrkdwn") else []
        return own + [t for v in node.values() for t in _texts(v)]
    if isinstance(node, list):
        return [t for v in node for t in _texts(v)]
    return []


def text_of(payload: dict[str, Any]) -> str:
    return "\n".join(_texts(payload["blocks"]))


def buttons(payload: dict[str, Any]) -> list[tuple[str, str, str]]:
    out = []
    for b in payload["blocks"]:
        for e in b.get("elements", []) + ([b["accessory"]] if "accessory" in b else []):
            if e.get("type") == "button":
                out.append((e["text"]["text"], e["action_id"], e["value"]))
    return out


def more_count(text: str) -> int:
    """Sum of every "… and N more" in the text."""
    return sum(int(n.replace(",", "")) for n in re.findall(r"… and ([\d,]+) more", text))


# --- model factories ---------------------------------------------------------------------------
def dev(i: int, site: str = "site-a", name: str | None = None) -> Device:
    return Device(site, name or f"dev-{i:04d}", f"10.0.{i // 250}.{i % 250 + 1}", username="backup")


def ver(vid: int, d: Device, ros: str = "7.20.1", taken: datetime = TAKEN) -> Version:
    return Version(vid, d.site, d.name, taken, NOW - timedelta(hours=7), 46080, "0" * 64, ExportMeta(ros_version=ros))


def failed_attempt(d: Device, kind: str = "auth", reason: str = "Permission denied") -> Attempt:
    return Attempt(1, 1, d.site, d.name, NOW - timedelta(hours=7), Status.FAILED, error_kind=kind, reason=reason)


def ok_attempt(d: Device) -> Attempt:
    return Attempt(1, 1, d.site, d.name, NOW - timedelta(hours=7), Status.UNCHANGED, version_id=1)


def healthy(i: int, site: str = "site-a") -> DeviceStatus:
    d = dev(i, site)
    return DeviceStatus(d, ver(i + 1, d), ok_attempt(d), NOW - timedelta(hours=7))


def overview(i: int, devices: int = 25) -> SiteOverview:
    site = Site(f"site-{i:03d}", tuple(dev(j, f"site-{i:03d}") for j in range(devices)))
    return SiteOverview(site, TAKEN, ok=devices - 2, changed=1, failed=2, never=0)


def stale_check(s: DeviceStatus) -> bool:
    return s.last_attempt is not None and (s.last_success_at is None or NOW - s.last_success_at > timedelta(days=1))


# --- usage, errors, small messages ----------------------------------------------------------------
def test_usage_gives_an_example_of_every_command_row() -> None:
    """Help lists sites, SITE, SITE DEVICE, both `now` forms, show, download, both diffs, search, help."""
    m = blocks.usage("/bk")
    check_limits(m)
    text = text_of(m)
    for example in ["/bk sites", "/bk site-a`", "/bk site-a core-1`", "/bk site-a now", "/bk site-a core-1 now",
                    "/bk show 123", "/bk download 123", "/bk diff 120 123", "/bk diff site-a core-1",
                    "/bk search ", "/bk help"]:
        assert example in text


def test_error_escapes_control_characters() -> None:
    """An error text is shown literally: <, > and & cannot become mentions or links."""
    m = blocks.error('Unknown site "<!channel> & co". Did you mean: site-a?')
    check_limits(m)
    assert "&lt;!channel&gt; &amp; co" in text_of(m) and "<!channel>" not in m["text"]


def test_backup_started_says_how_many_devices_or_that_it_joined() -> None:
    """The immediate ack names the site and device count, or says a running backup was joined."""
    assert "Backing up site-a: 3 devices…" in text_of(blocks.backup_started("site-a", 3, joined=False))
    assert "Backing up site-a/r1: 1 device…" in text_of(blocks.backup_started("site-a/r1", 1, joined=False))
    joined = blocks.backup_started("site-a", 3, joined=True)
    assert text_of(joined) == "A backup of site-a is already running — you'll get its result."


def test_version_header_names_device_id_time_and_routeros() -> None:
    """The snippet title line: site/device, id, when taken (UTC) and the RouterOS version."""
    v = ver(12, dev(1, name="core-1"))
    assert blocks.version_header(v) == "site-a/core-1 #12 · taken 2026-11-20 02:00 UTC · RouterOS 7.20.1"


def test_host_key_alert_shows_both_fingerprints_and_how_to_accept() -> None:
    """The alert gives old and new fingerprints, the trust command, and that nothing is stored meanwhile."""
    m = blocks.host_key_alert(dev(1, name="core-1"), "SHA256:oldOLD", "SHA256:newNEW")
    check_limits(m)
    text = text_of(m)
    assert "SHA256:oldOLD" in text and "SHA256:newNEW" in text
    assert "`backupbot trust site-a core-1` on the server" in text
    assert "nothing is stored for this device" in text


# --- sites -----------------------------------------------------------------------------------------
def test_sites_overview_one_line_per_site_with_counts() -> None:
    """Each site shows its device count, last run and ok / changed / failed counts."""
    never = SiteOverview(Site("lab", (dev(1, "lab"),)), None, 0, 0, 0, 1)
    m = blocks.sites_overview([overview(1, devices=5), never], NOW)
    check_limits(m)
    text = text_of(m)
    assert "*site-001* · 5 devices · last run 2026-11-20 02:00 UTC (3 days ago) · 3 ok · 1 changed · 2 failed" in text
    assert "*lab* · 1 device · never run · 0 ok · 0 changed · 0 failed · 1 never tried" in text
    assert text_of(blocks.sites_overview([], NOW)) == "No sites to show here."


def test_sites_overview_hundreds_of_sites_fit_and_the_rest_are_counted() -> None:
    """400 sites x 25 devices: a valid message; sites shown plus "… and N more sites" add up to 400."""
    m = blocks.sites_overview([overview(i) for i in range(400)], NOW)
    check_limits(m)
    text = text_of(m)
    shown = set(re.findall(r"\*(site-\d{3})\*", text))
    assert len(shown) + more_count(text) == 400
    assert "more sites — use `/backup search TEXT`" in text


# --- a site's devices --------------------------------------------------------------------------------
def test_site_devices_shows_latest_version_failure_never_and_stale() -> None:
    """Per device: version id, taken, verified, RouterOS; or the failure in words; never; stale."""
    ok, failing, never, old = dev(1, name="core-1"), dev(2, name="core-2"), dev(3, name="new-1"), dev(4, name="old-1")
    statuses = [
        DeviceStatus(ok, ver(12, ok), ok_attempt(ok), NOW - timedelta(hours=7)),
        DeviceStatus(failing, ver(13, failing), failed_attempt(failing, "timeout", "no answer in 120 s"),
                     NOW - timedelta(days=3, hours=7)),
        DeviceStatus(never, None, None, None),
        DeviceStatus(old, ver(14, old), ok_attempt(old), NOW - timedelta(days=3)),
    ]
    site = Site("site-a", (ok, failing, never, old))
    m = blocks.site_devices(site, statuses, NOW, stale={old.key, failing.key})
    check_limits(m)
    text = text_of(m)
    assert "#12 · taken 2026-11-20 02:00 UTC (3 days ago) · verified 2026-11-23 02:00 (7 hours ago) · RouterOS 7.20.1" in text
    assert "failed — timed out: no answer in 120 s" in text
    assert "*new-1* · `10.0.0.4`\nnever backed up" in text
    assert "no good backup for 3 days" in text
    assert text.index("core-1") < text.index("core-2") < text.index("new-1") < text.index("old-1")  # config order
    found = buttons(m)
    assert found[0] == ("Back up site now", blocks.BACKUP_SITE, "site-a")
    assert ("View", blocks.VIEW_VERSION, "12") in found and ("Download", blocks.DOWNLOAD_VERSION, "12") in found
    assert ("Compare", blocks.OPEN_DEVICE, "site-a core-1") in found
    assert not [b for b in found if b[2] == "site-a new-1" and b[1] != blocks.BACKUP_DEVICE]  # no version, no View
    assert ("Back up now", blocks.BACKUP_DEVICE, "site-a new-1") in found


def test_site_devices_accepts_a_stale_predicate() -> None:
    """`stale` may be a callable such as Catalog.is_stale instead of a set of device keys."""
    d = dev(1)
    m = blocks.site_devices(Site("site-a", (d,)), [DeviceStatus(d, ver(1, d), ok_attempt(d), NOW - timedelta(days=5))],
                            NOW, stale=stale_check)
    assert "no good backup for 5 days" in text_of(m)


def test_a_retired_device_is_listed_marked_browsable_and_not_offered_a_backup() -> None:
    """Gone from the inventory source: still listed (last, marked with the date), View · Download ·
    Compare kept, no Back up now, not counted as needing attention even if its last attempt failed."""
    live = dev(1, name="core-1")
    gone = replace(dev(2, name="old-2"), retired_at=datetime(2026, 11, 1, 9, 0, tzinfo=timezone.utc))
    statuses = [DeviceStatus(live, ver(12, live), ok_attempt(live), NOW - timedelta(hours=7)),
                DeviceStatus(gone, ver(9, gone), failed_attempt(gone), NOW - timedelta(days=22))]
    m = blocks.site_devices(Site("site-a", (live,), retired=(gone,)), statuses, NOW, stale=stale_check)
    check_limits(m)
    text = text_of(m)
    assert "1 device · 1 backed up fine · 0 failed last time · 0 without a recent backup · 1 retired" in text
    assert "*old-2* · `10.0.0.3` · :file_cabinet: retired 2026-11-01 09:00 UTC: no longer in the inventory source" in text
    found = buttons(m)
    assert ("View", blocks.VIEW_VERSION, "9") in found and ("Compare", blocks.OPEN_DEVICE, "site-a old-2") in found
    assert ("Back up now", blocks.BACKUP_DEVICE, "site-a old-2") not in found
    versions = blocks.device_versions(gone, [ver(9, gone)], total=1, page=0, now=NOW)
    assert "retired 2026-11-01" in text_of(versions)
    empty = blocks.device_versions(gone, [], total=0, page=0, now=NOW)
    assert [b for b in buttons(empty) if b[1] == blocks.BACKUP_DEVICE] == []
    assert "· retired" in text_of(blocks.search_results("old", [gone]))


@pytest.mark.parametrize("count", [200, 2000])
def test_big_site_fits_and_accounts_for_every_device(count: int) -> None:
    """200 / 2,000 devices (some failed, some never): ≤50 blocks; problems first; shown + "N more" = all."""
    statuses = []
    for i in range(count):
        if i % 10 == 3:
            d = dev(i)
            statuses.append(DeviceStatus(d, ver(i + 1, d), failed_attempt(d, reason="bad password " * 5),
                                         NOW - timedelta(days=4)))
        elif i % 25 == 7:
            statuses.append(DeviceStatus(dev(i), None, None, None))
        else:
            statuses.append(healthy(i))
    site = Site("site-a", tuple(s.device for s in statuses))
    m = blocks.site_devices(site, statuses, NOW, stale=stale_check)
    check_limits(m)
    text = text_of(m)
    names = re.findall(r"\bdev-\d{4}\b", text)
    assert len(names) == len(set(names)), "a device is listed twice"
    assert len(names) + more_count(text) == count
    assert text.index("dev-0003") < text.index("dev-0000")  # a failed device before healthy ones
    assert "*Needs attention*" in text and "*Backed up fine:*" in text
    if count == 2000:
        assert "more devices (`/backup site-a DEVICE` shows one)" in text


def test_site_devices_long_device_names_stay_valid() -> None:
    """Devices with 200-character names in a 60-device site still produce a valid message."""
    statuses = [healthy(i) for i in range(60)]
    statuses = [DeviceStatus(Device("site-a", "x" * 190 + f"{i:04d}", s.device.host, username="backup"), s.latest, s.last_attempt,
                             s.last_success_at) for i, s in enumerate(statuses)]
    m = blocks.site_devices(Site("site-a", tuple(s.device for s in statuses)), statuses, NOW)
    check_limits(m)
    assert len(set(re.findall(r"x{190}\d{4}", text_of(m)))) + more_count(text_of(m)) == 60


# --- a device's versions -----------------------------------------------------------------------------
def _page(page: int, total: int = 25) -> dict[str, Any]:
    d = dev(1, name="core-1")
    first = total - page * 10
    versions = [ver(vid, d, taken=TAKEN - timedelta(days=total - vid)) for vid in range(first, max(first - 10, 0), -1)]
    return blocks.device_versions(d, versions, total=total, page=page, now=NOW)


def _checkboxes(m: dict[str, Any]) -> dict[str, Any]:
    return next(e for b in m["blocks"] for e in b.get("elements", []) if e.get("type") == "checkboxes")


def test_device_versions_newest_first_as_checkboxes_with_compare() -> None:
    """Page 0: ≤10 options valued by version id, text `#id · taken · RouterOS`, Compare and Older."""
    m = _page(0)
    check_limits(m)
    box = _checkboxes(m)
    assert box["action_id"] == blocks.SELECT_VERSIONS
    assert [o["value"] for o in box["options"]] == [str(v) for v in range(25, 15, -1)]
    assert box["options"][0]["text"]["text"] == "#25 · 2026-11-20 02:00 · 7.20.1"
    assert box["options"][0]["description"]["text"].startswith("verified 2026-11-23 02:00 (7 hours ago)")
    found = buttons(m)
    assert ("Compare selected", blocks.COMPARE_SELECTED, "site-a core-1") in found
    assert ("Older →", blocks.PAGE_VERSIONS, "site-a core-1 1") in found
    assert not any(b[0].startswith("← Newer") for b in found)
    assert "versions 1–10 of 25" in text_of(m)


def test_device_versions_paging_buttons_only_where_there_is_a_page() -> None:
    """Middle page has Newer and Older; last page only Newer; values parse back to the target page."""
    middle, last = buttons(_page(1)), buttons(_page(2))
    assert ("← Newer", blocks.PAGE_VERSIONS, "site-a core-1 0") in middle
    assert ("Older →", blocks.PAGE_VERSIONS, "site-a core-1 2") in middle
    assert [b for b in last if b[1] == blocks.PAGE_VERSIONS] == [("← Newer", blocks.PAGE_VERSIONS, "site-a core-1 1")]
    assert blocks.parse_page("site-a core-1 2") == ("site-a", "core-1", 2)
    assert "versions 21–25 of 25" in text_of(_page(2))


def test_device_versions_refuses_more_than_ten_and_handles_none() -> None:
    """Checkboxes hold 10 options: more is a caller bug (ValueError); no versions is a clear message."""
    d = dev(1)
    with pytest.raises(ValueError):
        blocks.device_versions(d, [ver(i, d) for i in range(11)], total=11, page=0, page_size=11, now=NOW)
    empty = blocks.device_versions(d, [], total=0, page=0, now=NOW)
    check_limits(empty)
    assert "No backups of *site-a/dev-0001* yet." in text_of(empty)


def test_device_versions_long_names_are_clipped_not_invalid() -> None:
    """A 300-character device name: header clipped with "…", values still within 2,000."""
    d = Device("site-a", "n" * 300, "10.0.0.1", username="backup")
    m = blocks.device_versions(d, [ver(1, d)], total=1, page=0, now=NOW)
    check_limits(m)
    assert m["blocks"][0]["text"]["text"].endswith("…")


# --- run summary ---------------------------------------------------------------------------------------
def _summary(results: list[DeviceResult], trigger: str = "schedule") -> RunSummary:
    return RunSummary(42, trigger, TAKEN, TAKEN + timedelta(seconds=95), tuple(results))


def test_run_summary_lists_new_changed_failed_and_stale_and_counts_unchanged() -> None:
    """Totals; changed with +/- and note and Show diff; failures in plain words with reason; stale."""
    a, b, c, n = dev(1, name="core-1"), dev(2, name="core-2"), dev(3, name="same-1"), dev(4, name="new-1")
    results = [  # the header-only change first: it must not stop later ones getting a button
        DeviceResult(b, Status.CHANGED, version=ver(22, b), previous=ver(21, b),
                     note="RouterOS 7.19.3 → 7.20.1, config unchanged"),
        DeviceResult(a, Status.CHANGED, version=ver(12, a), previous=ver(11, a), added=5, removed=2),
        DeviceResult(c, Status.UNCHANGED, version=ver(31, c), previous=ver(31, c)),
        DeviceResult(n, Status.NEW, version=ver(40, n)),
    ]
    for i, kind in enumerate(KINDS):
        results.append(DeviceResult(dev(10 + i, name=f"bad-{kind}"), Status.FAILED, error_kind=kind,
                                    reason=f"detail of {kind}"))
    stale = [(dev(20, name="old-1"), NOW - timedelta(days=3)), (dev(21, name="old-2"), None)]
    m = blocks.run_summary(_summary(results), stale=stale, now=NOW)
    check_limits(m)
    text = text_of(m)
    assert "*10 devices* · 1 unchanged · 2 changed · 1 new · 6 failed" in text
    assert "Scheduled run #42 · 2026-11-20 02:00 UTC, took 1 min 35 s" in text
    assert "`site-a/core-1` #11 → #12 · `+5 -2`" in text
    assert "`site-a/core-2` #21 → #22 · RouterOS 7.19.3 → 7.20.1, config unchanged" in text
    assert "`site-a/new-1` #40" in text
    assert "same-1" not in text  # unchanged devices are counted, not listed
    for kind, words in KINDS.items():
        assert f"`site-a/bad-{kind}` — {words}: detail of {kind}" in text
    assert "`site-a/old-1` — no good backup for 3 days" in text and "`site-a/old-2` — never backed up" in text
    diffs = [b for b in buttons(m) if b[1] == blocks.SHOW_DIFF]
    assert diffs == [("Show diff", blocks.SHOW_DIFF, "11 12")]  # none for a header-only change
    assert blocks.parse_pair(diffs[0][2]) == (11, 12)
    assert m["blocks"][0]["text"]["text"] == "Backup of site-a — 2 changed, 1 new, 6 failed"


def test_run_summary_title_override_and_quiet_run() -> None:
    """A caller's title wins; a run with nothing changed says "no changes"."""
    d = dev(1)
    quiet = _summary([DeviceResult(d, Status.UNCHANGED, version=ver(1, d), previous=ver(1, d))])
    assert blocks.run_summary(quiet, now=NOW)["blocks"][0]["text"]["text"] == "Backup of site-a/dev-0001 — no changes"
    assert blocks.run_summary(quiet, title="Daily backup", now=NOW)["blocks"][0]["text"]["text"] == "Daily backup"


def test_run_summary_of_1000_devices_with_300_failures_fits_and_counts_add_up() -> None:
    """1,000 devices, 300 failed, 80 changed, 20 new, 50 stale: valid; every list shown + "N more" adds up."""
    results = []
    for i in range(1000):
        d = dev(i, site=f"site-{i % 9}")
        if i < 300:
            results.append(DeviceResult(d, Status.FAILED, error_kind=list(KINDS)[i % 6], reason="x" * 400))
        elif i < 380:
            results.append(DeviceResult(d, Status.CHANGED, version=ver(i + 5000, d), previous=ver(i, d), added=3,
                                        removed=1, note="RouterOS 7.19.3 → 7.20.1"))
        elif i < 400:
            results.append(DeviceResult(d, Status.NEW, version=ver(i + 5000, d)))
        else:
            results.append(DeviceResult(d, Status.UNCHANGED, version=ver(i, d), previous=ver(i, d)))
    stale = [(dev(2000 + i, name=f"stale-{i:03d}"), None) for i in range(50)]
    m = blocks.run_summary(_summary(results), stale=stale, now=NOW)
    check_limits(m)
    text = text_of(m)
    for lo, hi, noun in [(0, 300, "failed device"), (300, 380, "changed device"), (380, 400, "new device")]:
        shown = {n for n in re.findall(r"dev-(\d{4})`", text) if lo <= int(n) < hi}
        hidden = re.search(rf"… and ([\d,]+) more {noun}", text)
        assert len(shown) + (int(hidden.group(1)) if hidden else 0) == hi - lo, noun
        assert shown, f"no {noun} shown at all"
    stale_shown = len(set(re.findall(r"stale-\d{3}", text)))
    hidden = re.search(r"… and ([\d,]+) more devices? without a recent backup", text)
    assert stale_shown + (int(hidden.group(1)) if hidden else 0) == 50
    assert not re.search(r"dev-0(4\d\d|[5-9]\d\d)`", text)  # unchanged never listed
    assert "(see `/backup sites`)" in text


# --- a slot's digest: several sites in one message ------------------------------------------------------
def _digest(results: list[DeviceResult], not_started: tuple[NotStarted, ...] = ()) -> RunSummary:
    return RunSummary(42, "schedule", TAKEN, TAKEN + timedelta(seconds=95), tuple(results), not_started)


BUSY = NotStarted("site-c", "its 01:30 Europe/Riga run is still in progress; this slot is covered by that run")


def test_digest_of_two_sites_has_totals_a_line_per_site_then_changes_failures_and_stale() -> None:
    """Two sites in one message: totals over both (stale too), a line per site (the one with a
    failure first, marked), then the changed device with +/- and Show diff, the failure with its
    reason, the stale device. The fallback text says the same in plain lines."""
    a1, a2 = dev(1, "site-a", "core-1"), dev(2, "site-a", "ap-1")
    b1, b2, b3 = dev(3, "site-b", "gw-1"), dev(4, "site-b", "gw-2"), dev(5, "site-b", "sw-1")
    results = [
        DeviceResult(a1, Status.CHANGED, version=ver(12, a1), previous=ver(11, a1), added=5, removed=2),
        DeviceResult(a2, Status.UNCHANGED, version=ver(20, a2), previous=ver(20, a2)),
        DeviceResult(b1, Status.UNCHANGED, version=ver(30, b1), previous=ver(30, b1)),
        DeviceResult(b2, Status.UNCHANGED, version=ver(31, b2), previous=ver(31, b2)),
        DeviceResult(b3, Status.FAILED, error_kind="timeout", reason="no answer in 120 s"),
    ]
    m = blocks.run_summary(_digest(results), stale=[(b3, NOW - timedelta(days=3))], now=NOW)
    check_limits(m)
    text = text_of(m)
    assert m["blocks"][0]["text"]["text"] == "Backup of 2 sites — 1 changed, 1 failed"
    assert "*5 devices* · 3 unchanged · 1 changed · 0 new · 1 failed · 1 stale\n" in text
    assert "*Sites (2)*\n:x: `site-b` 3 devices, 2 unchanged, 1 failed\n`site-a` 2 devices, 1 unchanged, 1 changed" in text
    assert text.index("*Sites (2)*") < text.index("*Changed (1)*") < text.index("*Failed (1)*")
    assert "`site-a/core-1` #11 → #12 · `+5 -2`" in text
    assert ("Show diff", blocks.SHOW_DIFF, "11 12") in buttons(m)
    assert "`site-b/sw-1` — timed out: no answer in 120 s" in text
    assert "`site-b/sw-1` — no good backup for 3 days" in text
    assert m["text"] == ("Backup of 2 sites — 1 changed, 1 failed\n"
                         "site-b: 3 devices, 2 unchanged, 1 failed\n"
                         "site-a: 2 devices, 1 unchanged, 1 changed\n"
                         "changed: site-a/core-1 +5 -2\n"
                         "failed: site-b/sw-1 — timed out: no answer in 120 s\n"
                         "stale: site-b/sw-1 — no good backup for 3 days")


def test_a_site_that_did_not_start_is_listed_first_with_its_reason() -> None:
    """A busy site is in the digest as not started, with why, before the sites that ran; alone
    (no other site of the slot could run) it still makes a digest naming it."""
    d = dev(1, "site-a", "core-1")
    m = blocks.run_summary(_digest([DeviceResult(d, Status.UNCHANGED, version=ver(1, d), previous=ver(1, d))],
                                   (BUSY,)), now=NOW)
    check_limits(m)
    assert m["blocks"][0]["text"]["text"] == "Backup of 2 sites — 1 site not started"
    assert ("*Sites (2)*\n:x: `site-c` not started — its 01:30 Europe/Riga run is still in progress; this slot "
            "is covered by that run\n`site-a` 1 device, all unchanged") in text_of(m)
    alone = blocks.run_summary(_digest([], (BUSY,)), now=NOW)
    check_limits(alone)
    assert alone["text"] == f"Backup of site-c — 1 site not started\nsite-c: not started — {BUSY.reason}"
    assert ":x: `site-c` not started — its 01:30" in text_of(alone)


def test_a_one_site_digest_has_no_site_list() -> None:
    """A site with its own channel gets a digest of its own: totals only, no one-line site list."""
    d = dev(1, "site-a", "core-1")
    m = blocks.run_summary(_digest([DeviceResult(d, Status.FAILED, error_kind="auth", reason="denied"),
                                    DeviceResult(dev(2), Status.UNCHANGED)]), now=NOW)
    assert "*Sites" not in text_of(m) and m["blocks"][0]["text"]["text"] == "Backup of site-a — 1 failed"


def test_digest_of_100_sites_fits_one_message_and_accounts_for_every_site_and_device() -> None:
    """100 sites of 10 devices (some failed with long reasons, some changed) plus 5 sites not
    started: one valid message; every site is either shown or counted in "… and N more sites",
    likewise every failure; the fallback text stays within its limit and counts what it leaves out."""
    results = []
    for i in range(1000):
        d = dev(i, site=f"site-{i // 10:03d}")
        if i % 10 == 0 and i < 600:
            results.append(DeviceResult(d, Status.FAILED, error_kind="timeout", reason="y" * 250))
        elif i % 10 == 1 and i < 400:
            results.append(DeviceResult(d, Status.CHANGED, version=ver(i + 5000, d), previous=ver(i, d),
                                        added=3, removed=1))
        else:
            results.append(DeviceResult(d, Status.UNCHANGED, version=ver(i, d), previous=ver(i, d)))
    busy = tuple(NotStarted(f"site-{100 + i}", "its catch-up run is still in progress; this slot is covered by "
                                               "that run") for i in range(5))
    m = blocks.run_summary(_digest(results, busy), now=NOW)
    check_limits(m)
    text = text_of(m)
    assert m["blocks"][0]["text"]["text"] == "Backup of 105 sites — 40 changed, 60 failed, 5 sites not started"
    assert "*1,000 devices* · 900 unchanged · 40 changed · 0 new · 60 failed" in text
    shown = set(re.findall(r"`(site-\d{3})` ", text))
    hidden = re.search(r"… and ([\d,]+) more sites? \(see `/backup sites`\)", text)
    assert len(shown) + (int(hidden.group(1)) if hidden else 0) == 105
    assert {f"site-{100 + i}" for i in range(5)} <= shown, "sites that did not start are never cut"
    failed = set(re.findall(r":x: `(site-\d{3}/dev-\d{4})`", text))
    more = re.search(r"… and ([\d,]+) more failed devices?", text)
    assert failed and len(failed) + (int(more.group(1)) if more else 0) == 60
    fallback = m["text"]
    assert len(fallback) <= 3000 and fallback.startswith("Backup of 105 sites — 40 changed, 60 failed")
    left = re.search(r"\n… and ([\d,]+) more lines$", fallback)
    assert left and len(fallback.split("\n")) - 2 + int(left.group(1)) == 105 + 40 + 60


# --- diffs ----------------------------------------------------------------------------------------------
OLD = '/ip firewall filter\nadd chain=input action=accept comment="a<b & c>"\nadd chain=input action=drop\n'
NEW = ('/ip firewall filter\nadd chain=input action=accept comment="a<b & c>"\n'
       'add chain=input action=accept protocol=icmp\nadd chain=input action=drop comment=x\n')


def _diff(old: str = OLD, new: str = NEW, a: int = 3, b: int = 7) -> Any:
    return diffing.diff(old, new, f"site-a/core-1 #{a} (2026-11-1{a} 02:00 UTC)", f"site-a/core-1 #{b} (2026-11-1{b} 02:00 UTC)")


def test_diff_text_has_a_header_per_pair_and_marks_identical_pairs() -> None:
    """Each pair gets `===== a → b =====`, then unified text naming the section; identical: (no differences)."""
    text = blocks.diff_text([_diff(), _diff(NEW, NEW, 7, 9)])
    assert "===== site-a/core-1 #3 (2026-11-13 02:00 UTC) → #7 (2026-11-17 02:00 UTC) =====\n" in text
    assert "@@ -1,3 +1,4 @@ /ip firewall filter" in text
    assert "+add chain=input action=accept protocol=icmp\n" in text
    assert text.endswith("===== site-a/core-1 #7 (2026-11-17 02:00 UTC) → #9 (2026-11-19 02:00 UTC) =====\n"
                         "--- site-a/core-1 #7 (2026-11-17 02:00 UTC)\n+++ site-a/core-1 #9 (2026-11-19 02:00 UTC)\n"
                         "(no differences)\n")


def test_short_diff_goes_inline_with_red_and_green_squares_escaped() -> None:
    """A 5-line diff is inline: 🟥 before removed and 🟩 before added lines, section in bold, text escaped."""
    m = blocks.diff_inline([_diff()])
    assert m is not None
    check_limits(m)
    text = text_of(m)
    assert "🟥 -add chain=input action=drop" in text
    assert "🟩 +add chain=input action=accept protocol=icmp" in text
    assert "🟩 +add chain=input action=drop comment=x" in text
    assert '    add chain=input action=accept comment="a&lt;b &amp; c&gt;"' in text
    assert "*/ip firewall filter* · `@@ -1,3 +1,4 @@`" in text
    assert text.count("```") % 2 == 0


def test_long_diff_is_never_inline_but_complete_in_the_snippet_text() -> None:
    """A 10,000-line diff: diff_inline returns None, and diff_text holds every changed line."""
    old = "\n".join(f"/ip address\nadd address=10.{i // 250}.{i % 250}.1/24 interface=e{i}" for i in range(5000))
    new = "\n".join(f"/ip address\nadd address=10.{i // 250}.{i % 250}.2/24 interface=e{i}" for i in range(5000))
    big = _diff(old, new)
    assert big.added == big.removed == 5000
    assert blocks.diff_inline([big]) is None
    assert blocks.diff_inline([big], max_chars=10**9) is None
    text = blocks.diff_text([big])
    assert sum(line.startswith("-add") for line in text.splitlines()) == 5000
    assert sum(line.startswith("+add") for line in text.splitlines()) == 5000


def test_inline_diff_splits_across_sections_without_cutting_lines() -> None:
    """A medium diff allowed up to 9,000 chars spans several ≤3,000 sections, each with closed code fences."""
    old = "".join(f"/ip address\nadd address=10.0.{i}.1/24 interface=ether{i}\n" for i in range(60))
    new = "".join(f"/ip address\nadd address=10.0.{i}.9/24 interface=ether{i}\n" for i in range(60))
    d = _diff(old, new)
    assert blocks.diff_inline([d]) is None  # too long for the default
    m = blocks.diff_inline([d], max_chars=9000)
    assert m is not None
    check_limits(m)
    assert len(m["blocks"]) > 1
    for b in m["blocks"]:
        assert b["text"]["text"].count("```") % 2 == 0
    text = text_of(m)
    for i in range(60):
        assert f"🟥 -add address=10.0.{i}.1/24 interface=ether{i}" in text
        assert f"🟩 +add address=10.0.{i}.9/24 interface=ether{i}" in text


def test_inline_diff_refuses_what_it_cannot_show_whole() -> None:
    """A line over 3,000 characters, or one containing ``` (it would break the code block): None."""
    assert blocks.diff_inline([_diff(OLD, OLD + "add comment=" + "y" * 3100 + "\n")], max_chars=9000) is None
    assert blocks.diff_inline([_diff(OLD, OLD + 'add comment="```"\n')]) is None


def test_inline_diff_of_several_pairs_has_a_title_per_pair() -> None:
    """Comparing three versions: one inline message, a bold title per consecutive pair."""
    m = blocks.diff_inline([_diff(), _diff(NEW, NEW, 7, 9)])
    assert m is not None
    text = text_of(m)
    assert "*site-a/core-1 #3 (2026-11-13 02:00 UTC) → #7 (2026-11-17 02:00 UTC)* · `+2 -1`" in text
    assert "*site-a/core-1 #7 (2026-11-17 02:00 UTC) → #9 (2026-11-19 02:00 UTC)* · no differences" in text


# --- search and App Home -------------------------------------------------------------------------------
def test_search_results_name_site_device_host_and_cap_the_list() -> None:
    """Each match shows site, name and host; 300 matches: 50 listed and "… and 250 more — refine"."""
    few = blocks.search_results("10.0", [dev(1), dev(2)])
    check_limits(few)
    assert "`site-a` · *dev-0001* · `10.0.0.2`" in text_of(few)
    assert ("Versions", blocks.OPEN_DEVICE, "site-a dev-0001") in buttons(few)
    many = blocks.search_results("dev", [dev(i) for i in range(300)])
    check_limits(many)
    text = text_of(many)
    listed = len(set(re.findall(r"dev-\d{4}", text)))
    assert listed <= 50 and listed + more_count(text) == 300
    assert "more — refine your search" in text
    none = blocks.search_results("<x>", [])
    assert "No device matches “&lt;x&gt;”" in text_of(none)


def test_app_home_shows_sites_failing_and_stale_with_buttons() -> None:
    """Home view: sites with Back up site now, failing devices with reasons and buttons, stale devices."""
    bad = dev(1, name="bad-1")
    failing = [DeviceStatus(bad, ver(9, bad), failed_attempt(bad, "unreachable", "no route to host"), TAKEN)]
    stale = [healthy(2), failing[0]]  # a device in both lists is shown once, as failing
    view = blocks.app_home([overview(1, 3)], failing, stale, NOW)
    assert view["type"] == "home"
    check_limits(view, max_blocks=100)
    text = text_of(view)
    assert "*site-a/bad-1* · `10.0.0.2`" in text and "unreachable: no route to host" in text
    assert text.count("site-a/bad-1") == 1
    assert "*No recent good backup (1)*" in text
    found = buttons(view)
    assert ("Back up site now", blocks.BACKUP_SITE, "site-001") in found
    assert ("View", blocks.VIEW_VERSION, "9") in found and ("Compare", blocks.OPEN_DEVICE, "site-a bad-1") in found


def test_app_home_at_scale_stays_within_100_blocks() -> None:
    """200 sites, 300 failing and 300 stale devices: a valid Home view and every list's count adds up."""
    failing = [DeviceStatus(d, ver(i, d), failed_attempt(d, reason="r" * 300), TAKEN)
               for i, d in enumerate(dev(i, name=f"fail-{i:03d}") for i in range(300))]
    stale = [DeviceStatus(d, ver(i, d), ok_attempt(d), TAKEN) for i, d in enumerate(dev(i, name=f"old-{i:03d}") for i in range(300))]
    view = blocks.app_home([overview(i) for i in range(200)], failing, stale, NOW)
    check_limits(view, max_blocks=100)
    text = text_of(view)
    assert len(set(re.findall(r"\*(site-\d{3})\*", text))) + int(re.search(r"… and (\d+) more sites", text).group(1)) == 200
    assert len(set(re.findall(r"fail-\d{3}", text))) + int(re.search(r"… and (\d+) more failing", text).group(1)) == 300
    assert len(set(re.findall(r"old-\d{3}", text))) + int(re.search(r"… and (\d+) more stale", text).group(1)) == 300


# --- escaping ------------------------------------------------------------------------------------------
def test_device_provided_text_is_escaped_everywhere() -> None:
    """Reasons, notes, RouterOS versions and search text with <, >, & never reach Slack raw."""
    d = dev(1)
    evil = "<!channel> <http://x|y> & more"
    status = DeviceStatus(d, ver(1, d, ros="7.1 <b>"), failed_attempt(d, reason=evil), TAKEN)
    summary = _summary([DeviceResult(d, Status.FAILED, error_kind="invalid_output", reason=evil),
                        DeviceResult(dev(2), Status.CHANGED, version=ver(3, dev(2)), previous=ver(2, dev(2)),
                                     added=1, note=evil)])
    outputs = [blocks.site_devices(Site("site-a", (d,)), [status], NOW), blocks.run_summary(summary, now=NOW),
               blocks.app_home([], [status], [], NOW), blocks.search_results(evil, [d]), blocks.error(evil)]
    for out in outputs:
        text = text_of(out)
        assert "<!channel>" not in text and "<http" not in text and "& more" not in text
        assert "&lt;!channel&gt; &lt;http://x|y&gt; &amp; more" in text


# --- values and the kit --------------------------------------------------------------------------------
def test_button_values_parse_back_and_reject_garbage() -> None:
    """Each value format round-trips through its parser; malformed values raise ValueError."""
    assert blocks.parse_version("12") == 12
    assert blocks.parse_site("site-a") == "site-a"
    assert blocks.parse_device(blocks.device_value("site-a", "core-1")) == ("site-a", "core-1")
    assert blocks.parse_pair(blocks.pair_value(3, 7)) == (3, 7)
    for bad in ["", "x", "1 2", "-1"]:
        with pytest.raises(ValueError):
            blocks.parse_version(bad)
    with pytest.raises(ValueError):
        blocks.parse_page("site-a core-1 two")


def test_selected_versions_reads_ticks_from_the_state_payload() -> None:
    """Compare reads body["state"]["values"]: the ticked version ids, sorted, other inputs ignored."""
    state = {"b1": {blocks.SELECT_VERSIONS: {"type": "checkboxes",
                                             "selected_options": [{"value": "9"}, {"value": "4"}]}},
             "b2": {"other": {"type": "plain_text_input", "value": "x"}}}
    assert blocks.selected_versions(state) == [4, 9]
    assert blocks.selected_versions({"b1": {blocks.SELECT_VERSIONS: {"selected_options": []}}}) == []


def test_message_refuses_payloads_slack_would_reject() -> None:
    """The kit raises instead of returning 51 blocks or too much text in total."""
    with pytest.raises(ValueError, match="51 blocks"):
        message("x", [section("x")] * 51)
    with pytest.raises(ValueError, match="characters of text"):
        message("x", [section("y" * 3000)] * 4)


def test_fit_lines_packs_and_counts_what_does_not_fit() -> None:
    """Lines pack several per section up to 3,000 chars; the tail line counts exactly the rest."""
    lines = [f"line {i:04d} " + "z" * 90 for i in range(500)]
    out, shown = fit_lines(lines, blocks=3, chars=10_000, more=lambda n: f"… and {n} more")
    assert len(out) <= 3 and all(len(b["text"]["text"]) <= 3000 for b in out)
    text = "\n".join(b["text"]["text"] for b in out)
    assert text.count("line ") == shown and shown + more_count(text) == 500
    assert fit_lines(["a", "b"], blocks=1, chars=100, more=str, sep=", ", title="*T:*")[0][0]["text"]["text"] == "*T:*\na, b"


def test_fair_share_meets_small_needs_and_splits_the_rest() -> None:
    """Small needs are met in full; larger ones share what is left evenly; never more than the total."""
    assert fair_share([100, 5000, 8000], 6000) == [100, 2950, 2950]
    assert fair_share([10, 20], 100) == [10, 20]
    assert sum(fair_share([7000, 7000, 7000], 9000)) <= 9000
