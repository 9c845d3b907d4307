"""Shared helpers for the X12 tests: where the corpus is, and small builders."""

from __future__ import annotations

import os
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
