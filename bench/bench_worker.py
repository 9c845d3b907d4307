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

Timings on a shared 2-core machine move by 20 % from one minute to the next; run `drain`
under `valgrind --tool=callgrind --callgrind-out-file=/dev/null` for an instruction count
that does not (docs/benchmarks.md gives the counts and how they were taken).

Usage: .venv/test/bin/python bench/bench_worker.py compare --messages 2000 \
           [--base-src /tmp/wt-base/src] [--rounds 3]
"""

from __future__ import annotations

import argparse
import os
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
    settings = load_settings(data / "bench.toml", data_dir=data,
                             env={"ISTHMUS_WORKERS": "1"})
    hub = Hub.open(settings)
    try:
        worker = hub.worker()
        t0 = time.perf_counter()
        done = worker.drain()
        return done, time.perf_counter() - t0
    finally:
        hub.close()


def _child(cmd: str, data: Path, src: str | None, messages: int = 0) -> str:
    env = dict(os.environ)
    if src:
        env["PYTHONPATH"] = src
    args = [sys.executable, str(Path(__file__).resolve()), cmd, str(data)]
    if messages:
        args += ["--messages", str(messages)]
    out = subprocess.run(args, env=env, check=True, capture_output=True, text=True)
    return out.stdout.strip()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("cmd", choices=("prepare", "drain", "compare"))
    ap.add_argument("data", nargs="?", type=Path)
    ap.add_argument("--messages", type=int, default=2000)
    ap.add_argument("--base-src", default=None)
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    if args.cmd == "prepare":
        prepare(args.data, args.messages)
        return
    if args.cmd == "drain":
        done, secs = drain(args.data)
        print(f"{done} {secs:.4f}")
        return
    trees: list[tuple[str, str | None]] = [("this tree", None)]
    if args.base_src:
        trees.append((f"base ({args.base_src})", args.base_src))
    with tempfile.TemporaryDirectory() as tmp:
        seeds = {}
        for name, src in trees:
            seed = Path(tmp) / f"seed{len(seeds)}"
            _child("prepare", seed, src, args.messages)
            seeds[name] = seed
        results: dict[str, list[float]] = {name: [] for name, _ in trees}
        for r in range(args.rounds):
            for name, src in trees:
                copy = Path(tmp) / f"run{r}-{len(results[name])}-{abs(hash(name))}"
                shutil.copytree(seeds[name], copy)
                done, secs = _child("drain", copy, src).split()
                results[name].append(int(done) / float(secs))
                shutil.rmtree(copy)
    print(f"| tree | events/s ({args.rounds} drains of {args.messages} messages each) |")
    print("|---|---|")
    for name, rates in results.items():
        print(f"| {name} | {', '.join(f'{x:,.0f}' for x in rates)} |")


if __name__ == "__main__":
    main()
