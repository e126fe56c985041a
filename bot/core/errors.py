"""The exception tree: every exception backupbot raises is one of these. Errors are translated
into them at the boundary where they arise (asyncssh, SQLite, Slack's Web API).

    BackupbotError
    ├── ConfigError            the YAML file is wrong; carries every problem, each naming its place
    ├── StartupError           `serve` cannot start: a Slack variable is missing or Slack refused a token
    ├── SlackUnreachable       Slack gave no verdict on a token (connection, timeout, 5xx, 429): retried
    ├── InventoryError         the inventory source (NetBox, a CSV file) could not be read or answered
    │                          garbage; the last good inventory is kept (bot.inventory)
    ├── StorageError           the database cannot be used as it is
    │   ├── SchemaTooNew       written by a newer backupbot
    │   └── CorruptBlob        a stored config no longer matches its sha256
    ├── GitError               a git command failed or timed out, or git is missing (import, mirror, export)
    ├── ChildFailed            a search's child process exited without answering (bot.backup.greppool)
    ├── UserError              a person asked for something that cannot be done; message is shown as-is
    │   ├── NotFound           unknown site, device or version (may name close matches)
    │   ├── Forbidden          the requester may not see or act on that site / download raw configs
    │   │   └── Refused        a browser link or session that cannot be used (tampered, expired,
    │   │                      issued before a logout, missing): the browser gets a plain 403 page
    │   └── Busy               too much running (or shutting down): refused, not queued
    └── CollectError           one device could not be backed up; `kind` is a bot.core.kinds.ErrorKind
        ├── Unreachable        refused, no route, reset, DNS          (transient: retried)
        ├── Dropped            connection lost before the export ended (transient: retried)
        ├── Timeout            the device's deadline passed           (final)
        ├── AuthFailed         the router refused our credentials      (final)
        ├── HostKeyChanged     the router presented a different key    (final until `trust`)
        ├── InvalidOutput      empty output, a RouterOS error, bad exit status (final)
        └── WorkerDied         the SSH worker process went away mid-collection (not the device's fault)

A UserError is an answer, not a crash: it is logged at INFO and shown to whoever asked. The CLI
answers every BackupbotError with one line and its exit code (README, "exit code").
"""

from __future__ import annotations

from bot.core.kinds import ErrorKind


class BackupbotError(Exception):
    pass


class ConfigError(BackupbotError):
    def __init__(self, problems: list[str]):
        self.problems = list(problems)
        super().__init__("\n".join(self.problems))


class StartupError(BackupbotError):
    """Slack cannot be used as configured; the message says which variable to fix."""


class SlackUnreachable(BackupbotError):
    """Slack gave no verdict on a token: `code` says why, as bot.slack.outcome names it
    (connection_error, timeout, network, http_503, ratelimited, ...)."""

    def __init__(self, code: str) -> None:
        super().__init__(code)
        self.code = code


class InventoryError(BackupbotError):
    """The inventory source could not be read, or what it gave is not an inventory; the message
    says which (HTTP status, timeout, the bad row or field) and never contains the token."""


class StorageError(BackupbotError):
    pass


class SchemaTooNew(StorageError):
    """The database was written by a newer backupbot than this one."""


class CorruptBlob(StorageError):
    """A stored config no longer decodes to the bytes whose sha256 addresses it."""


class GitError(BackupbotError):
    """git answered with an error, took too long, or is not installed; the message says which command."""


class ChildFailed(BackupbotError):
    """A search's child process exited without answering; the message ends with its stderr's last lines."""


class UserError(BackupbotError):
    pass


class NotFound(UserError):
    def __init__(self, message: str, suggestions: list[str] | None = None):
        self.suggestions = suggestions or []
        if self.suggestions:
            message += " Did you mean: " + ", ".join(self.suggestions) + "?"
        super().__init__(message)


class Forbidden(UserError):
    pass


class Refused(Forbidden):
    """A browser request without a usable link or session; the message is the reason, for the
    403 page and the log (never the link itself)."""


class Busy(UserError):
    """Too many tasks are running (or the bot is shutting down): the request is refused, not queued."""


class CollectError(BackupbotError):
    kind = ErrorKind.ERROR
    transient = False

    def __init__(self, reason: str):
        self.reason = reason
        super().__init__(reason)


class Unreachable(CollectError):
    kind = ErrorKind.UNREACHABLE
    transient = True


class Dropped(CollectError):
    kind = ErrorKind.DROPPED
    transient = True


class Timeout(CollectError):
    kind = ErrorKind.TIMEOUT


class AuthFailed(CollectError):
    kind = ErrorKind.AUTH


class HostKeyChanged(CollectError):
    kind = ErrorKind.HOST_KEY

    def __init__(self, old_fingerprint: str, new_fingerprint: str, new_key: str):
        self.old_fingerprint = old_fingerprint
        self.new_fingerprint = new_fingerprint
        self.new_key = new_key
        super().__init__(f"host key changed (was {old_fingerprint}, now {new_fingerprint})")


class InvalidOutput(CollectError):
    kind = ErrorKind.INVALID_OUTPUT


class WorkerDied(CollectError):
    """Not the device's fault: the SSH worker process went away mid-collection."""

    kind = ErrorKind.INTERNAL
