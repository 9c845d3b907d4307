"""`isthmus ingest FILE... [--apply]`: take files once through the same inbox as the listeners.

X12 interchanges (835 remittances, 837 claims) and HL7 v2 files or batches. Each X12
interchange is stored on channel `x12` (idempotent on `<ISA06>:<ISA13>` and its content
hash) and answered with a 999, or a TA1 for an envelope error, written to
`<data_dir>/outbound/x12/<ISA13>.999` (or `.ta1`). A settlement or bank deposit CSV is one
inbox record (channel `settlement` or `bank`, idempotent on its content hash), refused whole
with every finding when one row is bad (`flows/settlement_intake.py`). A FHIR Bundle
file (transaction, batch
or collection) is one transaction on channel `fhir`, as `POST /fhir` takes it; a refused
one is kept as rejected and reported with its OperationOutcome issues (the status it would
get over HTTP, 400 or 422). Events go to the bus; `--apply`
processes them in this command, otherwise a running `serve` does. The decisions are in
`flows/files.py`; this shell reads, stores, writes and reports.

Exit code 0 when every file was taken, 1 when one could not be read or was rejected.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from isthmus.app import Hub
from isthmus.flows.file_intake import take_file
from isthmus.flows.relay import relay_unpublished

Result = tuple[Any, Callable[[Any], str], int]


def ingest(hub: Hub, args: argparse.Namespace) -> Result:
    """`isthmus ingest`: take each file through the inbox, relay what is unpublished, and
    apply it now with `--apply`; exit 1 when a file was refused."""
    rows: list[dict[str, Any]] = []
    now = time.time()
    for path in args.files:
        rows += take_file(hub.store, hub.settings, Path(path), Path(path).name, now)
    relayed = relay_unpublished(hub.store, hub.bus)
    applied = hub.worker().drain() if args.apply else 0
    bad = sum(r["status"] != "accepted" for r in rows)
    data = {"items": rows, "relayed_messages": relayed, "applied": applied, "refused": bad}
    return data, _render, 1 if bad else 0


def _render(d: dict[str, Any]) -> str:
    out = []
    for r in d["items"]:
        line = f"{r['file']}: {r['format']} {r.get('kind', '')} {r['status']}"
        if r.get("ack"):
            line += f" ({r['ack']})"
        if r["format"] == "fhir" and r["status"] == "accepted":
            line += f", {r['entries']} entries, {r['created']} new"
        if r.get("duplicate"):
            line += ", already taken: nothing changed"
        if r["format"] == "x12" and r.get("claims") is not None:
            line += (
                f", {r['claims']} claim payment(s) paid {r['paid']}, "
                f"{r['provider_adjustments']} PLB, {r['balance_findings']} balancing "
                f"finding(s); ack {r['ack_file'] or 'none (not acknowledged)'}"
            )
        if r.get("held_transaction_sets"):
            line += (
                f"\n    held (nothing posted): transaction set(s) "
                f"{', '.join(r['held_transaction_sets'])}"
            )
        if r.get("error"):
            line += f"\n    error: {r['error']}"
        for f in r.get("findings", [])[:10]:
            line += f"\n    finding: {f}"
        out.append(line)
    out.append(
        f"{len(d['items'])} item(s), {d['refused']} refused; {d['applied']} event(s) applied now"
    )
    return "\n".join(out)
