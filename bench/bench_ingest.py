"""Benchmarks (b) durable MLLP ingest and (c) end to end, against python-hl7's MLLP server.

Each server runs in its own process; the client (ours, asyncio) runs here. Same messages,
same machine, same run, so the ratios hold even on a noisy machine.

(b) ingest: ACK after a durable commit (SQLite WAL, synchronous=FULL, and NORMAL for
    reference), workers off, with 1 and 8 connections, one message in flight per connection
    (how EHR senders behave) and 8 in flight (pipelined). Peer: python-hl7 parse + ACK,
    storing nothing.
(c) end to end: DFT^P03 charges sent over MLLP until every charge is a posted journal entry.

Usage: .venv/test/bin/python bench/bench_ingest.py [--messages 6000]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import IO

from isthmus.connectors.mllp_client import send_messages
from isthmus.demo.ehr_day import corpus_like

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_port(port: int, timeout: float = 20) -> None:
    end = time.time() + timeout
    while time.time() < end:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise RuntimeError(f"port {port} never opened")


def start_ours(
    data: Path,
    *,
    workers: int,
    sync: str,
    prefix: tuple[str, ...] = (),
    env_extra: dict[str, str] | None = None,
    stderr: int | IO[bytes] = subprocess.DEVNULL,
    wait_s: float = 20,
) -> tuple[subprocess.Popen[bytes], int, int]:
    """`serve` on `data` (a tool such as valgrind in `prefix`); (process, MLLP, HTTP port)."""
    mp, hp = free_port(), free_port()
    data.mkdir(mode=0o700, parents=True, exist_ok=True)  # serve refuses a readable one
    cfg = data / "bench.toml"
    cfg.write_text('[mappings]\ninclude = "demo"\n')  # the demo EHR's codes post
    env = {
        **os.environ,
        "ISTHMUS_WORKERS": str(workers),
        "ISTHMUS_SQLITE_SYNCHRONOUS": sync,
        "ISTHMUS_CONFIG": str(cfg),
        **(env_extra or {}),
    }
    proc = subprocess.Popen(
        [
            *prefix,
            sys.executable,
            "-m",
            "isthmus.cli.main",
            "serve",
            "--data-dir",
            str(data),
            "--mllp-port",
            str(mp),
            "--http-port",
            str(hp),
        ],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=stderr,
    )
    wait_port(mp, wait_s)
    wait_port(hp, wait_s)
    return proc, mp, hp


def start_peer() -> tuple[subprocess.Popen[bytes], int]:
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, str(ROOT / "bench" / "peer_hl7_server.py"), str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    wait_port(port)
    return proc, port


def start_floor(data: Path) -> tuple[subprocess.Popen[bytes], int]:
    port = free_port()
    proc = subprocess.Popen(
        [
            sys.executable,
            str(ROOT / "bench" / "floor_server.py"),
            str(port),
            str(data / "floor.db"),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    wait_port(port)
    return proc, port


def stop(proc: subprocess.Popen[bytes], wait_s: float = 30) -> None:
    proc.terminate()
    try:
        proc.wait(wait_s)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def send(port: int, msgs: list[bytes], conns: int, window: int) -> dict[str, float]:
    rep = asyncio.run(
        send_messages("127.0.0.1", port, msgs, connections=conns, window=window, timeout_s=120)
    )
    assert rep.failed == 0, f"{rep.failed} messages without ACK"
    return {"rate": rep.rate, "p50_ms": rep.p50 * 1000, "p99_ms": rep.p99 * 1000}


def metrics(hp: int) -> dict[str, object]:
    with urllib.request.urlopen(f"http://127.0.0.1:{hp}/api/v1/status", timeout=10) as r:
        return dict(json.loads(r.read()))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--messages", type=int, default=6000)
    args = ap.parse_args()
    n = args.messages
    rows: list[tuple[str, int, int, dict[str, float]]] = []
    for conns, window in ((1, 1), (8, 1), (8, 8)):
        batch = corpus_like(n, seed=conns * 10 + window)
        peer, pport = start_peer()
        try:
            rows.append(
                (
                    "python-hl7 asyncio server (parse+ACK, no storage)",
                    conns,
                    window,
                    send(pport, batch, conns, window),
                )
            )
        finally:
            stop(peer)
        with tempfile.TemporaryDirectory() as tmp:
            floor, fport = start_floor(Path(tmp))
            try:
                rows.append(
                    (
                        "durable floor (MSH split, raw row, FULL group commit)",
                        conns,
                        window,
                        send(fport, batch, conns, window),
                    )
                )
            finally:
                stop(floor)
        for sync in ("FULL", "NORMAL"):
            with tempfile.TemporaryDirectory() as tmp:
                proc, mp, _ = start_ours(Path(tmp), workers=0, sync=sync)
                try:
                    rows.append(
                        (
                            f"isthmus serve, durable ACK (synchronous={sync})",
                            conns,
                            window,
                            send(mp, batch, conns, window),
                        )
                    )
                finally:
                    stop(proc)
    print("### (b) MLLP ingest\n")
    print(f"{n} DFT^P03 messages per run.\n")
    print(
        "| server | connections | in flight/conn | msg/s | p50 ms | p99 ms | vs python-hl7 "
        "| of the floor |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    base: dict[tuple[int, int, int], dict[str, float]] = {}
    for name, c, w, r in rows:
        if name.startswith("python-hl7"):
            base[(c, w, 0)] = r
        elif name.startswith("durable floor"):
            base[(c, w, 1)] = r
        hl7_rate, floor_rate = base[(c, w, 0)]["rate"], base.get((c, w, 1), r)["rate"]
        print(
            f"| {name} | {c} | {w} | {r['rate']:,.0f} | {r['p50_ms']:.2f} | "
            f"{r['p99_ms']:.2f} | {r['rate'] / hl7_rate:.2f}x | "
            f"{r['rate'] / floor_rate:.0%} |"
        )

    print("\n### (c) end to end: DFT charge -> posted journal entry\n")
    batch = corpus_like(n, seed=99)
    with tempfile.TemporaryDirectory() as tmp:
        proc, mp, hp = start_ours(Path(tmp), workers=1, sync="FULL")
        try:
            t0 = time.perf_counter()
            ing = send(mp, batch, 8, 8)
            while True:
                m = metrics(hp)
                store = m["store"]
                assert isinstance(store, dict)
                if m["bus_pending"] == 0 and store["journal_entries"] >= n:
                    break
                time.sleep(0.02)
            total = time.perf_counter() - t0
        finally:
            stop(proc)
    print("| path | charges | seconds | charges/s (to ledger) | ingest msg/s |")
    print("|---|---:|---:|---:|---:|")
    print(
        f"| MLLP -> inbox -> bus -> ledger (1 worker, FULL) | {n} | {total:.2f} | "
        f"{n / total:,.0f} | {ing['rate']:,.0f} |"
    )


if __name__ == "__main__":
    main()
