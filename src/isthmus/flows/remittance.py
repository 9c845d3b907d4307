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
  behind a mapping item, it waits behind the same item (`mapping_holds.claim_hold`);
- a denial (CLP02 = 4, or nothing paid with a denial CARC on a CO/PR adjustment,
  `flows.denial_codes`):
  `denial` in queue `denials` with the CARC/RARC codes; no payment is posted;
- the period is closed, an amount cannot be posted.
A `ProviderAdjusted` (PLB) posts against cash clearing; its company comes from the payee
(override table `payee_company`, NPI or TIN).
A facility with no ERP company, or a payee with none, is a missing mapping: the payment
waits behind the ONE `unmapped_facility` / `unmapped_payee` item of that facility or payee
(`flows.mapping_holds`), which releases every payment it holds once resolved.
A `ClaimSubmitted` (837 CLM) is recorded in the claim register.

Issue 17: each event's facts are read first (`payment_facts`: the account, its company and
token, what its claim's charges wait behind; `payee_company`), then decided without the
store (`decide_claim_payment`, `decide_provider_adjustment`, `decide_claim`: a
`flows.decision.Decision`), and `flows.decision.apply` writes it at the worker's `now`.
Which payments are denials is `flows.denial_codes`.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Final

from isthmus.config import Mappings
from isthmus.flows import mapping_holds
from isthmus.flows.accounts import live_token
from isthmus.flows.decision import Decision, PayeeHold, apply, hold, post
from isthmus.flows.denial_codes import codes_of, is_denial
from isthmus.flows.mapping_holds import MappingHold
from isthmus.flows.outcome import APPLIED, HELD, Outcome, label
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
BY_PATIENT: Final = "FHIR patient reference"  # matched to no account, only to its patient


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


@dataclass(frozen=True, slots=True)
class PaymentFacts:
    """What the store knows that a claim payment's decision needs (issue 17)."""

    account: BillingAccount | None = None  # the account it pays (None: matches none)
    how: str = ""  # how that account was found (`match_account`)
    company: str = ""  # the account's facility's ERP company ("" unmapped)
    token: str = ""  # the account's patient's live A/R token
    claim_hold: tuple[str, str] | None = None  # by patient: the row its claim's charges await
    charged: bool = True  # by patient: its claim's charges posted, or the patient has A/R


def payment_facts(
    tx: Tx, env: Envelope, ev: ClaimRemitted, *, secret: str, maps: Mappings, ar_account: str
) -> PaymentFacts:
    """Read what `decide_claim_payment` needs, in the order the flow always read it; a
    denial needs nothing."""
    if is_denial(ev):
        return PaymentFacts()
    acct, how = match_account(tx, ev)
    if acct is None:
        return PaymentFacts()
    company = mapping_holds.company(tx, maps, acct.facility)
    if not company:
        return PaymentFacts(acct, how)
    token = live_token(tx, secret, acct.patient_key)
    if how != BY_PATIENT:
        return PaymentFacts(acct, how, company, token)
    waits = mapping_holds.claim_hold(tx, maps, env.key)
    if waits is not None:
        return PaymentFacts(acct, how, company, token, claim_hold=waits)
    paid_for = mapping_holds.claim_charged(tx, env.key) or charged(
        tx, ar_account, token, company, ev
    )
    return PaymentFacts(acct, how, company, token, charged=paid_for)


def _hold(env: Envelope, kind: str, detail: str) -> Decision:
    return hold(env, kind=kind, queue=QUEUES[kind], detail=detail)


def decide_claim_payment(
    env: Envelope,
    ev: ClaimRemitted,
    facts: PaymentFacts,
    *,
    accounts: RemitAccounts,
    calendar: FiscalCalendar,
) -> Decision:
    """One CLP decided without the store (issue 17): a denial, unapplied cash, a hold
    behind a mapping item, or the payment's entry (module docstring)."""
    if is_denial(ev):
        return _hold(
            env,
            "denial",
            f"claim {ev.payer_claim_control_number or '-'} "
            f"from payer {ev.payer_id or ev.payer_name} denied (CLP02 "
            f"{ev.claim_status}, charge {ev.charge} {ev.currency}): {codes_of(ev)}",
        )
    acct, how = facts.account, facts.how
    if acct is None:
        return _hold(
            env,
            "unapplied_cash",
            f"payment {ev.paid} {ev.currency} (trace "
            f"{ev.trace_number}) matches no billing account or claim for patient "
            f"control number {ev.patient_control_number!r}; resubmit once it is "
            "known",
        )
    if not facts.company:
        return Decision(
            HELD,
            writes=(MappingHold(env, "facility_company", acct.facility, ev.paid, ev.currency),),
        )
    if facts.claim_hold is not None:  # its claim's charges wait for a mapping: it waits too
        table, code = facts.claim_hold
        return Decision(HELD, writes=(MappingHold(env, table, code, ev.paid, ev.currency),))
    if not facts.charged:
        return _hold(
            env,
            "unapplied_cash",
            f"FHIR payment {ev.paid} {ev.currency} "
            f"(trace {ev.trace_number or '-'}, claim {ev.patient_control_number!r}) "
            "matches no billing account, and its patient has no open charges to "
            "apply it to: resubmit once the charges are known (a ChargeItem or DFT "
            'feed, or [channels.fhir] charges_from = "claim")',
        )
    try:
        where = calendar.assign(ev.payment_date or env.occurred_at.date())
        entry = claim_payment_entry(
            paid=ev.paid,
            adjustments=[(a.group, a.reason, a.amount) for a in ev.adjustments],
            currency=ev.currency,
            accounts=accounts,
            company=facts.company,
            account_token=facts.token,
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
        return _hold(env, "closed_period", str(exc))
    except LedgerRefusal as exc:
        return _hold(env, "unpostable_remittance", str(exc))
    return post(env, entry)


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
    """Post one CLP (`payment_facts`, `decide_claim_payment`, written at `now`);
    "posted", "duplicate", "applied" (nothing to post) or "held"."""
    facts = payment_facts(tx, env, ev, secret=secret, maps=maps, ar_account=accounts.ar)
    decision = decide_claim_payment(env, ev, facts, accounts=accounts, calendar=calendar)
    return label(apply(tx, decision, now))


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
        return _hold(env, "closed_period", str(exc))
    except LedgerRefusal as exc:
        return _hold(env, "unpostable_remittance", str(exc))
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


__all__ = [
    "BY_PATIENT",
    "QUEUES",
    "PaymentFacts",
    "RecordClaim",
    "charged",
    "decide_claim",
    "decide_claim_payment",
    "decide_provider_adjustment",
    "match_account",
    "payee_company",
    "payment_facts",
    "post_claim_payment",
    "post_provider_adjustment",
    "register_claim",
]
