"""The approval threshold holds for an account's refunds together, over a window
(issue 16, item 4): split refunds add up, so splitting does not avoid the approver; the
amounts are ASCII decimals only."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from decimal import Decimal

import pytest

from isthmus.flows import refund_window
from isthmus.flows import refunds as rf
from isthmus.store.memory import MemoryStore
from isthmus.store.memory_governance import MemoryGovernance
from isthmus.store.ports import Store
from tests.flows.refunds.helpers import (
    ALICE,
    BOB,
    NOW,
    ROOT,
    ar_balance,
    move_ar,
    open_account,
    policy,
)
from tests.flows.refunds.test_refund_flow import _at_once, shared_store

__all__ = ["shared_store"]  # the fixture, reused
DAY = 86_400.0


class Clock:
    def __init__(self) -> None:
        self.now = NOW

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def store() -> Iterator[Store]:
    s = MemoryStore()
    yield s
    s.close()


def _desk(
    store: Store, clock: Clock | None = None, *, days: int = 30, threshold: str = "500.00"
) -> rf.Refunds:
    p = dataclasses.replace(policy(threshold), approval_window_days=days)
    return rf.Refunds(store, MemoryGovernance(), p, clock=clock or Clock())


def _ask(
    d: rf.Refunds, amount: str, key: str, who: rf.Actor = ALICE, currency: str = "USD"
) -> rf.Outcome:
    return d.request(
        account="A100",
        amount=amount,
        currency=currency,
        reason="overpaid",
        requested_by=who,
        idempotency_key=key,
    )


def _credit(store: Store, amount: str = "-1500.00", currency: str = "USD") -> str:
    token = open_account(store)
    move_ar(store, token, amount, key=f"overpaid-{currency}", currency=currency)
    return token


def test_three_split_refunds_cannot_all_post_without_an_approver(store: Store) -> None:
    """The finding: 3 x 500.00 against a 1,500.00 credit, threshold 500.00."""
    token = _credit(store)
    d = _desk(store)
    first = _ask(d, "500.00", "k1")
    assert isinstance(first, rf.Outcome) and first.refund.status == rf.POSTED
    second = _ask(d, "500.00", "k2")
    assert isinstance(second, rf.Outcome) and second.refund.status == rf.PENDING
    [item] = store.work_items("open")
    assert "refunds of the last 30 day(s) (500.00 USD) 1000.00 USD" in item.detail
    with pytest.raises(rf.DuplicateRequest):
        _ask(d, "500.00", "k3")
    assert ar_balance(store, token) == Decimal("-1000.00"), "only the first posted"
    d.approve(second.refund.id, approver=BOB)
    third = _ask(d, "500.00", "k3")
    assert isinstance(third, rf.Outcome) and third.refund.status == rf.PENDING
    assert ar_balance(store, token) == Decimal("-500.00")


def test_refunds_outside_the_window_do_not_count(store: Store) -> None:
    _credit(store)
    clock = Clock()
    d = _desk(store, clock, days=30)
    assert _ask(d, "400.00", "k1").refund.status == rf.POSTED
    clock.now += 29 * DAY
    assert _ask(d, "200.00", "k2").refund.status == rf.PENDING
    d.reject(rf.refund_id("alice", "k2"), approver=BOB, reason="not now")
    clock.now += 2 * DAY  # the 400.00 posted 31 days ago
    assert _ask(d, "500.00", "k3").refund.status == rf.POSTED


def test_rejected_refunds_and_other_currencies_do_not_count(store: Store) -> None:
    _credit(store)
    _credit(store, "-900.00", "EUR")
    d = _desk(store)
    assert _ask(d, "300.00", "k1").refund.status == rf.POSTED
    pending = _ask(d, "300.00", "k2")
    assert pending.refund.status == rf.PENDING
    d.reject(pending.refund.id, approver=BOB, reason="duplicate")
    assert _ask(d, "200.00", "k3").refund.status == rf.POSTED
    assert _ask(d, "500.00", "k4", currency="EUR").refund.status == rf.POSTED


def test_a_window_of_zero_days_judges_each_request_alone(store: Store) -> None:
    _credit(store)
    d = _desk(store, days=0)
    for key in ("k1", "k2", "k3"):
        assert _ask(d, "500.00", key).refund.status == rf.POSTED


def test_refunds_from_before_the_index_count(store: Store) -> None:
    """An account whose refunds predate the window index is indexed from the register."""
    token = _credit(store)
    d = _desk(store)
    assert _ask(d, "500.00", "k1").refund.status == rf.POSTED
    assert isinstance(store, MemoryStore)
    del store._state.flow_state[refund_window.STATE_PREFIX + token]  # as before the upgrade
    assert _ask(d, "100.00", "k2").refund.status == rf.PENDING


def test_two_split_requests_at_once_do_not_both_post(shared_store: Store) -> None:
    """Racing through connections of their own, two 300.00 requests under a 500.00
    threshold serialize on the account lock: one posts, the other waits for approval."""
    store = shared_store
    _credit(store)
    assert _at_once(
        lambda: _ask(_desk(store), "300.00", "a"),
        lambda: _ask(_desk(store), "300.00", "b", who=ROOT),
    ) == ["pending", "posted"]


@pytest.mark.parametrize(
    "amount",
    [
        "1_0.00",
        "１０.00",
        "1e3",
        "1E+3",
        "NaN",
        "Infinity",
        "-Infinity",
        "0x10",
        "10,00",
        " ",
        "٣٠.00",
        "1.2.3",
        Decimal("1E+1"),
        Decimal("NaN"),
    ],
)
def test_amounts_are_ascii_decimals_only(store: Store, amount: object) -> None:
    _credit(store)
    with pytest.raises(rf.InvalidRefund, match="decimal") as err:
        _desk(store).request(
            account="A100",
            amount=amount,
            currency="USD",  # type: ignore[arg-type]
            reason="overpaid",
            requested_by=ALICE,
            idempotency_key="k1",
        )
    assert err.value.field == "amount" and store.refunds() == []


@pytest.mark.parametrize(
    ("text", "value"), [("10", "10.00"), ("+10.5", "10.50"), (" 7.25 ", "7.25"), (10, "10.00")]
)
def test_plain_decimals_still_read(store: Store, text: object, value: str) -> None:
    assert rf.parse_amount(text, "USD") == Decimal(value)
