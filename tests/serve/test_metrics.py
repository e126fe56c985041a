"""Prometheus metrics: own registry per instance, counts per outcome, bounded labels, exposition."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from prometheus_client.parser import text_string_to_metric_families

from bot.serve.metrics import FAILURE_KINDS, Metrics
from bot.core.models import Device, DeviceResult, RunSummary, Status, Version

T0 = datetime(2026, 1, 1, 2, 0, tzinfo=UTC)


def dev(name: str, site: str = "riga") -> Device:
    return Device(site, name, "10.0.0.1", username="backup")


def version(site: str, device: str, at: datetime) -> Version:
    return Version(1, site, device, at, at, 100, "ab" * 32)


def summary(trigger: str = "schedule", seconds: float = 42.0) -> RunSummary:
    at = T0 + timedelta(seconds=30)
    return RunSummary(7, trigger, T0, T0 + timedelta(seconds=seconds), (
        DeviceResult(dev("r1"), Status.NEW, version=version("riga", "r1", at)),
        DeviceResult(dev("r2"), Status.CHANGED, version=version("riga", "r2", at)),
        DeviceResult(dev("r3"), Status.UNCHANGED, version=version("riga", "r3", at)),
        DeviceResult(dev("r4"), Status.FAILED, error_kind="timeout", reason="deadline passed"),
        DeviceResult(dev("r5"), Status.FAILED, error_kind="something-new", reason="?"),
    ))


def value(m: Metrics, name: str, **labels: str) -> float | None:
    return m.registry.get_sample_value(name, labels)


def test_each_instance_has_its_own_registry() -> None:
    """Two Metrics in one process do not collide and do not share counts (tests build many)."""
    a, b = Metrics(), Metrics()
    a.delivery_failed("ratelimited")
    assert value(a, "backupbot_slack_delivery_failures_total", reason="rate_limited") == 1
    assert value(b, "backupbot_slack_delivery_failures_total", reason="rate_limited") == 0


def test_observe_run_counts_outcomes_failures_duration_and_last_success() -> None:
    """One run: a count per status, failures by kind (unknown -> other), duration by trigger, timestamps."""
    m = Metrics()
    m.observe_run(summary())
    for status in ("new", "changed", "unchanged"):
        assert value(m, "backupbot_backups_total", status=status) == 1
    assert value(m, "backupbot_backups_total", status="failed") == 2
    assert value(m, "backupbot_backup_failures_total", kind="timeout") == 1
    assert value(m, "backupbot_backup_failures_total", kind="other") == 1
    assert value(m, "backupbot_run_duration_seconds_count", trigger="schedule") == 1
    assert value(m, "backupbot_run_duration_seconds_sum", trigger="schedule") == 42.0
    assert value(m, "backupbot_run_duration_seconds_bucket", trigger="schedule", le="60.0") == 1
    assert value(m, "backupbot_last_run_timestamp_seconds") == (T0 + timedelta(seconds=42)).timestamp()
    good = (T0 + timedelta(seconds=30)).timestamp()
    assert value(m, "backupbot_last_success_timestamp_seconds", site="riga", device="r1") == good
    assert value(m, "backupbot_last_success_timestamp_seconds", site="riga", device="r4") is None


def test_labels_stay_in_closed_sets() -> None:
    """Unknown triggers, kinds and Slack error codes fold into "other"; Slack codes map to reasons."""
    m = Metrics()
    m.observe_run(summary(trigger="weird"))
    for code, reason in [("not_in_channel", "channel"), ("invalid_auth", "auth"), ("msg_too_long", "invalid_message"),
                         ("some_future_error", "other")]:
        m.delivery_failed(code)
        assert value(m, "backupbot_slack_delivery_failures_total", reason=reason) == 1
    assert value(m, "backupbot_run_duration_seconds_count", trigger="other") == 1
    assert "timeout" in FAILURE_KINDS and "host_key" in FAILURE_KINDS and "internal" in FAILURE_KINDS
    body, _ = m.render()
    families = {f.name: f for f in text_string_to_metric_families(body.decode())}
    reasons = {s.labels["reason"] for s in families["backupbot_slack_delivery_failures"].samples}
    assert reasons == {"rate_limited", "network", "auth", "channel", "invalid_message", "slack_error", "other"}


def test_startup_seeding_outbox_and_render() -> None:
    """Last successes load from the store's mapping; outbox depth is a gauge; render() is the text format."""
    m = Metrics()
    m.load_last_successes({("riga", "r1"): T0, ("tallinn", "core"): T0 + timedelta(hours=1)})
    m.set_outbox_depth(3)
    body, content_type = m.render()
    assert content_type.startswith("text/plain; version=")
    text = body.decode()
    samples = {(s.name, tuple(sorted(s.labels.items()))): s.value
               for f in text_string_to_metric_families(text) for s in f.samples}
    key = ("backupbot_last_success_timestamp_seconds", (("device", "core"), ("site", "tallinn")))
    assert samples[key] == T0.timestamp() + 3600
    assert "backupbot_outbox_depth 3.0" in text
    assert 'backupbot_backups_total{status="failed"} 0.0' in text, "closed-set series exist from the start"
    names = {f.name for f in text_string_to_metric_families(text)}
    assert names >= {"backupbot_backups", "backupbot_backup_failures", "backupbot_run_duration_seconds",
                     "backupbot_last_success_timestamp_seconds", "backupbot_outbox_depth",
                     "backupbot_slack_delivery_failures", "backupbot_last_run_timestamp_seconds"}
