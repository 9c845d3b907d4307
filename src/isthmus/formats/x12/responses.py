"""Responses to what the hub sent -> canonical events: inbound 999, 277CA / 277 and 271.

Issue 20. A clearinghouse or payer answers the 837, 276 and 270 the hub sends with files
that arrive like every other X12 (drop folder, `isthmus ingest`) and go through the one
intake (`flows.interchanges.x12_intake`); this module turns their transaction sets into events
with business keys (README "Identity and business keys"), from the content alone:

* 999 (005010X231A1) loop 2000 -> one :class:`~isthmus.model.AcknowledgementReceived` per
  AK2, key ``999|<ISA06>|<AK102>|<AK202>``: who acknowledged which of our sets. This is a
  999 the hub RECEIVES; the 999 (or TA1) the hub answers every inbound interchange with is
  built by ``ack999`` and written out, never taken in, and never for an interchange that
  is itself only acknowledgements (:func:`is_acknowledgement`: 999s, or a lone TA1).
* 277CA (005010X214) and 277 (005010X212) claim level -> one
  :class:`~isthmus.model.ClaimStatusReported` per claim, key
  ``277CA|<payer>|<CLM01 or TRN02>|<REF*1K>|<STC02>|<STC01-1>`` (``277|...`` for a 277):
  the status of one claim on one date in one category is one fact. A status at the
  information receiver (2200B) or billing provider (2200C) level with no claim under it
  -> one :class:`~isthmus.model.ClaimBatchStatusReported`, key
  ``277CA-batch|<payer>|<2200B TRN02>|<HL03>|<provider NPI>|<STC02>|<STC01-1>``.
* 271 (005010X279A1) answer with a trace -> one :class:`~isthmus.model.EligibilityReported`
  per subscriber or dependent inquiry, key ``271|<payer>|<TRN02>`` (the trace of our 270).

Event ids are ``x12/<ISA06>:<ISA13>/<ST02>/<n>`` as for 835 and 837. Names, birth dates
and member ids (NM1*IL/QC/03, DMG) are never copied into an event; IK404 (a copy of the
bad data) neither. Pure, no I/O.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

from isthmus.formats.x12.acknowledgement import read_999_set
from isthmus.formats.x12.claim_status import ClaimStatus, LevelStatus, Status, parse_status
from isthmus.formats.x12.eligibility import EligibilityResponse, parse_271
from isthmus.formats.x12.envelope import check_envelope
from isthmus.formats.x12.events import correlation_id
from isthmus.formats.x12.reader import Interchange
from isthmus.formats.x12.remittance import Party
from isthmus.model import (
    AckError,
    AcknowledgementReceived,
    ClaimBatchStatusReported,
    ClaimStatusEntry,
    ClaimStatusReported,
    EligibilityReported,
)
from isthmus.model.envelope import KeyedEvent

RESPONSE_SETS: Final = frozenset({"999", "277", "271"})
GUIDE_277CA: Final = "X214"


ACKNOWLEDGEMENT_SETS: Final = frozenset({"999", "997"})


def is_acknowledgement(ic: Interchange, kinds: Sequence[str]) -> bool:
    """True when the interchange only acknowledges: its sets are all 999 (or 997), or it
    has no group and carries a TA1. Acknowledgements are not acknowledged (005010X231A1
    1.4: no 999 answers a 999; X12.5 TA1: no TA1 answers a TA1), so the intake writes
    nothing back for it."""
    if kinds:
        return ACKNOWLEDGEMENT_SETS.issuperset(kinds)
    es = ic.delimiters.element
    return any(seg.split(es, 1)[0] == "TA1" for seg in ic.raw)


def ack_key(ev: AcknowledgementReceived) -> str:
    """``999|<ISA06>|<AK102>|<AK202>``: the receiver's word on one set we sent."""
    return f"999|{ev.sender}|{ev.group_control.strip()}|{ev.set_control.strip()}"


def status_key(ev: ClaimStatusReported) -> str:
    """``<277CA or 277>|<payer>|<CLM01 or TRN02>|<REF*1K>|<STC02>|<STC01-1>``."""
    first = ev.statuses[0] if ev.statuses else None
    when = first.effective.isoformat() if first is not None and first.effective else ""
    return "|".join(
        (
            ev.report,
            ev.payer_id.strip(),
            (ev.patient_control_number or ev.trace).strip(),
            ev.payer_claim_control_number.strip(),
            when,
            first.category if first is not None else "",
        )
    )


def batch_status_key(ev: ClaimBatchStatusReported) -> str:
    """``<277CA or 277>-batch|<payer>|<batch>|<HL03>|<provider NPI>|<STC02>|<STC01-1>``."""
    first = ev.statuses[0] if ev.statuses else None
    when = first.effective.isoformat() if first is not None and first.effective else ""
    return "|".join(
        (
            f"{ev.report}-batch",
            ev.payer_id.strip(),
            ev.batch.strip(),
            ev.level,
            ev.provider_npi.strip(),
            when,
            first.category if first is not None else "",
        )
    )


def eligibility_key(ev: EligibilityReported) -> str:
    """``271|<payer>|<TRN02>``: the answer to one inquiry of ours."""
    return f"271|{ev.payer_id.strip()}|{ev.trace.strip()}"


def claim_key(pcn: str) -> str:
    """The partition of a claim's events (as ``formats.x12.events.remit_key``)."""
    return f"remit|{pcn}"


def _acks(ic: Interchange, corr: str, skip: Sequence[str]) -> list[KeyedEvent]:
    out: list[KeyedEvent] = []
    sender = ic.isa[6].strip() if len(ic.isa) > 6 else ""
    for g in check_envelope(ic).groups:
        for t in g.transactions:
            if t.id != "999" or t.control in skip:
                continue
            n = 0
            for ga in read_999_set(ic, t):
                for s in ga.sets:
                    ev = AcknowledgementReceived(
                        sender=sender,
                        functional_id=ga.functional_id,
                        group_control=ga.control,
                        set_id=s.set_id,
                        set_control=s.control,
                        convention=s.convention,
                        status=s.status,
                        codes=s.codes,
                        group_status=ga.status,
                        errors=tuple(
                            AckError(
                                e.segment_id,
                                e.position,
                                e.loop,
                                e.code,
                                tuple(
                                    f"{x.element}:{x.component}/{x.reference}/{x.code}"
                                    for x in e.elements
                                ),
                            )
                            for e in s.segments
                        ),
                    )
                    out.append(
                        KeyedEvent(
                            f"{corr}/{t.control}/{n}",
                            f"claim-ack|{ga.control}|{s.control}",
                            ev,
                            ack_key(ev),
                        )
                    )
                    n += 1
    return out


def _status(c: ClaimStatus, report: str) -> ClaimStatusReported:
    return ClaimStatusReported(
        report=report,
        payer_id=c.payer.id,
        payer_name=c.payer.name,
        trace=c.trace,
        patient_control_number=c.patient_control_number,
        payer_claim_control_number=c.payer_claim_control_number,
        statuses=_entries(c.statuses),
    )


def _entries(statuses: Sequence[Status]) -> tuple[ClaimStatusEntry, ...]:
    return tuple(
        ClaimStatusEntry(s.category, s.code, s.entity, s.effective, s.charge, s.paid)
        for s in statuses
    )


def _level(lv: LevelStatus, payer: Party, report: str) -> ClaimBatchStatusReported:
    return ClaimBatchStatusReported(
        report=report,
        payer_id=payer.id,
        payer_name=payer.name,
        level=lv.level,
        batch=lv.batch,
        trace=lv.trace,
        provider_npi=lv.party.npi if lv.level == "19" else "",
        statuses=_entries(lv.statuses),
    )


def _eligibility(r: EligibilityResponse) -> EligibilityReported:
    s = r.summary()
    return EligibilityReported(
        payer_id=r.payer.id,
        payer_name=r.payer.name,
        trace=r.trace,
        status=s.status,
        plan=s.plan,
        copay=s.copay,
        deductible_remaining=s.deductible_remaining,
        out_of_pocket_remaining=s.out_of_pocket_remaining,
        rejections=tuple(x.reason for x in r.rejections if x.reason),
    )


class _Numbered:
    """Event ids ``<corr>/<ST02>/<n>`` per set, and a business key once per set (#n)."""

    def __init__(self, corr: str) -> None:
        self._corr = corr
        self._n: dict[str, int] = {}
        self._seen: dict[str, int] = {}

    def __call__(
        self,
        st02: str,
        partition: str,
        ev: ClaimStatusReported | ClaimBatchStatusReported | EligibilityReported,
        key: str,
    ) -> KeyedEvent:
        n = self._n.get(st02, 0)
        self._n[st02] = n + 1
        seen = self._seen.get(f"{st02}|{key}", 0) + 1
        self._seen[f"{st02}|{key}"] = seen
        return KeyedEvent(
            f"{self._corr}/{st02}/{n}", partition, ev, key if seen == 1 else f"{key}#{seen}"
        )


def response_events(
    ic: Interchange, kinds: Sequence[str], *, interchange_id: str, skip: Sequence[str] = ()
) -> list[KeyedEvent]:
    """The events of every 999, 277 and 271 set of ``ic`` except the sets (ST02) in
    ``skip`` (those our own 999 rejects); ``kinds`` the set ids the interchange holds."""
    corr = correlation_id(interchange_id)
    out: list[KeyedEvent] = []
    if "999" in kinds:
        out += _acks(ic, corr, skip)
    numbered = _Numbered(corr)
    if "277" in kinds:
        batch = parse_status(ic)
        report = "277CA" if GUIDE_277CA in batch.guide else "277"
        for c in batch.claims:
            if c.transaction_control in skip or not c.statuses:
                continue
            ev = _status(c, report)
            out.append(
                numbered(
                    c.transaction_control,
                    claim_key(c.patient_control_number or c.trace),
                    ev,
                    status_key(ev),
                )
            )
        for lv in batch.levels:
            if lv.transaction_control in skip or lv.level not in ("21", "19"):
                continue
            ev3 = _level(lv, lv.payer or Party(name=""), report)
            out.append(
                numbered(
                    lv.transaction_control,
                    f"claim-batch|{ev3.batch or ev3.provider_npi}",
                    ev3,
                    batch_status_key(ev3),
                )
            )
    if "271" in kinds:
        for r in parse_271(ic).responses:
            if r.transaction_control in skip or not r.trace:
                continue
            ev2 = _eligibility(r)
            out.append(
                numbered(
                    r.transaction_control,
                    f"eligibility|{ev2.payer_id}|{ev2.trace}",
                    ev2,
                    eligibility_key(ev2),
                )
            )
    return out
