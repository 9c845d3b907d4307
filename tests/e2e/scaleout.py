"""Scale-out end-to-end helpers: `isthmus serve --role ...` processes on PostgreSQL + NATS.

A test gets its own PostgreSQL database and its own NATS stream name (`scaleout_site`), runs
any number of listener / worker / api processes on them, and drops both at the end, so a
failing run leaves no process, database or stream behind. A routed, resending EHR
(`RoutedSender`) plays the source: it keeps every message that got no ACK and resends it in
its original order.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import subprocess
import sys
import threading
import time
import uuid
import zlib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx

from isthmus.connectors.mllp_client import send_messages_sync
from isthmus.demo.ehr_day import SimMessage
from tests.chart import demo_config
from tests.e2e.helpers import HOST, REPO, free_port, hub_env, msa_of
from tests.services import NATS, POSTGRES

if TYPE_CHECKING:
    from nats.js.api import StreamInfo
    from nats.js.manager import JetStreamManager

PG_ADMIN = f"postgresql://postgres@{POSTGRES[0]}:{POSTGRES[1]}/postgres"
NATS_URL = f"nats://{NATS[0]}:{NATS[1]}"
PG_SCHEMA = "isthmus_fault"


# -- one hub's shared resources ---------------------------------------------------------


@dataclass(frozen=True)
class Site:
    """What every process of one scale-out hub must agree on."""

    data_dir: Path
    dsn: str
    stream: str
    partitions: int
    config: Path  # the demo chart: the simulated EHR's codes post

    def env(self) -> dict[str, str]:
        return hub_env(
            {
                "ISTHMUS_STORE": "postgresql",
                "ISTHMUS_BUS": "nats",
                "ISTHMUS_PG_DSN": self.dsn,
                "ISTHMUS_PG_SCHEMA": PG_SCHEMA,
                "ISTHMUS_NATS_URL": NATS_URL,
                "ISTHMUS_NATS_STREAM": self.stream,
                "ISTHMUS_PARTITIONS": str(self.partitions),
                "ISTHMUS_CONFIG": str(self.config),
            }
        )


@contextlib.contextmanager
def scaleout_site(root: Path, partitions: int) -> Iterator[Site]:
    """A fresh database and stream name; both dropped afterwards, whatever happened."""
    import psycopg  # noqa: PLC0415 - scale-out tests only

    tag = uuid.uuid4().hex[:10]
    db = f"isthmus_fault_{tag}"
    with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{db}"')
    dsn = f"postgresql://postgres@{POSTGRES[0]}:{POSTGRES[1]}/{db}"
    stream = f"FAULT{tag.upper()}"
    try:
        yield Site(root / "data", dsn, stream, partitions, demo_config(root))
    finally:
        try:
            asyncio.run(drop_streams(stream))
        finally:
            with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)')


async def all_streams(js: JetStreamManager) -> list[StreamInfo]:
    """Every stream on the server: the listing comes in pages (256 a page), so one call
    alone misses the rest on a server holding many test runs' streams."""
    out: list[StreamInfo] = []
    while page := await js.streams_info(offset=len(out)):
        out += page
    return out


async def drop_streams(*streams: str) -> int:
    """Delete each stream, its dead letters and its KV buckets (every name starting with
    it or with KV_ and it); how many were deleted. One listing for all of them."""
    import nats  # noqa: PLC0415 - scale-out tests only
    import nats.js.errors  # noqa: PLC0415

    prefixes = tuple(streams) + tuple(f"KV_{s}" for s in streams)
    nc = await nats.connect(NATS_URL, connect_timeout=2)
    gone = 0
    try:
        js = nc.jetstream()
        for name in [s.config.name for s in await all_streams(js)]:
            if name and prefixes and name.startswith(prefixes):
                with contextlib.suppress(nats.js.errors.NotFoundError):
                    await js.delete_stream(name)
                    gone += 1
    finally:
        await nc.close()
    return gone


async def _lease_owners(stream: str) -> dict[str, str]:
    import nats  # noqa: PLC0415 - scale-out tests only
    import nats.js.errors  # noqa: PLC0415

    nc = await nats.connect(NATS_URL, connect_timeout=2)
    try:
        kv = await nc.jetstream().key_value(f"{stream}_LEASES")
        try:
            keys = await kv.keys()
        except nats.js.errors.NoKeysError:
            return {}
        out = {}
        for key in keys:
            with contextlib.suppress(nats.js.errors.KeyNotFoundError):
                entry = await kv.get(key)
                if entry.value:
                    out[bytes.fromhex(key).decode()] = json.loads(entry.value)["owner"]
        return out
    finally:
        await nc.close()


def lease_owners(site: Site) -> dict[str, str]:
    """Lease name ("partition:N", "worker:ID") -> owner id ("host-pid-xxxxxx"), from the
    site's lease bucket, as the workers hold them now."""
    return asyncio.run(_lease_owners(site.stream))


def pg_rows(site: Site, sql: str) -> list[tuple[Any, ...]]:
    """Run one read query in the hub's schema."""
    import psycopg  # noqa: PLC0415 - scale-out tests only

    with psycopg.connect(site.dsn) as conn:
        conn.execute(f"SET search_path TO {PG_SCHEMA}")
        return list(conn.execute(sql).fetchall())  # type: ignore[arg-type]


def site_messages(site: Site) -> list[dict[str, Any]]:
    """Every message of the scale-out hub, newest first, page after page of 500."""
    out: list[dict[str, Any]] = []
    cursor: list[str] = []
    while True:
        page = site_json(site, "messages", "list", "--limit", "500", *cursor)
        out += page["messages"]
        if not page["next"]:
            return out
        cursor = ["--cursor", page["next"]]


def site_json(site: Site, *args: str) -> Any:
    """A read command of the CLI (`--json`) against the scale-out hub."""
    argv = [
        sys.executable,
        "-m",
        "isthmus.cli.main",
        *args,
        "--json",
        "--data-dir",
        str(site.data_dir),
    ]
    res = subprocess.run(
        argv, capture_output=True, text=True, timeout=120, env=site.env(), cwd=REPO, check=False
    )
    assert res.returncode == 0, (args, res.returncode, res.stderr)
    return json.loads(res.stdout)


# -- processes --------------------------------------------------------------------------


@dataclass
class RoleProc:
    """`isthmus serve --role ROLE` of one site in a subprocess; ready once it logs it."""

    site: Site
    role: str
    name: str
    log_dir: Path
    mllp_port: int = field(default_factory=free_port)
    http_port: int = field(default_factory=free_port)
    proc: subprocess.Popen[bytes] | None = None
    starts: int = 0

    def _err_path(self) -> Path:
        return self.log_dir / f"{self.name}-{self.starts}.err"

    def start(self, timeout: float = 60.0) -> RoleProc:
        assert not self.running, f"{self.name} already running"
        self.log_dir.mkdir(parents=True, exist_ok=True)
        self.starts += 1
        argv = [
            sys.executable,
            "-m",
            "isthmus.cli.main",
            "serve",
            "--role",
            self.role,
            "--data-dir",
            str(self.site.data_dir),
            "--mllp-port",
            str(self.mllp_port),
            "--http-port",
            str(self.http_port),
        ]
        with (
            (self.log_dir / f"{self.name}-{self.starts}.out").open("wb") as out,
            self._err_path().open("wb") as err,
        ):
            self.proc = subprocess.Popen(
                argv, stdout=out, stderr=err, env=self.site.env(), cwd=REPO
            )
        deadline = time.monotonic() + timeout
        while "serving role" not in self.stderr_text():
            if self.proc.poll() is not None:
                raise AssertionError(
                    f"{self.name} exited with {self.proc.returncode} while "
                    f"starting:\n{self.stderr_text()}"
                )
            if time.monotonic() > deadline:
                self.kill()
                raise AssertionError(f"{self.name} not ready in {timeout} s:\n{self.stderr_text()}")
            time.sleep(0.05)
        return self

    def stderr_text(self) -> str:
        path = self._err_path()
        return path.read_text(errors="replace") if path.exists() else ""

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def kill(self) -> None:
        """SIGKILL, as a crash would."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(10)

    def stop(self, timeout: float = 20.0) -> int:
        """SIGTERM and wait; SIGKILL if it does not go. Returns the exit code."""
        if self.proc is None:
            return 0
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.kill()
        return int(self.proc.returncode)

    def metrics(self) -> dict[str, Any]:
        r = httpx.get(f"http://{HOST}:{self.http_port}/api/v1/status", timeout=10.0)
        r.raise_for_status()
        body: dict[str, Any] = r.json()
        return body


def wait_idle_http(
    port: int,
    alive: Callable[[], None],
    timeout: float,
    stable_polls: int = 5,
    every_s: float = 0.3,
) -> dict[str, Any]:
    """Poll an api process's status route until nothing is unpublished or pending on the bus and
    the store counts stop moving; `alive` raises if a process the hub needs has died."""
    deadline = time.monotonic() + timeout
    last: dict[str, Any] | None = None
    same = 0
    while True:
        alive()
        r = httpx.get(f"http://{HOST}:{port}/api/v1/status", timeout=10.0)
        r.raise_for_status()
        m: dict[str, Any] = r.json()
        snap = {"bus_pending": m["bus_pending"], "store": m["store"]}
        if m["bus_pending"] == 0 and m["store"]["unpublished"] == 0 and snap == last:
            same += 1
            if same >= stable_polls:
                return m
        else:
            same = 0
        last = snap
        if time.monotonic() > deadline:
            raise AssertionError(f"hub not idle within {timeout} s: {snap}")
        time.sleep(every_s)


# -- the source -------------------------------------------------------------------------


def must_resend(ack: bytes | None) -> bool:
    """No ACK, or AR with ERR-3 207: "not stored, resend later" (the source keeps it)."""
    if ack is None:
        return True
    code, _ = msa_of(ack)
    if code != "AR":
        return False
    for seg in ack.split(b"\r"):
        if seg.startswith(b"ERR"):
            fields = seg.split(b"|")
            if len(fields) > 3 and fields[3].split(b"^")[0] == b"207":
                return True
    return False


@dataclass
class RoutedSender:
    """One EHR interface feeding one listener: `items` (index into the day, message) in send
    order, spread over connections by `route` (a key's messages share a connection, so its
    order holds on the wire). Un-ACKed messages stay at the front and are resent in order."""

    items: Sequence[tuple[int, SimMessage]]
    port: Callable[[], int]
    route: Callable[[int], int]  # day index -> connection (any int; taken modulo)
    up: threading.Event
    connections: int = 3
    round_size: int = 300
    deadline_s: float = 150.0
    acks: dict[int, bytes] = field(default_factory=dict)
    attempts: dict[int, int] = field(default_factory=dict)
    done: threading.Event = field(default_factory=threading.Event)
    sending: threading.Event = field(default_factory=threading.Event)  # inside a round
    error: BaseException | None = None

    @property
    def acked(self) -> int:
        return len(self.acks)

    def run(self) -> None:
        todo = list(self.items)
        deadline = time.monotonic() + self.deadline_s
        try:
            while todo:
                assert time.monotonic() < deadline, f"could not deliver {len(todo)} messages"
                self.up.wait(60)
                batch = todo[: self.round_size]
                keys = [self.route(i) % self.connections for i, _ in batch]
                for i, _ in batch:
                    self.attempts[i] = self.attempts.get(i, 0) + 1
                self.sending.set()
                try:
                    rep = send_messages_sync(
                        HOST,
                        self.port(),
                        [m.raw for _, m in batch],
                        connections=self.connections,
                        window=16,
                        timeout_s=15,
                        route=lambda j, _p, k=keys: k[j],
                    )
                finally:
                    self.sending.clear()
                failed = []
                for j, (i, m) in enumerate(batch):
                    ack = rep.acks[j]
                    if ack is None or must_resend(ack):
                        failed.append((i, m))
                    else:
                        self.acks[i] = ack
                todo = failed + todo[len(batch) :]
                if failed:
                    time.sleep(0.05)
        except BaseException as exc:
            self.error = exc
        finally:
            self.done.set()


def send_all(senders: Sequence[RoutedSender]) -> None:
    """Run the senders in parallel threads to the end; re-raise the first failure."""
    threads = [
        threading.Thread(target=s.run, name=f"sender-{n}", daemon=True)
        for n, s in enumerate(senders)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(300)
    for s in senders:
        if s.error is not None:
            raise s.error
    assert all(s.done.is_set() for s in senders), "a sender is stuck"


def crc(text: str) -> int:
    return zlib.crc32(text.encode())
