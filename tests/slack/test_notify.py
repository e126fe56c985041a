"""bot.slack.notify's rule of who hears what, on plain data (no I/O): summaries only for scheduled runs,
one digest per channel over all the run's sites (sites not started included); quiet digests left
out; changes on their own for other runs; host-key alerts once; a joined device announced by the
run that recorded it; nothing without a channel."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

from bot.routeros import diff as diffing
from bot.slack.outcome import Failure, carries, classify, tagged
from bot.core.models import (
    Device,
    DeviceResult,
    KeyChange,
    NotStarted,
    RunSummary,
    ScheduleSettings,
    Settings,
    Site,
    SlackSettings,
    Status,
    Version,
)
from bot.slack.notify import CHANGE, DRIFT, HOST_KEY, SUMMARY, Drift, run_messages

NOW = datetime(2026, 3, 2, 2, 5, tzinfo=UTC)


def version(vid: int, device: Device) -> Version:
    return Version(vid, device.site, device.name, NOW, NOW, 100, "0" * 64)


def settings(channel: str | None = "CGEN", branch_channel: str | None = "CBRANCH") -> Settings:
    lab = Site("lab", (Device("lab", "r1", "10.0.0.1", username="backup"), Device("lab", "r2", "10.0.0.2", username="backup"),
                       Device("lab", "r3", "10.0.0.3", username="backup")))
    branch = Site("branch", (Device("branch", "b1", "10.1.0.1", username="backup"),), channel=branch_channel)
    return Settings(Path("x.db"), {"lab": lab, "branch": branch}, slack=SlackSettings(channel=channel))


def run(trigger: str, s: Settings, *, run_id: int = 7) -> tuple[RunSummary, dict[tuple[str, str], Drift]]:
    r1, r2, r3 = s.sites["lab"].devices
    (b1,) = s.sites["branch"].devices
    diffs = diffing.compare([("lab/r1 #1", "a\nb\n"), ("lab/r1 #5", "a\nc\n")])
    results = (
        DeviceResult(r1, Status.CHANGED, version(5, r1), version(1, r1), added=1, removed=1, run_id=run_id),
        DeviceResult(r2, Status.CHANGED, version(6, r2), version(2, r2), added=2, removed=0, run_id=3),  # joined
        DeviceResult(r3, Status.FAILED, error_kind="host_key", reason="host key changed", run_id=run_id,
                     key_change=KeyChange("SHA256:old", "SHA256:new", first_seen=True)),
        DeviceResult(b1, Status.FAILED, error_kind="host_key", reason="host key changed", run_id=run_id,
                     key_change=KeyChange("SHA256:o", "SHA256:n", first_seen=False)),  # already announced
    )
    summary = RunSummary(run_id, trigger, NOW - timedelta(minutes=5), NOW, results)
    return summary, {r1.key: Drift(results[0], diffs), r2.key: Drift(results[1], diffs)}


def test_a_scheduled_run_gets_one_summary_per_channel_with_drift_in_its_thread() -> None:
    """Summary per channel (site channel overrides slack.channel), drift replies under it (parent
    -1), host-key alert once, a joined device's change not re-announced, stale devices listed."""
    s = settings()
    summary, drifts = run("schedule", s)
    msgs = run_messages(s, summary, drifts, {("branch", "b1"): NOW - timedelta(days=3)})
    assert [(m.channel, m.kind, m.parent) for m in msgs] == [
        ("CGEN", SUMMARY, None), ("CGEN", DRIFT, -1), ("CGEN", HOST_KEY, None), ("CBRANCH", SUMMARY, None)]
    general = json.dumps(msgs[0].payload)
    assert "lab/r1" in general and "lab/r2" in general and "branch" not in general  # totals include the join
    assert "no good backup for 3 days" in json.dumps(msgs[3].payload)
    assert "SHA256:new" in json.dumps(msgs[2].payload)


def test_the_digest_counts_stale_by_the_configured_threshold() -> None:
    """A device that failed with its last good backup 3 days ago is stale by default (24 h), not
    with stale_after_hours: 96; one that never had a good backup is stale either way."""
    s = settings()
    summary, drifts = run("schedule", s)
    three_days = {("branch", "b1"): NOW - timedelta(days=3), ("lab", "r3"): NOW - timedelta(days=3)}
    digest = json.dumps(run_messages(replace(s, stale_after=timedelta(hours=96)), summary, drifts, three_days)[0].payload)
    assert "no good backup" not in digest and "stale" not in digest
    never = json.dumps(run_messages(replace(s, stale_after=timedelta(hours=96)), summary, drifts, {})[0].payload)
    assert "never backed up" in never


def test_a_run_from_slack_or_the_cli_posts_each_change_on_its_own() -> None:
    """No summary: each change it recorded as a message with its drift in the thread; failures
    are not broadcast, a first-seen host key still is."""
    s = settings()
    summary, drifts = run("slack", s)
    msgs = run_messages(s, summary, drifts, {})
    assert [(m.channel, m.kind, m.parent) for m in msgs] == [
        ("CGEN", CHANGE, None), ("CGEN", DRIFT, -1), ("CGEN", HOST_KEY, None)]
    assert "lab/r1" in json.dumps(msgs[0].payload)


def test_a_header_only_change_from_slack_is_told_without_a_diff() -> None:
    """A change only in the export header (a RouterOS upgrade) from a non-scheduled run is still
    told once (it will be "unchanged" next time), without a diff reply."""
    s = settings()
    r1 = s.sites["lab"].devices[0]
    upgrade = DeviceResult(r1, Status.CHANGED, version(5, r1), version(1, r1), note="RouterOS 7.19 -> 7.20",
                           run_id=7)
    msgs = run_messages(s, RunSummary(7, "cli", NOW, NOW, (upgrade,)), {}, {})
    assert [(m.kind, m.parent) for m in msgs] == [(CHANGE, None)]
    assert "RouterOS 7.19 -&gt; 7.20" in json.dumps(msgs[0].payload) and "diff is in the thread" not in json.dumps(
        msgs[0].payload)


def test_no_channel_means_nothing_is_enqueued() -> None:
    """Without slack.channel and without a site channel, a run produces no message at all."""
    s = settings(channel=None, branch_channel=None)
    summary, drifts = run("schedule", s)
    assert run_messages(s, summary, drifts, {}) == []


def test_a_diff_that_could_not_be_made_becomes_a_note() -> None:
    """A drift without diffs names the command that shows it instead of silently missing."""
    s = settings()
    summary, drifts = run("schedule", s)
    drifts = {k: Drift(d.result, error="RuntimeError") for k, d in drifts.items()}
    [_, drift, *_] = run_messages(s, summary, drifts, {})
    assert "/backup diff 1 5" in drift.payload["text"]


# -- a slot's digest: several sites, one message per channel ---------------------------------------
def slot_settings(quiet: bool = False, **site_quiet: bool) -> Settings:
    """lab and depot post to CGEN, branch to its own channel; `quiet` global, per site overrides."""
    sites = {name: Site(name, (Device(name, "r1", "10.0.0.1", username="backup"), Device(name, "r2", "10.0.0.2", username="backup")),
                        channel="CBRANCH" if name == "branch" else None, quiet=site_quiet.get(name))
             for name in ("lab", "depot", "branch")}
    return Settings(Path("x.db"), sites, slack=SlackSettings(channel="CGEN"), schedule=ScheduleSettings(quiet=quiet))


def slot_run(s: Settings, changed: str | None = None, not_started: tuple[NotStarted, ...] = (),
             sites: tuple[str, ...] = ("lab", "depot", "branch")) -> RunSummary:
    results = []
    for site in sites:
        for d in s.sites[site].devices:
            if d.site == changed and d.name == "r1":
                results.append(DeviceResult(d, Status.CHANGED, version(9, d), version(3, d), added=1, run_id=7))
            else:
                results.append(DeviceResult(d, Status.UNCHANGED, version(3, d), version(3, d), run_id=7))
    return RunSummary(7, "schedule", NOW - timedelta(minutes=5), NOW, tuple(results), not_started)


def test_sites_of_one_slot_sharing_a_channel_get_one_digest_a_site_with_its_own_channel_its_own() -> None:
    """One run over three sites: CGEN gets ONE digest naming lab and depot (with the change and its
    diff in the thread), CBRANCH one naming only branch."""
    s = slot_settings()
    summary = slot_run(s, changed="depot")
    r1 = s.sites["depot"].devices[0]
    msgs = run_messages(s, summary, {r1.key: Drift(summary.results[2], diffing.compare(
        [("depot/r1 #3", "a\n"), ("depot/r1 #9", "b\n")]))}, {})
    assert [(m.channel, m.kind, m.parent) for m in msgs] == [
        ("CGEN", SUMMARY, None), ("CGEN", DRIFT, -1), ("CBRANCH", SUMMARY, None)]
    general, branch = json.dumps(msgs[0].payload), json.dumps(msgs[2].payload)
    assert "`depot` 2 devices, 1 unchanged, 1 changed" in general and "`lab` 2 devices, all unchanged" in general
    assert "*4 devices*" in general and "branch" not in general
    assert "branch/r1" not in general and "lab" not in branch and "*Sites" not in branch


def test_a_site_not_started_is_told_in_its_channels_digest_even_when_nothing_ran_there() -> None:
    """branch was busy (its earlier run still going): its channel gets a digest naming it, with the
    reason, although the run has no device of branch; lab's channel gets its usual digest."""
    s = slot_settings()
    busy = NotStarted("branch", "its 01:30 UTC run is still in progress; this slot is covered by that run")
    msgs = run_messages(s, slot_run(s, not_started=(busy,), sites=("lab", "depot")), {}, {})
    assert [(m.channel, m.kind) for m in msgs] == [("CGEN", SUMMARY), ("CBRANCH", SUMMARY)]
    assert "`branch` not started — its 01:30 UTC run is still in progress" in json.dumps(msgs[1].payload, ensure_ascii=False)


def test_quiet_leaves_out_a_digest_with_nothing_to_tell_only() -> None:
    """schedule.quiet: an all-unchanged digest is not enqueued; one with a change, a failure, a
    stale device or a site not started still is. A non-quiet site in the same channel keeps the
    digest coming, and a quiet site keeps its line in a digest posted anyway."""
    quiet = slot_settings(quiet=True)
    assert run_messages(quiet, slot_run(quiet), {}, {}) == []
    assert [m.channel for m in run_messages(quiet, slot_run(quiet, changed="lab"), {}, {})] == ["CGEN"]
    failed = slot_run(quiet)
    r = failed.results[0]
    failed = replace(failed, results=(replace(r, status=Status.FAILED, error_kind="auth", reason="denied",
                                              version=None, previous=None), *failed.results[1:]))
    assert [m.channel for m in run_messages(quiet, failed, {}, {r.device.key: NOW - timedelta(hours=2)})] == ["CGEN"]
    assert [m.channel for m in run_messages(quiet, failed, {}, {})] == ["CGEN"]  # stale too: never backed up
    busy = NotStarted("branch", "its catch-up run is still in progress; this slot is covered by that run")
    assert [m.channel for m in run_messages(quiet, slot_run(quiet, not_started=(busy,), sites=("lab", "depot")),
                                            {}, {})] == ["CBRANCH"]

    mixed = slot_settings(lab=True, branch=True)  # depot is not quiet: CGEN still hears the all-clear
    msgs = run_messages(mixed, slot_run(mixed), {}, {})
    assert [m.channel for m in msgs] == ["CGEN"]
    assert "`lab` 2 devices, all unchanged" in json.dumps(msgs[0].payload)


# -- classification of Slack failures (bot.slack.deliver) ------------------------------------------------------
class _Response:
    def __init__(self, status: int, error: str, retry_after: str | None = None) -> None:
        self.status_code, self.data = status, {"ok": False, "error": error}
        self.headers = {"Retry-After": retry_after} if retry_after else {}


def test_failures_are_classified_by_what_they_mean_for_a_retry() -> None:
    """429 waits Retry-After; 5xx/timeouts may have posted; channel/token problems block;
    content errors are rejected (sent simpler); any other Slack 'no' posted nothing."""
    from slack_sdk.errors import SlackApiError

    def api(status: int, error: str, after: str | None = None) -> Failure:
        return classify(SlackApiError("x", _Response(status, error, after)), posting=True)

    assert api(429, "ratelimited", "7") == Failure("ratelimited", "rate_limited", False, 7.0)
    assert api(500, "internal_error") == Failure("internal_error", "transient", True)
    assert api(200, "not_in_channel").kind == "blocked"
    assert api(200, "invalid_blocks").kind == "rejected"
    assert api(200, "something_new") == Failure("something_new", "transient", False)
    assert classify(TimeoutError(), posting=True).maybe_sent
    assert not classify(TimeoutError(), posting=False).maybe_sent


def test_a_post_is_recognised_by_its_metadata_or_its_file_name() -> None:
    """Reconciliation matches the outbox id in message metadata, or `.outbox-N.` in a file name."""
    meta = {"event_type": "backupbot_outbox", "event_payload": {"outbox_id": 42}}
    assert carries({"metadata": meta}, 42) and not carries({"metadata": meta}, 4)
    assert tagged("lab-r1-3-7.diff", 42) == "lab-r1-3-7.outbox-42.diff"
    assert carries({"files": [{"name": "lab-r1-3-7.outbox-42.diff"}]}, 42)
    assert not carries({"files": [{"name": "lab-r1-3-7.outbox-421.diff"}]}, 42)
