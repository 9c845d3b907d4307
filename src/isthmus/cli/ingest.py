"""`isthmus ingest FILE... [--apply]`: take files once through the same inbox as the listeners.

X12 interchanges (835 remittances, 837 claims) and HL7 v2 files or batches. Each X12
interchange is stored on channel `x12` (idempotent on `<ISA06>:<ISA13>` and its content
hash) and answered with a 999, or a TA1 for an envelope error, written to
`<data_dir>/outbound/x12/<ISA13>.999` (or `.ta1`). Events go to the bus; `--apply`
processes them in this command, otherwise a running `serve` does. The decisions are in
`flows/files.py`; this shell reads, stores, writes and reports.

Exit code 0 when every file was taken, 1 when one could not be read or was rejected.
"""

from __future__ import annotations

import argparse
import os
import time
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

from isthmus.app import CHANNEL as HL7_CHANNEL
from isthmus.app import Hub
from isthmus.flows.files import (
    HL7,
    X12,
    HL7ParseError,
    X12Intake,
    detect,
    hl7_intake,
    split_interchanges,
    x12_intake,
)
from isthmus.flows.inbox import relay_unpublished
from isthmus.model import ClaimRemitted, ProviderAdjusted

Result = tuple[Any, Callable[[Any], str], int]


def _write_atomic(path: Path, body: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_bytes(body)
    os.replace(tmp, path)


def _x12(hub: Hub, raw: bytes, name: str, now: float) -> dict[str, Any]:
    out_dir = hub.settings.data_dir / "outbound" / "x12"
    intake: X12Intake = x12_intake(raw, peer=f"file:{name}", now=now,
                                   tenant=hub.settings.tenant)
    [res] = hub.store.accept([intake.inbound])
    if res.conflict:  # ISA13 reused with other content: a distinct interchange
        intake = x12_intake(raw, peer=f"file:{name}", now=now, tenant=hub.settings.tenant,
                            distinct=True)
        [res] = hub.store.accept([intake.inbound])
    ack_path = out_dir / intake.ack_name
    if not res.duplicate or not ack_path.exists():
        _write_atomic(ack_path, intake.ack)
    claims = [k.event for k in intake.events if isinstance(k.event, ClaimRemitted)]
    plbs = [k.event for k in intake.events if isinstance(k.event, ProviderAdjusted)]
    return {
        "file": name, "format": "x12", "kind": "+".join(intake.kinds),
        "message_id": res.message_id, "control_id": intake.inbound.control_id,
        "status": res.status, "ack": res.ack_code, "duplicate": res.duplicate,
        "ack_file": str(ack_path), "events": len(intake.events),
        "claims": len(claims), "paid": str(sum((c.paid for c in claims), Decimal(0))),
        "provider_adjustments": len(plbs),
        "error": res.error.split("|")[-1] if res.error else "",
        "findings": [str(x) for x in intake.findings],
        "balance_findings": len(intake.balance_findings),
        "held_transaction_sets": list(intake.held),
    }


def _hl7(hub: Hub, raw: bytes, name: str, now: float) -> list[dict[str, Any]]:
    s = hub.settings
    try:
        inbound = hl7_intake(raw, channel=HL7_CHANNEL, peer=f"file:{name}", now=now,
                             tenant=s.tenant, currency=s.channel(HL7_CHANNEL).currency)
    except HL7ParseError as exc:
        return [{"file": name, "format": "hl7", "status": "unreadable", "ack": "",
                 "duplicate": False, "error": str(exc)}]
    stored = hub.store.accept(inbound)
    return [{"file": name, "format": "hl7", "kind": m.message_type, "message_id": r.message_id,
             "control_id": m.control_id, "status": r.status, "ack": r.ack_code,
             "duplicate": r.duplicate, "error": r.error.split("|")[-1] if r.error else ""}
            for m, r in zip(inbound, stored, strict=True)]


def ingest(hub: Hub, args: argparse.Namespace) -> Result:
    rows: list[dict[str, Any]] = []
    now = time.time()
    for path in args.files:
        raw = Path(path).read_bytes()
        kind = detect(raw)
        if kind == X12:
            rows += [_x12(hub, part, Path(path).name, now) for part in split_interchanges(raw)]
        elif kind == HL7:
            rows += _hl7(hub, raw, Path(path).name, now)
        else:
            rows.append({"file": Path(path).name, "format": "unknown", "status": "unreadable",
                         "ack": "", "duplicate": False,
                         "error": "neither X12 (ISA) nor HL7 v2 (MSH, FHS, BHS)"})
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
        if r.get("duplicate"):
            line += ", already taken: nothing changed"
        if r["format"] == "x12" and r.get("claims") is not None:
            line += (f", {r['claims']} claim payment(s) paid {r['paid']}, "
                     f"{r['provider_adjustments']} PLB, {r['balance_findings']} balancing "
                     f"finding(s); ack {r['ack_file']}")
        if r.get("held_transaction_sets"):
            line += (f"\n    held (nothing posted): transaction set(s) "
                     f"{', '.join(r['held_transaction_sets'])}")
        if r.get("error"):
            line += f"\n    error: {r['error']}"
        for f in r.get("findings", [])[:10]:
            line += f"\n    finding: {f}"
        out.append(line)
    out.append(f"{len(d['items'])} item(s), {d['refused']} refused; "
               f"{d['applied']} event(s) applied now")
    return "\n".join(out)
