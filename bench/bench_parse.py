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

Usage: .venv/test/bin/python bench/bench_parse.py [--seconds N]
"""

from __future__ import annotations

import argparse
import logging
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=2.0, help="time per measurement")
    args = parser.parse_args()
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
