"""HL7 v2 parse throughput: Isthmus' lazy parser against python-hl7 and hl7apy.

Same messages, same process, same run. Every parseable message of the shared corpus
(/work/shared/corpora/hl7v2) is used; messages hl7apy cannot read are left out for every
parser alike, and their number is reported. Each measurement is bounded by time: it runs
in three slices of ``--seconds / 3`` (cycling over the messages, so a slow parser covers
only part of the list) and keeps the best slice, which damps the noise of a shared machine.

Workloads:
  isthmus (hub)   parse, read MSH-9.1/9.2/9.3, MSH-10, PID-3, FT1-7/10/11 (what the hub reads)
  isthmus (full)  parse and break out every field of every segment (Segment.breakout)
  python-hl7      hl7.parse (builds the whole tree, like "full")
  hl7apy          hl7apy.parser.parse_message, tolerant validation, find_groups=False

With `--count` the two isthmus workloads run under valgrind's callgrind instead, over every
corpus message isthmus parses (hl7apy is not asked), and the result is instructions per
message (20 rounds minus none, so start-up cancels out), for this tree and, with
`--base-src`, another checkout's `src` in the same run.

Usage: .venv/test/bin/python bench/bench_parse.py [--seconds N] [--count [--base-src DIR]]
"""

from __future__ import annotations

import argparse
import logging
import os
import re
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import hl7
from hl7apy.consts import VALIDATION_LEVEL
from hl7apy.parser import parse_message as hl7apy_parse

from isthmus.formats.hl7v2 import HL7ParseError, parse_message, split_messages

CORPUS = Path("/work/shared/corpora/hl7v2")


def load() -> tuple[list[str], int]:
    """All corpus messages that every parser can read, and how many hl7apy refused."""
    texts: list[str] = []
    for path in sorted(CORPUS.glob("*/*.hl7")):
        try:
            texts.extend(split_messages(path.read_bytes()))
        except HL7ParseError:
            continue
    usable: list[str] = []
    refused = 0
    for text in texts:
        try:
            parse_message(text)
            hl7.parse(text)
        except (HL7ParseError, hl7.ParseException):
            continue
        try:
            hl7apy_parse(text, validation_level=VALIDATION_LEVEL.TOLERANT, find_groups=False)
        except Exception:
            refused += 1
            continue
        usable.append(text)
    return usable, refused


def hub(text: str) -> None:
    msg = parse_message(text)
    _ = (msg.message_type, msg.trigger_event, msg.structure, msg.control_id)
    pid = msg.segment("PID")
    if pid is not None:
        pid.value(3)
        pid.value(3, 4)
    for ft1 in msg.segments_named("FT1"):
        ft1.value(7)
        ft1.value(10)
        ft1.value(11)


def full(text: str) -> None:
    for seg in parse_message(text).segments:
        seg.breakout()


def apy(text: str) -> None:
    hl7apy_parse(text, validation_level=VALIDATION_LEVEL.TOLERANT, find_groups=False)


def rate(fn: Callable[[str], object], texts: list[str], seconds: float) -> float:
    """Messages/s, best of three time-bounded slices cycling over the messages."""
    best = 0.0
    n = len(texts)
    for _ in range(3):
        done = 0
        start = now = time.perf_counter()
        deadline = start + seconds / 3
        while now < deadline:
            fn(texts[done % n])
            done += 1
            if done % 16 == 0 or fn is apy:
                now = time.perf_counter()
        now = time.perf_counter()
        best = max(best, done / (now - start))
    return best


def _counted(rounds: int, workload: str) -> None:
    """The child of `--count`: `rounds` passes of one workload over the corpus."""
    texts = []
    for path in sorted(CORPUS.glob("*/*.hl7")):
        try:
            texts.extend(split_messages(path.read_bytes()))
        except HL7ParseError:
            continue
    usable = []
    for text in texts:
        try:
            parse_message(text)
        except HL7ParseError:
            continue
        usable.append(text)
    fn = hub if workload == "hub" else full
    for _ in range(rounds):
        for text in usable:
            fn(text)
    print(len(usable))


def count(base_src: str | None, rounds: int = 20) -> None:
    """Instructions per message of both workloads, this tree and `base_src`."""
    trees: list[tuple[str, str | None]] = [("this tree", None)]
    if base_src:
        trees.append((f"base ({base_src})", base_src))
    print("| tree | workload | instructions / message |\n|---|---|---:|")
    for name, src in trees:
        env = {**os.environ, **({"PYTHONPATH": src} if src else {})}
        for workload in ("hub", "full"):
            got = []
            for n in (rounds, 0):
                out = subprocess.run(
                    ["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null",
                     sys.executable, __file__, "--child", str(n), workload],
                    env=env, check=True, capture_output=True, text=True,
                )  # fmt: skip
                found = re.search(r"Collected : (\d+)", out.stderr)
                assert found, "valgrind printed no instruction count"
                got.append((int(found.group(1)), int(out.stdout.split()[-1])))
            (full_n, messages), (empty, _) = got
            print(f"| {name} | {workload} | {(full_n - empty) // (rounds * messages):,} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=2.0, help="time per measurement")
    parser.add_argument("--count", action="store_true", help="instructions, under callgrind")
    parser.add_argument("--base-src", default=None, help="with --count: another tree's src")
    parser.add_argument("--child", nargs=2, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        _counted(int(args.child[0]), args.child[1])
        return
    if args.count:
        count(args.base_src)
        return
    logging.disable(logging.CRITICAL)  # hl7apy logs every tolerated deviation
    texts, refused = load()
    print(f"{len(texts)} messages ({refused} left out: hl7apy could not parse them)\n")
    runs: list[tuple[str, Callable[[str], object]]] = [
        ("python-hl7 hl7.parse", hl7.parse),
        ("isthmus: parse + hub fields", hub),
        ("isthmus: parse + every field", full),
        ("hl7apy parse_message", apy),
    ]
    results = {name: rate(fn, texts, args.seconds) for name, fn in runs}
    base = results["python-hl7 hl7.parse"]
    print("| parser / workload | messages/s | vs python-hl7 |")
    print("|---|---:|---:|")
    for name, value in results.items():
        ratio = value / base
        shown = f"{ratio:.1f}x" if ratio >= 1 else f"{ratio:.3f}x"
        print(f"| {name} | {value:,.1f} | {shown} |")


if __name__ == "__main__":
    main()
