"""A local trytond server process and the site it runs from (demo, tests, benchmarks).

`TrytonSite` says where a local Tryton keeps its databases and binaries, and writes the
server's configuration and password file; `TrytonServer` starts `trytond` on a free local
port serving the named databases, waits until it listens, and stops it; `running` does both
around a block. Facts from a trial with trytond 8.2: the admin password comes from
TRYTONPASSFILE; a server must be started with `-d` naming its databases or logins fail
(KeyError 'res.user'). The databases themselves are built by `erp_tryton_setup`.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from isthmus.connectors.erp_rpc import TrytonRpc


@dataclass(frozen=True)
class TrytonSite:
    """Where a local Tryton keeps its databases, and its binaries."""

    data_dir: Path  # holds <database>.sqlite (SQLite) and trytond.conf
    bin_dir: Path  # holds trytond and trytond-admin
    password: str = "admin"  # noqa: S105 - local demo/test database only
    uri: str = "sqlite://"  # or postgresql://user@host:port/ (one server, many databases)

    @property
    def sqlite(self) -> bool:
        return self.uri.startswith("sqlite")

    def config(self, port: int) -> Path:
        path = self.data_dir / f"trytond-{port}.conf"
        path.write_text(
            f"[database]\nuri = {self.uri}\npath = {self.data_dir}\n"
            f"[web]\nlisten = 127.0.0.1:{port}\n"
        )
        return path

    def env(self) -> dict[str, str]:
        pw = self.data_dir / "admin.pass"
        if not pw.exists():
            pw.write_text(self.password + "\n")
            pw.chmod(0o600)
        return {**os.environ, "TRYTONPASSFILE": str(pw)}


def default_bin_dir() -> Path:
    """The directory of the `trytond-admin` on PATH, else that of the running Python."""
    found = shutil.which("trytond-admin")
    return Path(found).parent if found else Path(sys.executable).parent


def free_port() -> int:
    """A TCP port on 127.0.0.1 free at the time of asking, for a test trytond server."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class TrytonServer:
    """A trytond process serving the named databases on a local port."""

    def __init__(self, site: TrytonSite, databases: list[str], port: int | None = None) -> None:
        self.site, self.databases = site, databases
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen[bytes] | None = None
        self.log = site.data_dir / f"trytond-{self.port}.log"

    def start(self, timeout_s: float = 60.0) -> None:
        conf = self.site.config(self.port)
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(  # noqa: S603 - our own trytond binary
                [str(self.site.bin_dir / "trytond"), "-c", str(conf), "-d", *self.databases],
                stdout=log,
                stderr=subprocess.STDOUT,
                env=self.site.env(),
            )
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"trytond exited with {self.proc.returncode}; see {self.log}")
            with (
                contextlib.suppress(OSError),
                socket.create_connection(("127.0.0.1", self.port), timeout=0.5),
            ):
                return
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"trytond did not listen on {self.port} in {timeout_s:.0f} s")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def rpc(self, database: str, *, timeout_s: float = 60.0) -> TrytonRpc:
        return TrytonRpc(self.url, database, "admin", self.site.password, timeout_s=timeout_s)


@contextlib.contextmanager
def running(site: TrytonSite, databases: list[str]) -> Iterator[TrytonServer]:
    """A trytond server serving `databases` for the duration of the block, stopped after it."""
    server = TrytonServer(site, databases)
    server.start()
    try:
        yield server
    finally:
        server.stop()
