"""Remittances (X12 835) -> the ledger: match each claim payment to its account, post it.

A `ClaimRemitted` (one CLP) is matched to a billing account by its patient control number
(CLP01, which the hospital sends as CLM01 = PID-18), else through the claim register (an
837 whose CLM01 or REF*F8 payer claim id names it), else (a FHIR ExplanationOfBenefit or
ClaimResponse, `formats.fhir.remittance`) the patient it names, with the facility of the
claim's provider. The account's patient, following
merges, gives the A/R token; the account's facility gives the ERP company. Then
`ledger.remit.claim_payment_entry` posts payment, contractual, patient responsibility and
other adjustments, keyed by the event id, so a replay never posts twice.

Business problems become work items with the event inside, never crashes:
- no account matches: `unapplied_cash` in queue `cash-posting`; resubmit once the BAR^P01
  (or a claim) that opens the account has arrived;
- one rule for payments without charges (issue 15): a FHIR payment that matches no
  account, only the patient it names, is applied only when its Claim's charges posted
  (`[channels.fhir] charges_from = "claim"`, `formats.fhir.claim_charges`: partitioned
  with the claim, so they come first) or the patient has charges open in its company and
  currency (A/R a debit: a ChargeItem or DFT feed); else it is `unapplied_cash` too, never
  a credit balance on an account nothing was charged to. While its Claim's charges wait
  behind a mapping item, it waits behind the same item (`mapping_holds.hold_behind_claim`);
- a denial (CLP02 = 4, or nothing paid with a denial CARC on a CO/PR adjustment):
  `denial` in queue `denials` with the CARC/RARC codes; no payment is posted;
- the period is closed, an amount cannot be posted.
A `ProviderAdjusted` (PLB) posts against cash clearing; its company comes from the payee
(override table `payee_company`, NPI or TIN).
A facility with no ERP company, or a payee with none, is a missing mapping: the payment
waits behind the ONE `unmapped_facility` / `unmapped_payee` item of that facility or payee
(`flows.mapping_holds`), which releases every payment it holds once resolved.
A `ClaimSubmitted` (837 CLM) is recorded in the claim register.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Final

from isthmus.config import Mappings
from isthmus.flows import mapping_holds, posting
from isthmus.flows.accounts import live_token
from isthmus.flows.decision import Decision, PayeeHold, apply, hold, post
from isthmus.flows.outcome import APPLIED, HELD, Outcome
from isthmus.ledger.errors import ClosedPeriod, LedgerRefusal
from isthmus.ledger.periods import FiscalCalendar
from isthmus.ledger.remit import RemitAccounts, claim_payment_entry, provider_adjustment_entry
from isthmus.model import ClaimRemitted, ClaimSubmitted, ProviderAdjusted
from isthmus.model.envelope import Envelope
from isthmus.store.ports import BillingAccount, ClaimRecord, Tx

QUEUES: Final = {
    "unapplied_cash": "cash-posting",
    "denial": "denials",
    "closed_period": "finance-close",
    "unpostable_remittance": "cash-posting",
    "unbalanced_remittance": "cash-posting",  # an 835 held at intake (flows.remit_holds)
}
DENIED: Final = "4"
BY_PATIENT: Final = "FHIR patient reference"  # matched to no account, only to its patient
# CARCs that deny a claim (or a line) outright rather than reduce it (X12 code list 139).
DENIAL_CARCS: Final = frozenset(
    {
        "4",
        "5",
        "6",
        "7",
        "8",
        "9",
        "11",
        "13",
        "15",
        "16",
        "18",
        "19",
        "20",
        "21",
        "22",
        "26",
        "27",
        "29",
        "31",
        "32",
        "33",
        "34",
        "35",
        "39",
        "40",
        "49",
        "50",
        "51",
        "54",
        "55",
        "56",
        "58",
        "96",
        "97",
        "107",
        "109",
        "110",
        "111",
        "114",
        "119",
        "129",
        "146",
        "147",
        "149",
        "150",
        "151",
        "160",
        "167",
        "170",
        "171",
        "172",
        "181",
        "182",
        "183",
        "184",
        "185",
        "197",
        "198",
        "200",
        "204",
        "208",
        "213",
        "219",
        "222",
        "226",
        "227",
        "234",
        "236",
        "242",
        "243",
        "A1",
        "B1",
        "B5",
        "B7",
        "B9",
        "B12",
        "B15",
        "B20",
    }
)


def is_denial(ev: ClaimRemitted) -> bool:
    """CLP02 = 4, or nothing paid and a CO/PR adjustment with a denial reason code."""
    if ev.reversal:
        return False
    if ev.claim_status == DENIED:
        return True
    return ev.paid == 0 and any(
        a.group in ("CO", "PR") and a.reason in DENIAL_CARCS and a.amount > 0
        for a in ev.adjustments
    )


def codes_of(ev: ClaimRemitted) -> str:
    """A claim payment's adjustments (835 CAS group-CARC amount) and remark codes (RARC) as text."""
    carc = ", ".join(f"{a.group}-{a.reason} {a.amount}" for a in ev.adjustments) or "none"
    return f"CARC {carc}; RARC {', '.join(ev.remarks) or 'none'}"


def _hold(tx: Tx, env: Envelope, now: float, kind: str, detail: str) -> str:
    return posting.hold(tx, env, kind=kind, queue=QUEUES[kind], detail=detail, now=now)


def match_account(tx: Tx, ev: ClaimRemitted) -> tuple[BillingAccount | None, str]:
    """The billing account a claim payment belongs to, and how it was found."""
    acct = tx.get_billing_account(ev.patient_control_number)
    if acct is not None:
        return acct, "CLP01 billing account"
    claim = tx.find_claim(ev.patient_control_number, ev.payer_claim_control_number)
    if claim is not None and claim.patient_control_number != ev.patient_control_number:
        acct = tx.get_billing_account(claim.patient_control_number)
        if acct is not None:
            return acct, f"claim register (CLP07 {ev.payer_claim_control_number})"
    if ev.patient is not None:  # FHIR: the EOB names its patient; the claim, its facility
        return BillingAccount(ev.patient_control_number, ev.patient.key, ev.facility), BY_PATIENT
    return None, ""


def charged(tx: Tx, ar_account: str, token: str, company: str, ev: ClaimRemitted) -> bool:
    """Whether a payment matched only by its patient has charges to be applied to: the
    patient's A/R in that company and currency is a debit (charged, not yet paid), or the
    payment moves no money at all (an encounter-only EOB pays and adjusts nothing)."""
    if ev.paid == 0 and not any(a.amount for a in ev.adjustments):
        return True
    return tx.ar_balances(ar_account, token).get((company, ev.currency), Decimal(0)) > 0


def post_claim_payment(
    tx: Tx,
    env: Envelope,
    ev: ClaimRemitted,
    *,
    secret: str,
    maps: Mappings,
    accounts: RemitAccounts,
    calendar: FiscalCalendar,
    now: float,
) -> str:
    """Post one CLP; "posted", "duplicate", "applied" (nothing to post) or "held"."""
    if is_denial(ev):
        return _hold(
            tx,
            env,
            now,
            "denial",
            f"claim {ev.payer_claim_control_number or '-'} "
            f"from payer {ev.payer_id or ev.payer_name} denied (CLP02 "
            f"{ev.claim_status}, charge {ev.charge} {ev.currency}): {codes_of(ev)}",
        )
    acct, how = match_account(tx, ev)
    if acct is None:
        return _hold(
            tx,
            env,
            now,
            "unapplied_cash",
            f"payment {ev.paid} {ev.currency} (trace "
            f"{ev.trace_number}) matches no billing account or claim for patient "
            f"control number {ev.patient_control_number!r}; resubmit once it is "
            "known",
        )
    company = mapping_holds.company(tx, maps, acct.facility)
    if not company:
        return mapping_holds.hold_facility(
            tx, env, acct.facility, amount=ev.paid, currency=ev.currency, now=now
        )
    token = live_token(tx, secret, acct.patient_key)
    if how == BY_PATIENT and mapping_holds.hold_behind_claim(
        tx, env, maps, amount=ev.paid, currency=ev.currency, now=now
    ):
        return "held"  # its claim's charges wait for a mapping: it waits with them
    if (
        how == BY_PATIENT
        and not mapping_holds.claim_charged(tx, env.key)
        and not charged(tx, accounts.ar, token, company, ev)
    ):
        return _hold(
            tx,
            env,
            now,
            "unapplied_cash",
            f"FHIR payment {ev.paid} {ev.currency} "
            f"(trace {ev.trace_number or '-'}, claim {ev.patient_control_number!r}) "
            "matches no billing account, and its patient has no open charges to "
            "apply it to: resubmit once the charges are known (a ChargeItem or DFT "
            'feed, or [channels.fhir] charges_from = "claim")',
        )
    when = ev.payment_date or env.occurred_at.date()
    try:
        where = calendar.assign(when)
        entry = claim_payment_entry(
            paid=ev.paid,
            adjustments=[(a.group, a.reason, a.amount) for a in ev.adjustments],
            currency=ev.currency,
            accounts=accounts,
            company=company,
            account_token=token,
            entry_key=env.event_id,
            posted_on=where.posted_on,
            period=where.period,
            channel=env.source.channel,
            memo=(
                f"{'FHIR' if ev.patient else '835'} "
                f"{'reversal' if ev.reversal else 'payment'} trace {ev.trace_number} "
                f"payer {ev.payer_id} claim {ev.payer_claim_control_number} "
                f"(matched by {how})"
            ),
            correlation_id=env.correlation_id,
            causation_id=env.event_id,
            moved_from=where.moved_from,
        )
    except ClosedPeriod as exc:
        return _hold(tx, env, now, "closed_period", str(exc))
    except LedgerRefusal as exc:
        return _hold(tx, env, now, "unpostable_remittance", str(exc))
    return posting.post(tx, env, entry, now)


def payee_company(tx: Tx, ev: ProviderAdjusted) -> str:
    """The ERP company of a PLB's payee: the first of its NPI, TIN and provider id with a
    `payee_company` row ("" for none): the fact `decide_provider_adjustment` needs."""
    return next(
        (
            c
            for k in (ev.payee_npi, ev.payee_tin, ev.provider_id)
            if k
            for c in [tx.mapping_override("payee_company", k)]
            if c
        ),
        "",
    )


def decide_provider_adjustment(
    env: Envelope,
    ev: ProviderAdjusted,
    company: str,
    *,
    accounts: RemitAccounts,
    calendar: FiscalCalendar,
) -> Decision:
    """One PLB adjustment against cash clearing, decided without the store (issue 17)."""
    if not company:
        return Decision(HELD, writes=(PayeeHold(env, ev.payee_key, ev.amount, ev.currency),))
    try:
        where = calendar.assign(ev.payment_date or env.occurred_at.date())
        entry = provider_adjustment_entry(
            amount=ev.amount,
            currency=ev.currency,
            accounts=accounts,
            company=company,
            entry_key=env.event_id,
            posted_on=where.posted_on,
            period=where.period,
            channel=env.source.channel,
            memo=f"835 PLB {ev.reason} {ev.reference} trace {ev.trace_number}".strip(),
            correlation_id=env.correlation_id,
            causation_id=env.event_id,
            moved_from=where.moved_from,
        )
    except ClosedPeriod as exc:
        return hold(env, kind="closed_period", queue=QUEUES["closed_period"], detail=str(exc))
    except LedgerRefusal as exc:
        return hold(
            env,
            kind="unpostable_remittance",
            queue=QUEUES["unpostable_remittance"],
            detail=str(exc),
        )
    return post(env, entry)


def post_provider_adjustment(
    tx: Tx,
    env: Envelope,
    ev: ProviderAdjusted,
    *,
    accounts: RemitAccounts,
    calendar: FiscalCalendar,
    now: float,
) -> Outcome:
    """Post one PLB adjustment against cash clearing."""
    return apply(
        tx,
        decide_provider_adjustment(
            env, ev, payee_company(tx, ev), accounts=accounts, calendar=calendar
        ),
        now,
    )


@dataclass(frozen=True, slots=True)
class RecordClaim:
    """Record an 837 claim in the claim register; False when its event was recorded."""

    claim: ClaimRecord

    def write(self, tx: Tx, now: float) -> bool:
        return tx.record_claim(self.claim)


def decide_claim(env: Envelope, ev: ClaimSubmitted) -> Decision:
    """An 837 claim into the claim register, once per event (issue 17)."""
    return Decision(
        APPLIED,
        claim=RecordClaim(
            ClaimRecord(
                event_id=env.event_id,
                patient_control_number=ev.patient_control_number,
                payer_id=ev.payer_id,
                payer_claim_id=ev.payer_claim_control_number,
                total_charge=ev.total_charge,
                currency=ev.currency,
            )
        ),
    )


def register_claim(tx: Tx, env: Envelope, ev: ClaimSubmitted, now: float) -> Outcome:
    """Record an 837 claim in the claim register (idempotent on the event id)."""
    return apply(tx, decide_claim(env, ev), now)
