"""The closed sets every layer names the same way: what started a run (`Trigger`) and why a
device's backup failed (`ErrorKind`). Their values are stored in the database, are metrics
labels and appear in --json, so they never change; each member carries its plain words here,
in the one table.
"""

from __future__ import annotations

from enum import StrEnum


class Trigger(StrEnum):
    """What started a run (runs.trigger, RunSummary.trigger, the run-duration metric's label)."""

    SCHEDULE = "schedule"
    CATCH_UP = "catch-up"  # a scheduled slot missed while serve was down, run once at start-up
    SLACK = "slack"
    WEB = "web"  # "Back up site now" on a browser page (bot.web)
    CLI = "cli"
    INTERRUPTED = "interrupted"  # a run found unfinished at start-up: what it recorded is announced then
    DEMO = "demo"
    IMPORT = "import"  # history read from Oxidized or a folder (bot.interop): its attempts carry the old dates

    @property
    def words(self) -> str:
        return _TRIGGER_WORDS[self]

    @property
    def scheduled(self) -> bool:
        """The channel gets a digest of such a run (docs/slack.md, "What the channel is told")."""
        return self in (Trigger.SCHEDULE, Trigger.CATCH_UP)

    @staticmethod
    def words_for(value: str) -> str:
        """The words for a trigger value; an unknown value as it is."""
        return Trigger(value).words if value in _BY_VALUE else value


_TRIGGER_WORDS = {
    Trigger.SCHEDULE: "Scheduled run",
    Trigger.CATCH_UP: "Catch-up run (a scheduled time was missed)",
    Trigger.SLACK: "Run from Slack",
    Trigger.WEB: "Run from the browser",
    Trigger.CLI: "Run from the server",
    Trigger.INTERRUPTED: "Run cut short by a restart",
    Trigger.DEMO: "Demo run",
    Trigger.IMPORT: "History import",
}
_BY_VALUE = frozenset(t.value for t in Trigger)


class ErrorKind(StrEnum):
    """Why a device's backup failed: bot.core.errors.CollectError.kind, Attempt.error_kind."""

    UNREACHABLE = "unreachable"  # refused, no route, reset, DNS (transient: retried)
    DROPPED = "dropped"  # connection lost before the export ended (transient: retried)
    TIMEOUT = "timeout"  # the device's deadline passed
    AUTH = "auth"  # the router refused our credentials
    HOST_KEY = "host_key"  # the router presented a different key
    INVALID_OUTPUT = "invalid_output"  # empty output, a RouterOS error, bad exit status
    INTERNAL = "internal"  # a bug of ours while backing up one device, or the SSH worker died
    ERROR = "error"  # a CollectError of no more specific kind

    @property
    def words(self) -> str:
        return _ERROR_WORDS.get(self, self.value)

    @staticmethod
    def words_for(value: str | None) -> str:
        """The words for a stored kind; an unknown one as it is, none at all as "failed"."""
        if value is None or value == "":
            return value or "failed"
        return ErrorKind(value).words if value in _KIND_VALUES else value


_ERROR_WORDS = {
    ErrorKind.AUTH: "authentication failed",
    ErrorKind.HOST_KEY: "host key changed",
    ErrorKind.TIMEOUT: "timed out",
    ErrorKind.DROPPED: "connection dropped",
    ErrorKind.INVALID_OUTPUT: "invalid output",
    ErrorKind.INTERNAL: "internal error",
}
_KIND_VALUES = frozenset(k.value for k in ErrorKind)
