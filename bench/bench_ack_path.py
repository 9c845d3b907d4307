"""Benchmark: what the ACK path costs a message, without sockets, threads or the store.

`bench_ingest.py` times `serve` end to end, where the event loop, the group commit and the
client share two cores and the machine's speed moves by 20 % from one minute to the next.
This one runs only what decides and builds the answer, in one process: `classify` (parse,
identity, card check, message table, events with business keys) and the ACK, for N
corpus-like DFT^P03 messages (`demo.ehr_day.corpus_like`, the same generator as the ingest
benchmark). With `--count` each tree runs under valgrind's callgrind and the result is
instructions per message (N messages minus none, so start-up cancels out); without it,
messages per second, best of three.

Usage: .venv/test/bin/python bench/bench_ack_path.py [--messages 1000] \
           [--base-src /tmp/wt-base/src] [--count]
(`--base-src`: the `src` folder of another checkout, e.g. the commit before an issue.)
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import time
from pathlib import Path

from isthmus.demo.ehr_day import corpus_like
from isthmus.flows.inbox import classify, decode_error
from isthmus.formats.hl7v2 import build_ack


def run(n: int) -> float:
    """Classify and answer `n` messages; the seconds it took."""
    msgs = corpus_like(max(n, 1), seed=7)[:n]
    t0 = time.perf_counter()
    for raw in msgs:
        inbound, msg = classify(
            raw, channel="mllp", peer="127.0.0.1", now=time.time(), tenant="bench", currency="USD"
        )
        build_ack(
            msg,
            inbound.ack_code,
            error=decode_error(inbound.error),  # type: ignore[arg-type]
            original=raw,
        )
    return time.perf_counter() - t0


def _child(src: str | None, n: int, count: bool) -> str:
    env = dict(os.environ)
    if src:
        env["PYTHONPATH"] = src
    args = [
        sys.executable,
        str(Path(__file__).resolve()),
        "--child",
        str(n),
        "--repeat",
        "1" if count else "3",
    ]
    if count:
        args = ["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null", *args]
    out = subprocess.run(args, env=env, check=True, capture_output=True, text=True)
    if count:
        found = re.search(r"Collected : (\d+)", out.stderr)
        assert found, "valgrind printed no instruction count"
        return found.group(1)
    return out.stdout.strip()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--messages", type=int, default=1000)
    ap.add_argument("--base-src", default=None)
    ap.add_argument("--count", action="store_true")
    ap.add_argument("--child", type=int, default=None, help=argparse.SUPPRESS)
    ap.add_argument("--repeat", type=int, default=3, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child is not None:
        print(f"{min(run(args.child) for _ in range(args.repeat)):.6f}")
        return
    trees: list[tuple[str, str | None]] = [("this tree", None)]
    if args.base_src:
        trees.append((f"base ({args.base_src})", args.base_src))
    n = args.messages
    unit = "instructions / message" if args.count else "messages / s (best of 3)"
    print(f"| tree | {unit} |\n|---|---:|")
    for name, src in trees:
        if args.count:
            full, empty = int(_child(src, n, True)), int(_child(src, 0, True))
            print(f"| {name} | {(full - empty) // n:,} |")
        else:
            print(f"| {name} | {n / float(_child(src, n, False)):,.0f} |")


if __name__ == "__main__":
    main()
