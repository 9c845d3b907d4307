"""FHIR R4 finance decoding throughput: Isthmus' msgspec fast path against fhir.resources.

Same documents, same process, same run. The documents are every finance example of the
shared corpus (/work/shared/corpora/fhir-r4/examples: Account, ChargeItem, Claim,
ClaimResponse, Coverage, Encounter, ExplanationOfBenefit, Invoice, Patient, PaymentNotice,
PaymentReconciliation) and every finance resource taken out of the Synthea transaction
Bundles (Claim, ExplanationOfBenefit, Encounter, Patient), each serialized on its own, in
a fixed shuffled order so that any prefix is a fair mix. Each measurement is bounded by
time: three slices of ``--seconds / 3`` cycling over the documents; the best slice is kept.

Workloads:
  isthmus: decode + checks   decode_resource (resourceType sniffed, finance Struct, Decimal
                             amounts) then check_resource (required, ISO 4217, precision,
                             reference shapes): what the hub does on every resource
  isthmus: decode only       decode_resource
  fhir.resources R4B         <Model>.model_validate_json (pydantic, full R4B validation),
                             the model class chosen before timing (in its favour)

Usage: .venv/test/bin/python bench/bench_fhir.py [--seconds N]
"""

from __future__ import annotations

import argparse
import importlib
import json
import random
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

from isthmus.formats.fhir import FINANCE_TYPES, check_resource, decode_resource

CORPUS = Path("/work/shared/corpora/fhir-r4")


def load() -> list[tuple[str, bytes]]:
    """(resourceType, JSON bytes) of every finance document of the corpus."""
    docs: list[tuple[str, bytes]] = []
    for path in sorted((CORPUS / "examples").glob("*.json")):
        doc = json.loads(path.read_bytes())
        if doc.get("resourceType") in FINANCE_TYPES:
            docs.append((doc["resourceType"], path.read_bytes()))
    for path in sorted((CORPUS / "synthea").glob("*.json")):
        for entry in json.loads(path.read_bytes())["entry"]:
            res = entry["resource"]
            if res["resourceType"] in FINANCE_TYPES:
                docs.append((res["resourceType"], json.dumps(res).encode()))
    random.Random(4).shuffle(docs)
    return docs


def ours(rtype: str, doc: bytes) -> object:
    _, resource = decode_resource(doc)
    return check_resource(resource)


def ours_decode(rtype: str, doc: bytes) -> object:
    return decode_resource(doc)


def peer() -> Callable[[str, bytes], object]:
    models: dict[str, Any] = {
        name: getattr(importlib.import_module(f"fhir.resources.R4B.{name.lower()}"), name)
        for name in FINANCE_TYPES
    }

    def run(rtype: str, doc: bytes) -> object:
        return models[rtype].model_validate_json(doc)

    return run


def rate(
    fn: Callable[[str, bytes], object], docs: list[tuple[str, bytes]], seconds: float
) -> float:
    """Documents/s, best of three time-bounded slices cycling over the documents."""
    best = 0.0
    n = len(docs)
    for _ in range(3):
        done = 0
        start = now = time.perf_counter()
        deadline = start + seconds / 3
        while now < deadline:
            rtype, doc = docs[done % n]
            fn(rtype, doc)
            done += 1
            if done % 16 == 0:
                now = time.perf_counter()
        now = time.perf_counter()
        best = max(best, done / (now - start))
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=2.0, help="time per measurement")
    args = parser.parse_args()
    docs = load()
    counts = Counter(rtype for rtype, _ in docs)
    size = sum(len(doc) for _, doc in docs) / len(docs)
    print(
        f"{len(docs)} documents, {size:,.0f} bytes on average: "
        + ", ".join(f"{name} {n}" for name, n in counts.most_common())
    )
    fhir_resources = peer()
    for rtype, doc in docs:  # same documents: every one must pass both
        ours(rtype, doc)
        fhir_resources(rtype, doc)
    runs: list[tuple[str, Callable[[str, bytes], object]]] = [
        ("fhir.resources R4B model_validate_json", fhir_resources),
        ("isthmus: decode + checks", ours),
        ("isthmus: decode only", ours_decode),
    ]
    results = {name: rate(fn, docs, args.seconds) for name, fn in runs}
    base = results[runs[0][0]]
    print()
    print("| decoder / workload | documents/s | µs/document | vs fhir.resources |")
    print("|---|---:|---:|---:|")
    for name, value in results.items():
        print(f"| {name} | {value:,.0f} | {1e6 / value:,.1f} | {value / base:.1f}x |")


if __name__ == "__main__":
    main()
