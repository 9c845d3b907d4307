"""Benchmark (c'): the worker alone, charge events to posted journal entries.

The end-to-end run of `bench_ingest.py` times the listener and the worker together in one
process, so the worker's own cost hides behind the GIL hand-offs and the machine's noise.
This one separates them:

  prepare DIR  `serve` with workers off takes N corpus-like DFT^P03 messages over MLLP
               (8 connections x 8 in flight) and stops: the store and bus hold N messages
               and their charge events, nothing posted.
  drain DIR    opens that data directory as `serve` would, drains the bus with one worker
               in this process and prints charge events per second. Run it on a copy: a
               drained store has nothing left to drain.
  compare      prepare once per tree (this tree, and a base tree given by --base-src,
               a checkout's `src` folder, for the schema it writes), then drain copies of
               each alternately --rounds times: the same machine in the same minutes.

Timings on a shared 2-core machine move by 20 % from one minute to the next; `--count`
runs each tree's drain under valgrind's callgrind instead and prints the instructions per
event (a drain of a fresh copy minus a drain of the drained copy, so start-up cancels out),
which do not move (docs/benchmarks.md).

Usage: .venv/test/bin/python bench/bench_worker.py compare --messages 2000 \
           [--base-src /tmp/wt-base/src] [--rounds 3] [--count]
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from isthmus.app import Hub  # the tree on PYTHONPATH decides which Hub this is
from isthmus.config import load_settings
from isthmus.demo.ehr_day import corpus_like

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from bench_ingest import send, start_ours, stop  # noqa: E402


def prepare(data: Path, messages: int) -> None:
    proc, mp, _ = start_ours(data, workers=0, sync="FULL")
    try:
        send(mp, corpus_like(messages, seed=88), 8, 8)
    finally:
        stop(proc)


def drain(data: Path) -> tuple[int, float]:
    settings = load_settings(data / "bench.toml", data_dir=data, env={"ISTHMUS_WORKERS": "1"})
    hub = Hub.open(settings)
    try:
        worker = hub.worker()
        t0 = time.perf_counter()
        done = worker.drain()
        return done, time.perf_counter() - t0
    finally:
        hub.close()


def _child(
    cmd: str, data: Path, src: str | None, messages: int = 0, count: bool = False
) -> tuple[str, int]:
    """Run this script's `cmd` in a child process on `src`; (its output, the instructions
    it ran when `count`, else 0)."""
    env = dict(os.environ)
    if src:
        env["PYTHONPATH"] = src
    args = [sys.executable, str(Path(__file__).resolve()), cmd, str(data)]
    if messages:
        args += ["--messages", str(messages)]
    if count:
        args = ["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null", *args]
    out = subprocess.run(args, env=env, check=True, capture_output=True, text=True)
    found = re.search(r"Collected : (\d+)", out.stderr) if count else None
    return out.stdout.strip(), int(found.group(1)) if found else 0


def _instructions(seed: Path, tmp: Path, src: str | None) -> int:
    """Instructions per event of one drain of a copy of `seed` (start-up subtracted)."""
    copy = tmp / "counted"
    shutil.rmtree(copy, ignore_errors=True)
    shutil.copytree(seed, copy)
    done, full = _child("drain", copy, src, count=True)
    _, empty = _child("drain", copy, src, count=True)  # the same start-up, nothing to drain
    return (full - empty) // max(1, int(done.split()[0]))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("cmd", choices=("prepare", "drain", "compare"))
    ap.add_argument("data", nargs="?", type=Path)
    ap.add_argument("--messages", type=int, default=2000)
    ap.add_argument("--base-src", default=None)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument(
        "--count",
        action="store_true",
        help="instructions per event under callgrind instead of timings",
    )
    args = ap.parse_args()
    if args.cmd == "prepare":
        prepare(args.data, args.messages)
        return
    if args.cmd == "drain":
        events, secs = drain(args.data)
        print(f"{events} {secs:.4f}")
        return
    trees: list[tuple[str, str | None]] = [("this tree", None)]
    if args.base_src:
        trees.append((f"base ({args.base_src})", args.base_src))
    with tempfile.TemporaryDirectory() as tmp:
        seeds: dict[str, Path] = {}
        for name, src in trees:
            seed = Path(tmp) / f"seed{len(seeds)}"
            _child("prepare", seed, src, args.messages)
            seeds[name] = seed
        if args.count:
            print("| tree | instructions / event |\n|---|---:|")
            for name, src in trees:
                print(f"| {name} | {_instructions(seeds[name], Path(tmp), src):,} |")
            return
        results: dict[str, list[float]] = {name: [] for name, _ in trees}
        for r in range(args.rounds):
            for name, src in trees:
                copy = Path(tmp) / f"run{r}-{len(results[name])}-{abs(hash(name))}"
                shutil.copytree(seeds[name], copy)
                drained, took = _child("drain", copy, src)[0].split()
                results[name].append(int(drained) / float(took))
                shutil.rmtree(copy)
    print(f"| tree | events/s ({args.rounds} drains of {args.messages} messages each) |")
    print("|---|---|")
    for name, rates in results.items():
        print(f"| {name} | {', '.join(f'{x:,.0f}' for x in rates)} |")


if __name__ == "__main__":
    main()
