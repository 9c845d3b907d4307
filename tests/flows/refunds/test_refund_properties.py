"""Property: whatever requests, approvals, rejections and A/R movements arrive, in any
order and from any actor, a refund never pays out more than the credit there is when it
posts, never posts twice, and only `posted` refunds have a journal entry."""

from __future__ import annotations

import itertools
from decimal import Decimal
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from isthmus.flows import refunds as rf
from isthmus.store.memory import MemoryStore
from isthmus.store.memory_governance import MemoryGovernance
from tests.flows.refunds.helpers import (
    ALICE,
    BOB,
    CAROL,
    ROOT,
    ar_balance,
    desk,
    move_ar,
    open_account,
)

ACTORS = (ALICE, BOB, CAROL, ROOT)
cents = st.integers(min_value=1, max_value=120_000)
ops = st.lists(
    st.one_of(
        st.tuples(st.just("request"), cents, st.integers(0, 3), st.integers(0, 5)),
        st.tuples(st.just("approve"), st.integers(0, 9), st.integers(0, 3)),
        st.tuples(st.just("reject"), st.integers(0, 9), st.integers(0, 3)),
        st.tuples(st.just("ar"), st.integers(min_value=-90_000, max_value=60_000).filter(bool)),
    ),
    min_size=1,
    max_size=25,
)


@settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
@given(steps=ops, threshold=st.sampled_from(["0.00", "100.00", "500.00"]))
def test_no_sequence_refunds_more_than_the_credit(
    steps: list[tuple[Any, ...]], threshold: str
) -> None:
    store, gov = MemoryStore(), MemoryGovernance()
    d = desk(store, gov, threshold)
    token = open_account(store)
    move_ar(store, token, "-300.00", key="opening-credit")
    serial = itertools.count()
    for step in steps:
        before = ar_balance(store, token)
        posted_before = {r.id for r in store.refunds("posted")}
        try:
            if step[0] == "request":
                _, amount, who, key = step
                d.request(
                    account="A100",
                    amount=str(Decimal(int(amount)) / 100),
                    currency="USD",
                    reason="r",
                    requested_by=ACTORS[who],
                    idempotency_key=f"k{key}",
                )
            elif step[0] in ("approve", "reject"):
                _, pick, who = step
                known = store.refunds()
                if not known:
                    continue
                rid = known[pick % len(known)].id
                if step[0] == "approve":
                    d.approve(rid, approver=ACTORS[who])
                else:
                    d.reject(rid, approver=ACTORS[who], reason="no")
            else:
                move_ar(store, token, str(Decimal(int(step[1])) / 100), key=f"ar-{next(serial)}")
        except rf.RefundError:
            assert ar_balance(store, token) == before  # a refusal changes nothing
            continue
        fresh = [r for r in store.refunds("posted") if r.id not in posted_before]
        assert len(fresh) <= 1
        if fresh:
            assert fresh[0].amount <= -before  # at most the credit there was
            assert ar_balance(store, token) == before + fresh[0].amount <= 0
    posted = {r.id for r in store.refunds("posted")}
    refund_entries = [e for e in store.entries() if e.channel == "refunds"]
    assert sorted(e.entry_key for e in refund_entries) == sorted(f"refund/{i}" for i in posted)
    for r in store.refunds():
        if r.status == "posted":
            assert r.decided_by != r.requested_by  # segregation of duties, or auto
