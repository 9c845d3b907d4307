"""Shared helpers for the FHIR tests: the R4 example and Synthea corpora, independent readers."""

from __future__ import annotations

import json
import os
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from isthmus.formats.fhir import FINANCE_TYPES

ROOT = Path(__file__).resolve().parents[3]
CORPUS = ROOT.parent / "shared" / "corpora" / "fhir-r4"
EXAMPLES = sorted((CORPUS / "examples").glob("*.json"))
SYNTHEA = sorted((CORPUS / "synthea").glob("*.json"))


def require_corpus() -> None:
    """Skip when the shared corpus is absent, except on CI where it must be there."""
    if not EXAMPLES or not SYNTHEA:
        if os.environ.get("CI") == "true":
            pytest.fail(f"FHIR corpus missing at {CORPUS}")
        pytest.skip(f"FHIR corpus missing at {CORPUS}")


def load_json(path: Path) -> Any:
    """The reference reading: the standard library, numbers as exact Decimals."""
    return json.loads(path.read_bytes(), parse_float=Decimal, parse_int=Decimal)


def example(name: str) -> bytes:
    require_corpus()
    return (CORPUS / "examples" / f"{name}.json").read_bytes()


def finance_examples() -> list[Path]:
    return [p for p in EXAMPLES if p.name.split("-")[0] in FINANCE_TYPES]


def other_examples() -> list[Path]:
    return [p for p in EXAMPLES if p.name.split("-")[0] not in FINANCE_TYPES]


def ids(paths: list[Path]) -> list[str]:
    return [p.stem for p in paths]
