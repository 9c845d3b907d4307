"""The `sftp` destination: a run of deliveries written as one file with control totals, over SFTP.

Why: many finance and banking peers (lockbox, collections agencies, payroll, ERPs without
an API) take files, not calls, and they check each file against a control record before
they load it (issue 18, "files with control totals").

The file is the `file` destination's (`control_file` and `file_name` of
connectors/dest_file.py, one format for both): JSON lines, one delivery per line, then a
control record `{"control": {"count": n, "amounts": {"<currency>": "<sum>"}, "first": k1,
"last": kn}}` (record count and per-currency Decimal sums of the `amount` fields), so the
receiver can reject a truncated or altered file. Its name comes from the run's first and
last idempotency keys, so a retry of the same run rewrites the same file instead of adding
a second one.

Upload (SSH File Transfer Protocol, draft-ietf-secsh-filexfer-02, the version OpenSSH
serves): write `<name>.part`, then rename it over `<name>` with OpenSSH's
`posix-rename@openssh.com` extension (atomic on the server: a reader sees the whole file
or none; the plain v3 SSH_FXP_RENAME refuses an existing target). Host key checking per
RFC 4251 section 4.1: the server's key must be in `known_hosts` (unknown hosts refused,
never added); authentication by public key from `key_file` (RFC 4252 section 7), no agent,
no password.

Errors at the boundary: a connection, handshake, host key or authentication failure and a
dropped session are `DestinationUnavailable` (nothing was taken); the server refusing the
file (SSH_FX_PERMISSION_DENIED, SSH_FX_NO_SUCH_FILE for a missing folder) is
`DestinationRejected`. Texts carry codes and reasons, never file content.
"""

from __future__ import annotations

import contextlib
import errno
import io
import posixpath
from collections.abc import Sequence
from pathlib import Path

import paramiko

from isthmus.config.destinations import DestinationSettings
from isthmus.connectors.dest_file import control_file, file_name
from isthmus.connectors.sftp_session import SftpPeer, SftpUnreachable, open_session, why
from isthmus.ports.destination import (
    Answer,
    DestinationRejected,
    DestinationUnavailable,
    Outgoing,
)

__all__ = ["SftpDestination", "open_destination"]

_REFUSED = {errno.EACCES, errno.EPERM, errno.ENOENT, errno.ENOTDIR, errno.EROFS}


class SftpDestination:
    """One SFTP server and folder; an SSH session held across sends and re-made after a drop."""

    def __init__(
        self,
        name: str,
        host: str,
        port: int,
        *,
        user: str,
        key_file: Path,
        known_hosts: Path,
        path: str,
        batch: int = 100,
        timeout_s: float = 10.0,
    ) -> None:
        self.name = name
        self.batch = max(1, batch)
        self._host, self._port, self._user = host, port or 22, user
        self._key_file, self._known_hosts = key_file, known_hosts
        self._path = path or "."
        self._timeout = timeout_s
        self._ssh: paramiko.SSHClient | None = None
        self._sftp: paramiko.SFTPClient | None = None

    # -- session ----------------------------------------------------------------------------

    def _session(self) -> paramiko.SFTPClient:
        ssh, sftp = self._ssh, self._sftp
        transport = ssh.get_transport() if ssh is not None else None
        if sftp is not None and transport is not None and transport.is_active():
            return sftp
        self._drop()
        try:
            ssh, sftp = open_session(
                SftpPeer(
                    self._host,
                    self._port,
                    self._user,
                    self._key_file,
                    self._known_hosts,
                    self._timeout,
                )
            )
        except SftpUnreachable as exc:
            raise DestinationUnavailable(str(exc)) from exc
        self._ssh, self._sftp = ssh, sftp
        return sftp

    def _drop(self) -> None:
        for closable in (self._sftp, self._ssh):
            if closable is not None:
                with contextlib.suppress(OSError, EOFError, paramiko.SSHException):
                    closable.close()
        self._ssh = self._sftp = None

    # -- the port ---------------------------------------------------------------------------

    def send(self, items: Sequence[Outgoing]) -> Answer:
        if not 1 <= len(items) <= self.batch:
            raise ValueError(
                f"the sftp destination takes 1..{self.batch} deliveries, got {len(items)}"
            )
        name = file_name(self.name, items)
        data = control_file(items)
        target = posixpath.join(self._path, name)
        part = target + ".part"
        sftp = self._session()
        try:
            sftp.putfo(io.BytesIO(data), part, file_size=len(data), confirm=True)
            try:
                sftp.posix_rename(part, target)
            except OSError as exc:
                if not _unsupported(exc):
                    raise
                _replace(sftp, part, target)  # a server without OpenSSH's extension
        except OSError as exc:
            if exc.errno in _REFUSED:
                raise DestinationRejected(
                    Answer("refused", f"SFTP server refused {name}: {why(exc)}")
                ) from exc
            self._drop()
            raise DestinationUnavailable(f"SFTP upload of {name} failed: {why(exc)}") from exc
        except (TimeoutError, EOFError, paramiko.SSHException) as exc:
            self._drop()
            raise DestinationUnavailable(
                f"SFTP session lost during {name}: {type(exc).__name__}"
            ) from exc
        return Answer("uploaded", f"{name} records={len(items)} bytes={len(data)}")

    def close(self) -> None:
        self._drop()


def _unsupported(exc: OSError) -> bool:
    return "posix-rename" in str(exc) or "Operation unsupported" in str(exc)


def _replace(sftp: paramiko.SFTPClient, part: str, target: str) -> None:
    with contextlib.suppress(FileNotFoundError):
        sftp.remove(target)
    sftp.rename(part, target)


def open_destination(s: DestinationSettings, nats_servers: str = "") -> SftpDestination:
    """The adapter for `[destinations.<name>] kind = "sftp"` (`host`, `port`, `user`,
    `key_file`, `known_hosts`, `path`, `batch`)."""
    del nats_servers
    where = f"[destinations.{s.name}]"
    if s.key_file is None or s.known_hosts is None or not s.user:
        raise ValueError(
            f'{where} kind = "sftp" needs user, key_file and known_hosts '
            "(host keys are always checked)"
        )
    return SftpDestination(
        s.name,
        s.host,
        s.port,
        user=s.user,
        key_file=s.key_file,
        known_hosts=s.known_hosts,
        path=s.path,
        batch=s.batch,
        timeout_s=s.timeout_s,
    )
