"""Settlement and bank deposit files taken once through the inbox: what each one says.

Pure decisions, like `flows.files` for X12: bytes in, the inbox record and its events out.
A file is one inbox record on channel `settlement` (processor settlement CSV) or `bank`
(bank deposit CSV), control id `sha256:<content hash>`: the same file again is a
duplicate and changes nothing. A file with any finding (a bad row, a missing column, a
deposit whose totals do not add up) is kept, rejected, with every finding (card numbers
sent by mistake masked to their last four digits), and contributes
no events at all: nothing of a bad file is posted. Once corrected it comes in as a new
file; its events carry ids and business keys of their own (`formats.settlement.events`),
so the rows already posted from another file do not post again, and a card transaction
listed again under another deposit is kept once (`flows.identity`).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Final

from isthmus.flows.intake import encoded, envelopes
from isthmus.formats.settlement import (
    BANK,
    SETTLEMENT,
    Finding,
    mask_cards,
    parse_bank,
    parse_settlement,
)
from isthmus.formats.settlement.events import bank_events, settlement_events
from isthmus.model import KeyedEvent
from isthmus.store.ports import Inbound

TYPES: Final = {SETTLEMENT: "settlement CSV", BANK: "bank deposit CSV"}


@dataclass(frozen=True)
class CsvIntake:
    """One settlement or deposit CSV read: its inbox record, findings, events and totals."""

    inbound: Inbound
    findings: tuple[Finding, ...]
    events: tuple[KeyedEvent, ...]
    deposits: int
    rows: int
    total: Decimal  # net of the processor deposits, or the sum of the bank credits


def _error(findings: tuple[Finding, ...]) -> str:
    """The inbox error column, shaped like the others: code|segment|index|element|0|text."""
    f = findings[0]
    more = f" (and {len(findings) - 1} more finding(s))" if len(findings) > 1 else ""
    return f"CSV|{f.column}|{f.row}|0|0|{f}{more}"


def csv_intake(raw: bytes, *, kind: str, peer: str, now: float, tenant: str) -> CsvIntake:
    """Read, check and map one settlement (`kind` "settlement") or bank ("bank") file."""
    digest = hashlib.sha256(raw).hexdigest()
    cid = f"sha256:{digest}"
    # a card number sent by mistake is never stored, in either kind of file
    kept = mask_cards(raw)
    if kind == SETTLEMENT:
        sf = parse_settlement(raw)
        findings, keyed = sf.findings, settlement_events(sf)
        deposits, rows = len(sf.deposits), sum(len(d.transactions) for d in sf.deposits)
        total = sum((d.net for d in sf.deposits), Decimal(0))
    else:
        bf = parse_bank(raw)
        findings, keyed = bf.findings, bank_events(bf)
        deposits = rows = len(bf.deposits)
        total = sum((b.amount for b in bf.deposits), Decimal(0))
    if findings:
        return CsvIntake(
            Inbound(
                kind,
                cid,
                kept,
                now,
                peer,
                TYPES[kind],
                "rejected",
                "AR",
                _error(findings),
                b"",
                digest,
            ),
            findings,
            (),
            deposits,
            rows,
            total,
        )
    at = datetime.fromtimestamp(now, UTC)
    envs = envelopes(keyed, channel=kind, control_id=cid, occurred=at, recorded=at, tenant=tenant)
    return CsvIntake(
        Inbound(
            kind, cid, kept, now, peer, TYPES[kind], "accepted", "AA", "", encoded(envs), digest
        ),
        (),
        tuple(keyed),
        deposits,
        rows,
        total,
    )
