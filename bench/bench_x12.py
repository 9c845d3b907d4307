"""X12 835 throughput: Isthmus' reader and 835 parser against pyx12 and x12sdk.

Same data, same process, same run, two data sets: every 835 of the shared corpus
(/work/shared/corpora/x12/linuxforhealth/835_005010X221A1, small files of about 30
segments, cycled), then one large generated 835 (``--sets`` transaction sets of
``--claims`` balanced claims, two service lines each, amounts varying). Each measurement
is bounded by process CPU time (time.process_time: the time the process was not running is
left out) in three rounds of one ``--seconds / 3`` slice per workload, the best slice
kept; that damps the noise of a shared machine. Compare ratios within a run, not absolute
rates across runs.
Segments/s counts the segments of the data processed (the same count for every workload).
Every workload starts from the same input, the file's bytes: x12sdk and pyx12 take text, so
their workloads decode it (UTF-8) first, as Isthmus' reader does inside ``read``. The
generated file varies what real 835s vary (amounts, write-offs, service dates over four
weeks, member ids, line control numbers), so a per-set memo of values is not flattered.

Workloads:
  isthmus 835          bytes -> RemittanceBatch: envelope checks, every claim, line, CAS,
                       PLB as typed structs with Decimal money, and the balancing findings
  isthmus reader       bytes -> Interchange (segments cut, elements split lazily)
  x12sdk segments      x12sdk.io.X12SegmentReader(text).segments(): name + element lists
  x12sdk 835 models    x12sdk.io.X12ModelReader(text).models(): the pydantic 835 model
  pyx12 X12Reader      pyx12.x12file.X12Reader(StringIO(text)): segment iteration only
                       (corpus only: it reads about 60k segments/s)
  isthmus 835 streamed the large file as 1 MiB blocks -> X12Stream.remittances(): the same
                       remittances and envelope checks, a transaction set at a time

Usage: .venv/test/bin/python bench/bench_x12.py [--seconds N] [--sets N] [--claims N]
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

from isthmus.formats.x12 import X12Stream, parse_835, read

BLOCK = 1 << 20

CORPUS = Path(__file__).resolve().parent.parent.parent / "shared/corpora/x12/linuxforhealth"


def ours(data: bytes) -> None:
    batch = parse_835(data)
    assert batch.remittances


def ours_reader(data: bytes) -> None:
    read(data)


def ours_streamed(data: bytes) -> None:
    s = X12Stream(data[k : k + BLOCK] for k in range(0, len(data), BLOCK))
    for _ in s.remittances():
        pass
    assert s.envelope is not None and not s.envelope.findings


def synthetic_835(sets: int, claims: int) -> bytes:
    """One interchange of ``sets`` balanced 835s of ``claims`` claims each."""
    isa = (
        "ISA*00*          *00*          *ZZ*SENDER         *ZZ*RECEIVER       "
        "*240102*1200*^*00501*000000123*0*T*:~"
    )
    out = [isa, "GS*HP*SENDER*RECEIVER*20240102*1200*7*X*005010X221A1~"]
    for n in range(1, sets + 1):
        body = [
            f"ST*835*{n:04d}",
            "",
            f"TRN*1*{n:08d}*1512345678",
            "DTM*405*20240102",
            "N1*PR*SYNTHETIC PAYER",
            "N3*1 MAIN ST",
            "N4*CITY*ST*12345",
            "N1*PE*CLINIC*XX*1234567893",
            "LX*1",
        ]
        cents = 0
        for c in range(claims):
            a, b, k = 100 + (c * 37 + n) % 900, 50 + (c * 11 + n) % 400, c % 100
            w = 5 + (c * 13 + n) % 60  # the CO-45 write-off varies, like the rest
            day = f"202401{1 + (c * 7 + n) % 28:02d}"  # service dates over four weeks
            cents += (a + b - w) * 100 + k
            body += [
                f"CLP*PCN{n}-{c}*1*{a + b}.{k:02d}*{a + b - w}.{k:02d}**12*PAYER{n}-{c}",
                f"NM1*QC*1*DOE*JANE****MI*M{n:04d}{c:05d}",
                f"DTM*232*{day}",
                f"SVC*HC:99213*{a}.{k:02d}*{a - w}.{k:02d}**1",
                f"DTM*472*{day}",
                f"CAS*CO*45*{w}.00",
                f"REF*6R*L{n}-{c}A",
                f"AMT*B6*{a - w}.{k:02d}",
                f"SVC*HC:85025*{b}.00*{b}.00**1",
                f"DTM*472*{day}",
                f"REF*6R*L{n}-{c}B",
            ]
        body[1] = f"BPR*I*{cents // 100}.{cents % 100:02d}*C*ACH************20240105"
        body.append(f"SE*{len(body) + 1}*{n:04d}")
        out.append("~\n".join(body) + "~\n")
    out.append(f"GE*{sets}*7~IEA*1*000000123~\n")
    return "".join(out).encode()


def sdk_segments(data: bytes) -> None:
    with X12SegmentReader(data.decode()) as r:
        for _ in r.segments():
            pass


def sdk_models(data: bytes) -> None:
    with X12ModelReader(data.decode()) as r:
        for _ in r.models():
            pass


def pyx12_reader(data: bytes) -> None:
    with pyx12.x12file.X12Reader(io.StringIO(data.decode())) as r:
        for _ in r:
            pass


def measure(
    fn: Callable[[object], None], items: list[object], sizes: list[int], seconds: float
) -> tuple[float, float]:
    """One slice of ``seconds`` of process CPU time: (files/s, segments/s)."""
    n = len(items)
    files = segs = 0
    start = time.process_time()
    deadline = start + seconds
    while True:
        for k in range(n):
            fn(items[k])
            segs += sizes[k]
        files += n
        if time.process_time() >= deadline:
            break
    took = time.process_time() - start
    return files / took, segs / took


Workload = tuple[str, Callable[[object], None], list[object]]


def run(title: str, blobs: list[bytes], workloads: list[Workload], seconds: float) -> None:
    sizes = [len(read(b)) for b in blobs]
    for _, fn, items in workloads:
        for item in items:
            fn(item)  # warm up, and check every workload reads every file
    best = [(0.0, 0.0)] * len(workloads)
    for _ in range(3):  # rounds: every workload one slice each, so a busy spell hits all
        for w, (_, fn, items) in enumerate(workloads):
            best[w] = max(best[w], measure(fn, items, sizes, seconds / 3))
    results = [(name, *best[w]) for w, (name, _, _) in enumerate(workloads)]
    ref = next(fps for name, fps, _ in results if name.startswith("x12sdk X12SegmentReader"))
    print(
        f"{title}: {len(blobs)} file(s), {sum(map(len, blobs)):,} bytes, {sum(sizes):,} "
        f"segments, {seconds:g} s CPU per workload (best of 3 rounds)\n"
    )
    print("| workload | files/s | segments/s | vs x12sdk segments |")
    print("|---|---:|---:|---:|")
    for name, fps, sps in results:
        print(f"| {name} | {fps:,.1f} | {sps:,.0f} | {fps / ref:.2f}x |")
    print()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=2.0, help="per measurement")
    parser.add_argument("--sets", type=int, default=20, help="large file: transaction sets")
    parser.add_argument("--claims", type=int, default=250, help="large file: claims per set")
    args = parser.parse_args()
    logging.disable(logging.WARNING)
    paths = sorted((CORPUS / "835_005010X221A1").glob("*.835"))
    blobs = [p.read_bytes() for p in paths]
    run(
        "Corpus 835s",
        blobs,
        [
            ("isthmus 835 (full, balanced)", ours, list(blobs)),  # type: ignore[list-item]
            ("isthmus reader (segments)", ours_reader, list(blobs)),  # type: ignore[list-item]
            ("x12sdk X12SegmentReader", sdk_segments, list(blobs)),  # type: ignore[list-item]
            ("x12sdk X12ModelReader (835)", sdk_models, list(blobs)),  # type: ignore[list-item]
            ("pyx12 X12Reader (segments)", pyx12_reader, list(blobs)),  # type: ignore[list-item]
        ],
        args.seconds,
    )
    big = synthetic_835(args.sets, args.claims)
    run(
        f"Generated 835 ({args.sets} sets x {args.claims} claims)",
        [big],
        [
            ("isthmus 835 (full, balanced)", ours, [big]),  # type: ignore[list-item]
            ("isthmus 835 streamed (1 MiB blocks)", ours_streamed, [big]),  # type: ignore[list-item]
            ("isthmus reader (segments)", ours_reader, [big]),  # type: ignore[list-item]
            ("x12sdk X12SegmentReader", sdk_segments, [big]),  # type: ignore[list-item]
        ],
        args.seconds,
    )


if __name__ == "__main__":
    main()
