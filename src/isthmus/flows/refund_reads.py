"""What the refund service reads from the store before it decides (issue 17).

A refund names a billing account (PID-18) or an account token; the decision
(flows/refund_decision.py) needs the account's number, live A/R token and ERP company, and
its credit: the A/R balance in the refund's company and currency with the other refunds
still pending there. These reads run in the service's transaction under the account's
refund lock (`Tx.lock_refunds`), so what they return is what the decision is applied to.
"""

from __future__ import annotations

from decimal import Decimal

from isthmus.flows.accounts import live_token
from isthmus.flows.refund_decision import Credit
from isthmus.flows.refund_errors import NotPostable, UnknownAccount
from isthmus.flows.refund_request import RefundPolicy
from isthmus.store.ports import Tx


def account_of(tx: Tx, policy: RefundPolicy, account: str, currency: str) -> tuple[str, str, str]:
    """(account number, account token, company) of a billing account or a token; a token
    spanning two companies refunds from the one holding the largest credit in `currency`."""
    p = policy
    acct = tx.get_billing_account(account)
    if acct is not None:
        company = tx.mapping_override(
            "facility_company", acct.facility
        ) or p.mappings.facility_company.get(acct.facility)
        if not company:
            raise NotPostable(
                f"facility {acct.facility!r} of account {account} has no ERP company", "account"
            )
        return account, live_token(tx, p.secret, acct.patient_key), company
    balances = tx.ar_balances(p.ar_account, account)
    if not balances:
        raise UnknownAccount(f"no billing account or account token {account!r} with A/R", "account")
    in_currency = {co: b for (co, cur), b in balances.items() if cur == currency}
    company = (
        min(in_currency, key=in_currency.__getitem__) if in_currency else next(iter(balances))[0]
    )
    return "", account, company


def credit_of_account(
    tx: Tx, ar_account: str, token: str, company: str, currency: str, rid: str
) -> Credit:
    """The account's A/R in (company, currency) and its refunds other than `rid` pending
    there."""
    balance = tx.ar_balances(ar_account, token).get((company, currency), Decimal(0))
    return Credit(
        balance,
        tuple(
            r.amount
            for r in tx.pending_refunds(token)
            if r.id != rid and r.company == company and r.currency == currency
        ),
    )
