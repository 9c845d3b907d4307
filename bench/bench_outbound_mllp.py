"""Benchmark: outbound MLLP delivery (the `mllp` destination) vs python-hl7's `mllp_send` client.

Both send the same DFT^P03 messages (isthmus.demo.ehr_day.corpus_like), one at a time,
each waiting for its ACK, over one held connection, to the same receiver in the same run:
python-hl7's asyncio MLLP server answering `create_ack()` (bench/peer_hl7_server.py, in its
own process). Ours is `connectors.dest_mllp.MllpDestination.send` (which also checks that
MSA-2 echoes MSH-10 and reads MSA-1/ERR); the peer client is `hl7.client.MLLPClient
.send_message`, what python-hl7's `mllp_send` command runs per message. Rounds alternate
(ours, theirs, ours, ...) so machine noise hits both; every round's rate is printed, with
the best and median of each and the median of the per-round ratios (a round's two runs
are back to back, so their ratio is the least noisy number).

A second receiver shows the clients' own cost: a bare asyncio MLLP answerer (this file,
`--serve-bare PORT`, in its own process) that reads MSH-10 and returns a canned AA with it,
without parsing, so the receiver is no longer what limits both clients.

Usage: .venv/test/bin/python bench/bench_outbound_mllp.py [--messages 2000] [--rounds 3]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

from hl7.client import MLLPClient

from isthmus.connectors.dest_mllp import MllpDestination
from isthmus.demo.ehr_day import corpus_like
from isthmus.ports.destination import Outgoing

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))
from bench_ingest import free_port, wait_port  # noqa: E402


def items(messages: list[bytes]) -> list[Outgoing]:
    out = []
    for i, body in enumerate(messages):
        control = body.split(b"\r", 1)[0].split(b"|")[9].decode()
        out.append(
            Outgoing(
                delivery_id=i,
                destination="billing",
                key=f"acct-{i % 50}",
                idempotency_key=control,
                event_type="ChargePosted",
                content_type="x-application/hl7-v2+er7",
                body=body,
                attempt=1,
            )
        )
    return out


def run_ours(port: int, outgoing: list[Outgoing]) -> float:
    dest = MllpDestination("billing", "127.0.0.1", port, timeout_s=30)
    try:
        started = time.perf_counter()
        for item in outgoing:
            answer = dest.send([item])
            if answer.code != "AA":
                raise RuntimeError(f"unexpected answer {answer.code}")
        return len(outgoing) / (time.perf_counter() - started)
    finally:
        dest.close()


def run_python_hl7(port: int, messages: list[str]) -> float:
    with MLLPClient("127.0.0.1", port) as client:
        started = time.perf_counter()
        for msg in messages:
            ack = client.send_message(msg)
            if b"MSA|AA" not in ack:
                raise RuntimeError("unexpected answer")
        return len(messages) / (time.perf_counter() - started)


async def _bare_client(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while True:
            block = await reader.readuntil(b"\x1c\r")
            control = block.split(b"\r", 1)[0].split(b"|")[9]
            writer.write(
                b"\x0bMSH|^~\\&|PEER|GH|ISTHMUS|HUB|20260101||ACK|"
                + control
                + b"|P|2.5.1\rMSA|AA|"
                + control
                + b"\x1c\r"
            )
            await writer.drain()
    except (asyncio.IncompleteReadError, ConnectionError):
        pass
    finally:
        writer.close()


async def _serve_bare(port: int) -> None:
    server = await asyncio.start_server(_bare_client, "127.0.0.1", port)
    async with server:
        await server.serve_forever()


def compare(
    peer_cmd: list[str], bodies: list[bytes], rounds: int
) -> tuple[list[float], list[float]]:
    """Rates of both clients against one receiver process, alternating rounds."""
    outgoing = items(bodies)
    texts = [b.decode() for b in bodies]
    port = free_port()
    peer = subprocess.Popen([*peer_cmd, str(port)])
    try:
        wait_port(port)
        warm = max(1, min(200, len(bodies) // 10))  # both clients, one warm-up pass
        run_ours(port, outgoing[:warm])
        run_python_hl7(port, texts[:warm])
        ours: list[float] = []
        theirs: list[float] = []
        for _ in range(rounds):
            ours.append(run_ours(port, outgoing))
            theirs.append(run_python_hl7(port, texts))
        return ours, theirs
    finally:
        peer.terminate()
        peer.wait(10)


def report(title: str, ours: list[float], theirs: list[float]) -> None:
    print(f"-- receiver: {title}")
    print(
        "rounds (msg/s): isthmus "
        + ", ".join(f"{r:,.0f}" for r in ours)
        + " | python-hl7 "
        + ", ".join(f"{r:,.0f}" for r in theirs)
    )
    best_ours, best_theirs = max(ours), max(theirs)
    paired = statistics.median(o / t for o, t in zip(ours, theirs, strict=True))
    print(
        f"isthmus dest_mllp (send + ACK check)   best {best_ours:8,.0f}  median "
        f"{statistics.median(ours):8,.0f} msg/s"
    )
    print(
        f"python-hl7 MLLPClient.send_message     best {best_theirs:8,.0f}  median "
        f"{statistics.median(theirs):8,.0f} msg/s"
    )
    print(
        f"ratio isthmus / python-hl7: best/best {best_ours / best_theirs:.2f}x, "
        f"median of the paired rounds {paired:.2f}x"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--serve-bare", type=int, metavar="PORT", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve_bare:
        asyncio.run(_serve_bare(args.serve_bare))
        return
    bodies = corpus_like(args.messages, seed=18)
    print(
        f"{args.messages} DFT^P03 messages, one at a time, one connection, {args.rounds} "
        f"alternating rounds per receiver; load average {os.getloadavg()[0]:.2f} at start"
    )
    hl7_peer = [sys.executable, str(ROOT / "bench" / "peer_hl7_server.py")]
    report(
        "python-hl7 asyncio MLLP server (parse + create_ack)",
        *compare(hl7_peer, bodies, args.rounds),
    )
    bare_peer = [sys.executable, str(Path(__file__).resolve()), "--serve-bare"]
    report("bare asyncio answerer (canned AA, no parse)", *compare(bare_peer, bodies, args.rounds))
    print(f"load average {os.getloadavg()[0]:.2f} at the end")


if __name__ == "__main__":
    main()
