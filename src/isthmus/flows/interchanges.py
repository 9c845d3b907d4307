"""X12 interchanges taken through the inbox (`isthmus ingest`, the drop folder): what one
says, and the acknowledgement to send back. Pure, like `flows.files`: bytes in; the inbox
record, its events and the acknowledgement come back as data (`x12_intake`), and the shell
(`flows.file_intake`) stores them.

One inbox record per interchange on channel `x12`, control id `<ISA06>:<ISA13>`, digest
the SHA-256 of its bytes. 835s become `ClaimRemitted` and `ProviderAdjusted` events, 837s
`ClaimSubmitted` events (`formats.x12.events`). The answer is a 999 (005010X231A1) naming
every error's segment and element. A transaction set the 999 rejects (IK5 R), or one with
an unreadable claim, adjustment or service amount, contributes no events: the interchange
is kept and can be replayed once corrected. An unreadable ISA or an envelope error (ISA/IEA,
GS/GE structure) gets a TA1 with its note code instead, and the interchange is kept,
rejected, with its error. An interchange whose ISA13 another one with other content already
holds (sample files, and senders that restart their counters, do this) is taken as a
distinct interchange, its control id suffixed with `#<content hash>`; the same bytes again
are a duplicate and change nothing. Inbound 999, 277CA/277 and 271 (answers to the 837,
276 and 270 the hub sent) become `AcknowledgementReceived`, `ClaimStatusReported` and
`EligibilityReported` (`formats.x12.responses`), applied to claims and accounts by
`flows.claim_acks` and `flows.claim_eligibility`; they are answered like any interchange,
except an interchange of 999s or a lone TA1: acknowledgements are not acknowledged
(005010X231A1), its answer code is `none` and no file is written back.

An 835 that does not balance (005010X221A1 section 1.10.2.1: BPR02 = sum of CLP04 - sum of
PLB; CLP03 - CLP04 = claim and line CAS; SVC02 - SVC03 = line CAS) is HELD: the interchange
is kept with status "held" and its events, none of which reach the bus, its 999 reports the
imbalance (IK3/IK4 at the amount, IK5 E, `formats.x12.ack999`), and a
`unbalanced_remittance` work item in queue `cash-posting` names the sets and the totals
that are out, in the same transaction (`Store.accept` with a `Hold`). A person releases it
(`flows.remit_holds`, `isthmus remits release`). The interchange is the unit of the hold:
its balanced sets wait with the unbalanced one (a large file taken a set at a time holds
set by set). Events carry business keys (`formats.x12.events`).

A sender refused by `[ownership]` for a data domain its interchange writes is kept as
rejected (`owned_x12`).
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Final

from isthmus.flows import intake
from isthmus.flows.remittance import QUEUES
from isthmus.formats.x12 import (
    Finding,
    Interchange,
    Level,
    X12Error,
    build_999,
    build_ta1,
    check_envelope,
    parse_835,
    parse_837,
    read,
    recover_isa,
    ta1_note,
)
from isthmus.formats.x12.events import CHANNEL, claim_events, remittance_events
from isthmus.formats.x12.events import control_id as x12_control_id
from isthmus.formats.x12.remittance import RemittanceBatch
from isthmus.formats.x12.responses import RESPONSE_SETS, is_acknowledgement, response_events
from isthmus.governance import ownership
from isthmus.model.envelope import KeyedEvent
from isthmus.store.ports import HELD, Hold, Inbound

NO_ACK: Final = "none"  # the answer code of a received 999 or TA1: nothing is sent back
_SYNTAX: Final = (Level.TRANSACTION, Level.SEGMENT)
# The amount elements (X12 element 782) a posting is made of: CLP03-05, CAS03/06/../18,
# SVC02-03, PLB04/06/../14 (005010X221A1), CLM02, SV102, SV203 (X222A2/X223A3).
_MONEY: Final[dict[str, frozenset[int]]] = {
    "CLP": frozenset({3, 4, 5}),
    "CAS": frozenset({3, 6, 9, 12, 15, 18}),
    "SVC": frozenset({2, 3}),
    "PLB": frozenset({4, 6, 8, 10, 12, 14}),
    "CLM": frozenset({2}),
    "SV1": frozenset({2}),
    "SV2": frozenset({3}),
}
HOLD_KIND: Final = "unbalanced_remittance"


def split_interchanges(data: bytes) -> list[bytes]:
    """Several interchanges back to back in one file, cut at each ISA after a terminator."""
    try:
        d = read(data).delimiters
    except X12Error:
        return [data]
    cut = re.compile(
        re.escape(d.segment.encode()) + rb"[\r\n]*(?=ISA" + re.escape(d.element.encode()) + rb")"
    )
    parts, start = [], 0
    for m in cut.finditer(data):
        parts.append(data[start : m.end()])
        start = m.end()
    parts.append(data[start:])
    return [p for p in parts if p.strip()]


@dataclass(frozen=True)
class X12Intake:
    """One interchange as the inbox takes it, and the acknowledgement to send back."""

    inbound: Inbound
    ack_name: str  # "<ISA13>.999" or "<ISA13>.ta1"; "" for a 999 or TA1 (not answered)
    ack: bytes
    kinds: tuple[str, ...]  # transaction set ids: 835, 837, ...
    findings: tuple[Finding, ...]  # syntax and balancing findings
    events: tuple[KeyedEvent, ...]
    isa: tuple[str, ...]
    held: tuple[str, ...] = ()  # ST02 of the sets whose events were held back
    unbalanced: tuple[str, ...] = ()  # ST02 of the 835s that put the interchange on hold

    @property
    def balance_findings(self) -> list[Finding]:
        return [x for x in self.findings if x.level is Level.BALANCE]


def _error_text(code: str, segment: str, index: int, element: int, text: str) -> str:
    """The inbox error column, shaped like the HL7 ones: code|segment|index|element|0|text."""
    return f"{code}|{segment}|{index}|{element}|0|{text}"


def _finding_error(x: Finding) -> str:
    return _error_text(x.code, x.segment_id, x.segment_index, x.element, str(x))


def _stamp(isa: list[str], fallback: datetime) -> datetime:
    try:
        return datetime.strptime(isa[9] + isa[10], "%y%m%d%H%M").replace(tzinfo=UTC)
    except (IndexError, ValueError):
        return fallback


def _unpostable(x: Finding) -> bool:
    """A finding that leaves money unknown: the 999 rejects the set (transaction or segment
    level), or an amount of a claim, adjustment or service line could not be read (the
    reader takes it as zero, which must never be posted)."""
    return x.level in _SYNTAX or (
        x.level is Level.ELEMENT and x.element in _MONEY.get(x.segment_id, ())
    )


def _rejected_sets(ic: Interchange, findings: list[Finding]) -> set[str]:
    """ST02 of the sets whose events are held back (see `_unpostable`)."""
    bad: set[str] = set()
    for g in check_envelope(ic).groups:
        for t in g.transactions:
            if any(_unpostable(x) and t.start <= x.segment_index < t.stop for x in findings):
                bad.add(t.control)
    return bad


def _ak901(ack: str, segment: str, element: str) -> str:
    """The worst AK901 of a 999 (R, P, E, A): what the ack told the sender."""
    codes = {
        seg.split(element)[1]
        for seg in ack.split(segment)
        if seg.startswith("AK9" + element) and len(seg.split(element)) > 1
    }
    return next((c for c in "RPEA" if c in codes), "A")


def _unbalanced(batch: RemittanceBatch | None, skip: set[str]) -> list[tuple[str, str]]:
    """(ST02, what is out) of every 835 not rejected whose claims or BPR do not balance."""
    out: list[tuple[str, str]] = []
    for rem in batch.remittances if batch is not None else ():
        found = [x for x in rem.findings if x.level is Level.BALANCE]
        if found and rem.control_number not in skip:
            out.append(
                (
                    rem.control_number,
                    "; ".join(
                        f"{x.segment_id} at set position {x.position}: {x.text}" for x in found
                    ),
                )
            )
    return out


def _hold(cid: str, rem_batch: RemittanceBatch | None, unbalanced: list[tuple[str, str]]) -> Hold:
    """The work item of a held interchange: which sets, which totals, by how much (amounts
    and segment positions, never a patient control number or a name)."""
    traces = {
        r.control_number: (r.trace_number, r.amount)
        for r in (rem_batch.remittances if rem_batch is not None else ())
    }
    parts = [
        f"set {st} (TRN02 {traces[st][0] or '-'}, BPR02 {traces[st][1]}): {what}"
        for st, what in unbalanced
    ]
    detail = (
        f"835 interchange {cid} held, nothing posted: it does not balance "
        f"(005010X221A1 1.10.2.1). " + " | ".join(parts)
    )
    return Hold(HOLD_KIND, QUEUES[HOLD_KIND], detail[:2000])


def x12_intake(
    raw: bytes, *, peer: str, now: float, tenant: str, distinct: bool = False, part: str = ""
) -> X12Intake:
    """Read, check and map one interchange; never raises. ``distinct``: its ISA13 is taken
    by another interchange, so its ids carry its content hash too. ``part``: the interchange
    is one set of a larger one taken a set at a time (``<GS06>/<ST02>``), part of its ids."""
    digest = hashlib.sha256(raw).hexdigest()
    at = datetime.fromtimestamp(now, UTC)
    try:
        ic = read(raw)
    except X12Error as err:
        isa = recover_isa(raw)
        icn = isa[13].strip() if len(isa) > 13 else ""
        sender = isa[6] if len(isa) > 6 else ""
        cid = x12_control_id(sender, icn) if icn else f"sha256:{digest}"
        ack = build_ta1(isa, err.code, at=at)
        return X12Intake(
            Inbound(
                CHANNEL,
                cid,
                raw,
                now,
                peer,
                "X12",
                "rejected",
                "TA1-R",
                _error_text(err.code, err.segment_id, err.segment_index, err.element, str(err)),
                b"",
                digest,
            ),
            f"{icn or digest[:16]}.ta1",
            ack,
            (),
            (),
            (),
            tuple(isa),
        )
    isa = ic.isa
    sender, icn = isa[6], ic.control_number.strip()
    cid = x12_control_id(sender, icn)
    ack_stem = icn
    if part:
        cid, ack_stem = f"{cid}/{part}", f"{icn}-{part.replace('/', '-')}"
    if distinct:
        cid, ack_stem = f"{cid}#{digest[:16]}", f"{icn}-{digest[:16]}"
    env = check_envelope(ic)
    kinds = tuple(dict.fromkeys(t.id for g in env.groups for t in g.transactions))
    mtype = "X12 " + "+".join(kinds) if kinds else "X12"
    silent = is_acknowledgement(ic, kinds)  # a 999 or TA1 is not acknowledged
    if env.rejected:
        first = next(x for x in env.findings if x.level is Level.INTERCHANGE)
        ack = (
            b""
            if silent
            else build_ta1(isa, ta1_note(env.findings), at=at, delimiters=ic.delimiters)
        )
        return X12Intake(
            Inbound(
                CHANNEL,
                cid,
                raw,
                now,
                peer,
                mtype,
                "rejected",
                NO_ACK if silent else "TA1-R",
                _finding_error(first),
                b"",
                digest,
            ),
            "" if silent else f"{ack_stem}.ta1",
            ack,
            kinds,
            tuple(env.findings),
            (),
            tuple(isa),
        )
    findings = list(env.findings)
    rem_batch = parse_835(ic) if "835" in kinds else None
    claim_batch = parse_837(ic) if "837" in kinds else None
    if rem_batch is not None:
        findings += [x for r in rem_batch.remittances for x in r.findings]
    if claim_batch is not None:
        findings += list(claim_batch.findings[len(env.findings) :])
    skip = _rejected_sets(ic, findings)
    keyed: list[KeyedEvent] = []
    if rem_batch is not None:
        keyed += remittance_events(rem_batch, interchange_id=cid, skip=tuple(skip))
    if claim_batch is not None:
        keyed += claim_events(claim_batch, interchange_id=cid, skip=tuple(skip))
    if RESPONSE_SETS.intersection(kinds):  # 999, 277CA/277, 271 answering what we sent
        keyed += response_events(ic, kinds, interchange_id=cid, skip=tuple(skip))
    ack = build_999(ic, findings, control_number=int(icn) if icn.isdigit() else 1, at=at)
    syntax = [x for x in findings if x.level not in (Level.BALANCE, Level.INTERCHANGE)]
    unbalanced = _unbalanced(rem_batch, skip) if keyed else []
    hold = _hold(cid, rem_batch, unbalanced) if unbalanced else None
    status = "rejected" if skip and not keyed else HELD if hold else "accepted"
    code = "999-" + _ak901(ack.decode("latin-1"), ic.delimiters.segment, ic.delimiters.element)
    if silent:
        ack, code = b"", NO_ACK
    balance = [x for x in findings if x.level is Level.BALANCE]
    error = (
        _finding_error(syntax[0])
        if syntax
        else _finding_error(balance[0])
        if hold and balance
        else ""
    )
    envs = intake.envelopes(
        keyed, channel=CHANNEL, control_id=cid, occurred=_stamp(isa, at), recorded=at, tenant=tenant
    )
    return X12Intake(
        Inbound(
            CHANNEL,
            cid,
            raw,
            now,
            peer,
            mtype,
            status,
            code,
            error,
            intake.encoded(envs),
            digest,
            hold,
        ),
        "" if silent else f"{ack_stem}.999",
        ack,
        kinds,
        tuple(findings),
        tuple(keyed),
        tuple(isa),
        tuple(sorted(skip)),
        tuple(st for st, _ in unbalanced),
    )


def owned_x12(intake: X12Intake, owners: ownership.Owners) -> X12Intake:
    """The interchange, refused when it writes a data domain that its sender (ISA06) does
    not own ([ownership], governance/ownership.py): kept as rejected with the reason and no
    events. Its 999 stands (the syntax was fine); the refusal is the file's status."""
    if not owners or intake.inbound.status not in ("accepted", HELD):
        return intake
    refused = ownership.decide(
        owners,
        ownership.event_domains(type(k.event).__name__ for k in intake.events),
        (intake.isa[6] if len(intake.isa) > 6 else "",),
    )
    if refused is None:
        return intake
    inbound = replace(
        intake.inbound,
        status="rejected",
        error=_error_text("owner", "ISA", 1, 6, refused.text),
        events=b"",
        hold=None,
    )
    return replace(intake, inbound=inbound, events=(), unbalanced=())
