"""Benchmark: what the ACK path costs a message, without sockets, threads or the store.

`bench_ingest.py` times `serve` end to end, where the event loop, the group commit and the
client share two cores and the machine's speed moves by 20 % from one minute to the next.
This one runs only what decides and builds the answer, in one process: `classify` (parse,
identity, card check, message table, events with business keys) and the ACK, for N
corpus-like DFT^P03 messages (`demo.ehr_day.corpus_like`, the same generator as the ingest
benchmark), generated once by this tree and read from one file by every tree measured, so
that the generator's own cost and changes are not counted. With `--count` each tree runs
under valgrind's callgrind and the result is instructions per message (N messages minus
none, so start-up cancels out); without it, messages per second, best of three.

With `--serve --count` the whole ACK path is counted instead: `isthmus serve` (workers off,
SQLite synchronous=FULL) under callgrind takes the same messages over MLLP on one
connection, one in flight (how an EHR interface sends), each answered after its durable
commit; instructions per message are a run with N messages minus a run with none that
stays up as long (so that the timers `serve` runs by the clock cancel out).

Usage: .venv/test/bin/python bench/bench_ack_path.py [--messages 1000] \
           [--base-src /tmp/wt-base/src] [--count [--serve]]
(`--base-src`: the `src` folder of another checkout, e.g. the commit before an issue.)
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from isthmus.demo.ehr_day import corpus_like

try:
    from isthmus.flows.hl7_inbound import classify, decode_error
except ImportError:  # a tree from before the inbox was split (the base of issue 14)
    from isthmus.flows.inbox import classify, decode_error  # type: ignore[attr-defined,no-redef]
from isthmus.formats.hl7v2 import build_ack

sys.path.insert(0, str(Path(__file__).resolve().parent))  # bench_ingest, for --serve

SEP = b"\n\x1c\n"  # between two messages in the corpus file (MLLP's end byte)


def run(corpus: Path, n: int) -> float:
    """Classify and answer the first `n` messages of `corpus`; the seconds it took."""
    msgs = corpus.read_bytes().split(SEP)[:n]
    t0 = time.perf_counter()
    for raw in msgs:
        inbound, msg = classify(
            raw, channel="mllp", peer="127.0.0.1", now=time.time(), tenant="bench", currency="USD"
        )
        build_ack(
            msg,
            inbound.ack_code,  # type: ignore[arg-type]
            error=decode_error(inbound.error),
            original=raw,
        )
    return time.perf_counter() - t0


def _child(corpus: Path, src: str | None, n: int, count: bool) -> str:
    env = dict(os.environ)
    if src:
        env["PYTHONPATH"] = src
    args = [
        sys.executable,
        str(Path(__file__).resolve()),
        "--child",
        str(n),
        "--corpus",
        str(corpus),
    ]
    args += ["--repeat", "1" if count else "3"]
    if count:
        args = ["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null", *args]
    out = subprocess.run(args, env=env, check=True, capture_output=True, text=True)
    if count:
        found = re.search(r"Collected : (\d+)", out.stderr)
        assert found, "valgrind printed no instruction count"
        return found.group(1)
    return out.stdout.strip()


def _serve_count(corpus: Path, src: str | None, n: int, idle_s: float = 0.0) -> tuple[int, float]:
    """(instructions, seconds it took to send) of `serve` taking the first `n` messages of
    `corpus` one at a time; with none, `serve` stays up `idle_s` seconds instead."""
    from bench_ingest import send, start_ours, stop  # noqa: PLC0415 - only for --serve

    msgs = corpus.read_bytes().split(SEP)[:n]
    with tempfile.TemporaryDirectory() as tmp:
        log = Path(tmp) / "valgrind.log"  # a file: serve's own log lines never fill a pipe
        tool = ("valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null")
        with log.open("wb") as err:
            proc, mllp, _ = start_ours(
                Path(tmp) / "data",
                workers=0,
                sync="FULL",
                prefix=tool,
                env_extra={"PYTHONPATH": src} if src else {},
                stderr=err,
                wait_s=600,
            )
            t0 = time.perf_counter()
            try:
                if msgs:
                    send(mllp, msgs, 1, 1)
                else:
                    time.sleep(idle_s)
            finally:
                took = time.perf_counter() - t0
                stop(proc, wait_s=600)
        found = re.search(r"Collected : (\d+)", log.read_text(errors="replace"))
    assert found, "valgrind printed no instruction count"
    return int(found.group(1)), took


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--messages", type=int, default=1000)
    ap.add_argument("--base-src", default=None)
    ap.add_argument("--count", action="store_true")
    ap.add_argument("--serve", action="store_true", help="with --count: serve over MLLP")
    ap.add_argument("--child", type=int, default=None, help=argparse.SUPPRESS)
    ap.add_argument("--corpus", type=Path, default=None, help=argparse.SUPPRESS)
    ap.add_argument("--repeat", type=int, default=3, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child is not None:
        print(f"{min(run(args.corpus, args.child) for _ in range(args.repeat)):.6f}")
        return
    trees: list[tuple[str, str | None]] = [("this tree", None)]
    if args.base_src:
        trees.append((f"base ({args.base_src})", args.base_src))
    n = args.messages
    unit = "instructions / message" if args.count else "messages / s (best of 3)"
    print(f"| tree | {unit} |\n|---|---:|")
    with tempfile.TemporaryDirectory() as tmp:
        # every tree reads the same messages: the generator is not what is measured
        corpus = Path(tmp) / "corpus.hl7"
        corpus.write_bytes(SEP.join(corpus_like(max(n, 1), seed=7)[:n]))
        for name, src in trees:
            if args.count and args.serve:
                # the run with none stays up as long as the messages took: serve's timers
                # (a tick a second here and there) run by the clock, and under valgrind a
                # message takes fifty times as long, so they would be counted as its cost
                full, took = _serve_count(corpus, src, n)
                empty, _ = _serve_count(corpus, src, 0, idle_s=took)
                print(f"| {name} | {(full - empty) // n:,} |")
            elif args.count:
                full = int(_child(corpus, src, n, True))
                empty = int(_child(corpus, src, 0, True))  # reads the file, classifies none
                print(f"| {name} | {(full - empty) // n:,} |")
            else:
                print(f"| {name} | {n / float(_child(corpus, src, n, False)):,.0f} |")


if __name__ == "__main__":
    main()
