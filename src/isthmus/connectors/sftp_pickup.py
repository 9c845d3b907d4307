"""SFTP pickup: a channel that fetches its files from a sender's SFTP server (issue 18).

Why: many payers, clearinghouses and lockbox banks do not push; they leave 835s, 277CAs
and HL7 batch files in a folder on their own SFTP server for the hub to fetch. This is the
drop folder (`connectors.folder`) with the sender's folder on the far side of SSH.

Each pass lists `<path>/inbound/` on the server and takes only complete files, by the drop
folder's rules as far as SFTP lets them be seen (`connectors.settled`): in-flight names
(dot files, `*.part`, `*.filepart`, `*.tmp`, `*~`) are never taken; a file is complete when
it was renamed into place (the previous pass saw it under an in-flight name of the same
size: `x.part`, `.x`, `x.tmp` becoming `x`) or when its size and mtime are unchanged since
the previous pass and for the quiet period (`[reliability] drop_quiet_period_s`) on this
process's monotonic clock. SFTP shows neither inodes nor open files, and the server's
clock is not ours, so unlike the local folder no wall-clock shortcut is taken: a restart
waits one quiet period again. Sub-folders, links and special files are left alone.

A complete file is downloaded (to a hidden name, then renamed) into `processing/` of the
channel's local folder `<data_dir>/sftp/<channel>/` and handed to the ONE file intake
through that folder (`DropFolder` over the same root, whose first pass takes what waits
in `processing/`): same identity, deduplication, 999/TA1 and local `done/`/`failed/` as a
dropped file. Only then is the remote file moved to `<path>/done/`, or to
`<path>/failed/` with `<name>.error.txt` (the intake's reasons, no content) when the
intake refused anything in it. A crash between the intake and the move downloads the file
again on the next pass; the intake's business keys (ISA06:ISA13 and content hash, MSH-10)
make the second take change nothing.

SSH per RFC 4251-4254, SFTP per draft-ietf-secsh-filexfer-02 (what OpenSSH serves): the
server's host key must be in `known_hosts` (unknown hosts refused, never added); login by
public key from `key_file`, no agent, no password. Errors name the server, never content.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import logging
import os
import posixpath
import stat
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import paramiko

from isthmus.config.channels import ChannelSettings
from isthmus.config.settings import Settings
from isthmus.connectors.folder import ERROR_SUFFIX, DropFolder, Intake, leaves, shown
from isthmus.connectors.settled import IN_FLIGHT_ENDINGS, in_flight
from isthmus.connectors.sftp_session import SftpPeer, SftpUnreachable, open_session
from isthmus.errors import TransientError

log = logging.getLogger(__name__)
STAGING: Final = ".incoming"  # under the local root: downloads before they are whole


class PickupUnavailable(TransientError, OSError):
    """The SFTP server could not be reached, refused our login or dropped the session."""


@dataclass(frozen=True)
class _Seen:
    size: int
    mtime: int
    since: float  # monotonic seconds when first seen like this


def final_name(name: str) -> str:
    """The name an in-flight name becomes once renamed into place (`.x.part` -> `x`)."""
    for ending in IN_FLIGHT_ENDINGS:
        if name.endswith(ending):
            name = name[: -len(ending)]
            break
    return name.lstrip(".")


class SftpPickup:
    """One channel's remote folder on one SFTP server; one SSH session held across passes."""

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
        local: Path,
        intake: Intake,
        settings: Settings,
        quiet_s: float | None = None,
        clock: Callable[[], float] = time.monotonic,
        timeout_s: float = 10.0,
    ) -> None:
        self.name = name
        self._host, self._port, self._user = host, port or 22, user
        self._key_file, self._known_hosts, self._timeout = key_file, known_hosts, timeout_s
        self.remote = path.rstrip("/") or "."
        self.local, self._intake, self._settings = local, intake, settings
        self.quiet_s = settings.reliability.drop_quiet_period_s if quiet_s is None else quiet_s
        self._clock = clock
        self._seen: dict[str, _Seen] = {}
        self._flying: dict[str, int] = {}  # final name -> size, under an in-flight name
        self._ssh: paramiko.SSHClient | None = None
        self._sftp: paramiko.SFTPClient | None = None
        self.passes = 0
        self.skipped = 0  # passes not made while the channel was paused (app.py)
        self.waiting = 0  # passes left to the process of the site holding the lease
        self.taken = 0

    # -- session ----------------------------------------------------------------------------

    def _session(self) -> paramiko.SFTPClient:
        transport = self._ssh.get_transport() if self._ssh is not None else None
        if self._sftp is not None and transport is not None and transport.is_active():
            return self._sftp
        self.close()
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
            raise PickupUnavailable(str(exc)) from exc
        for sub in ("inbound", "done", "failed"):
            with contextlib.suppress(OSError):
                sftp.mkdir(f"{self.remote}/{sub}")
        self._ssh, self._sftp = ssh, sftp
        return sftp

    def close(self) -> None:
        for closable in (self._sftp, self._ssh):
            if closable is not None:
                with contextlib.suppress(OSError, EOFError, paramiko.SSHException):
                    closable.close()
        self._ssh = self._sftp = None

    # -- one pass ---------------------------------------------------------------------------

    def run_once(self, now: float | None = None) -> list[dict[str, Any]]:
        """List, download what is complete, take it through the intake, move it remotely."""
        now = time.time() if now is None else now
        self.passes += 1
        try:
            sftp = self._session()
            ready = self._complete(sftp.listdir_attr(f"{self.remote}/inbound"))
            fetched = {name: self._download(sftp, name) for name in ready}
        except (OSError, EOFError, paramiko.SSHException) as exc:
            self.close()
            if isinstance(exc, PickupUnavailable):
                raise
            raise PickupUnavailable(
                f"SFTP {self._host}:{self._port} pass failed: {type(exc).__name__}"
            ) from exc
        if not any(fetched.values()):
            return []
        # a fresh folder's first pass takes everything in processing/: what was just
        # downloaded, and what a crash left there before (taking is idempotent)
        folder = DropFolder(self.local, self._intake, self._settings, quiet_s=0.0)
        reports = {r["file"]: r for r in folder.run_once(now)}
        out = []
        for name, got in fetched.items():
            report = reports.get(shown(name))
            if not got or report is None:
                continue  # changed while downloading, or not taken: the next pass
            self._finish(sftp, name, report, now)
            self.taken += 1
            out.append(report)
        return out

    def _complete(self, entries: list[paramiko.SFTPAttributes]) -> list[str]:
        mono = self._clock()
        seen: dict[str, _Seen] = {}
        flying: dict[str, int] = {}
        ready = []
        for a in sorted(entries, key=lambda a: os.fsencode(a.filename)):
            name, size = a.filename, a.st_size or 0
            if leaves(name) or a.st_mode is None or not stat.S_ISREG(a.st_mode):
                continue
            if in_flight(name):
                flying[final_name(name)] = size
                continue
            prev = self._seen.get(name)
            now_seen = (
                prev
                if prev is not None and (prev.size, prev.mtime) == (size, a.st_mtime or 0)
                else _Seen(size, a.st_mtime or 0, mono)
            )
            seen[name] = now_seen
            if self._flying.get(name) == size or (
                prev is now_seen and mono - now_seen.since >= self.quiet_s
            ):
                ready.append(name)
        self._seen, self._flying = seen, flying
        return ready

    def _download(self, sftp: paramiko.SFTPClient, name: str) -> bool:
        """Fetch one file into processing/; False (nothing kept) when it changed meanwhile."""
        staging = self.local / STAGING
        processing = self.local / "processing"
        for d in (staging, processing):
            d.mkdir(parents=True, exist_ok=True)
        remote = f"{self.remote}/inbound/{name}"
        seen = self._seen[name]
        part = staging / (hashlib.sha256(os.fsencode(name)).hexdigest()[:24] + ".part")
        sftp.get(remote, str(part))
        after = sftp.stat(remote)
        if (part.stat().st_size, after.st_size, after.st_mtime or 0) != (
            seen.size,
            seen.size,
            seen.mtime,
        ):
            part.unlink()
            self._seen.pop(name, None)
            log.warning(
                "sftp pickup %s: %s changed while it was downloaded; it waits",
                self.name,
                shown(name),
            )
            return False
        os.replace(part, processing / name)
        return True

    def _finish(
        self, sftp: paramiko.SFTPClient, name: str, report: dict[str, Any], now: float
    ) -> None:
        """Move the remote file to done/, or to failed/ with the intake's reasons."""
        refused = bool(report.get("refused"))
        target = self._free(sftp, "failed" if refused else "done", name, now)
        sftp.rename(f"{self.remote}/inbound/{name}", target)
        self._seen.pop(name, None)
        if refused:
            reasons = Path(str(report.get("moved_to", "")) + ERROR_SUFFIX)
            try:
                body = reasons.read_bytes()
            except OSError:
                body = json.dumps([{"file": shown(name), "refused": report["refused"]}]).encode()
            sftp.putfo(io.BytesIO(body), target + ERROR_SUFFIX)
            log.warning("sftp pickup %s: %s refused, moved to failed/", self.name, shown(name))

    def _free(self, sftp: paramiko.SFTPClient, into: str, name: str, now: float) -> str:
        """A path in the remote folder `into` at which nothing (nor its .error.txt) is."""
        stem, dot, ext = name.rpartition(".")
        for k in range(1000):
            tag = "" if k == 0 else f"-{int(now)}" + ("" if k == 1 else f"-{k}")
            base = name if not tag else (f"{stem}{tag}.{ext}" if dot and stem else f"{name}{tag}")
            path = posixpath.join(self.remote, into, base)
            if not (_exists(sftp, path) or _exists(sftp, path + ERROR_SUFFIX)):
                return path
        raise PickupUnavailable(f"no free name in {into}/ for {shown(name)}")


def _exists(sftp: paramiko.SFTPClient, path: str) -> bool:
    try:
        sftp.lstat(path)
    except FileNotFoundError:
        return False
    return True


def open_pickup(ch: ChannelSettings, settings: Settings, intake: Intake) -> SftpPickup:
    """The pickup of `[channels.<name>] transport = "sftp"`; its local folder is
    `<data_dir>/sftp/<name>`."""
    if ch.key_file is None or ch.known_hosts is None:
        raise ValueError(f"channels.{ch.name}: an sftp channel needs key_file and known_hosts")
    return SftpPickup(
        ch.name,
        ch.host,
        ch.port or 22,
        user=ch.user,
        key_file=ch.key_file,
        known_hosts=ch.known_hosts,
        path=ch.path,
        local=settings.data_dir / "sftp" / ch.name,
        intake=intake,
        settings=settings,
    )


__all__ = ["PickupUnavailable", "SftpPickup", "final_name", "open_pickup"]
