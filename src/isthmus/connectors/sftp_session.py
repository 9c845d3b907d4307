"""One SFTP session to a known host with a key, for every SFTP connector (destination,
pickup, claim files): the host key must already be in the site's `known_hosts` (paramiko's
RejectPolicy; the user's own files and agents are never consulted), login is by key only,
and every wait is bounded by `timeout_s`. A failure comes back as `SftpUnreachable` with a
reason that names the host and what failed, never a path's content or a file's bytes; each
connector turns it into its own port's error.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import paramiko

from isthmus.errors import TransientError


class SftpUnreachable(TransientError):
    """No session: refused, timed out, host key unknown or changed, key not accepted."""


@dataclass(frozen=True)
class SftpPeer:
    """Where and how to open an SFTP session: host, port, user, private key, the
    `known_hosts` to check the host key against, and the timeout."""

    host: str
    port: int
    user: str
    key_file: Path
    known_hosts: Path
    timeout_s: float = 10.0

    @property
    def where(self) -> str:
        return f"SFTP {self.host}:{self.port}"


def why(exc: BaseException) -> str:
    """An OS error as its class, errno and text (no path); other errors as their class."""
    if isinstance(exc, OSError) and (exc.errno or exc.strerror):
        return f"{type(exc).__name__} [{exc.errno}] {exc.strerror or ''}".strip()
    return type(exc).__name__


def open_session(peer: SftpPeer) -> tuple[paramiko.SSHClient, paramiko.SFTPClient]:
    """A connected SSH client and its SFTP channel (timeouts set); the caller closes both."""
    ssh = paramiko.SSHClient()
    try:
        ssh.load_host_keys(str(peer.known_hosts))  # only these; never the user's own
    except OSError as exc:
        raise SftpUnreachable(
            f"{peer.where}: known_hosts unreadable [{exc.errno}] {exc.strerror}"
        ) from exc
    ssh.set_missing_host_key_policy(paramiko.RejectPolicy())
    try:
        ssh.connect(
            peer.host,
            peer.port,
            username=peer.user,
            key_filename=str(peer.key_file),
            look_for_keys=False,
            allow_agent=False,
            timeout=peer.timeout_s,
            banner_timeout=peer.timeout_s,
            auth_timeout=peer.timeout_s,
        )
        sftp = ssh.open_sftp()
    except paramiko.BadHostKeyException as exc:
        ssh.close()
        raise SftpUnreachable(f"{peer.where}: host key does not match known_hosts") from exc
    except paramiko.AuthenticationException as exc:
        ssh.close()
        raise SftpUnreachable(f"{peer.where}: public key authentication refused") from exc
    except paramiko.SSHException as exc:
        ssh.close()
        reason = "host key not in known_hosts" if "known_hosts" in str(exc) else type(exc).__name__
        raise SftpUnreachable(f"{peer.where}: {reason}") from exc
    except (OSError, EOFError) as exc:
        ssh.close()
        raise SftpUnreachable(f"{peer.where} unreachable: {why(exc)}") from exc
    channel = sftp.get_channel()
    if channel is not None:
        channel.settimeout(peer.timeout_s)
    return ssh, sftp
