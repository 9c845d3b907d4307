"""The refund flow's checks, one at a time: account, credit, duplicate, idempotency,
over-credit, threshold, segregation of duties, roles, the credit re-checked at approval,
rejection, posting (DR A/R, CR refunds payable), the audit trail, the inbox record."""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Callable, Iterator
from decimal import Decimal
from pathlib import Path

import psycopg
import pytest
from psycopg import sql

from isthmus.flows import refunds as rf
from isthmus.governance.audit import verify
from isthmus.observe.lineage import trace
from isthmus.store.memory import MemoryStore
from isthmus.store.memory_governance import MemoryGovernance
from isthmus.store.ports import Store
from isthmus.store.sqlite import SqliteStore
from tests.flows.refunds.helpers import (
    ALICE,
    AR,
    BOB,
    CAROL,
    PAYABLE,
    ROOT,
    VIEWER,
    ar_balance,
    desk,
    move_ar,
    open_account,
)
from tests.services import POSTGRES, require


@pytest.fixture
def store() -> Iterator[Store]:
    s = MemoryStore()
    yield s
    s.close()


@pytest.fixture
def gov() -> MemoryGovernance:
    return MemoryGovernance()


@pytest.fixture
def credit(store: Store) -> str:
    """Account A100 (company C100) with a 750.00 USD credit balance; its token."""
    token = open_account(store)
    move_ar(store, token, "250.00", key="charge-1")
    move_ar(store, token, "-1000.00", key="overpaid-1")
    return token


def ask(
    d: rf.Refunds,
    amount: str = "600.00",
    key: str = "k1",
    who: rf.Actor = ALICE,
    account: str = "A100",
    currency: str = "USD",
) -> rf.Outcome:
    return d.request(
        account=account,
        amount=amount,
        currency=currency,
        reason="overpayment",
        requested_by=who,
        idempotency_key=key,
    )


def test_above_threshold_waits_for_approval_in_the_refunds_queue(
    store: Store, gov: MemoryGovernance, credit: str
) -> None:
    out = ask(desk(store, gov))
    r = out.refund
    assert (r.status, r.amount, r.company, r.account_token) == (
        "pending",
        Decimal("600.00"),
        "C100",
        credit,
    )
    assert r.entry_key == "" and store.entries(correlation_id=rf.correlation_of(r.id)) == []
    [item] = store.work_items("open")
    assert (item.kind, item.queue, item.event_id) == (rf.KIND, rf.QUEUE, f"refunds/{r.id}")
    assert ar_balance(store, credit) == Decimal("-750.00")


def test_at_or_under_threshold_posts_at_once(
    store: Store, gov: MemoryGovernance, credit: str
) -> None:
    r = ask(desk(store, gov), amount="500.00").refund
    assert (r.status, r.decided_by, r.entry_key) == ("posted", rf.AUTO_APPROVER, f"refund/{r.id}")
    [entry] = store.entries(correlation_id=f"refunds/{r.id}")
    lines = [(ln.account, ln.debit, ln.credit, ln.dims.account_token) for ln in entry.lines]
    assert lines == [
        (AR, Decimal("500.00"), Decimal("0.00"), credit),
        (PAYABLE, Decimal("0.00"), Decimal("500.00"), ""),
    ]
    assert entry.channel == "refunds" and entry.memo == f"refund {r.id}"
    assert ar_balance(store, credit) == Decimal("-250.00")
    assert store.work_items() == []


def test_another_approver_approves_and_it_posts(
    store: Store, gov: MemoryGovernance, credit: str
) -> None:
    d = desk(store, gov)
    rid = ask(d).refund.id
    out = d.approve(rid, approver=BOB)
    assert (out.refund.status, out.refund.decided_by, out.replayed) == ("posted", "bob", False)
    assert ar_balance(store, credit) == Decimal("-150.00")
    [item] = store.work_items()
    assert item.status == "resolved" and "bob" in item.resolution


def test_the_requester_may_not_approve_segregation_of_duties(
    store: Store, gov: MemoryGovernance, credit: str
) -> None:
    d = desk(store, gov)
    rid = ask(d, who=ROOT).refund.id
    with pytest.raises(rf.SegregationOfDuties, match="segregation of duties") as err:
        d.approve(rid, approver=ROOT)  # admin holds every role, still not their own
    assert (err.value.status, err.value.field) == (403, "approver")
    assert d.get(rid).status == "pending" and ar_balance(store, credit) == Decimal("-750.00")
    denied = [r.event for r in gov.rows if r.event.action == "refund.approve"]
    assert [(e.actor, e.outcome) for e in denied] == [("root", "denied")]


@pytest.mark.parametrize(
    ("who", "action"), [(ALICE, "approve"), (VIEWER, "approve"), (ALICE, "reject")]
)
def test_roles_that_may_not_decide_are_refused(
    store: Store, gov: MemoryGovernance, credit: str, who: rf.Actor, action: str
) -> None:
    d = desk(store, gov)
    rid = ask(d, who=ROOT).refund.id
    with pytest.raises(rf.NotAllowed) as err:
        if action == "approve":
            d.approve(rid, approver=who)
        else:
            d.reject(rid, approver=who, reason="no")
    assert err.value.status == 403 and not isinstance(err.value, rf.SegregationOfDuties)


def test_only_revenue_cycle_or_admin_may_request(
    store: Store, gov: MemoryGovernance, credit: str
) -> None:
    with pytest.raises(rf.NotAllowed):
        ask(desk(store, gov), who=BOB)
    assert store.refunds() == []


def test_no_credit_balance_is_refused(store: Store, gov: MemoryGovernance) -> None:
    token = open_account(store)
    move_ar(store, token, "80.00", key="charge-1")
    with pytest.raises(rf.InsufficientCredit, match="no credit balance") as err:
        ask(desk(store, gov), amount="10.00")
    assert (err.value.status, err.value.field) == (409, "account")


def test_more_than_the_credit_is_refused(store: Store, gov: MemoryGovernance, credit: str) -> None:
    with pytest.raises(rf.InsufficientCredit, match=r"exceeds the refundable credit 750\.00"):
        ask(desk(store, gov), amount="750.01")
    assert store.refunds() == []
    assert ask(desk(store, gov), amount="750.00").refund.status == "pending"


def test_unknown_account_is_404(store: Store, gov: MemoryGovernance) -> None:
    with pytest.raises(rf.UnknownAccount) as err:
        ask(desk(store, gov), account="NOPE")
    assert (err.value.status, err.value.field) == (404, "account")


def test_refund_by_account_token(store: Store, gov: MemoryGovernance, credit: str) -> None:
    r = ask(desk(store, gov), account=credit, amount="100.00").refund
    assert (r.status, r.account_number, r.account_token) == ("posted", "", credit)


@pytest.mark.parametrize(
    ("field", "kw"),
    [
        ("amount", {"amount": "0"}),
        ("amount", {"amount": "-5"}),
        ("amount", {"amount": "1.001"}),
        ("amount", {"amount": "abc"}),
        ("amount", {"amount": 1.5}),
        ("amount", {"amount": "NaN"}),
        ("currency", {"currency": "usd"}),
        ("account", {"account": ""}),
        ("idempotency_key", {"key": ""}),
    ],
)
def test_bad_fields_are_named_and_kept_as_rejected(
    store: Store, gov: MemoryGovernance, credit: str, field: str, kw: dict[str, object]
) -> None:
    with pytest.raises(rf.InvalidRefund) as err:
        ask(desk(store, gov), **kw)  # type: ignore[arg-type]
    assert (err.value.status, err.value.field) == (400, field)
    [kept] = store.messages(status="rejected")
    assert kept.channel == "refunds" and "InvalidRefund" in kept.error


def test_same_idempotency_key_returns_the_first_answer(
    store: Store, gov: MemoryGovernance, credit: str
) -> None:
    d = desk(store, gov)
    first = ask(d, amount="100.00")
    again = ask(d, amount="100.00")
    assert again.replayed and again.refund == first.refund
    assert len(store.entries(correlation_id=f"refunds/{first.refund.id}")) == 1
    assert ar_balance(store, credit) == Decimal("-650.00")
    with pytest.raises(rf.IdempotencyConflict):
        ask(d, amount="200.00")


def test_idempotency_keys_are_scoped_to_the_requester(
    store: Store, gov: MemoryGovernance, credit: str
) -> None:
    d = desk(store, gov)
    a = ask(d, amount="100.00", who=ALICE).refund
    b = ask(d, amount="100.00", who=ROOT).refund
    assert a.id != b.id and ar_balance(store, credit) == Decimal("-550.00")


def test_an_open_request_blocks_another_for_the_same_account(
    store: Store, gov: MemoryGovernance, credit: str
) -> None:
    d = desk(store, gov)
    ask(d, amount="600.00", key="k1")
    with pytest.raises(rf.DuplicateRequest, match="waiting for approval"):
        ask(d, amount="100.00", key="k2")


def test_approval_rechecks_the_credit(store: Store, gov: MemoryGovernance, credit: str) -> None:
    d = desk(store, gov)
    rid = ask(d, amount="700.00").refund.id
    move_ar(store, credit, "100.00", key="late-charge")  # the credit shrinks to 650.00
    with pytest.raises(rf.InsufficientCredit, match=r"refundable credit 650\.00"):
        d.approve(rid, approver=BOB)
    assert d.get(rid).status == "pending" and ar_balance(store, credit) == Decimal("-650.00")
    out = d.reject(rid, approver=BOB, reason="credit used by a later charge")
    assert (out.refund.status, out.refund.note) == ("rejected", "credit used by a later charge")
    assert store.work_items()[0].status == "resolved"


def test_a_retried_approval_never_posts_twice(
    store: Store, gov: MemoryGovernance, credit: str
) -> None:
    d = desk(store, gov)
    rid = ask(d).refund.id
    first = d.approve(rid, approver=BOB)
    again = d.approve(rid, approver=BOB)
    assert again.replayed and again.refund == first.refund
    with pytest.raises(rf.AlreadyDecided, match="by bob"):
        d.approve(rid, approver=CAROL)
    with pytest.raises(rf.AlreadyDecided):
        d.reject(rid, approver=CAROL, reason="late")
    assert len(store.entries(correlation_id=f"refunds/{rid}")) == 1
    assert ar_balance(store, credit) == Decimal("-150.00")


def test_reject_needs_a_reason_and_posts_nothing(
    store: Store, gov: MemoryGovernance, credit: str
) -> None:
    d = desk(store, gov)
    rid = ask(d).refund.id
    with pytest.raises(rf.InvalidRefund) as err:
        d.reject(rid, approver=BOB, reason=" ")
    assert err.value.field == "reason"
    d.reject(rid, approver=BOB, reason="patient asked to keep the credit")
    assert store.entries(correlation_id=f"refunds/{rid}") == []
    assert ask(d, amount="100.00", key="k2").refund.status == "posted"  # no longer blocked


def test_unknown_refund_is_404(store: Store, gov: MemoryGovernance) -> None:
    with pytest.raises(rf.RefundNotFound):
        desk(store, gov).approve("RF-nope", approver=BOB)
    with pytest.raises(rf.RefundNotFound):
        desk(store, gov).get("RF-nope")


def test_closed_period_under_reject_policy_keeps_it_pending(
    store: Store, gov: MemoryGovernance, credit: str
) -> None:
    d = desk(store, gov, closed=frozenset({"2026-09"}), closed_policy="reject")
    rid = ask(d).refund.id
    with pytest.raises(rf.NotPostable, match="closed"):
        d.approve(rid, approver=BOB)
    assert d.get(rid).status == "pending"


def test_audit_trail_names_both_users_and_verifies(
    store: Store, gov: MemoryGovernance, credit: str
) -> None:
    d = desk(store, gov)
    rid = ask(d).refund.id
    d.approve(rid, approver=BOB)
    rows = [(r.event.actor, r.event.action, r.event.target, r.event.outcome) for r in gov.rows]
    assert rows == [("alice", "refund.request", rid, "ok"), ("bob", "refund.approve", rid, "ok")]
    assert json.loads(gov.rows[1].event.detail)["requested_by"] == "alice"
    assert verify(gov.rows, gov.head) is None


def test_the_request_is_in_the_inbox_and_lineage_reaches_the_entry(
    store: Store, gov: MemoryGovernance, credit: str
) -> None:
    d = desk(store, gov)
    rid = ask(d).refund.id
    d.approve(rid, approver=BOB)
    t = trace(store, f"refunds/{rid}")
    assert t is not None and t["message"]["status"] == "accepted"
    assert [e["entry_key"] for e in t["journal_entries"]] == [f"refund/{rid}"]
    assert [w["kind"] for w in t["work_items"]] == [rf.KIND]


def test_awaiting_leaves_out_the_approvers_own_requests(
    store: Store, gov: MemoryGovernance, credit: str
) -> None:
    d = desk(store, gov)
    rid = ask(d, who=ROOT).refund.id
    assert [r.id for r in d.awaiting(BOB)] == [rid]
    assert d.awaiting(ROOT) == []
    assert [r.id for r in d.list("pending")] == [rid] and d.list("posted") == []
    with pytest.raises(rf.InvalidRefund):
        d.list("weird")


@pytest.fixture(params=["sqlite", "postgresql"])
def shared_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    """A store that threads reach through connections of their own."""
    if request.param == "sqlite":
        s: Store = SqliteStore(tmp_path / "store.db", synchronous="NORMAL")
        yield s
        s.close()
        return
    require("PostgreSQL", *POSTGRES)
    from isthmus.store.postgres import PostgresStore  # noqa: PLC0415 - scale-out only

    dsn = f"postgresql://postgres@{POSTGRES[0]}:{POSTGRES[1]}/test"
    schema = f"t_{uuid.uuid4().hex}"
    s = PostgresStore(dsn, schema=schema)
    try:
        yield s
    finally:
        s.close()
        with psycopg.connect(dsn, autocommit=True) as c:
            c.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema)))


def _at_once(*calls: Callable[[], object]) -> list[str]:
    """Run the calls in threads released together; each one's outcome, sorted."""
    barrier = threading.Barrier(len(calls))
    results: list[str] = []

    def run(call: Callable[[], object]) -> None:
        barrier.wait()
        try:
            out = call()
            results.append(out.refund.status if isinstance(out, rf.Outcome) else str(out))
        except rf.RefundError as exc:
            results.append(type(exc).__name__)

    threads = [threading.Thread(target=run, args=(c,)) for c in calls]
    for t in threads:
        t.start()
    for t in threads:
        t.join(20)
    return sorted(results)


def test_two_approvers_at_once_post_exactly_once(shared_store: Store) -> None:
    """Two finance users approve the same refund at the same moment, each through a
    connection of its own: one posts, the other is told it was decided, one entry."""
    store, gov = shared_store, MemoryGovernance()
    token = open_account(store)
    move_ar(store, token, "-900.00", key="overpaid")
    rid = ask(desk(store, gov)).refund.id
    assert _at_once(
        lambda: desk(store, gov).approve(rid, approver=BOB),
        lambda: desk(store, gov).approve(rid, approver=CAROL),
    ) == ["AlreadyDecided", "posted"]
    assert len(store.entries(correlation_id=f"refunds/{rid}")) == 1
    assert ar_balance(store, token) == Decimal("-300.00")


def test_two_requests_at_once_never_refund_more_than_the_credit(shared_store: Store) -> None:
    """Two auto-approved requests (under the threshold) for one account race: the account
    lock makes the second see the first's posting, so only one fits in the credit."""
    store, gov = shared_store, MemoryGovernance()
    token = open_account(store)
    move_ar(store, token, "-900.00", key="overpaid")
    assert _at_once(
        lambda: ask(desk(store, gov, "1000.00"), key="a"),
        lambda: ask(desk(store, gov, "1000.00"), key="b", who=ROOT),
    ) == ["InsufficientCredit", "posted"]
    assert ar_balance(store, token) == Decimal("-300.00")
