"""Prometheus metrics for `GET /metrics`: what backups did, how long runs took, what is stale.

`Metrics` owns its own CollectorRegistry (never the process-global one), so tests and several
apps in one process do not collide. Label values come from closed sets (statuses, error kinds,
triggers, delivery reasons; anything else is counted as "other"), except `site`/`device` on the
last-success gauge: one series per inventory device is the point of that gauge, so a device that
leaves the inventory (retired by the inventory source) loses its series.
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping
from datetime import datetime

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from bot.core.kinds import ErrorKind, Trigger
from bot.slack.outcome import DELIVERY_REASONS, delivery_reason
from bot.core.models import RunSummary, Status

OTHER = "other"
TRIGGERS = tuple(t.value for t in Trigger)


FAILURE_KINDS = tuple(sorted(k.value for k in ErrorKind))

# Seconds: a single router takes a few seconds, a whole site up to many minutes.
RUN_BUCKETS = (1, 5, 15, 30, 60, 120, 300, 600, 1200, 1800, 3600, float("inf"))


def _closed(value: str | None, allowed: tuple[str, ...] | set[str]) -> str:
    return value if value is not None and value in allowed else OTHER


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.backups = Counter("backupbot_backups_total", "Device backups by outcome.", ["status"], registry=r)
        self.failures = Counter("backupbot_backup_failures_total", "Failed device backups by error kind.",
                                ["kind"], registry=r)
        self.run_duration = Histogram("backupbot_run_duration_seconds", "Wall time of a backup run.",
                                      ["trigger"], buckets=RUN_BUCKETS, registry=r)
        self.last_success = Gauge("backupbot_last_success_timestamp_seconds",
                                  "Unix time of the device's last good backup.", ["site", "device"], registry=r)
        self.outbox_depth = Gauge("backupbot_outbox_depth", "Slack messages waiting in the outbox.", registry=r)
        self.delivery_failures = Counter("backupbot_slack_delivery_failures_total",
                                         "Failed attempts to deliver a Slack message.", ["reason"], registry=r)
        self.last_run = Gauge("backupbot_last_run_timestamp_seconds", "Unix time the last backup run finished.",
                              registry=r)
        # Every series of a closed set exists from the start, at 0: rate() and alerts need no special case.
        for status in Status:
            self.backups.labels(status=status.value)
        for kind in (*FAILURE_KINDS, OTHER):
            self.failures.labels(kind=kind)
        for trigger in (*TRIGGERS, OTHER):
            self.run_duration.labels(trigger=trigger)
        for reason in (*DELIVERY_REASONS, OTHER):
            self.delivery_failures.labels(reason=reason)

    def observe_run(self, summary: RunSummary) -> None:
        """Count each device's outcome, time the run, and move last-success for good devices."""
        for result in summary.results:
            self.backups.labels(status=result.status.value).inc()
            if result.status is Status.FAILED:
                self.failures.labels(kind=_closed(result.error_kind, FAILURE_KINDS)).inc()
            else:
                at = result.version.last_verified if result.version is not None else summary.finished_at
                self.set_last_success(result.device.site, result.device.name, at)
        seconds = (summary.finished_at - summary.started_at).total_seconds()
        self.run_duration.labels(trigger=_closed(summary.trigger, TRIGGERS)).observe(max(seconds, 0.0))
        self.last_run.set(summary.finished_at.timestamp())

    def set_last_success(self, site: str, device: str, at: datetime) -> None:
        self.last_success.labels(site=site, device=device).set(at.timestamp())

    def forget(self, site: str, device: str) -> None:
        """Drop a device's last-success series (it was retired or removed: no alert should wait on it)."""
        with contextlib.suppress(KeyError):  # it never had one
            self.last_success.remove(site, device)

    def load_last_successes(self, mapping: Mapping[tuple[str, str], datetime]) -> None:
        """Seed the gauge at start-up, e.g. from `store.last_successes()`."""
        for (site, device), at in mapping.items():
            self.set_last_success(site, device, at)

    def set_outbox_depth(self, n: int) -> None:
        self.outbox_depth.set(n)

    def delivery_failed(self, code: str) -> None:
        """Count a failed Slack delivery by its reason (bot.slack.outcome: code -> reason)."""
        self.delivery_failures.labels(reason=delivery_reason(code) or OTHER).inc()

    def render(self) -> tuple[bytes, str]:
        """The body and content type for `GET /metrics`."""
        return generate_latest(self.registry), CONTENT_TYPE_LATEST
