"""837 claim edits: claims/s of Isthmus' edits against pyx12's validation, same file, same run.

The file is a synthetic 837P (005010X222A1, the guide pyx12 4.0 ships a map for): one
billing provider, ``--claims`` subscribers each with one claim of four service lines,
patient control numbers, amounts and dates varied, NPIs valid. Every workload starts from
the file's bytes:

  isthmus scrub        formats.x12.claim_edits.scrub: envelope, totals, NPI Luhn, required
                       loops, code sets, duplicate digests; one ScrubbedClaim per claim
  pyx12 x12n_document  pyx12's full validation against its X222A1 map, 999 written to a
                       StringIO (what `x12valid` does)

Rates are claims per second of process CPU time over ``--seconds`` slices, best of
``--rounds``. Run: .venv/test/bin/python bench/bench_claim_edits.py [--claims 500]
"""

from __future__ import annotations

import argparse
import io
import logging
import time
from collections.abc import Callable

import pyx12.params
import pyx12.x12n_document

from isthmus.formats.x12.claim_edits import scrub

ISA = (
    "ISA*00*          *00*          *ZZ*HOSPITAL       *ZZ*CLEARINGHOUSE  *240102*1200*^"
    "*00501*000000001*0*P*:~"
)


def synthetic_837(claims: int) -> bytes:
    body = [
        "ST*837*0001*005010X222A1",
        "BHT*0019*00*B1*20240102*1200*CH",
        "NM1*41*2*HOSPITAL*****46*TGJ23",
        "PER*IC*BILLING*TE*3055552222",
        "NM1*40*2*CLEARINGHOUSE*****46*66783JJT",
        "HL*1**20*1",
        "PRV*BI*PXC*203BF0100Y",
        "NM1*85*2*GENERAL HOSPITAL*****XX*1234567893",
        "N3*1 MAIN ST",
        "N4*MIAMI*FL*331110000",
        "REF*EI*587654321",
    ]
    for c in range(claims):
        a, b = 40 + c % 50, 15 + c % 20
        day = f"202401{1 + c % 28:02d}"
        body += [
            f"HL*{c + 2}*1*22*0",
            "SBR*P*18*******CI",
            f"NM1*IL*1*DOE*JANE****MI*M{c:08d}",
            "N3*2 OAK ST",
            "N4*MIAMI*FL*33111",
            "DMG*D8*19730501*F",
            "NM1*PR*2*KEY INSURANCE*****PI*999996666",
            f"CLM*PCN{c:07d}*{2 * (a + b)}.00***11:B:1*Y*A*Y*Y",
            "HI*ABK:J020*ABF:R05",
        ]
        for n, (code, amt) in enumerate(
            [("99213", a), ("87070", b), ("99214", a), ("86663", b)], start=1
        ):
            body += [f"LX*{n}", f"SV1*HC:{code}*{amt}.00*UN*1***1", f"DTP*472*D8*{day}"]
    body.append(f"SE*{len(body) + 1}*0001")
    text = (
        ISA
        + "GS*HC*HOSPITAL*CLEARINGHOUSE*20240102*1200*1*X*005010X222A1~"
        + "~".join(body)
        + "~GE*1*1~IEA*1*000000001~"
    )
    return text.encode()


def ours(data: bytes) -> int:
    claims = scrub(data)
    assert all(c.clean for c in claims)
    return len(claims)


def pyx12_validate(data: bytes) -> int:
    param = pyx12.params.params()
    ack = io.StringIO()
    ok = pyx12.x12n_document.x12n_document(param, io.StringIO(data.decode()), ack, None)
    assert ok, "pyx12 found errors in the synthetic file"
    return 0


def measure(fn: Callable[[bytes], int], data: bytes, claims: int, seconds: float) -> float:
    done = 0
    start = time.process_time()
    while True:
        fn(data)
        done += claims
        if time.process_time() - start >= seconds:
            break
    return done / (time.process_time() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--claims", type=int, default=500)
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    logging.getLogger("pyx12").setLevel(logging.CRITICAL)  # it logs every error it finds
    data = synthetic_837(args.claims)
    assert ours(data) == args.claims
    pyx12_validate(data)
    results = {}
    for name, fn in (
        ("pyx12 x12n_document (validation)", pyx12_validate),
        ("isthmus claim_edits.scrub", ours),
    ):
        results[name] = max(
            measure(fn, data, args.claims, args.seconds) for _ in range(args.rounds)
        )
    base = results["pyx12 x12n_document (validation)"]
    print(
        f"837P, {args.claims} claims, {len(data):,} bytes; best of {args.rounds} x "
        f"{args.seconds:g}s CPU"
    )
    print("| workload | claims/s | vs pyx12 |\n|---|---:|---:|")
    for name, rate in results.items():
        print(f"| {name} | {rate:,.0f} | {rate / base:.1f}x |")


if __name__ == "__main__":
    main()
