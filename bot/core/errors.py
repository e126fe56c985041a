"""The exception tree. Errors are translated into these at the boundary where they arise.

    BackupbotError
    ├── ConfigError            the YAML file is wrong; carries every problem, each naming its place
    ├── UserError              a person asked for something that cannot be done; message is shown as-is
    │   └── NotFound           unknown site, device or version (may name close matches)
    ├── Forbidden              the requester may not see or act on that site / download raw configs
    └── CollectError           one device could not be backed up; `kind` is a stable short name
        ├── Unreachable        refused, no route, reset, DNS          (transient: retried)
        ├── Dropped            connection lost before the export ended (transient: retried)
        ├── Timeout            the device's deadline passed           (final)
        ├── AuthFailed         the router refused our credentials      (final)
        ├── HostKeyChanged     the router presented a different key    (final until `trust`)
        └── InvalidOutput      empty output, a RouterOS error, bad exit status (final)
"""

from __future__ import annotations

from bot.core.kinds import ErrorKind


class BackupbotError(Exception):
    pass


class ConfigError(BackupbotError):
    def __init__(self, problems: list[str]):
        self.problems = list(problems)
        super().__init__("\n".join(self.problems))


class UserError(BackupbotError):
    pass


class NotFound(UserError):
    def __init__(self, message: str, suggestions: list[str] | None = None):
        self.suggestions = suggestions or []
        if self.suggestions:
            message += " Did you mean: " + ", ".join(self.suggestions) + "?"
        super().__init__(message)


class Forbidden(BackupbotError):
    pass


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
