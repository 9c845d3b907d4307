"""X12 835 throughput: Isthmus' reader and 835 parser against pyx12 and x12sdk.

Same files, same process, same run: every 835 of the shared corpus
(/work/shared/corpora/x12/linuxforhealth/835_005010X221A1), cycled. Each measurement is
bounded by time: three slices of ``--seconds / 3`` and the best slice is kept, which damps
the noise of a shared machine. Segments/s counts the segments of the files processed (the
same count for every workload).

Workloads:
  isthmus 835          bytes -> RemittanceBatch: envelope checks, every claim, line, CAS,
                       PLB as typed structs with Decimal money, and the balancing findings
  isthmus reader       bytes -> Interchange (segments cut, elements split lazily)
  x12sdk segments      x12sdk.io.X12SegmentReader(text).segments(): name + element lists
  x12sdk 835 models    x12sdk.io.X12ModelReader(text).models(): the pydantic 835 model
  pyx12 X12Reader      pyx12.x12file.X12Reader(StringIO(text)): segment iteration only

Usage: .venv/test/bin/python bench/bench_x12.py [--seconds N]
"""

from __future__ import annotations

import argparse
import io
import logging
import time
from collections.abc import Callable
from pathlib import Path

import pyx12.x12file
from x12sdk.io import X12ModelReader, X12SegmentReader

from isthmus.formats.x12 import parse_835, read

CORPUS = Path(__file__).resolve().parent.parent.parent / "shared/corpora/x12/linuxforhealth"


def ours(data: bytes) -> None:
    batch = parse_835(data)
    assert batch.remittances


def ours_reader(data: bytes) -> None:
    read(data)


def sdk_segments(text: str) -> None:
    with X12SegmentReader(text) as r:
        for _ in r.segments():
            pass


def sdk_models(text: str) -> None:
    with X12ModelReader(text) as r:
        for _ in r.models():
            pass


def pyx12_reader(text: str) -> None:
    with pyx12.x12file.X12Reader(io.StringIO(text)) as r:
        for _ in r:
            pass


def measure(
    fn: Callable[[object], None], items: list[object], sizes: list[int], seconds: float
) -> tuple[float, float]:
    """Best of three slices: (files/s, segments/s)."""
    best = (0.0, 0.0)
    n = len(items)
    for _ in range(3):
        files = segs = 0
        start = time.perf_counter()
        deadline = start + seconds / 3
        while True:
            for k in range(n):
                fn(items[k])
                segs += sizes[k]
            files += n
            if time.perf_counter() >= deadline:
                break
        took = time.perf_counter() - start
        if files / took > best[0]:
            best = (files / took, segs / took)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=2.0, help="per measurement")
    args = parser.parse_args()
    logging.disable(logging.WARNING)
    paths = sorted((CORPUS / "835_005010X221A1").glob("*.835"))
    blobs = [p.read_bytes() for p in paths]
    texts = [b.decode() for b in blobs]
    sizes = [len(read(b)) for b in blobs]
    workloads: list[tuple[str, Callable[[object], None], list[object]]] = [
        ("isthmus 835 (full, balanced)", ours, list(blobs)),  # type: ignore[list-item]
        ("isthmus reader (segments)", ours_reader, list(blobs)),  # type: ignore[list-item]
        ("x12sdk X12SegmentReader", sdk_segments, list(texts)),  # type: ignore[list-item]
        ("x12sdk X12ModelReader (835)", sdk_models, list(texts)),  # type: ignore[list-item]
        ("pyx12 X12Reader (segments)", pyx12_reader, list(texts)),  # type: ignore[list-item]
    ]
    results = []
    for name, fn, items in workloads:
        for item in items:
            fn(item)  # warm up, and check every workload reads every file
        results.append((name, *measure(fn, items, sizes, args.seconds)))
    ref = results[2][1]
    print(
        f"{len(paths)} corpus 835 files, {sum(sizes)} segments, "
        f"{args.seconds:g} s per measurement (best of 3 slices)\n"
    )
    print("| workload | files/s | segments/s | vs x12sdk segments |")
    print("|---|---:|---:|---:|")
    for name, fps, sps in results:
        print(f"| {name} | {fps:,.0f} | {sps:,.0f} | {fps / ref:.2f}x |")


if __name__ == "__main__":
    main()
