"""An underpaid claim's contractual allowance, posted against its fee schedule (issue 20).

Split from `flows.claim_remit` (issue 17, the 400-line rule). When an 835 pays a claim the
hub submitted short of what the payer's fee schedule allows, the part of the CO write-off
beyond (charge - expected) goes back to the claim's A/R, so the receivable stays open for
the underpayment: DR A/R / CR contractual allowance, one pair per short claim or line,
entry key ``claim-expected/<event id>``. `expected_facts` reads where it posts (the
account's company and its patient's A/R token); `expected_entry` builds it without the
store.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from isthmus.config import Mappings
from isthmus.flows import mapping_holds, remittance
from isthmus.flows.accounts import live_token
from isthmus.flows.claim_pricing import LineVariance
from isthmus.ledger.journal import Dimensions, JournalEntry, cr, dr, require_valid
from isthmus.ledger.periods import FiscalCalendar
from isthmus.ledger.remit import RemitAccounts
from isthmus.model import ClaimRemitted
from isthmus.model.envelope import Envelope
from isthmus.store.ports import ClaimState, Tx


@dataclass(frozen=True, slots=True)
class ExpectedFacts:
    """Where an underpaid claim's entry posts: the ERP company of its account's facility
    ("": no account matches, or its facility is unmapped: nothing posts) and the A/R token
    of the account's live patient."""

    company: str = ""
    token: str = ""


def expected_facts(tx: Tx, ev: ClaimRemitted, *, secret: str, mappings: Mappings) -> ExpectedFacts:
    """Read `ExpectedFacts` for a claim payment (the account `remittance.match_account`
    finds, as the payment's own posting did)."""
    acct, _ = remittance.match_account(tx, ev)
    if acct is None:
        return ExpectedFacts()
    company = mapping_holds.company(tx, mappings, acct.facility)
    if not company:
        return ExpectedFacts()
    return ExpectedFacts(company, live_token(tx, secret, acct.patient_key))


def claim_amounts(ev: ClaimRemitted, short: Decimal) -> list[tuple[str, Decimal]]:
    """A claim short by `short`: the part of its CO write-off to put back (at most all of
    it)."""
    contractual = sum((a.amount for a in ev.adjustments if a.group == "CO"), Decimal(0))
    return [("claim", min(short, contractual))]


def line_amounts(short: list[LineVariance]) -> list[tuple[str, Decimal]]:
    """The short lines: each line's variance, at most its own CO write-off."""
    return [(f"line {v.number} {v.code}", min(v.variance, v.contractual)) for v in short]


def expected_entry(
    env: Envelope,
    ev: ClaimRemitted,
    claim: ClaimState,
    amounts: list[tuple[str, Decimal]],
    *,
    facts: ExpectedFacts,
    calendar: FiscalCalendar,
    accounts: RemitAccounts,
) -> JournalEntry | None:
    """DR A/R / CR contractual allowance, one pair per (what, amount) with amount > 0;
    None when there is none, or nowhere to post it."""
    amounts = [(what, a) for what, a in amounts if a > 0]
    if not amounts or not facts.company:
        return None
    where = calendar.assign(ev.payment_date or env.occurred_at.date())
    ar = Dimensions(company=facts.company, account_token=facts.token)
    under = Dimensions(company=facts.company, service_line="underpayment")
    pairs = tuple(
        x
        for _, a in amounts
        for x in (
            dr(accounts.ar, a, ev.currency, ar),
            cr(accounts.contractual, a, ev.currency, under),
        )
    )
    return require_valid(
        JournalEntry(
            entry_key=f"claim-expected/{env.event_id}",
            posted_on=where.posted_on,
            period=where.period,
            channel="claims",
            memo=f"claim {claim.claim_key} underpaid by payer {claim.payer_id}: contractual "
            f"allowance against the fee schedule ({', '.join(w for w, _ in amounts)})",
            lines=pairs,
            correlation_id=env.correlation_id,
            causation_id=env.event_id,
            moved_from=where.moved_from,
        )
    )


__all__ = [
    "ExpectedFacts",
    "claim_amounts",
    "expected_entry",
    "expected_facts",
    "line_amounts",
]
