"""Taking one file through the inbox: X12 interchanges, HL7 v2 files or batches, settlement
CSVs, FHIR Bundles (transaction, batch or collection, taken as one transaction on channel
`fhir`, exactly as `POST /fhir` takes it).

Shared by `isthmus ingest` (the CLI shell) and the watched drop folder (`connectors.folder`).
Each X12 interchange is stored on channel `x12`, idempotent on `<ISA06>:<ISA13>` and its
content hash, and answered with a 999 (or a TA1 for an envelope error) written to
`<data_dir>/outbound/x12/<ISA13>.999`; HL7 messages are classified exactly as the MLLP
listener does. The decisions are in `flows/files.py` and `flows/interchanges.py`; this
module stores and writes.

An X12 file over `STREAM_OVER` bytes is never loaded whole: it is read in 1 MiB blocks
(`formats.x12.stream`), once for the envelope checks of the whole interchange, then a
transaction set at a time, each set taken as an interchange of its own (its ISA and GS,
the set, a GE and IEA for one) with control id `<ISA06>:<ISA13>/<GS06>/<ST02>` and its own
999, so memory is bounded by the largest set. When the interchange's own envelope is in
error at interchange or group level (what a set alone would not show), the file is taken
whole as before, to be answered with its TA1 or 999 and kept for inspection.
"""

from __future__ import annotations

import hashlib
import os
from decimal import Decimal
from pathlib import Path
from typing import Any, Final

from isthmus.bus.ports import Bus
from isthmus.config import Settings
from isthmus.flows.clock import FixedClock
from isthmus.flows.fhir_intake import FhirIntake
from isthmus.flows.files import FHIR, HL7, TIMECARD, USAGE, X12, HL7ParseError, detect, hl7_intake
from isthmus.flows.inbox import MLLP_CHANNEL, settle
from isthmus.flows.intake import settle_reuse
from isthmus.flows.interchanges import X12Intake, owned_x12, split_interchanges, x12_intake
from isthmus.flows.labor_intake import timecard_intake
from isthmus.flows.relay import relay_unpublished
from isthmus.flows.settlement_intake import TYPES, csv_intake
from isthmus.flows.supply_intake import usage_intake
from isthmus.formats.x12 import Level, X12Error, X12Stream
from isthmus.formats.x12.finding import IK5_CONTROL_NOT_UNIQUE
from isthmus.formats.x12.stream import blocks
from isthmus.governance import ownership
from isthmus.model import ClaimRemitted, ProviderAdjusted
from isthmus.observe import tracing
from isthmus.store.ports import Accepted, Inbound, Store, StoredMessage

STREAM_OVER: Final = 16 << 20  # bytes: larger X12 files are taken a transaction set at a time


class FileIntake:
    """Files through the inbox, then their events to the bus: what the drop folder (and
    `isthmus ingest`) hands complete files to (`connectors.folder.Intake`)."""

    def __init__(self, store: Store, bus: Bus, settings: Settings) -> None:
        self._store, self._bus, self._settings = store, bus, settings

    def take(self, path: Path, name: str, now: float) -> list[dict[str, Any]]:
        return take_file(self._store, self._settings, path, name, now)

    def relay(self) -> int:
        return relay_unpublished(self._store, self._bus)


def take_file(
    store: Store, settings: Settings, raw: bytes | Path, name: str, now: float
) -> list[dict[str, Any]]:
    """Store every message or interchange of one file (its bytes, or its path: then a large
    X12 file is streamed); one report row each."""
    if isinstance(raw, Path):
        if raw.stat().st_size > STREAM_OVER:
            with raw.open("rb") as f:
                head = f.read(64)
            if detect(head) == X12:
                rows = _x12_streamed(store, settings, raw, name, now)
                if rows is not None:
                    return rows
        raw = raw.read_bytes()
    kind = detect(raw)
    if kind == X12:
        return [_x12(store, settings, part, name, now) for part in split_interchanges(raw)]
    if kind == HL7:
        return _hl7(store, settings, raw, name, now)
    if kind in TYPES:
        return [_csv(store, settings, raw, name, now, kind)]
    if kind == FHIR:
        return [_fhir(store, settings, raw, name, now)]
    if kind == TIMECARD:
        return [_timecard(store, settings, raw, name, now)]
    if kind == USAGE:
        return [_usage(store, settings, raw, name, now)]
    return [
        {
            "file": name,
            "format": "unknown",
            "status": "unreadable",
            "ack": "",
            "duplicate": False,
            "error": "neither X12 (ISA), HL7 v2 (MSH, FHS, BHS), "
            "FHIR JSON, a settlement CSV nor a timecard",
        }
    ]


def _fhir(store: Store, settings: Settings, raw: bytes, name: str, now: float) -> dict[str, Any]:
    """A FHIR Bundle (or resource) file as one transaction (`flows.fhir_intake`); events are
    left for `relay_unpublished`. A file writing a data domain that its `meta.source` does
    not own ([ownership]) is kept as rejected, with the reason, and takes no effect."""
    write = ownership.fhir_write(raw)
    refused = ownership.decide(
        settings.ownership, ownership.fhir_domains(write.types), (write.source,)
    )
    if refused is not None:
        digest = hashlib.sha256(raw).hexdigest()
        rtype = write.types[0] if write.types else "unknown"
        [kept] = store.accept(
            [
                Inbound(
                    "fhir",
                    f"owner/{rtype}/{digest[:16]}",
                    raw,
                    now,
                    f"file:{name}",
                    "Bundle",
                    "rejected",
                    "AE",
                    refused.text,
                    b"",
                    digest,
                )
            ]
        )
        return {
            "file": name,
            "format": "fhir",
            "kind": "Bundle",
            "entries": len(write.types),
            "created": 0,
            "status": "rejected",
            "ack": "403",
            "duplicate": kept.duplicate,
            "error": refused.text,
            "message_id": kept.message_id,
            "findings": [],
        }
    res = FhirIntake(
        store,
        None,
        settings.tenant,
        clock=FixedClock(now),
        charges_from=settings.channel("fhir").charges_from,
    ).take_file(raw, f"file:{name}")
    statuses = [e.get("response", {}).get("status", "") for e in res.entries]
    return {
        "file": name,
        "format": "fhir",
        "kind": "Bundle",
        "entries": len(statuses),
        "created": sum(s.startswith("201") for s in statuses),
        "status": "accepted" if res.status == 200 else "rejected",
        "ack": str(res.status),
        "duplicate": res.status == 200 and not any(s.startswith("201") for s in statuses),
        "error": "; ".join(str(e) for e in res.errors[:3]),
        "findings": [str(e) for e in res.errors[3:]],
    }


def _write_atomic(path: Path, body: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_bytes(body)
    os.replace(tmp, path)


def _x12_streamed(
    store: Store, settings: Settings, path: Path, name: str, now: float
) -> list[dict[str, Any]] | None:
    """A large interchange a transaction set at a time; None when it must be taken whole."""
    try:
        with path.open("rb") as f:
            env = X12Stream(blocks(f)).check()
    except X12Error:
        return None  # the ISA is unusable: the whole-file path answers with a TA1
    if any(
        x.level in (Level.INTERCHANGE, Level.GROUP) or x.code == IK5_CONTROL_NOT_UNIQUE
        for x in env.findings
    ):
        return None
    rows = []
    with path.open("rb") as f:
        stream = X12Stream(blocks(f))
        for t in stream.transactions():
            part = t.interchange(stream.isa_text, stream.delimiters).encode(stream.encoding)
            gs06 = t.group.split(stream.delimiters.element)[6:7] or [""]
            rows.append(_x12(store, settings, part, name, now, part=f"{gs06[0]}/{t.control}"))
    return rows


def _x12(
    store: Store, settings: Settings, raw: bytes, name: str, now: float, part: str = ""
) -> dict[str, Any]:
    out_dir = settings.data_dir / "outbound" / "x12"
    intake: X12Intake = owned_x12(
        x12_intake(raw, peer=f"file:{name}", now=now, tenant=settings.tenant, part=part),
        settings.ownership,
    )
    spans = tracing.ingest_started([intake.inbound])
    stored = store.accept([intake.inbound])
    tracing.ingest_done(spans, stored)
    renewed: list[X12Intake] = []

    def distinct(_m: Inbound, _held: StoredMessage) -> Inbound:
        renewed.append(
            owned_x12(
                x12_intake(
                    raw,
                    peer=f"file:{name}",
                    now=now,
                    tenant=settings.tenant,
                    distinct=True,
                    part=part,
                ),
                settings.ownership,
            )
        )
        return renewed[0].inbound

    # An ISA13 reused with other content (sample files, senders that restart their
    # counters) is always a distinct interchange: X12 answers duplicates with its own
    # acknowledgements, so the reuse window is "none" (flows.intake.settle_reuse).
    [(_, res)] = settle_reuse(
        store, [intake.inbound], stored, window_s=-1.0, refuse=lambda m: m, renew=distinct
    )
    if isinstance(res, Exception):
        raise res
    intake = renewed[0] if renewed else intake
    ack_path = out_dir / intake.ack_name if intake.ack_name else None
    if ack_path is not None and (not res.duplicate or not ack_path.exists()):
        _write_atomic(ack_path, intake.ack)  # none for a 999 or TA1 (not acknowledged)
    claims = [k.event for k in intake.events if isinstance(k.event, ClaimRemitted)]
    plbs = [k.event for k in intake.events if isinstance(k.event, ProviderAdjusted)]
    return {
        "file": name,
        "format": "x12",
        "kind": "+".join(intake.kinds),
        "message_id": res.message_id,
        "control_id": intake.inbound.control_id,
        "status": res.status,
        "ack": res.ack_code,
        "duplicate": res.duplicate,
        "ack_file": str(ack_path or ""),
        "events": len(intake.events),
        "claims": len(claims),
        "paid": str(sum((c.paid for c in claims), Decimal(0))),
        "provider_adjustments": len(plbs),
        "error": res.error.split("|")[-1] if res.error else "",
        "findings": [str(x) for x in intake.findings],
        "balance_findings": len(intake.balance_findings),
        "held_transaction_sets": list(intake.held),
        "unbalanced_transaction_sets": list(intake.unbalanced),
    }


def _store_one(store: Store, inbound: Inbound) -> Accepted:
    """One file's inbox record, stored (idempotent on its control id), in an ingest span."""
    spans = tracing.ingest_started([inbound])
    [res] = store.accept([inbound])
    tracing.ingest_done(spans, [res])
    return res


def _csv(
    store: Store, settings: Settings, raw: bytes, name: str, now: float, kind: str
) -> dict[str, Any]:
    """A settlement or bank deposit file: one inbox record, all its rows or none."""
    intake = csv_intake(raw, kind=kind, peer=f"file:{name}", now=now, tenant=settings.tenant)
    res = _store_one(store, intake.inbound)
    return {
        "file": name,
        "format": kind,
        "kind": "CSV",
        "message_id": res.message_id,
        "control_id": intake.inbound.control_id,
        "status": res.status,
        "ack": res.ack_code,
        "duplicate": res.duplicate,
        "events": len(intake.events),
        "deposits": intake.deposits,
        "rows": intake.rows,
        "total": str(intake.total),
        "error": res.error.split("|")[-1] if res.error else "",
        "findings": [str(x) for x in intake.findings],
    }


def _usage(store: Store, settings: Settings, raw: bytes, name: str, now: float) -> dict[str, Any]:
    """A supply usage CSV (`flows.supply_intake`): one inbox record, all its rows or none."""
    intake = usage_intake(raw, peer=f"file:{name}", now=now, tenant=settings.tenant)
    res = _store_one(store, intake.inbound)
    return {
        "file": name,
        "format": USAGE,
        "kind": "CSV",
        "message_id": res.message_id,
        "control_id": intake.inbound.control_id,
        "status": res.status,
        "ack": res.ack_code,
        "duplicate": res.duplicate,
        "events": intake.events,
        "error": res.error.split("|")[-1] if res.error else "",
        "findings": [str(x) for x in intake.findings],
    }


def _timecard(
    store: Store, settings: Settings, raw: bytes, name: str, now: float
) -> dict[str, Any]:
    """A workforce timecard file (CSV or JSON): one inbox record, all its shifts or none."""
    intake = timecard_intake(raw, peer=f"file:{name}", now=now, tenant=settings.tenant)
    res = _store_one(store, intake.inbound)
    return {
        "file": name,
        "format": TIMECARD,
        "kind": "timecard",
        "message_id": res.message_id,
        "control_id": intake.inbound.control_id,
        "status": res.status,
        "ack": res.ack_code,
        "duplicate": res.duplicate,
        "events": len(intake.events),
        "error": intake.error,
        "findings": [str(x) for x in intake.findings],
    }


def _hl7(
    store: Store, settings: Settings, raw: bytes, name: str, now: float
) -> list[dict[str, Any]]:
    s = settings
    try:
        inbound = hl7_intake(
            raw,
            channel=MLLP_CHANNEL,
            peer=f"file:{name}",
            now=now,
            tenant=s.tenant,
            currency=s.channel(MLLP_CHANNEL).currency,
            owners=s.ownership,
            messages=s.channel(MLLP_CHANNEL).messages,
        )
    except HL7ParseError as exc:
        return [
            {
                "file": name,
                "format": "hl7",
                "status": "unreadable",
                "ack": "",
                "duplicate": False,
                "error": str(exc),
            }
        ]
    # the MLLP listener's conflict mechanism: a reused identity is AR 205 or a renewal
    settled = settle(
        store, inbound, store.accept(inbound), s.reliability.control_id_reuse_window_hours * 3600
    )
    rows = []
    for m, r in settled:
        if isinstance(r, Exception):
            raise r
        rows.append(
            {
                "file": name,
                "format": "hl7",
                "kind": m.message_type,
                "message_id": r.message_id,
                "control_id": m.control_id,
                "status": r.status,
                "ack": r.ack_code,
                "duplicate": r.duplicate,
                "error": r.error.split("|")[-1] if r.error else "",
            }
        )
    return rows
