"""SSH only: connect, verify the host key, run the export over an exec channel, map errors.

One `collect()` is one device: connect (trust on first use of its host key), run the export on
an exec channel (no PTY, no prompt parsing), refuse output that is not a complete export, and
retry transient failures - all inside the device's deadline. With `export: auto` the command is
chosen without asking the router anything first (see `Collector._export`): one command per
backup while the RouterOS version of the last stored export holds. The export is checked,
normalized and hashed here, where its bytes are (this runs in bot.ssh.worker's process); one
that is the latest stored config again with only its date changed is recognised by a hash of
its bytes instead (routeros.undated_hash), which is what most routers send on most days. Every
asyncssh/OS error is translated here into a `CollectError` with a short human reason
("raise ... from exc"). Passwords never appear in a reason or a log line.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import os
import random
import socket
from dataclasses import dataclass
from typing import NamedTuple

import asyncssh

from bot.routeros import export as routeros
from bot.core.errors import AuthFailed, CollectError, Dropped, HostKeyChanged, InvalidOutput, Timeout, Unreachable
from bot.core.models import Device, Export, ExportMeta, HostKey, KnownConfig

log = logging.getLogger(__name__)

SENSITIVE = "/export show-sensitive"  # v7: secrets only with this flag; v6 refuses the flag
PLAIN = "/export"  # v6: includes secrets; v7: hides them
# An answer this short without a version header cannot be an export: a CLI error such as v6's
# "expected end of command (line 1 column 9)" for show-sensitive.
REFUSAL_MAX = 1024
# Plain public-key host key algorithms only (no certificates: RouterOS has none), RouterOS 6's
# ssh-rsa included. The trusted key's own algorithms are put first, as OpenSSH does.
HOST_KEY_ALGS = ("ssh-ed25519", "ecdsa-sha2-nistp256", "ecdsa-sha2-nistp384", "ecdsa-sha2-nistp521",
                 "rsa-sha2-512", "rsa-sha2-256", "ssh-rsa")


# Exports up to this size are inspected on the event loop (at most ~1 ms of normalizing): handing
# a 3 KB export to a thread and back costs more than the work.
INLINE_BYTES = 64 * 1024

# AES-GCM first: one C call per packet (AES-NI) where asyncssh's chacha20-poly1305 runs Python per
# packet; a 1 MB export costs ~3x less CPU on each side (measured 0.07 s vs 0.22 s for 5 transfers).
# The rest stay as fallbacks, CTR modes for RouterOS 6.
ENCRYPTION_ALGS = ("aes128-gcm@openssh.com", "aes256-gcm@openssh.com", "chacha20-poly1305@openssh.com",
                   "aes128-ctr", "aes192-ctr", "aes256-ctr")


def _openssh(key: asyncssh.SSHKey) -> str:
    return key.export_public_key("openssh").decode().strip()


def _same_key(a: str, b: str) -> bool:
    return a.split()[:2] == b.split()[:2]  # "type base64", ignoring any comment


def _host_key_algs(trusted: HostKey | None) -> list[str]:
    first: list[str] = []
    if trusted is not None:
        with contextlib.suppress(ValueError):  # unparsable stored key: no preference, still compared
            first = [alg.decode() for alg in asyncssh.import_public_key(trusted.key).sig_algorithms]
    return first + [alg for alg in HOST_KEY_ALGS if alg not in first]


class _HostKeyCheck(asyncssh.SSHClient):
    """Trust on first use: with nothing trusted accept the presented key, else only the trusted
    one. The presented key is kept so a mismatch can be reported with its fingerprint."""

    def __init__(self, trusted: HostKey | None):
        self.trusted = trusted
        self.presented: asyncssh.SSHKey | None = None

    def validate_host_public_key(self, host: str, addr: str, port: int, key: asyncssh.SSHKey) -> bool:
        self.presented = key
        return self.trusted is None or _same_key(_openssh(key), self.trusted.key)


def _unreachable(exc: OSError, connect_timeout: float) -> Unreachable:
    if isinstance(exc, TimeoutError):
        return Unreachable(f"unreachable: no answer within {connect_timeout:g} s")
    if isinstance(exc, socket.gaierror):
        return Unreachable(f"unreachable: cannot resolve host ({exc.strerror})")
    if exc.errno and exc.errno > 0:
        return Unreachable(f"unreachable: {os.strerror(exc.errno).lower()}")
    return Unreachable(f"unreachable: {exc}")


def _first_line(data: bytes) -> str:
    line = next((ln for ln in data.decode("utf-8", "replace").splitlines() if ln.strip()), "")
    return line.strip()[:120]


@dataclass(frozen=True, kw_only=True)
class Collector:
    """Collects one device's export over SSH; safe to share across concurrent collections.

    Plain settings only, so bot.ssh.worker can rebuild it in its own process.
    """

    connect_timeout: float = 15.0
    retries: int = 2
    backoff: float = 1.0
    idle_timeout: float = 60.0  # a command that prints nothing for this long is dropped (and retried)

    async def collect(self, device: Device, trusted: HostKey | None, ros_major: int | None = None,
                      known: KnownConfig | None = None) -> Export:
        """The device's export, or a CollectError. `device.timeout` bounds everything, retries included.

        `ros_major`: the RouterOS major version in the header of the device's last stored export,
        if any. Only a hint for `export: auto` (it saves a command); today's header is what counts.
        `known`: the device's latest stored config; an export that is it again is not normalized.
        """
        loop = asyncio.get_running_loop()
        deadline = loop.time() + device.timeout
        attempt = 0
        try:
            async with asyncio.timeout_at(deadline) as budget:
                while True:
                    try:
                        return await self._attempt(device, trusted, ros_major, known)
                    except CollectError as err:
                        delay = self.backoff * 2**attempt * random.uniform(1.0, 1.1)
                        if not err.transient or attempt >= self.retries or loop.time() + delay >= deadline:
                            raise
                        attempt += 1
                        log.warning("%s: %s; retry %d/%d in %.2f s", device.label, err.reason, attempt,
                                    self.retries, delay)
                        await asyncio.sleep(delay)
        except TimeoutError as exc:
            if not budget.expired():
                raise
            raise Timeout(f"timed out after {device.timeout:g} s") from exc

    async def _attempt(self, device: Device, trusted: HostKey | None, ros_major: int | None,
                       known: KnownConfig | None) -> Export:
        client = _HostKeyCheck(trusted)
        conn = await self._connect(device, client)
        try:
            command, raw = await self._export(conn, device, ros_major)
        except asyncssh.ChannelOpenError as exc:  # e.g. too many sessions on the router
            conn.abort()
            raise Dropped(f"session refused by the device ({exc.reason})") from exc
        except (asyncssh.DisconnectError, OSError) as exc:
            conn.abort()
            raise Dropped("connection dropped mid-export") from exc
        except BaseException:
            conn.abort()
            raise
        conn.close()
        # A thread, not bot.backup.offload: this runs in the SSH worker process, where sharing the GIL
        # with the sessions costs them a little throughput and nobody's ack waits for it. And the
        # bytes are here: handing 1 MB to another process and back costs more than the work.
        seen = _inspect(raw, known) if len(raw) <= INLINE_BYTES else await asyncio.to_thread(_inspect, raw, known)
        if seen.reason:
            raise InvalidOutput(seen.reason)
        key = conn.get_server_host_key()
        assert key is not None
        return Export(raw=b"" if seen.recognised else raw, command=command, host_key=_openssh(key),
                      host_key_fingerprint=key.get_fingerprint("sha256"), norm_hash=seen.norm_hash, meta=seen.meta,
                      ros_major=routeros.release_major(seen.meta.ros_version), undated_hash=seen.undated_hash,
                      recognised=seen.recognised)

    async def _connect(self, device: Device, client: _HostKeyCheck) -> asyncssh.SSHClientConnection:
        client_keys = None
        if device.key_file:
            try:
                client_keys = [asyncssh.read_private_key(device.key_file)]
            except (OSError, ValueError) as exc:
                raise AuthFailed(f"cannot load key file {device.key_file}: {type(exc).__name__}") from exc
        try:
            return await asyncssh.connect(
                device.host, device.port, username=device.username, password=device.password,
                # Only what the inventory names: no ~/.ssh keys or config, no agent, no Kerberos.
                client_keys=client_keys, agent_path=None, config=None, gss_host=None,
                # Empty but NOT None (None disables checking): every key reaches validate_host_public_key.
                known_hosts=([], [], []), x509_trusted_certs=None, client_factory=lambda: client,
                server_host_key_algs=_host_key_algs(client.trusted), encryption_algs=ENCRYPTION_ALGS,
                connect_timeout=self.connect_timeout,
            )
        except asyncssh.HostKeyNotVerifiable as exc:
            if client.presented is None or client.trusted is None:
                raise Unreachable(f"unreachable: host key not usable ({exc.reason})") from exc
            new = client.presented
            new_fp = new.get_fingerprint("sha256")
            raise HostKeyChanged(client.trusted.fingerprint, new_fp, _openssh(new)) from exc
        except asyncssh.PermissionDenied as exc:
            raise AuthFailed("authentication failed") from exc
        except asyncssh.ConnectionLost as exc:
            raise Dropped("connection dropped during login") from exc
        except asyncssh.DisconnectError as exc:
            raise Unreachable(f"unreachable: ssh negotiation failed ({exc.reason})") from exc
        except OSError as exc:  # refused, reset, no route, DNS, connect timeout
            raise _unreachable(exc, self.connect_timeout) from exc

    async def _export(self, conn: asyncssh.SSHClientConnection, device: Device,
                      known: int | None) -> tuple[str, bytes]:
        """(command run, its output).

        "auto" (notes §2b) never asks `/system resource print` first, which would cost every
        router a round trip every day. It runs the command the last known version calls for and
        checks the answer's own header, so that an export from a v7 router is only ever kept if
        it was made with show-sensitive (a plain `/export` hides v7's secrets, oxidized#2628):
        - v7, or never seen: show-sensitive. v6 refuses the flag with a CLI error (never stored,
          oxidized#2427); then `/export`, kept only if its header does not say v7.
        - v6: `/export`; if its header says v7 (upgraded) or nothing, show-sensitive as above.
        A new v6 router costs two commands: the same as asking its version first.
        """
        if device.export != "auto":
            return device.export, await _run(conn, device.export, self.idle_timeout)
        plain: bytes | None = None
        if known is not None and known < 7:
            plain = await _run(conn, PLAIN, self.idle_timeout)
            major = _header_major(plain)
            if (major is not None and major < 7) or _refused(plain):  # v6 as stored, or an error to report
                return PLAIN, plain
        raw = await _run(conn, SENSITIVE, self.idle_timeout)
        if not _refused(raw):
            return SENSITIVE, raw
        if plain is None:
            plain = await _run(conn, PLAIN, self.idle_timeout)
        major = _header_major(plain)
        if major is not None and major >= 7:  # a v7 refusing show-sensitive: report its answer
            return SENSITIVE, raw
        return PLAIN, plain


class _Inspection(NamedTuple):
    reason: str | None  # why the output must not be stored, if it must not
    norm_hash: str
    meta: ExportMeta
    undated_hash: str | None
    recognised: bool  # the known config again, header and all


def _inspect(raw: bytes, known: KnownConfig | None) -> _Inspection:
    """What the service needs to know of an export. The known config again (same undated hash)
    needs no normalizing: it normalizes as it did, and passed the checks."""
    undated, meta = routeros.undated_hash(raw), _header(raw)
    if known is not None and undated == known.undated_hash:
        return _Inspection(None, known.norm_hash, meta, undated, recognised=meta == known.meta)
    reason, normalized = routeros.check_and_normalize(raw)
    return _Inspection(reason, hashlib.sha256(normalized.encode()).hexdigest(), meta, undated, recognised=False)


def _header(output: bytes) -> ExportMeta:
    return routeros.parse_header(output[:16384].decode("utf-8", "replace"))  # parse_header reads 4,096 chars


def _header_major(output: bytes) -> int | None:
    return routeros.release_major(_header(output).ros_version)


def _refused(output: bytes) -> bool:
    """A short answer with no version header: RouterOS refused the command (or printed junk)."""
    return len(output) <= REFUSAL_MAX and _header_major(output) is None


async def _run(conn: asyncssh.SSHClientConnection, command: str, idle_timeout: float) -> bytes:
    """One command on its own exec channel; stdout as bytes (RouterOS prints errors there too).
    Output is read as it streams so a channel that goes silent for `idle_timeout` is given up."""
    # stdin is left open, as Oxidized's exec does: RouterOS never reads it, and an EOF is two more
    # packets (asyncssh sends an ignore packet before each) for every router.
    proc = await conn.create_process(command, encoding=None, request_pty=False)
    chunks: list[bytes] = []
    loop = asyncio.get_running_loop()
    try:
        # One timer moved on with every chunk (wait_for would start a task per chunk).
        async with asyncio.timeout(idle_timeout) as idle:
            while chunk := await proc.stdout.read(1 << 16):
                chunks.append(chunk)
                idle.reschedule(loop.time() + idle_timeout)
            await proc.wait_closed()
    except TimeoutError as exc:
        raise Dropped(f"stalled: no output for {idle_timeout:g} s") from exc
    stdout = b"".join(chunks)
    if proc.exit_signal or proc.exit_status is None:
        raise Dropped("connection dropped mid-export")
    if proc.exit_status != 0:
        first = _first_line(stdout) or _first_line(await proc.stderr.read())
        raise InvalidOutput(f"exit status {proc.exit_status}: {first}")
    return stdout
