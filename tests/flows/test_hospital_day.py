"""A whole simulated hospital day through classify -> store -> bus -> worker -> ledger.

What finance checks at close: the trial balance balances, A/R equals what the day billed
net of credits, every unmapped code waits in its queue, merged accounts carry no A/R, and
replaying every event changes nothing (effectively once).
"""

from __future__ import annotations

from collections import Counter
from decimal import Decimal
from pathlib import Path

from isthmus.bus.ports import Publish, partition_of
from isthmus.demo.ehr_day import UNMAPPED_CODE, expected_totals, hospital_day
from isthmus.flows.accounts import account_token
from isthmus.flows.relay import publications
from isthmus.formats.hl7v2 import parse_message
from isthmus.ledger.balance import trial_balance
from isthmus.store.ports import Inbound
from tests.flows.helpers import SECRET, Rig, make_rig

MESSAGES = 600


def day_events(inbound: list[Inbound]) -> list[Publish]:
    return [p for i in inbound if i.events for p in publications(i.events)]


def test_hospital_day_posts_the_expected_totals(rig: Rig) -> None:
    msgs = hospital_day(messages=MESSAGES, seed=11)
    inbound = rig.ingest([m.raw for m in msgs])
    assert [i.ack_code for i in inbound] == [m.expect_ack for m in msgs]
    rig.drain()
    assert rig.bus.pending() == 0
    assert rig.bus.dead_letters() == []

    tb = trial_balance(rig.store.journal_lines())
    assert tb.balanced
    exp = expected_totals(msgs)
    ar = next(r for r in tb.rows if r.account == "1200" and r.currency == "USD")
    assert ar.balance == exp["net"]["USD"]
    # revenue is the mirror image: credits net of the CD debits on the 4xxx accounts
    revenue = sum((r.balance for r in tb.rows if r.account.startswith("4")), Decimal(0))
    assert -revenue == exp["net"]["USD"]

    # every unmapped charge waits behind the ONE work item of its missing code (issue 15)
    unmapped = [m for m in msgs if m.kind == "unmapped"]
    items = rig.store.work_items()
    assert len(unmapped) == exp["kinds"]["unmapped"] > 1
    assert [(w.kind, w.queue, w.status, w.key) for w in items] == [
        ("unmapped_charge_code", "revenue-integrity", "open", UNMAPPED_CODE.code)
    ]
    totals = rig.store.hold_totals([items[0].event_id])[items[0].event_id]
    held = sum((m.amount for m in unmapped), Decimal(0))
    assert held == exp["unmapped"]["USD"]
    assert (totals.count, totals.amounts) == (len(unmapped), (("USD", held),))

    # A40: every merged duplicate ends with no A/R; its survivor carries it
    balances = rig.ar()
    merges = [parse_message(m.raw) for m in msgs if m.kind == "merge"]
    assert merges
    for mm in merges:
        dup_key = f"{mm.get('MRG-1.4')}|{mm.get('MRG-1.1')}"
        surv_key = f"{mm.get('PID-3.4')}|{mm.get('PID-3.1')}"
        assert balances.get((account_token(SECRET, dup_key), "USD"), Decimal(0)) == 0
        assert balances[(account_token(SECRET, surv_key), "USD")] > 0


def test_replaying_the_whole_day_changes_nothing(rig: Rig) -> None:
    msgs = hospital_day(messages=MESSAGES, seed=11)
    inbound = rig.ingest([m.raw for m in msgs])
    rig.drain()
    before = (
        rig.store.counts(),
        rig.entry_keys(),
        trial_balance(rig.store.journal_lines()),
        rig.ar(),
        [(w.id, w.status) for w in rig.store.work_items()],
    )
    events = day_events(inbound)
    assert rig.bus.replay(events) == len(events)
    assert rig.drain() == len(events)
    after = (
        rig.store.counts(),
        rig.entry_keys(),
        trial_balance(rig.store.journal_lines()),
        rig.ar(),
        [(w.id, w.status) for w in rig.store.work_items()],
    )
    assert after == before
    outcomes = rig.worker.stats.outcomes
    assert outcomes["duplicate"] == outcomes["posted"]  # each posting seen twice, kept once


def test_redelivering_the_same_messages_to_the_inbox_changes_nothing(rig: Rig) -> None:
    msgs = hospital_day(messages=MESSAGES, seed=5)
    rig.ingest([m.raw for m in msgs])
    rig.drain()
    before = (rig.store.counts(), rig.ar())
    again = rig.ingest([m.raw for m in msgs])  # the EHR resends the whole day
    assert [i.ack_code for i in again] == [m.expect_ack for m in msgs]
    assert rig.drain() == 0
    assert (rig.store.counts(), rig.ar()) == before


def test_the_day_balances_with_one_partition_or_many(tmp_path: Path) -> None:
    msgs = hospital_day(messages=MESSAGES, seed=3)
    totals = []
    for parts in (1, 5):
        (tmp_path / f"p{parts}").mkdir()
        rig = make_rig(tmp_path / f"p{parts}", partitions=parts)
        try:
            rig.ingest([m.raw for m in msgs])
            rig.drain()
            tb = trial_balance(rig.store.journal_lines())
            assert tb.balanced
            # zero balances are dropped: a merged token that was charged before its merge
            # shows 0.00, one merged before its charges arrived is never seen at all
            ar = {k: v for k, v in rig.ar().items() if v}
            totals.append((ar, Counter(w.kind for w in rig.store.work_items())))
        finally:
            rig.store.close()
    assert totals[0] == totals[1]


def test_the_books_do_not_depend_on_which_partition_runs_first(tmp_path: Path) -> None:
    """Gross debits and credits, not just balances: a merge must see exactly the charges
    sent before it, however far each partition has got (here: one partition drained
    completely before the next, forwards, then backwards)."""
    msgs = hospital_day(messages=MESSAGES, seed=4)
    crossing = [
        m
        for m in msgs
        if m.kind == "merge"
        and partition_of(m.patient_key, 4) != partition_of(_merged_key(m.raw), 4)
    ]
    assert crossing, "the seed must put a survivor and its duplicate in different partitions"
    books = []
    for name, order in (("fwd", range(4)), ("back", range(3, -1, -1))):
        (tmp_path / name).mkdir()
        rig = make_rig(tmp_path / name, partitions=4)
        try:
            rig.ingest([m.raw for m in msgs])
            for p in order:
                while rig.worker.run_once(p):
                    pass
            books.append(trial_balance(rig.store.journal_lines()).rows)
        finally:
            rig.store.close()
    assert books[0] == books[1]


def _merged_key(raw: bytes) -> str:
    msg = parse_message(raw)
    return f"{msg.get('MRG-1.4')}|{msg.get('MRG-1.1')}"
