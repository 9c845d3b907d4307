"""End-to-end helpers: run `isthmus serve` as a real subprocess, drive the CLI, read the corpus.

Nothing here imports the hub in-process except pure helpers (message parsing): the system
under test is the installed `isthmus` command, its ports, its data directory and its exit
codes, exactly what an operator sees.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
MLLP_SEND = BIN / "mllp_send"
CORPUS = (REPO / ".." / "shared" / "corpora" / "hl7v2").resolve()
HOST = "127.0.0.1"
# One site key for every run, so account tokens (hashed with it) compare across data dirs.
TOKEN_SECRET = "e2e-" + "0" * 60

SB, EB, CR = b"\x0b", b"\x1c", b"\r"


def ephemeral_range() -> tuple[int, int]:
    try:
        low, high = Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()
        return int(low), int(high)
    except (OSError, ValueError):
        return 32768, 60999  # Linux's default


def free_port() -> int:
    """A port nobody listens on now, for a server a test starts a moment later.

    Taken outside the kernel's ephemeral range: a port the kernel hands out for bind(0) is
    also what it hands out as the local port of outgoing connections, and on a busy machine
    one of those (to PostgreSQL, NATS, another test's server) can take it before the server
    binds it (issue 22). Two runs side by side can still pick the same one; `Serve.start`
    then retries on other ports.
    """
    low, high = ephemeral_range()
    spans = [(a, b) for a, b in ((10000, low - 1), (high + 1, 65535)) if b - a > 1000]
    for _ in range(200):
        a, b = random.choice(spans) if spans else (1024, 65535)
        port = random.randint(a, b)
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            try:
                s.bind((HOST, port))
            except OSError:
                continue
            return port
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


def hub_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ISTHMUS_")}
    env["ISTHMUS_TOKEN_SECRET"] = TOKEN_SECRET
    env["PYTHONUNBUFFERED"] = "1"
    env.update(extra or {})
    return env


def isthmus(
    *args: str | Path,
    data_dir: Path | None = None,
    timeout: float = 60,
    env: dict[str, str] | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run one `isthmus` CLI command to completion and return what it printed."""
    argv = [sys.executable, "-m", "isthmus.cli.main", *map(str, args)]
    if data_dir is not None:
        argv += ["--data-dir", str(data_dir)]
    return subprocess.run(
        argv,
        capture_output=True,
        text=True,
        timeout=timeout,
        env=hub_env(env),
        cwd=REPO,
        check=False,
    )


def isthmus_json(*args: str | Path, data_dir: Path, code: int = 0) -> Any:
    """Run a read command with --json, check its exit code and parse its output."""
    res = isthmus(*args, "--json", data_dir=data_dir)
    assert res.returncode == code, (args, res.returncode, res.stderr)
    return json.loads(res.stdout)


def all_messages(*filters: str, data_dir: Path) -> list[dict[str, Any]]:
    """Every message `messages list` finds with these filters, newest first: its pages of
    500, each asked for with the `next` cursor of the one before."""
    out: list[dict[str, Any]] = []
    cursor: list[str] = []
    while True:
        page = isthmus_json(
            "messages", "list", *filters, "--limit", "500", *cursor, data_dir=data_dir
        )
        out += page["messages"]
        if not page["next"]:
            return out
        cursor = ["--cursor", page["next"]]


class PortTaken(AssertionError):
    """`isthmus serve` could not bind a port chosen for it: another process took it."""


@dataclass
class Serve:
    """`isthmus serve` in a subprocess on free ports; stdout/stderr go to files."""

    data_dir: Path
    log_dir: Path
    mllp_port: int = field(default_factory=free_port)
    http_port: int = field(default_factory=free_port)
    config: Path | None = None
    env: dict[str, str] = field(default_factory=dict)
    proc: subprocess.Popen[bytes] | None = None
    starts: int = 0

    def start(self, timeout: float = 60.0) -> Serve:
        """Start it and wait until MLLP and /health answer. On a first start that loses
        its free ports to another process in the moment between choosing and binding them,
        try again on other ports (a restart keeps its ports: the test knows them)."""
        for attempt in range(3):
            try:
                return self._start(timeout)
            except PortTaken:
                if self.starts > 1 or attempt == 2:
                    raise
                self.starts -= 1
                self.mllp_port, self.http_port = free_port(), free_port()
        raise AssertionError("unreachable")

    def _start(self, timeout: float) -> Serve:
        assert self.proc is None or self.proc.poll() is not None, "already running"
        self.log_dir.mkdir(parents=True, exist_ok=True)
        self.starts += 1
        argv = [
            sys.executable,
            "-m",
            "isthmus.cli.main",
            "serve",
            "--data-dir",
            str(self.data_dir),
            "--mllp-port",
            str(self.mllp_port),
            "--http-port",
            str(self.http_port),
        ]
        if self.config is not None:
            argv += ["--config", str(self.config)]
        out = (self.log_dir / f"serve-{self.starts}.out").open("wb")
        err = (self.log_dir / f"serve-{self.starts}.err").open("wb")
        try:
            self.proc = subprocess.Popen(
                argv, stdout=out, stderr=err, env=hub_env(self.env), cwd=REPO
            )
        finally:
            out.close()
            err.close()
        try:
            self.wait_ready(timeout)
        except BaseException:
            self.kill()
            raise
        return self

    def stderr_text(self) -> str:
        path = self.log_dir / f"serve-{self.starts}.err"
        return path.read_text(errors="replace") if path.exists() else ""

    def wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while True:
            assert self.proc is not None
            if self.proc.poll() is not None:
                err = self.stderr_text()
                kind = PortTaken if "address already in use" in err.lower() else AssertionError
                raise kind(f"serve exited with {self.proc.returncode} while starting:\n{err}")
            if self._mllp_open() and self._healthy():
                return
            if time.monotonic() > deadline:
                raise AssertionError(f"serve not ready within {timeout} s:\n{self.stderr_text()}")
            time.sleep(0.05)

    def _mllp_open(self) -> bool:
        try:
            with socket.create_connection((HOST, self.mllp_port), timeout=0.5):
                return True
        except OSError:
            return False

    def _healthy(self) -> bool:
        try:
            r = httpx.get(f"http://{HOST}:{self.http_port}/health", timeout=1.0)
        except httpx.HTTPError:
            return False
        return r.status_code == 200 and r.json().get("status") == "ok"

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def metrics(self) -> dict[str, Any]:
        r = httpx.get(f"http://{HOST}:{self.http_port}/api/v1/status", timeout=5.0)
        r.raise_for_status()
        body: dict[str, Any] = r.json()
        return body

    def wait_idle(
        self, timeout: float = 60.0, stable_polls: int = 4, every_s: float = 0.15
    ) -> dict[str, Any]:
        """Wait until nothing is pending on the bus and the store counts stop moving."""
        deadline = time.monotonic() + timeout
        last: dict[str, Any] | None = None
        same = 0
        while True:
            assert self.running, f"serve died:\n{self.stderr_text()}"
            m = self.metrics()
            snap = {"bus_pending": m["bus_pending"], "store": m["store"]}
            if m["bus_pending"] == 0 and snap == last:
                same += 1
                if same >= stable_polls:
                    return m
            else:
                same = 0
            last = snap
            if time.monotonic() > deadline:
                raise AssertionError(f"hub not idle within {timeout} s: {snap}")
            time.sleep(every_s)

    def stop(self, timeout: float = 30.0) -> int:
        """SIGTERM and wait; returns the exit code (kills -9 if it does not stop in time)."""
        if self.proc is None:
            return 0
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.kill()
                raise AssertionError(f"serve ignored SIGTERM for {timeout} s") from None
        return int(self.proc.returncode)

    def kill(self) -> None:
        """SIGKILL, as a crash would: no cleanup at all."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(10)


# -- messages ---------------------------------------------------------------------------


def control_id_of(raw: bytes) -> str:
    """MSH-10 of a message, read the simple way (field separator is MSH's 4th byte)."""
    head = raw.split(CR, 1)[0]
    if not head.startswith(b"MSH") or len(head) < 4:
        return ""
    fields = head.split(head[3:4])
    return fields[9].decode("latin-1").strip() if len(fields) > 9 else ""


def msa_of(ack: bytes) -> tuple[str, str]:
    """(MSA-1, MSA-2) of an ACK, via the hub's own reader."""
    from isthmus.formats.hl7v2 import ack_code  # noqa: PLC0415 - pure helper

    code, cid = ack_code(ack)
    return code, cid


def has_err(ack: bytes) -> bool:
    return any(seg.startswith(b"ERR") for seg in ack.split(CR))


@dataclass(frozen=True)
class CorpusMessage:
    source: str  # file name (relative to the corpus) and index in it
    raw: bytes
    control_id: str
    message_type: str  # MSH-9.1^MSH-9.2


def split_hl7_file(data: bytes) -> list[bytes]:
    """Individual messages of a file: drop a BOM and FHS/BHS/BTS/FTS, split before each MSH.

    Segments come back CR-separated (files use LF, CRLF or CR), each message ending in CR.
    """
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    lines = data.replace(b"\r\n", b"\n").replace(b"\r", b"\n").split(b"\n")
    out: list[list[bytes]] = []
    for text in lines:
        line = text.rstrip()
        if not line or line[:3] in (b"FHS", b"BHS", b"BTS", b"FTS"):
            continue
        if line.startswith(b"MSH") or not out:
            out.append([])
        out[-1].append(line)
    return [CR.join(segs) + CR for segs in out if segs and segs[0].startswith(b"MSH")]


def _mtype(raw: bytes) -> str:
    head = raw.split(CR, 1)[0]
    fields = head.split(head[3:4])
    if len(fields) <= 8:
        return ""
    comps = fields[8].split(b"^")
    return "^".join(c.decode("latin-1") for c in comps[:2])


def corpus_messages(root: Path = CORPUS) -> list[CorpusMessage]:
    out = []
    for path in sorted(root.rglob("*.hl7")):
        rel = path.relative_to(root).as_posix()
        for i, raw in enumerate(split_hl7_file(path.read_bytes())):
            out.append(CorpusMessage(f"{rel}#{i}", raw, control_id_of(raw), _mtype(raw)))
    return out


def mllp_send_file(messages: Sequence[bytes], path: Path) -> None:
    """Write messages the way `mllp_send -f` reads them: each one framed <SB>msg<EB><CR>."""
    path.write_bytes(b"".join(SB + m + EB + CR for m in messages))


def parse_framed(stdout: bytes) -> list[bytes]:
    """The ACKs `mllp_send` printed: each one a raw <SB>ack<EB><CR> block, then a newline."""
    acks = []
    for chunk in stdout.split(SB)[1:]:
        body, sep, _ = chunk.partition(EB)
        assert sep, f"unterminated ACK in mllp_send output: {chunk[:80]!r}"
        acks.append(body)
    return acks


def run_mllp_send(
    port: int, messages: Sequence[bytes], workdir: Path, timeout: float = 120
) -> list[bytes]:
    """Send with python-hl7's real `mllp_send` CLI; one ACK per message, in order."""
    path = workdir / "mllp_send-input.hl7"
    mllp_send_file(messages, path)
    res = subprocess.run(
        [str(MLLP_SEND), "--port", str(port), "--file", str(path), HOST],
        capture_output=True,
        timeout=timeout,
        check=False,
    )
    assert res.returncode == 0, res.stderr.decode(errors="replace")
    return parse_framed(res.stdout)


def ledger_snapshot(data_dir: Path) -> dict[str, Any]:
    """What a ledger comparison needs: trial balance rows and totals, journal entry keys."""
    tb = isthmus_json("ledger", "trial-balance", data_dir=data_dir)
    journal = isthmus_json("ledger", "journal", "--limit", "100000000", data_dir=data_dir)
    return {
        "balanced": tb["balanced"],
        "rows": tb["rows"],
        "totals": tb["totals"],
        "entry_keys": sorted(e["entry_key"] for e in journal),
        "entries": len(journal),
    }


def iter_chunks(seq: Sequence[Any], n: int) -> Iterator[Sequence[Any]]:
    for i in range(0, len(seq), n):
        yield seq[i : i + n]
