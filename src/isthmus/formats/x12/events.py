"""Canonical remittances and claims -> finance events, with deterministic ids and keys.

One :class:`~isthmus.model.ClaimRemitted` per 835 CLP (loop 2100, with its 2110 service
lines as :class:`~isthmus.model.RemitServiceLine`: SVC, line CAS, DTM*472, REF*6R), one
:class:`~isthmus.model.ProviderAdjusted` per PLB adjustment, one
:class:`~isthmus.model.ClaimSubmitted` per 837 CLM (loop 2300). Event ids are
``x12/<ISA06>:<ISA13>/<ST02>/<n>``, so a re-ingested interchange yields the same ids and
every effect keyed on them stays effectively-once. The partition key is
``remit|<CLP01>`` (``remit|<CLM01>`` for a claim): a payment does not depend on the order of
charges, it resolves its billing account when it is processed, but a claim and its
remittances stay in order. PLBs are keyed on the payee and the trace number. The payment
itself (BPR02, TRN02) is one :class:`~isthmus.model.RemittancePaid` per 835, id
``.../<ST02>/eft``, keyed on the trace number (``deposit|<TRN02>``) like the bank deposit
it is matched to.

Business keys (``KeyedEvent.business_key``, README "Identity and business keys") name the
business fact each event posts, from the content alone, never from the envelope (ISA13,
GS06, ST02 and the position of the set in the file change when a clearinghouse re-sends the
same 835 in a new interchange; the keys do not):

* ClaimRemitted ``835|<payer>|<TRN02>|<CLP01>|<CLP07>|<pay or rev>``: TRN02 identifies the
  payment (005010X221A1 1.10.2.3, "reassociation"), CLP01/CLP07 the claim within it; a
  reversal (CLP02 = 22) and its correction share CLP01 and CLP07, the last part tells them
  apart. Any other CLP02 change under the same key is other content for the same fact (a
  conflict for a person, not a second posting).
* ProviderAdjusted ``835-PLB|<payer>|<TRN02>|<PLB01>|<PLB02>|<PLB03-1>|<PLB03-2>``.
* RemittancePaid ``835-EFT|<payer>|<TRN02>``.
* ClaimSubmitted ``837|<billing provider>|<CLM01>|<CLM05-3>`` (NPI, else TIN, else NM109 of
  loop 2010AA).

The payer is TRN03 (required, the payer's identifier, 1 + TIN), else N1*PR's id. A key met
twice in one transaction set (two PLBs with the same reason and no reference) gets ``#2``,
``#3``, ... in order of appearance, so two facts of one set are never taken for one.

Patient and insured names (NM1*QC, NM1*IL) are never copied into an event: the hub needs the
patient control number (the billing account number, PID-18) and the money, nothing else.
Pure, no I/O.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from decimal import Decimal
from typing import Final

from isthmus.formats.x12.claim837 import ClaimBatch, ClaimEntry
from isthmus.formats.x12.remittance import (
    Adjustment,
    Claim,
    ProviderAdjustment,
    Remittance,
    RemittanceBatch,
    ServiceLine,
)
from isthmus.model import (
    ClaimRemitted,
    ClaimSubmitted,
    ProviderAdjusted,
    RemitAdjustment,
    RemitServiceLine,
    RemittancePaid,
)
from isthmus.model.envelope import KeyedEvent

CHANNEL = "x12"


def control_id(sender: str, interchange_control: str) -> str:
    """The inbox control id of an interchange: ``<ISA06>:<ISA13>``, padding removed."""
    return f"{sender.strip()}:{interchange_control.strip()}"


def correlation_id(interchange_id: str) -> str:
    """``x12/<ISA06>:<ISA13>``, the lineage id every event of the interchange shares."""
    return f"{CHANNEL}/{interchange_id}"


def remit_key(patient_control_number: str) -> str:
    """The partition key of a claim's events: its patient control number (CLM01, echoed in
    835 CLP01), so submission and remittances of one claim stay in order."""
    return f"remit|{patient_control_number}"


def _payer(rem: Remittance) -> str:
    """The payer of a remittance as business keys name it: TRN03, else N1*PR's id."""
    return (rem.payer_id or (rem.payer.id if rem.payer is not None else "")).strip()


def claim_business_key(rem: Remittance, claim: Claim) -> str:
    """``835|<payer>|<TRN02>|<CLP01>|<CLP07>|pay`` (``|rev`` for a reversal, CLP02 22)."""
    return "|".join(
        (
            "835",
            _payer(rem),
            rem.trace_number.strip(),
            claim.patient_control_number.strip(),
            claim.payer_claim_control_number.strip(),
            "rev" if claim.is_reversal else "pay",
        )
    )


def plb_business_key(rem: Remittance, plb: ProviderAdjustment) -> str:
    """``835-PLB|<payer>|<TRN02>|<PLB01>|<PLB02>|<PLB03-1>|<PLB03-2>``."""
    period = plb.fiscal_period.isoformat() if plb.fiscal_period is not None else ""
    return "|".join(
        (
            "835-PLB",
            _payer(rem),
            rem.trace_number.strip(),
            plb.provider_id.strip(),
            period,
            plb.reason.strip(),
            plb.reference.strip(),
        )
    )


def eft_business_key(rem: Remittance) -> str:
    """``835-EFT|<payer>|<TRN02>``: the money of one 835."""
    return f"835-EFT|{_payer(rem)}|{rem.trace_number.strip()}"


def submitted_business_key(c: ClaimEntry) -> str:
    """``837|<billing provider>|<CLM01>|<CLM05-3>``."""
    bp = c.billing_provider
    provider = (bp.npi or bp.tin or bp.id).strip()
    return f"837|{provider}|{c.patient_control_number.strip()}|{c.frequency.strip()}"


class _Once:
    """Makes a business key unique within one transaction set: the n-th repeat gets #n."""

    def __init__(self) -> None:
        self._seen: dict[str, int] = {}

    def __call__(self, key: str) -> str:
        n = self._seen.get(key, 0) + 1
        self._seen[key] = n
        return key if n == 1 else f"{key}#{n}"


def summed_adjustments(adjustments: Iterable[Adjustment]) -> tuple[RemitAdjustment, ...]:
    """CAS amounts summed per (group, CARC), in order of first appearance."""
    totals: dict[tuple[str, str], Decimal] = {}
    for a in adjustments:
        k = (a.group, a.reason)
        totals[k] = totals.get(k, Decimal(0)) + a.amount
    return tuple(RemitAdjustment(g, r, amt) for (g, r), amt in totals.items())


def _remarks(claim: Claim) -> tuple[str, ...]:
    seen = dict.fromkeys(claim.remarks)
    for line in claim.service_lines:
        seen.update(dict.fromkeys(line.remarks))
    return tuple(r for r in seen if r)


_SERVICE_DATES: Final = ("472", "150")  # service date, else the service period's start


def service_line(line: ServiceLine) -> RemitServiceLine:
    """One 2110 loop as the event carries it: SVC, its CAS (summed per group and CARC),
    DTM*472 (else DTM*150) and REF*6R; no remark, name or other reference."""
    when = next(
        (
            d.date
            for q in _SERVICE_DATES
            for d in line.dates
            if d.qualifier == q and d.date is not None
        ),
        None,
    )
    p = line.procedure
    return RemitServiceLine(
        code=p.code,
        qualifier=p.qualifier,
        modifiers=p.modifiers,
        charge=line.charge,
        paid=line.paid,
        revenue_code=line.revenue_code,
        units=line.units,
        adjustments=summed_adjustments(line.adjustments),
        service_date=when,
        control_number=line.control_number,
    )


def _claim_event(rem: Remittance, claim: Claim) -> ClaimRemitted:
    payer, payee = rem.payer, rem.payee
    return ClaimRemitted(
        payer_id=(payer.id if payer is not None and payer.id else rem.payer_id),
        payer_name=payer.name if payer is not None else "",
        payee_npi=payee.npi if payee is not None else "",
        payee_tin=payee.tin if payee is not None else "",
        trace_number=rem.trace_number,
        payment_method=rem.method,
        payment_date=rem.payment_date or rem.production_date,
        patient_control_number=claim.patient_control_number,
        claim_status=claim.status,
        charge=claim.charge,
        paid=claim.paid,
        patient_responsibility=claim.patient_responsibility or Decimal(0),
        payer_claim_control_number=claim.payer_claim_control_number,
        adjustments=summed_adjustments(claim.all_adjustments()),
        remarks=_remarks(claim),
        reversal=claim.is_reversal,
        currency=rem.currency or "USD",
        lines=tuple(map(service_line, claim.service_lines)),
    )


def remittance_events(
    batch: RemittanceBatch, *, interchange_id: str, skip: Sequence[str] = ()
) -> list[KeyedEvent]:
    """The events of every 835 in ``batch`` except the transaction sets (ST02) in ``skip``
    (those a 999 rejects). ``interchange_id`` is :func:`control_id` of the interchange."""
    corr = correlation_id(interchange_id)
    out: list[KeyedEvent] = []
    for rem in batch.remittances:
        if rem.control_number in skip:
            continue
        prefix = f"{corr}/{rem.control_number}"
        once = _Once()
        n = 0
        for claim in rem.claims:
            out.append(
                KeyedEvent(
                    f"{prefix}/{n}",
                    remit_key(claim.patient_control_number),
                    _claim_event(rem, claim),
                    once(claim_business_key(rem, claim)),
                )
            )
            n += 1
        payee = rem.payee
        for plb in rem.provider_adjustments:
            ev = ProviderAdjusted(
                payer_id=(rem.payer.id if rem.payer is not None and rem.payer.id else rem.payer_id),
                payee_npi=payee.npi if payee is not None else "",
                payee_tin=payee.tin if payee is not None else "",
                provider_id=plb.provider_id,
                trace_number=rem.trace_number,
                payment_date=rem.payment_date or rem.production_date,
                fiscal_period=plb.fiscal_period,
                reason=plb.reason,
                reference=plb.reference,
                amount=plb.amount,
                currency=rem.currency or "USD",
            )
            out.append(
                KeyedEvent(
                    f"{prefix}/{n}",
                    f"remit|PLB|{ev.payee_key}|{rem.trace_number}",
                    ev,
                    once(plb_business_key(rem, plb)),
                )
            )
            n += 1
        paid = _payment(rem)
        if paid is not None:
            out.append(
                KeyedEvent(
                    f"{prefix}/eft", deposit_key(rem.trace_number), paid, eft_business_key(rem)
                )
            )
    return out


def deposit_key(reference: str) -> str:
    """The partition key of everything matched on a deposit reference (TRN02 or a
    processor deposit id), so a payment and its bank deposit are handled in order."""
    return f"deposit|{reference.strip().upper()}"


def _payment(rem: Remittance) -> RemittancePaid | None:
    """The money of an 835 (BPR02, TRN02), unless no money moves: BPR01 H (advice only) or
    P (prenote), BPR04 NON, a zero amount, a debit (BPR03 D) or no trace number."""
    if (
        rem.handling_code in ("H", "P")
        or rem.method == "NON"
        or rem.amount <= 0
        or rem.credit_debit == "D"
        or not rem.trace_number
    ):
        return None
    payer, payee = rem.payer, rem.payee
    return RemittancePaid(
        payer_id=(payer.id if payer is not None and payer.id else rem.payer_id),
        payer_name=payer.name if payer is not None else "",
        payee_npi=payee.npi if payee is not None else "",
        payee_tin=payee.tin if payee is not None else "",
        trace_number=rem.trace_number,
        payment_method=rem.method,
        payment_date=rem.payment_date or rem.production_date,
        amount=rem.amount,
        currency=rem.currency or "USD",
    )


def _claim_submitted(c: ClaimEntry) -> ClaimSubmitted:
    first = next((ln.service_date for ln in c.lines if ln.service_date), None)
    return ClaimSubmitted(
        patient_control_number=c.patient_control_number,
        payer_id=c.payer.id,
        payer_name=c.payer.name,
        billing_npi=c.billing_provider.npi,
        total_charge=c.total_charge,
        kind=c.kind,
        frequency=c.frequency,
        payer_claim_control_number=c.payer_claim_control_number,
        service_date=first,
    )


def claim_events(
    batch: ClaimBatch, *, interchange_id: str, skip: Sequence[str] = ()
) -> list[KeyedEvent]:
    """One ClaimSubmitted per 837 claim, except those of the sets (ST02) in ``skip``."""
    corr = correlation_id(interchange_id)
    out: list[KeyedEvent] = []
    counters: dict[str, int] = {}
    once: dict[str, _Once] = {}
    for c in batch.claims:
        if c.transaction_control in skip:
            continue
        n = counters.get(c.transaction_control, 0)
        counters[c.transaction_control] = n + 1
        unique = once.setdefault(c.transaction_control, _Once())
        out.append(
            KeyedEvent(
                f"{corr}/{c.transaction_control}/{n}",
                remit_key(c.patient_control_number),
                _claim_submitted(c),
                unique(submitted_business_key(c)),
            )
        )
    return out
