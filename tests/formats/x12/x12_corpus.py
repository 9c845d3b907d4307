"""Shared helpers for the X12 tests: where the corpus is, and small builders."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
CORPUS = ROOT / ".." / "shared" / "corpora" / "x12" / "linuxforhealth"


def corpus_files(pattern: str) -> list[Path]:
    """Corpus files matching ``pattern``; skip (or fail on CI) when the corpus is absent."""
    if not CORPUS.is_dir():
        if os.environ.get("CI") == "true":
            pytest.fail(f"X12 corpus missing at {CORPUS}")
        pytest.skip(f"X12 corpus missing at {CORPUS}")
    return sorted(p for p in CORPUS.glob(pattern) if p.suffix != ".txt")


def file_id(path: Path) -> str:
    return f"{path.parent.name}/{path.name}"


ISA = (
    "ISA*00*          *00*          *ZZ*SENDER         *ZZ*RECEIVER       "
    "*240102*1200*^*00501*000000123*0*T*:~"
)


def interchange(*transactions: list[str], gs_control: str = "7") -> str:
    """An interchange with one group holding the given transaction sets (body segments,
    ST/SE added with correct counts)."""
    out = [ISA, f"GS*HP*SENDER*RECEIVER*20240102*1200*{gs_control}*X*005010X221A1~"]
    for n, body in enumerate(transactions, start=1):
        control = f"{n:04d}"
        segs = [f"ST*835*{control}", *body, f"SE*{len(body) + 2}*{control}"]
        out.extend(s + "~" for s in segs)
    out.append(f"GE*{len(transactions)}*{gs_control}~")
    out.append("IEA*1*000000123~")
    return "".join(out)


def synthetic_835(sets: int, claims: int, *, seed: int = 1) -> Iterator[bytes]:
    """A balanced 835 interchange of ``sets`` transaction sets of ``claims`` claims each
    (two service lines per claim, amounts varying), generated a set at a time: a large
    file that never sits whole in memory."""
    yield (ISA + "GS*HP*SENDER*RECEIVER*20240102*1200*7*X*005010X221A1~").encode()
    for s in range(1, sets + 1):
        body = [
            f"ST*835*{s:04d}",
            "",
            f"TRN*1*{seed}{s:08d}*1512345678",
            "DTM*405*20240102",
            "N1*PR*SYNTHETIC PAYER",
            "N3*1 MAIN ST",
            "N4*CITY*ST*12345",
            "N1*PE*CLINIC*XX*1234567893",
            "LX*1",
        ]
        total = 0
        for c in range(claims):
            a = 100 + (c * 37 + s) % 900  # cents vary so amounts are not all alike
            b = 50 + (c * 11 + s) % 400
            paid = a + b - 20
            total += paid
            body += [
                f"CLP*PCN{s}-{c}*1*{a + b}.{c % 100:02d}*{paid}.{c % 100:02d}**12*PAYER{c}",
                f"NM1*QC*1*DOE*JANE****MI*M{c:07d}",
                "DTM*232*20240101",
                f"SVC*HC:99213*{a}.{c % 100:02d}*{a - 20}.{c % 100:02d}**1",
                "DTM*472*20240101",
                "CAS*CO*45*20.00",
                f"REF*6R*L{c}A",
                f"AMT*B6*{a - 20}.{c % 100:02d}",
                f"SVC*HC:85025*{b}.00*{b}.00**1",
                "DTM*472*20240101",
                f"REF*6R*L{c}B",
            ]
        cents = sum((c % 100) for c in range(claims))
        amount = f"{total + cents // 100}.{cents % 100:02d}"
        body[1] = (
            f"BPR*I*{amount}*C*ACH*CCP*01*999999999*DA*123456*1512345678**01*999988880"
            "*DA*98765*20240105"
        )
        body.append(f"SE*{len(body) + 1}*{s:04d}")
        yield ("~".join(body) + "~\n").encode()
    yield f"GE*{sets}*7~IEA*1*000000123~\n".encode()
