"""`flows.decision.apply`: one writer for every decided event, at the `now` it is given,
and the typed outcomes (`flows.outcome`) it answers with."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal

from isthmus.flows import outcome
from isthmus.flows.accounts import decide_delete
from isthmus.flows.decision import Decision, Resolve, apply, hold, post
from isthmus.flows.outcome import APPLIED, DUPLICATE, POSTED, Held, Ignored, Refused
from isthmus.flows.settlement import MatchDeposits, RecordDeposit
from isthmus.ledger.journal import Dimensions, JournalEntry, JournalLine
from isthmus.model import BankDeposited
from isthmus.model.envelope import Envelope, Source
from isthmus.store.memory import MemoryStore
from isthmus.store.ports import DepositRecord

NOW = 1_800_000_000.0
AT = datetime(2026, 11, 3, tzinfo=UTC)
D = Decimal


def env(event_id: str = "e1") -> Envelope:
    return Envelope(
        event_id=event_id,
        type="BankDeposited",
        occurred_at=AT,
        recorded_at=AT,
        source=Source("settlement", "f1", "m1"),
        correlation_id="c",
        causation_id="m1",
        key="deposit|R",
        payload=BankDeposited(deposit_date=AT.date(), amount=D("5.00"), reference="R"),
    )


def entry(key: str = "k1") -> JournalEntry:
    dims = Dimensions(company="C100")
    return JournalEntry(
        entry_key=key,
        posted_on=date(2026, 11, 3),
        period="2026-11",
        channel="settlement",
        memo="m",
        correlation_id="c",
        causation_id="e1",
        lines=(
            JournalLine(account="1050", debit=D(5), credit=D(0), currency="USD", dims=dims),
            JournalLine(account="1010", debit=D(0), credit=D(5), currency="USD", dims=dims),
        ),
    )


def deposit(event_id: str, side: str = "bank") -> DepositRecord:
    return DepositRecord(event_id, side, "R", D(5), "USD", AT.date(), "x", "c")


def test_a_hold_opens_its_work_item_at_the_time_passed_in() -> None:
    store = MemoryStore()
    with store.transaction() as tx:
        got = apply(
            tx, hold(env(), kind="unapplied_cash", queue="cash-posting", detail="no account"), NOW
        )
    assert got == Held("cash-posting", "no account") and got.label == "held"
    [item] = store.work_items("open")
    assert (item.kind, item.event_id, item.created_at) == ("unapplied_cash", "e1", NOW)


def test_a_post_writes_the_entry_once_and_resolves_what_held_the_event() -> None:
    store = MemoryStore()
    with store.transaction() as tx:
        apply(tx, hold(env(), kind="closed_period", queue="finance-close", detail="x"), NOW)
    with store.transaction() as tx:
        assert apply(tx, post(env(), entry()), NOW + 60) is POSTED
    with store.transaction() as tx:
        assert apply(tx, post(env(), entry()), NOW + 120) is DUPLICATE
    assert [e.entry_key for e in store.entries()] == ["k1"]
    [item] = store.work_items("resolved")
    assert (item.resolution, item.updated_at) == ("posted after the fix", NOW + 60)


def test_a_claim_written_before_makes_the_whole_decision_a_duplicate() -> None:
    store = MemoryStore()
    decided = Decision(
        APPLIED,
        claim=RecordDeposit(deposit("e1")),
        writes=(MatchDeposits("e1", "b0"),),
        entries=(entry(),),
        resolve=(Resolve("e1", "recorded"),),
    )
    with store.transaction() as tx:
        assert tx.record_deposit(deposit("e1"))
        assert apply(tx, decided, NOW) is DUPLICATE
    assert store.entries() == []  # nothing after the claim was written


def test_nothing_to_post_resolves_with_the_reason_given() -> None:
    assert post(env(), None, nothing="recorded") == Decision(
        APPLIED, resolve=(Resolve("e1", "recorded"),)
    )


def test_outcomes_render_the_words_the_store_and_the_metrics_show() -> None:
    words = ["posted", "applied", "duplicate", "held", "conflict", "reversed", "rejected"]
    assert [outcome.of(w).label for w in words] == words
    assert outcome.of("posted") is POSTED  # shared instances: no allocation per event
    assert outcome.of("unknown") == Ignored("unknown")  # a flow's own word is kept as is
    assert Refused("no flow handles X").label == "refused"


def test_a_deleted_person_with_postings_is_held_and_one_without_is_applied() -> None:
    held = decide_delete(env(), True)
    assert [(w.kind, w.queue, w.event_id) for w in held.open] == [
        ("person_delete_refused", "patient-accounting", "e1")
    ]
    assert decide_delete(env(), False) == Decision(APPLIED)
