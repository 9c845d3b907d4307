"""Outbound X12 files (837, 270, 276, appeal letters): the implementations of
`flows.claim_submission.X12Sender` (issue 20), a folder and an SFTP server.

Both write the file under a temporary name and rename it, so a clearinghouse's pickup never
sees half a file: locally flushed to disk, mode 0600 (DESIGN.md: files 0600, they hold
PHI); over SFTP (draft-ietf-secsh-filexfer-02, as OpenSSH serves it) `<name>.part` then
OpenSSH's `posix-rename@openssh.com`. SFTP checks the server's host key against
`known_hosts` only (RFC 4251 section 4.1: an unknown host is refused, never added) and logs
in with the configured private key (RFC 4252 section 7), no agent, no password. An X12 file
goes as it is: the `sftp` and `file` destinations of issue 18 write JSON lines with a control
record, which a clearinghouse does not read, so these senders take the host, folder and
keys of a `[destinations.<name>]` entry (`[claims] destination`) and write the X12 itself.

A failure raises :class:`SendFailed` (codes and reasons, never file content): the caller's
store transaction rolls back, so nothing is recorded as sent.
"""

from __future__ import annotations

import io
import os
import posixpath
from pathlib import Path

from isthmus.config.destinations import DestinationSettings
from isthmus.errors import TransientError


class SendFailed(TransientError):
    """The file did not reach its destination; nothing was recorded as sent (the CLI exits
    4: the same command may run again)."""

    exit_code = 4


def _plain(name: str) -> str:
    if not name or "/" in name or "\\" in name or name.startswith("."):
        raise ValueError(f"not a plain file name: {name!r}")
    return name


class FileSender:
    """Writes outbound X12 files into a local folder (mode 0700, files 0600), flushed to disk
    under a temporary name and renamed; a file already there under that name is kept."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def send(self, *, name: str, kind: str, body: bytes) -> str:
        name = _plain(name)
        self.folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        final = self.folder / name
        if final.exists():  # the same interchange again (ISA13 names it): keep the first
            return name
        tmp = self.folder / f".{name}.part"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            os.write(fd, body)
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, final)
        return name


class SftpSender:
    """One SFTP server and folder; a session per send (claims leave in a few batches)."""

    def __init__(
        self,
        host: str,
        port: int,
        *,
        user: str,
        key_file: Path,
        known_hosts: Path,
        path: str,
        timeout_s: float = 10.0,
    ) -> None:
        self._host, self._port, self._user = host, port or 22, user
        self._key_file, self._known_hosts = key_file, known_hosts
        self._path, self._timeout = path or ".", timeout_s

    def send(self, *, name: str, kind: str, body: bytes) -> str:
        name = _plain(name)
        import paramiko  # noqa: PLC0415 - the `sftp` extra, needed by SFTP senders only

        from isthmus.connectors.sftp_session import (  # noqa: PLC0415
            SftpPeer,
            SftpUnreachable,
            open_session,
        )

        target = posixpath.join(self._path, name)
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
            raise SendFailed(str(exc)) from exc
        try:
            sftp.putfo(io.BytesIO(body), target + ".part", file_size=len(body), confirm=True)
            sftp.posix_rename(target + ".part", target)
        except (OSError, EOFError, paramiko.SSHException) as exc:
            raise SendFailed(
                f"SFTP {self._host}:{self._port}: {kind} file not written "
                f"({getattr(exc, 'strerror', None) or type(exc).__name__})"
            ) from exc
        finally:
            ssh.close()
        return f"sftp://{self._host}:{self._port}{target}"


def sender_for(d: DestinationSettings) -> FileSender | SftpSender:
    """The X12 sender of a `[destinations.<name>]` entry of kind file or sftp."""
    if d.kind == "file":
        return FileSender(Path(d.path))
    if d.kind == "sftp" and d.key_file is not None and d.known_hosts is not None:
        return SftpSender(
            d.host,
            d.port,
            user=d.user,
            key_file=d.key_file,
            known_hosts=d.known_hosts,
            path=d.path,
            timeout_s=d.timeout_s,
        )
    raise ValueError(
        f"destination {d.name!r} ({d.kind}) cannot take X12 files: use a "
        "file or sftp destination with key_file and known_hosts"
    )
