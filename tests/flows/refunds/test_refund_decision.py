"""The refund decisions without a store (issue 17): what a request, an approval and a
rejection post, open and resolve, and the checks that refuse them."""

from __future__ import annotations

import json
from dataclasses import replace
from decimal import Decimal

import pytest

from isthmus.flows.decision import Resolve, SaveState, WorkItem
from isthmus.flows.outcome import POSTED, REJECTED, Held
from isthmus.flows.refund_decision import (
    AddRefund,
    Credit,
    DecideRefund,
    check_credit,
    decide_approval,
    decide_rejection,
    decide_request,
    decided_before,
    replay,
)
from isthmus.flows.refund_errors import (
    AlreadyDecided,
    IdempotencyConflict,
    InsufficientCredit,
    NotPostable,
    SegregationOfDuties,
)
from isthmus.flows.refund_request import Ask
from isthmus.store.ports import RefundRecord
from tests.flows.refunds.helpers import ALICE, AR, BOB, NOW, PAYABLE, policy

D = Decimal
TOKEN = "PA-0123456789abcdef"
DAY = 86_400.0


def refund(
    rid: str = "RF-1", amount: str = "300.00", status: str = "pending", at: float = NOW
) -> RefundRecord:
    return RefundRecord(
        id=rid,
        idempotency_key="k1",
        account_number="A100",
        account_token=TOKEN,
        company="C100",
        amount=D(amount),
        currency="USD",
        reason="overpayment",
        status=status,
        requested_by=ALICE.name,
        requested_at=at,
    )


def test_a_request_at_or_under_the_threshold_posts_dr_ar_cr_refunds_payable() -> None:
    d = decide_request(refund(amount="300.00"), [], policy("500.00"))
    assert d.outcome is POSTED and d.open == ()
    [entry] = d.entries
    assert entry.entry_key == "refund/RF-1" and entry.correlation_id == "refunds/RF-1"
    lines = {(ln.account, ln.debit, ln.credit, ln.dims.account_token) for ln in entry.lines}
    assert lines == {(AR, D("300.00"), D(0), TOKEN), (PAYABLE, D(0), D("300.00"), "")}
    assert entry.period == "2026-09" and entry.memo == "refund RF-1"  # no reason text
    added, index, decided = d.writes
    assert isinstance(added, AddRefund) and added.record.status == "pending"
    assert isinstance(index, SaveState) and index.name == f"refunds.window/{TOKEN}"
    assert json.loads(index.body) == ["RF-1"]
    assert decided == DecideRefund(
        "RF-1", "posted", "auto", decided.note, "refund/RF-1"
    ) and decided.note.startswith("at or under the approval threshold 500.00")
    assert d.resolve == (Resolve("refunds/RF-1", "approved by auto"),)


def test_earlier_refunds_of_the_window_lift_a_request_over_the_threshold() -> None:
    earlier = [
        replace(refund("RF-0", "300.00", "posted", NOW - 2 * DAY), decided_at=NOW - 2 * DAY),
        refund("RF-OLD", "900.00", "posted", NOW - 40 * DAY),  # before the 30-day window
    ]
    d = decide_request(refund(amount="300.00"), earlier, policy("500.00"))
    assert isinstance(d.outcome, Held) and d.outcome.queue == "refunds" and d.entries == ()
    [item] = d.open
    assert isinstance(item, WorkItem)
    assert (item.kind, item.queue, item.key, item.event_id) == (
        "refund_approval",
        "refunds",
        TOKEN,
        "refunds/RF-1",
    )
    assert "(300.00 USD) 600.00 USD" in item.detail and "other than alice" in item.detail
    [added, index] = d.writes
    assert isinstance(added, AddRefund) and isinstance(index, SaveState)
    assert json.loads(index.body) == ["RF-0", "RF-1"]  # the old one no longer counts


def test_an_approval_posts_once_the_credit_still_covers_it() -> None:
    rec = refund(amount="600.00")
    d = decide_approval(rec, BOB, Credit(D("-750.00")), policy(), at=NOW + 60, note="")
    assert d.outcome is POSTED
    [entry] = d.entries
    assert sum(ln.debit for ln in entry.lines if ln.account == AR) == D("600.00")
    assert d.writes == (DecideRefund("RF-1", "posted", "bob", "approved by bob", "refund/RF-1"),)
    assert d.resolve == (Resolve("refunds/RF-1", "approved by bob"),)


def test_an_approval_is_refused_to_the_requester_and_when_the_credit_shrank() -> None:
    rec = refund(amount="600.00")
    with pytest.raises(SegregationOfDuties):
        decide_approval(rec, ALICE, Credit(D("-750.00")), policy(), at=NOW, note="")
    with pytest.raises(InsufficientCredit, match=r"refundable credit 150\.00 USD"):
        decide_approval(rec, BOB, Credit(D("-750.00"), (D("600.00"),)), policy(), at=NOW, note="")


def test_a_closed_period_under_reject_makes_the_refund_not_postable() -> None:
    closed = policy(closed=frozenset({"2026-09"}), closed_policy="reject")
    with pytest.raises(NotPostable, match="RF-1 cannot post"):
        decide_request(refund(amount="100.00"), [], closed)


def test_a_rejection_posts_nothing_and_resolves_the_approval_item() -> None:
    d = decide_rejection(refund(), BOB, "paid by cheque")
    assert d.outcome is REJECTED and d.entries == () and d.open == ()
    assert d.writes == (DecideRefund("RF-1", "rejected", "bob", "paid by cheque"),)
    assert d.resolve == (Resolve("refunds/RF-1", "rejected by bob: paid by cheque"),)


def test_the_checks_under_the_lock() -> None:
    ask = Ask("A100", D("300.00"), "USD", "overpayment", "k1")
    first = refund()
    assert replay(ask, None) is None and replay(ask, first) is first
    with pytest.raises(IdempotencyConflict):
        replay(replace(ask, amount=D("301.00")), first)
    with pytest.raises(InsufficientCredit, match="no credit balance"):
        check_credit(Credit(D("10.00")), D("1.00"), "USD", "C100")
    check_credit(Credit(D("-300.00")), D("300.00"), "USD", "C100")
    posted = replace(first, status="posted", decided_by="bob")
    assert decided_before(first, BOB, approve=True) is False
    assert decided_before(posted, BOB, approve=True) is True
    with pytest.raises(AlreadyDecided):
        decided_before(posted, BOB, approve=False)
