"""The store contract, one suite subclassed per adapter (memory, SQLite; PostgreSQL later).

Each adapter's suite overrides the `store` fixture and the two `*_row` peeks: the port has
no reader for encounters and billing accounts, so the suite asks the adapter directly what
it stored. Everything else is checked through the port only.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import replace
from datetime import date
from decimal import Decimal

import msgspec
import pytest

from isthmus.ledger.batch import JournalBatch, build_batch
from isthmus.ledger.journal import JournalEntry, all_lines, reverse
from isthmus.ledger.periods import period_of
from isthmus.ledger.rules import charge_entry
from isthmus.model import Charge, Money, PatientRef
from isthmus.store.ports import (
    HELD,
    BillingAccount,
    ChargeRecord,
    ClaimRecord,
    DepositRecord,
    Hold,
    Inbound,
    Patient,
    Store,
    StoredMessage,
    held_ref,
)

AR, REVENUE = "1200", "4000"


class Boom(Exception):
    """A failing step inside a unit of work."""


# --- builders ------------------------------------------------------------------------------


def inbound(control_id: str, *, channel: str = "adt", status: str = "accepted",
            ack_code: str = "AA", error: str = "", events: bytes = b'[{"e":1}]',
            received_at: float = 100.0, raw: bytes | None = None,
            message_type: str = "ADT^A01") -> Inbound:
    return Inbound(channel=channel, control_id=control_id,
                   raw=raw if raw is not None else f"MSH|{control_id}".encode(),
                   received_at=received_at, peer="10.0.0.7:4411", message_type=message_type,
                   status=status, ack_code=ack_code, error=error, events=events)


def entry(key: str, *, amount: str = "125.50", currency: str = "USD", token: str = "PA-1",
          company: str = "C1", channel: str = "dft", corr: str = "corr-1",
          kind: str = "CG", posted_on: date = date(2024, 3, 5),
          moved_from: str | None = None) -> JournalEntry:
    """A real posting, made by the ledger's own charge rule: DR A/R / CR revenue (CG)."""
    charge = Charge(patient=PatientRef("MRN1", "HOSP"), transaction_id=key,
                    transaction_type=kind, quantity=1,
                    amount=Money(Decimal(amount), currency), charge_code="99213",
                    department="CARD", facility="F1", service_date=posted_on)
    return charge_entry(charge, entry_key=key, ar_account=AR, revenue_account=REVENUE,
                        service_line="CARDIO", cost_center="CC10", company=company,
                        account_token=token, period=period_of(posted_on), posted_on=posted_on,
                        channel=channel, correlation_id=corr, causation_id=f"ev-{key}",
                        moved_from=moved_from)


def charge_record(event_id: str, patient_key: str = "HOSP|1",
                  amount: str = "10.00") -> ChargeRecord:
    return ChargeRecord(event_id=event_id, patient_key=patient_key, account_token="PA-1",
                        transaction_id=f"T-{event_id}", transaction_type="CG",
                        charge_code="99213", amount=Decimal(amount), currency="USD",
                        service_date=date(2024, 3, 5), entry_key=f"E-{event_id}")


def patient(key: str, **kw: str) -> Patient:
    authority, mrn = key.split("|")
    return Patient(key=key, mrn=mrn, authority=authority, token=f"PA-{mrn}", **kw)


def message_ids(messages: Sequence[StoredMessage]) -> list[int]:
    return [m.id for m in messages]


def post(store: Store, *entries: JournalEntry) -> list[bool]:
    with store.transaction() as tx:
        return [tx.insert_entry(e) for e in entries]


def work(store: Store, event_id: str, *, kind: str = "unmapped_code", corr: str = "corr-1",
         detail: str = "code 99999 unmapped", now: float = 10.0) -> int | None:
    with store.transaction() as tx:
        return tx.add_work_item(kind=kind, queue="charge-master", key="acct-1",
                                event_id=event_id, correlation_id=corr, detail=detail,
                                envelope=f"env-{event_id}".encode(), now=now)


def detailed(batch_id: str, entries: Sequence[JournalEntry], channel: str = "dft") -> JournalBatch:
    return build_batch(batch_id, entries, policy="detailed", channel=channel)


FILES = [("erp", "csv", b"csv body"), ("erp", "jsonl", b"jsonl body")]


# --- the suite -----------------------------------------------------------------------------


class StoreContract:
    @pytest.fixture
    def store(self) -> Iterator[Store]:
        raise NotImplementedError

    def encounter_row(self, store: Store,
                      visit_number: str) -> tuple[str, str, str, str, str] | None:
        """(patient_key, facility, patient_class, status, updated_at) as the adapter stored it."""
        raise NotImplementedError

    def billing_account_row(self, store: Store, account_number: str) -> tuple[str, str] | None:
        """(patient_key, facility) as the adapter stored it."""
        raise NotImplementedError

    # inbox ---------------------------------------------------------------------------------

    def test_accept_stores_the_message_with_its_answer(self, store: Store) -> None:
        m = inbound("C1", ack_code="AA", received_at=123.5)
        [a] = store.accept([m])
        assert (a.duplicate, a.ack_code, a.status, a.error) == (False, "AA", "accepted", "")
        got = store.message(a.message_id)
        assert got is not None
        assert (got.id, got.channel, got.control_id, got.received_at, got.peer,
                got.message_type, got.status, got.ack_code, got.error, got.raw, got.events,
                got.published) == (a.message_id, "adt", "C1", 123.5, m.peer, "ADT^A01",
                                   "accepted", "AA", "", b"MSH|C1", b'[{"e":1}]', False)

    def test_duplicate_gets_the_first_answer_and_the_same_id(self, store: Store) -> None:
        [first] = store.accept([inbound("C1", status="rejected", ack_code="AE",
                                        error="PID-3 missing", events=b"")])
        [again] = store.accept([inbound("C1", status="accepted", ack_code="AA",
                                        raw=b"MSH|other")])
        assert again.duplicate is True
        assert (again.message_id, again.ack_code, again.status, again.error) == (
            first.message_id, "AE", "rejected", "PID-3 missing")
        stored = store.message(first.message_id)
        assert stored is not None and stored.raw == b"MSH|C1"  # the duplicate stored nothing
        assert store.counts()["messages"] == 1

    def test_duplicate_inside_one_batch(self, store: Store) -> None:
        a, b, c = store.accept([inbound("C1", error="first"), inbound("C2"),
                                inbound("C1", ack_code="AR", error="second")])
        assert (a.duplicate, b.duplicate, c.duplicate) == (False, False, True)
        assert c.message_id == a.message_id and a.message_id != b.message_id
        assert (c.ack_code, c.error) == ("AA", "first")
        assert store.counts()["messages"] == 2

    def test_same_control_id_other_content_is_a_conflict(self, store: Store) -> None:
        (first,) = store.accept([replace(inbound("C9"), digest="aaa")])
        (same,) = store.accept([replace(inbound("C9"), digest="aaa")])
        (other,) = store.accept([replace(inbound("C9", raw=b"other"), digest="bbb")])
        assert (same.duplicate, same.conflict) == (True, False)
        assert (other.duplicate, other.conflict, other.message_id) == (True, True,
                                                                       first.message_id)
        stored = store.message(first.message_id)
        assert stored is not None and stored.digest == "aaa" and stored.raw == b"MSH|C9"
        assert len(store.messages()) == 1

    def test_control_id_is_scoped_by_channel(self, store: Store) -> None:
        a, b = store.accept([inbound("C1", channel="adt"), inbound("C1", channel="dft")])
        assert not a.duplicate and not b.duplicate and a.message_id != b.message_id
        found = store.message_by_control_id("dft", "C1")
        assert found is not None and found.id == b.message_id
        assert store.message_by_control_id("bar", "C1") is None
        assert store.message_by_control_id("adt", "C9") is None
        assert store.message(a.message_id + b.message_id + 1000) is None

    def test_ids_grow_in_batch_order(self, store: Store) -> None:
        ids = [a.message_id for a in store.accept([inbound(f"C{i}") for i in range(5)])]
        ids += [a.message_id for a in store.accept([inbound("C9")])]
        assert ids == sorted(ids) and len(set(ids)) == 6

    def test_rejected_message_is_kept_but_never_published(self, store: Store) -> None:
        [bad] = store.accept([inbound("C1", status="rejected", ack_code="AR",
                                      error="not HL7", events=b"")])
        [good] = store.accept([inbound("C2")])
        kept = store.message(bad.message_id)
        assert kept is not None and kept.published and kept.error == "not HL7"
        assert [m.id for m in store.unpublished(10)] == [good.message_id]
        assert store.counts()["rejected"] == 1

    def test_held_message_is_kept_with_its_work_item_and_never_published(
            self, store: Store) -> None:
        hold = Hold("unbalanced_remittance", "cash-posting", "BPR02 100.00 out by 5.00")
        [before] = store.accept([inbound("C0")])
        [held] = store.accept([replace(inbound("H1", channel="x12", status=HELD,
                                               ack_code="999-E"), hold=hold)])
        [after] = store.accept([inbound("C2")])
        assert held.status == HELD and not held.duplicate
        kept = store.message(held.message_id)
        assert kept is not None and kept.status == HELD and not kept.published
        assert kept.events == b'[{"e":1}]'  # its events are kept, waiting
        assert [m.id for m in store.unpublished(10)] == [before.message_id, after.message_id]
        [item] = store.work_items_for(held_ref("x12", "H1"))
        assert (item.kind, item.queue, item.status, item.key, item.event_id, item.detail) == (
            "unbalanced_remittance", "cash-posting", "open", "H1", "x12/H1",
            "BPR02 100.00 out by 5.00")
        counts = store.counts()
        assert counts["held"] == 1 and counts["unpublished"] == 2
        assert [m.id for m in store.messages(status=HELD)] == [held.message_id]

    def test_held_duplicate_gets_the_first_answer_and_no_second_item(
            self, store: Store) -> None:
        m = replace(inbound("H1", channel="x12", status=HELD, ack_code="999-E"),
                    hold=Hold("unbalanced_remittance", "cash-posting", "out"))
        [first] = store.accept([m])
        [again] = store.accept([m])
        assert again.duplicate and again.message_id == first.message_id
        assert (again.status, again.ack_code) == (HELD, "999-E")
        assert len(store.work_items_for(held_ref("x12", "H1"))) == 1

    def test_release_moves_a_held_message_to_accepted_and_resolves_its_item(
            self, store: Store) -> None:
        store.accept([replace(inbound("H1", channel="x12", status=HELD, ack_code="999-E"),
                              hold=Hold("unbalanced_remittance", "cash-posting", "out"))])
        [other] = store.accept([inbound("C1")])
        done = store.release("x12", "H1", resolution="released by pat: payer confirmed",
                             now=200.0)
        assert done is not None and done.status == "accepted" and not done.published
        assert [m.id for m in store.unpublished(10)] == sorted([done.id, other.message_id])
        [item] = store.work_items_for(held_ref("x12", "H1"))
        assert (item.status, item.resolution, item.updated_at) == (
            "resolved", "released by pat: payer confirmed", 200.0)
        assert store.counts()["held"] == 0
        # released already, never held, unknown: no change
        assert store.release("x12", "H1", resolution="again", now=300.0) is None
        assert store.release("adt", "C1", resolution="x", now=300.0) is None
        assert store.release("x12", "nope", resolution="x", now=300.0) is None
        [item] = store.work_items_for(held_ref("x12", "H1"))
        assert item.resolution == "released by pat: payer confirmed"

    def test_unpublished_in_order_and_mark_published(self, store: Store) -> None:
        ids = [a.message_id for a in store.accept([inbound(f"C{i}") for i in range(5)])]
        assert [m.id for m in store.unpublished(3)] == ids[:3]
        store.mark_published(ids[:2])
        store.mark_published([])
        store.mark_published([max(ids) + 1000])  # unknown id: nothing happens
        assert [m.id for m in store.unpublished(10)] == ids[2:]
        first = store.message(ids[0])
        assert first is not None and first.published
        third = store.message(ids[2])
        assert third is not None and not third.published

    def test_messages_filters_since_until_status_limit(self, store: Store) -> None:
        got = store.accept([
            inbound("A", received_at=10.0),
            inbound("B", received_at=20.0, status="rejected", ack_code="AE", events=b""),
            inbound("C", received_at=30.0),
            inbound("D", received_at=40.0, status="rejected", ack_code="AR", events=b""),
        ])
        a, b, c, d = (x.message_id for x in got)
        assert message_ids(store.messages()) == [a, b, c, d]
        assert message_ids(store.messages(since=20.0)) == [b, c, d]  # since is inclusive
        assert message_ids(store.messages(until=30.0)) == [a, b]  # until is exclusive
        assert message_ids(store.messages(since=15.0, until=40.0)) == [b, c]
        assert message_ids(store.messages(status="rejected")) == [b, d]
        assert message_ids(store.messages(status="accepted", since=20.0)) == [c]
        assert message_ids(store.messages(limit=2)) == [a, b]
        assert store.messages(since=50.0) == []

    def test_message_counts_per_channel_status_and_ack(self, store: Store) -> None:
        store.accept([
            inbound("A", received_at=10.0),
            inbound("B", received_at=20.0, status="rejected", ack_code="AE", events=b""),
            inbound("C", received_at=30.0),
            inbound("D", received_at=40.0, status="rejected", ack_code="AR", events=b""),
            inbound("E", channel="x12", received_at=50.0),
        ])
        assert store.message_counts() == {("adt", "accepted", "AA"): 2,
                                          ("adt", "rejected", "AE"): 1,
                                          ("adt", "rejected", "AR"): 1,
                                          ("x12", "accepted", "AA"): 1}
        assert store.message_counts(since=30.0) == {("adt", "accepted", "AA"): 1,
                                                    ("adt", "rejected", "AR"): 1,
                                                    ("x12", "accepted", "AA"): 1}
        assert store.message_counts(since=60.0) == {}

    def test_accepted_events_in_inbox_order_without_rejected(self, store: Store) -> None:
        store.accept([
            inbound("A", received_at=10.0, events=b'[{"a":1}]'),
            inbound("B", received_at=20.0, status="rejected", ack_code="AE", events=b""),
            inbound("C", received_at=30.0, events=b'[{"c":1}]'),
        ])
        assert store.accepted_events() == [(10.0, b'[{"a":1}]'), (30.0, b'[{"c":1}]')]
        assert store.accepted_events(since=30.0) == [(30.0, b'[{"c":1}]')]
        assert store.accepted_events(since=31.0) == []

    def test_concurrent_accept_stores_each_message_once(self, store: Store) -> None:
        results: list[list[tuple[str, int, bool]]] = [[] for _ in range(4)]
        errors: list[BaseException] = []
        start = threading.Barrier(4)

        def run(n: int) -> None:
            try:
                start.wait()
                for i in range(0, 40, 8):  # every thread sends the same 40, in batches of 8
                    batch = [inbound(f"C{j}") for j in range(i, i + 8)]
                    for m, a in zip(batch, store.accept(batch), strict=True):
                        results[n].append((m.control_id, a.message_id, a.duplicate))
            except BaseException as exc:
                errors.append(exc)

        threads = [threading.Thread(target=run, args=(n,)) for n in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        assert errors == []
        assert store.counts()["messages"] == 40
        ids: dict[str, set[int]] = {}
        fresh: Counter[str] = Counter()
        for rows in results:
            assert len(rows) == 40
            for control_id, message_id, duplicate in rows:
                ids.setdefault(control_id, set()).add(message_id)
                fresh[control_id] += not duplicate
        assert all(len(v) == 1 for v in ids.values())  # every thread got the same id
        assert fresh == Counter({f"C{j}": 1 for j in range(40)})  # stored exactly once

    # transactions ----------------------------------------------------------------------------

    def test_transaction_commits_every_effect(self, store: Store) -> None:
        with store.transaction() as tx:
            tx.put_patient(patient("HOSP|1"))
            assert tx.record_charge(charge_record("ev1"))
            assert tx.insert_entry(entry("E1"))
            assert tx.add_work_item(kind="k", queue="q", key="x", event_id="ev1",
                                    correlation_id="corr-1", detail="d", envelope=b"",
                                    now=1.0) is not None
            assert tx.get_patient("HOSP|1") == patient("HOSP|1")  # reads its own writes
        with store.transaction() as tx:
            assert tx.get_patient("HOSP|1") == patient("HOSP|1")
        assert [e.entry_key for e in store.entries()] == ["E1"]
        c = store.counts()
        assert (c["patients"], c["charges"], c["journal_entries"], c["journal_lines"],
                c["open_work_items"]) == (1, 1, 1, 2, 1)

    def test_transaction_rolls_back_everything_on_exception(self, store: Store) -> None:
        with pytest.raises(Boom), store.transaction() as tx:
            tx.put_patient(patient("HOSP|1"))
            tx.record_charge(charge_record("ev1"))
            tx.insert_entry(entry("E1"))
            tx.add_work_item(kind="k", queue="q", key="x", event_id="ev1",
                             correlation_id="corr-1", detail="d", envelope=b"", now=1.0)
            raise Boom
        assert store.entries() == [] and list(store.journal_lines()) == []
        assert store.work_items() == []
        assert all(v == 0 for v in store.counts().values())
        with store.transaction() as tx:  # the keys were not consumed by the failed attempt
            assert tx.get_patient("HOSP|1") is None
            assert tx.record_charge(charge_record("ev1")) is True
            assert tx.insert_entry(entry("E1")) is True
            assert tx.add_work_item(kind="k", queue="q", key="x", event_id="ev1",
                                    correlation_id="corr-1", detail="d", envelope=b"",
                                    now=1.0) is not None

    def test_rollback_keeps_what_was_committed_before(self, store: Store) -> None:
        post(store, entry("E1"))
        with pytest.raises(Boom), store.transaction() as tx:
            tx.insert_entry(entry("E2"))
            raise Boom
        assert [e.entry_key for e in store.entries()] == ["E1"]

    def test_savepoint_isolates_a_failing_step(self, store: Store) -> None:
        with store.transaction() as tx:
            with tx.savepoint():
                tx.insert_entry(entry("E1"))
            with pytest.raises(Boom), tx.savepoint():
                tx.insert_entry(entry("E2"))
                tx.record_charge(charge_record("ev2"))
                tx.put_patient(patient("HOSP|2"))
                raise Boom
            with tx.savepoint():
                tx.insert_entry(entry("E3"))
            assert tx.get_patient("HOSP|2") is None  # undone at once, not only at commit
        assert [e.entry_key for e in store.entries()] == ["E1", "E3"]
        c = store.counts()
        assert (c["charges"], c["patients"], c["journal_lines"]) == (0, 0, 4)

    def test_nested_savepoint_failure_keeps_the_outer_step(self, store: Store) -> None:
        with store.transaction() as tx, tx.savepoint():
            tx.insert_entry(entry("E1"))
            with pytest.raises(Boom), tx.savepoint():
                tx.insert_entry(entry("E2"))
                raise Boom
            tx.insert_entry(entry("E3"))
        assert [e.entry_key for e in store.entries()] == ["E1", "E3"]

    def test_released_savepoint_is_undone_by_its_failing_transaction(self, store: Store) -> None:
        with pytest.raises(Boom), store.transaction() as tx:
            with tx.savepoint():
                tx.insert_entry(entry("E1"))
            raise Boom
        assert store.entries() == []

    # patients, encounters, billing accounts --------------------------------------------------

    def test_patient_put_and_get(self, store: Store) -> None:
        p = patient("HOSP|1", family_name="DOE", given_name="JANE", birth_date="19800102",
                    sex="F")
        with store.transaction() as tx:
            assert tx.get_patient("HOSP|1") is None
            tx.put_patient(p)
            tx.put_patient(patient("HOSP|2"))
        with store.transaction() as tx:
            assert tx.get_patient("HOSP|1") == p
            assert tx.get_patient("HOSP|2") == patient("HOSP|2")
            assert tx.get_patient("OTHER|1") is None
        assert store.counts()["patients"] == 2

    def test_put_patient_upserts_demographics_and_keeps_identity(self, store: Store) -> None:
        with store.transaction() as tx:
            tx.put_patient(patient("HOSP|1", family_name="DOE", sex="F"))
        with store.transaction() as tx:
            tx.put_patient(Patient(key="HOSP|1", mrn="X", authority="Y", token="PA-new",
                                   family_name="SMITH", given_name="ANN",
                                   birth_date="19800102", sex="F", merged_into="HOSP|9"))
        with store.transaction() as tx:
            assert tx.get_patient("HOSP|1") == Patient(
                key="HOSP|1", mrn="1", authority="HOSP", token="PA-1", family_name="SMITH",
                given_name="ANN", birth_date="19800102", sex="F", merged_into="HOSP|9")
        assert store.counts()["patients"] == 1

    def test_put_encounter_upserts_status_and_keeps_a_known_class(self, store: Store) -> None:
        with store.transaction() as tx:
            tx.put_encounter("V1", "HOSP|1", "F1", "I", "active", "2024-03-05T10:00")
        assert self.encounter_row(store, "V1") == ("HOSP|1", "F1", "I", "active",
                                                   "2024-03-05T10:00")
        with store.transaction() as tx:  # A03 discharge carries no class: keep the known one
            tx.put_encounter("V1", "HOSP|1", "F1", "", "discharged", "2024-03-07T09:00")
        assert self.encounter_row(store, "V1") == ("HOSP|1", "F1", "I", "discharged",
                                                   "2024-03-07T09:00")
        with store.transaction() as tx:
            tx.put_encounter("V1", "HOSP|1", "F1", "O", "active", "2024-03-08T09:00")
        assert self.encounter_row(store, "V1") == ("HOSP|1", "F1", "O", "active",
                                                   "2024-03-08T09:00")
        assert self.encounter_row(store, "V2") is None

    def test_put_billing_account_upserts_its_patient(self, store: Store) -> None:
        with store.transaction() as tx:
            tx.put_billing_account("A1", "HOSP|1", "F1")
        assert self.billing_account_row(store, "A1") == ("HOSP|1", "F1")
        with store.transaction() as tx:
            tx.put_billing_account("A1", "HOSP|2", "F1")
        assert self.billing_account_row(store, "A1") == ("HOSP|2", "F1")
        assert self.billing_account_row(store, "A2") is None

    def test_get_billing_account_reads_what_put_stored(self, store: Store) -> None:
        with store.transaction() as tx:
            assert tx.get_billing_account("A1") is None
            tx.put_billing_account("A1", "HOSP|1", "F1")
            assert tx.get_billing_account("A1") == BillingAccount("A1", "HOSP|1", "F1")
        with store.transaction() as tx:
            tx.put_billing_account("A1", "HOSP|2", "F9")  # a new owner, the first facility
            tx.put_patient(patient("HOSP|2"))
            tx.put_patient(patient("HOSP|3"))
            tx.merge_patient("HOSP|2", "HOSP|3")
            assert tx.get_billing_account("A1") == BillingAccount("A1", "HOSP|3", "F1")
            assert tx.get_billing_account("A2") is None

    def test_get_billing_account_sees_nothing_of_a_rolled_back_put(self, store: Store) -> None:
        with pytest.raises(Boom), store.transaction() as tx:
            tx.put_billing_account("A1", "HOSP|1", "F1")
            raise Boom
        with store.transaction() as tx:
            assert tx.get_billing_account("A1") is None

    def test_claim_register_is_idempotent_and_finds_the_latest_claim(
            self, store: Store) -> None:
        first = ClaimRecord("x12/S:1/1/0", "A1", "PAYER", "", Decimal("120.50"), "USD")
        second = ClaimRecord("x12/S:2/1/0", "A1", "PAYER", "ICN9", Decimal("99.00"), "USD")
        other = ClaimRecord("x12/S:2/1/1", "A2", "PAYER", "ICN7", Decimal("10.00"), "USD")
        with store.transaction() as tx:
            assert tx.find_claim("A1") is None
            assert tx.record_claim(first) is True
            assert tx.record_claim(first) is False
            assert tx.record_claim(second) and tx.record_claim(other)
        with store.transaction() as tx:
            assert tx.find_claim("A1") == second
            assert tx.find_claim("A2", "ICN9") == other  # the control number wins
            assert tx.find_claim("NOPE", "ICN9") == second
            assert tx.find_claim("NOPE") is None
            found = tx.find_claim("A1")
            assert found is not None and found.total_charge == Decimal("99.00")

    def test_deposit_records_are_idempotent_matched_in_pairs_and_rolled_back(
            self, store: Store) -> None:
        eft = DepositRecord("x12/S:1/0001/eft", "eft", "EFT1", Decimal("450.00"), "USD",
                            date(2026, 11, 5), "PAYER", "x12/S:1")
        bank = DepositRecord("bank/2026-11-06/EFT1/450.00", "bank", "EFT1",
                             Decimal("450.00"), "USD", date(2026, 11, 6), "ACH", "bank/f")
        other = DepositRecord("bank/2026-11-06/EFT2/1.00", "bank", "EFT2", Decimal("1.00"),
                              "USD", date(2026, 11, 6), "ACH", "bank/f")
        with store.transaction() as tx:
            assert tx.open_deposits("EFT1") == []
            assert tx.record_deposit(eft) is True
            assert tx.record_deposit(eft) is False
            assert tx.record_deposit(bank) and tx.record_deposit(other)
            assert tx.open_deposits("EFT1") == [eft, bank]  # oldest first
        with pytest.raises(Boom), store.transaction() as tx:
            tx.match_deposits(eft.event_id, bank.event_id, "bank/2026-11-06/EFT1/450.00/match")
            raise Boom
        with store.transaction() as tx:
            assert tx.open_deposits("EFT1") == [eft, bank]
            tx.match_deposits(eft.event_id, bank.event_id, "K")
            assert tx.open_deposits("EFT1") == []
        got = store.deposit_records()
        assert [(r.event_id, r.matched_with, r.entry_key) for r in got] == [
            (eft.event_id, bank.event_id, "K"), (bank.event_id, eft.event_id, "K"),
            (other.event_id, "", "")]
        assert got[0].amount == Decimal("450.00") and got[0].on_date == date(2026, 11, 5)

    def test_merge_patient_moves_charges_and_returns_their_count(self, store: Store) -> None:
        with store.transaction() as tx:
            for key in ("HOSP|1", "HOSP|2", "HOSP|3"):
                tx.put_patient(patient(key))
            tx.record_charge(charge_record("ev1", "HOSP|1"))
            tx.record_charge(charge_record("ev2", "HOSP|1"))
            tx.record_charge(charge_record("ev3", "HOSP|2"))
        with store.transaction() as tx:
            assert tx.merge_patient("HOSP|1", "HOSP|2") == 2
            merged = tx.get_patient("HOSP|1")
            assert merged is not None and merged.merged_into == "HOSP|2"
            survivor = tx.get_patient("HOSP|2")
            assert survivor is not None and survivor.merged_into == ""
        with store.transaction() as tx:
            assert tx.merge_patient("HOSP|1", "HOSP|2") == 0  # nothing left to move
            assert tx.merge_patient("HOSP|2", "HOSP|3") == 3  # the moved ones moved with it
        assert store.counts()["charges"] == 3

    def test_merge_patient_moves_encounters_and_billing_accounts(self, store: Store) -> None:
        with store.transaction() as tx:
            tx.put_patient(patient("HOSP|1"))
            tx.put_patient(patient("HOSP|2"))
            tx.put_encounter("V1", "HOSP|1", "F1", "I", "active", "t1")
            tx.put_encounter("V2", "HOSP|2", "F1", "O", "active", "t2")
            tx.put_encounter("V3", "HOSP|3", "F2", "E", "active", "t3")
            tx.put_billing_account("A1", "HOSP|1", "F1")
            tx.put_billing_account("A3", "HOSP|3", "F2")
            assert tx.merge_patient("HOSP|1", "HOSP|2") == 0
        assert self.encounter_row(store, "V1") == ("HOSP|2", "F1", "I", "active", "t1")
        assert self.encounter_row(store, "V2") == ("HOSP|2", "F1", "O", "active", "t2")
        assert self.encounter_row(store, "V3") == ("HOSP|3", "F2", "E", "active", "t3")
        assert self.billing_account_row(store, "A1") == ("HOSP|2", "F1")
        assert self.billing_account_row(store, "A3") == ("HOSP|3", "F2")

    # charges ---------------------------------------------------------------------------------

    def test_record_charge_is_idempotent_on_event_id(self, store: Store) -> None:
        with store.transaction() as tx:
            assert tx.record_charge(charge_record("ev1", "HOSP|1")) is True
            assert tx.record_charge(charge_record("ev2", "HOSP|1")) is True
        with store.transaction() as tx:
            assert tx.record_charge(charge_record("ev1", "HOSP|2", amount="99.00")) is False
        assert store.counts()["charges"] == 2
        with store.transaction() as tx:  # the first record stands: ev1 still belongs to HOSP|1
            assert tx.merge_patient("HOSP|2", "HOSP|3") == 0
            assert tx.merge_patient("HOSP|1", "HOSP|3") == 2

    # journal ---------------------------------------------------------------------------------

    def test_insert_entry_is_idempotent_and_never_duplicates_lines(self, store: Store) -> None:
        assert post(store, entry("E1")) == [True]
        assert post(store, entry("E1"), entry("E1", amount="999.00")) == [False, False]
        [stored] = store.entries()
        assert stored == entry("E1")  # the first posting stands
        assert len(list(store.journal_lines())) == 2
        assert store.counts()["journal_lines"] == 2
        assert store.counts()["journal_entries"] == 1

    def test_entries_round_trip_exactly(self, store: Store) -> None:
        usd = entry("E1", amount="125.50", corr="c1")
        jpy = entry("E2", amount="1000", currency="JPY", company="C2", token="PA-2", corr="c2")
        kwd = entry("E3", amount="1.005", currency="KWD", kind="CD", corr="c3",
                    posted_on=date(2024, 4, 1), moved_from="2024-03")
        rev = reverse(usd, entry_key="E1/rev", posted_on=date(2024, 4, 2), period="2024-04",
                      causation_id="ev-fix")
        post(store, usd, jpy, kwd, rev)
        got = store.entries()
        assert got == [usd, jpy, kwd, rev]
        assert (got[2].moved_from, got[3].reverses, got[0].reverses, got[0].moved_from) == (
            "2024-03", "E1", None, None)
        for want, have in zip([usd, jpy, kwd, rev], got, strict=True):
            for w, h in zip(want.lines, have.lines, strict=True):
                assert type(h.debit) is Decimal and type(h.credit) is Decimal
                # exact text, scale included: 125.50 stays 125.50, 0.000 stays 0.000
                assert (str(h.debit), str(h.credit)) == (str(w.debit), str(w.credit))
                assert h.dims == w.dims and h.account == w.account
        assert str(got[0].lines[0].debit) == "125.50"
        assert str(got[2].lines[0].credit) == "0.000"

    def test_entries_by_correlation_id_in_posting_order(self, store: Store) -> None:
        post(store, entry("E1", corr="a"), entry("E2", corr="b"), entry("E3", corr="a"),
             entry("E4", corr="a"))
        assert [e.entry_key for e in store.entries(correlation_id="a")] == ["E1", "E3", "E4"]
        assert [e.entry_key for e in store.entries(correlation_id="a", limit=2)] == ["E1", "E3"]
        assert store.entries(correlation_id="zzz") == []

    def test_entries_limit_keeps_posting_order(self, store: Store) -> None:
        post(store, entry("E3"), entry("E1"), entry("E2"))
        assert [e.entry_key for e in store.entries(limit=2)] == ["E3", "E1"]

    def test_journal_lines_yields_every_line_of_every_entry(self, store: Store) -> None:
        es = [entry("E1"), entry("E2", amount="7.25", currency="EUR", token="PA-9"),
              entry("E3", kind="CD", amount="3.00")]
        post(store, *es)
        assert Counter(store.journal_lines()) == Counter(all_lines(es))

    def test_ar_balances_per_company_and_currency_debit_positive(self, store: Store) -> None:
        post(store,
             entry("E1", amount="100.00"),
             entry("E2", amount="30.25", kind="CD"),
             entry("E3", amount="50.00", currency="EUR"),
             entry("E4", amount="20.00", company="C2"),
             entry("E5", amount="5.00", company="C3", kind="CD"),  # a credit balance
             entry("E6", amount="999.00", token="PA-other"))
        with store.transaction() as tx:
            assert tx.ar_balances(AR, "PA-1") == {
                ("C1", "USD"): Decimal("69.75"), ("C1", "EUR"): Decimal("50.00"),
                ("C2", "USD"): Decimal("20.00"), ("C3", "USD"): Decimal("-5.00")}
            assert tx.ar_balances(AR, "PA-other") == {("C1", "USD"): Decimal("999.00")}
            assert tx.ar_balances(REVENUE, "PA-1") == {}  # revenue lines carry no token
            assert tx.ar_balances(AR, "PA-nobody") == {}
            tx.insert_entry(entry("E7", amount="0.25"))  # sees the open transaction's lines
            assert tx.ar_balances(AR, "PA-1")[("C1", "USD")] == Decimal("70.00")

    # work items ------------------------------------------------------------------------------

    def test_add_work_item_returns_an_id_once_per_kind_and_event(self, store: Store) -> None:
        first = work(store, "ev1", detail="first", now=10.0)
        assert first is not None
        assert work(store, "ev1", detail="again", now=20.0) is None
        other = work(store, "ev1", kind="unmapped_facility", now=30.0)
        assert other is not None and other != first
        item = store.work_item(first)
        assert item is not None
        assert (item.id, item.kind, item.queue, item.status, item.key, item.event_id,
                item.correlation_id, item.detail, item.created_at, item.updated_at,
                item.resolution, item.envelope) == (
            first, "unmapped_code", "charge-master", "open", "acct-1", "ev1", "corr-1",
            "first", 10.0, 10.0, "", b"env-ev1")
        assert store.work_item(first + other + 1000) is None
        assert len(store.work_items()) == 2

    def test_add_work_item_reopens_a_resubmitted_item(self, store: Store) -> None:
        wid = work(store, "ev1", detail="first", now=10.0)
        assert wid is not None
        store.set_work_item_status(wid, "resubmitted", "fixed the map", now=15.0)
        assert work(store, "ev1", detail="failed again", now=20.0) is None
        item = store.work_item(wid)
        assert item is not None
        assert (item.status, item.detail, item.created_at, item.updated_at) == (
            "open", "failed again", 10.0, 20.0)
        assert store.counts()["open_work_items"] == 1

    def test_add_work_item_leaves_open_and_resolved_items_alone(self, store: Store) -> None:
        a = work(store, "ev1", detail="a", now=10.0)
        b = work(store, "ev2", detail="b", now=10.0)
        assert a is not None and b is not None
        store.set_work_item_status(b, "resolved", "written off", now=11.0)
        assert work(store, "ev1", detail="a2", now=20.0) is None
        assert work(store, "ev2", detail="b2", now=20.0) is None
        ia, ib = store.work_item(a), store.work_item(b)
        assert ia is not None and (ia.status, ia.detail, ia.updated_at) == ("open", "a", 10.0)
        assert ib is not None and (ib.status, ib.detail, ib.updated_at, ib.resolution) == (
            "resolved", "b", 11.0, "written off")

    def test_work_items_filter_by_status_in_id_order_with_limit(self, store: Store) -> None:
        ids = [work(store, f"ev{i}") for i in range(5)]
        assert all(i is not None for i in ids)
        w = [i for i in ids if i is not None]
        store.set_work_item_status(w[1], "resolved", "ok", now=50.0)
        store.set_work_item_status(w[3], "resubmitted", "retry", now=50.0)
        assert [x.id for x in store.work_items()] == w
        assert [x.id for x in store.work_items(limit=2)] == w[:2]
        assert [x.id for x in store.work_items("open")] == [w[0], w[2], w[4]]
        assert [x.id for x in store.work_items("open", limit=2)] == [w[0], w[2]]
        assert [x.id for x in store.work_items("resolved")] == [w[1]]
        assert store.work_items("nope") == []
        assert store.counts()["open_work_items"] == 3

    def test_set_work_item_status(self, store: Store) -> None:
        wid = work(store, "ev1", now=10.0)
        assert wid is not None
        store.set_work_item_status(wid, "resolved", "mapped 99999 -> 4010", now=42.0)
        store.set_work_item_status(wid + 1000, "resolved", "nothing", now=43.0)  # unknown: no-op
        item = store.work_item(wid)
        assert item is not None
        assert (item.status, item.resolution, item.updated_at, item.created_at) == (
            "resolved", "mapped 99999 -> 4010", 42.0, 10.0)
        assert store.counts()["open_work_items"] == 0
        assert len(store.work_items()) == 1

    def test_close_work_items_resolves_open_and_resubmitted_items_of_the_event(
            self, store: Store) -> None:
        a = work(store, "ev1", kind="unmapped_code", now=10.0)
        b = work(store, "ev1", kind="unmapped_facility", now=10.0)
        c = work(store, "ev1", kind="unmapped_department", now=10.0)
        d = work(store, "ev1", kind="bad_amount", now=10.0)
        other = work(store, "ev2", now=10.0)
        assert a and b and c and d and other
        store.set_work_item_status(b, "resubmitted", "mapped F9 -> C1", now=11.0)
        store.set_work_item_status(c, "resolved", "written off", now=12.0)
        store.set_work_item_status(d, "dismissed", "duplicate report", now=13.0)
        with store.transaction() as tx:
            assert tx.close_work_items("ev1", "posted after the fix", now=20.0) == 2
        got = {i: store.work_item(i) for i in (a, b, c, d, other)}
        summary = {i: None if w is None else (w.status, w.resolution, w.updated_at)
                   for i, w in got.items()}
        assert summary == {
            a: ("resolved", "posted after the fix", 20.0),
            b: ("resolved", "mapped F9 -> C1", 20.0),  # a resolution already given stands
            c: ("resolved", "written off", 12.0),  # already closed: untouched
            d: ("dismissed", "duplicate report", 13.0),
            other: ("open", "", 10.0),
        }
        with store.transaction() as tx:
            assert tx.close_work_items("ev1", "again", now=30.0) == 0
            assert tx.close_work_items("ev-none", "x", now=30.0) == 0
        assert store.counts()["open_work_items"] == 1

    def test_close_work_items_is_undone_with_its_transaction(self, store: Store) -> None:
        wid = work(store, "ev1", now=10.0)
        assert wid is not None
        with pytest.raises(Boom), store.transaction() as tx:
            tx.close_work_items("ev1", "posted", now=20.0)
            raise Boom
        item = store.work_item(wid)
        assert item is not None and (item.status, item.updated_at) == ("open", 10.0)

    def test_work_items_for_a_correlation_id(self, store: Store) -> None:
        a = work(store, "ev1", corr="m1")
        work(store, "ev2", corr="m2")
        b = work(store, "ev3", corr="m1", kind="unmapped_facility")
        assert [x.id for x in store.work_items_for("m1")] == [a, b]
        assert store.work_items_for("m3") == []

    # mappings --------------------------------------------------------------------------------

    def test_mapping_overrides(self, store: Store) -> None:
        with store.transaction() as tx:
            assert tx.mapping_override("charge_codes", "99999") is None
        store.set_mapping_override("charge_codes", "99999", "4010")
        store.set_mapping_override("facility_company", "99999", "C7")
        with store.transaction() as tx:
            assert tx.mapping_override("charge_codes", "99999") == "4010"
            assert tx.mapping_override("facility_company", "99999") == "C7"
            assert tx.mapping_override("charge_codes", "11111") is None
        store.set_mapping_override("charge_codes", "99999", "4020")
        with store.transaction() as tx:
            assert tx.mapping_override("charge_codes", "99999") == "4020"
            assert tx.mapping_override("facility_company", "99999") == "C7"

    # batches ---------------------------------------------------------------------------------

    def test_unbatched_entries_per_channel(self, store: Store) -> None:
        post(store, entry("E1", channel="dft"), entry("E2", channel="bar"),
             entry("E3", channel="dft"), entry("E4", channel="dft"))
        assert store.unbatched_channels() == ["bar", "dft"]
        assert [e.entry_key for e in store.entries(unbatched_channel="dft")] == [
            "E1", "E3", "E4"]
        assert [e.entry_key for e in store.entries(unbatched_channel="dft", limit=2)] == [
            "E1", "E3"]
        assert store.entries(unbatched_channel="dft")[0] == entry("E1", channel="dft")
        assert store.entries(unbatched_channel="x12") == []

    def test_record_batch_seals_its_entries(self, store: Store) -> None:
        e1, e2, e3 = entry("E1"), entry("E2"), entry("E3", channel="bar")
        post(store, e1, e2, e3)
        batch = detailed("B1", [e1, e2])
        assert store.record_batch(batch, FILES, now=500.0) is True
        assert store.entries(unbatched_channel="dft") == []
        assert store.unbatched_channels() == ["bar"]
        assert store.entry_batches(["E1", "E2", "E3", "nope"]) == {"E1": "B1", "E2": "B1"}
        assert store.batches() == [("B1", "dft", 4, 500.0)]
        body = store.batch_body("B1")
        assert body is not None
        assert msgspec.json.decode(body, type=JournalBatch) == batch
        assert store.batch_body("B2") is None
        assert len(store.entries()) == 3  # sealed entries stay in the journal

    def test_record_batch_is_idempotent_on_batch_id(self, store: Store) -> None:
        e1, e2 = entry("E1"), entry("E2")
        post(store, e1, e2)
        first = detailed("B1", [e1])
        assert store.record_batch(first, FILES, now=500.0) is True
        assert store.record_batch(detailed("B1", [e2]), [("erp", "xml", b"x")],
                                  now=600.0) is False
        assert store.batches() == [("B1", "dft", 2, 500.0)]
        body = store.batch_body("B1")
        assert body is not None and msgspec.json.decode(body, type=JournalBatch) == first
        assert [e.entry_key for e in store.entries(unbatched_channel="dft")] == ["E2"]
        assert [(o.fmt, o.payload) for o in store.outbox_items()] == [
            ("csv", b"csv body"), ("jsonl", b"jsonl body")]
        assert store.counts()["batches"] == 1

    def test_a_batch_holding_an_already_sealed_entry_is_refused_whole(
            self, store: Store) -> None:
        """Two exporters racing must never send an entry to the ERP twice."""
        e1, e2 = entry("E1"), entry("E2")
        post(store, e1, e2)
        store.record_batch(detailed("B1", [e1]), [], now=1.0)
        assert store.record_batch(detailed("B2", [e1, e2]), FILES, now=2.0) is False
        assert store.entry_batches(["E1", "E2"]) == {"E1": "B1"}
        assert store.batches() == [("B1", "dft", 2, 1.0)]
        assert store.outbox_items() == []
        assert store.batch_body("B2") is None

    def test_record_batch_queues_its_outbox_rows(self, store: Store) -> None:
        e1 = entry("E1")
        post(store, e1)
        files = [*FILES, ("erp", "csv", b"same destination and format: ignored"),
                 ("archive", "csv", b"archive body")]
        store.record_batch(detailed("B1", [e1]), files, now=500.0)
        items = store.outbox_items()
        assert [(o.destination, o.batch_id, o.fmt, o.payload, o.status, o.attempts,
                 o.visible_at, o.last_error) for o in items] == [
            ("erp", "B1", "csv", b"csv body", "pending", 0, 0.0, ""),
            ("erp", "B1", "jsonl", b"jsonl body", "pending", 0, 0.0, ""),
            ("archive", "B1", "csv", b"archive body", "pending", 0, 0.0, ""),
        ]
        assert [o.id for o in items] == sorted(o.id for o in items)
        assert store.counts()["outbox_pending"] == 3

    # outbox ----------------------------------------------------------------------------------

    def _queue(self, store: Store, n: int, files: list[tuple[str, str, bytes]]) -> None:
        es = [entry(f"E{i}") for i in range(n)]
        post(store, *es)
        for i, e in enumerate(es):
            store.record_batch(detailed(f"B{i}", [e]), files, now=float(i))

    def test_outbox_due_by_destination_in_order_with_limit(self, store: Store) -> None:
        self._queue(store, 3, [("erp", "csv", b"c"), ("archive", "csv", b"a")])
        due = store.outbox_due("erp", now=0.0, limit=10)
        assert [(o.destination, o.batch_id) for o in due] == [
            ("erp", "B0"), ("erp", "B1"), ("erp", "B2")]
        assert [o.batch_id for o in store.outbox_due("erp", now=0.0, limit=2)] == ["B0", "B1"]
        assert [o.destination for o in store.outbox_due("archive", 0.0, 10)] == ["archive"] * 3
        assert store.outbox_due("billing", 0.0, 10) == []

    def test_outbox_retry_waits_until_visible_then_sends(self, store: Store) -> None:
        self._queue(store, 2, [("erp", "csv", b"c")])
        first, second = store.outbox_due("erp", 100.0, 10)
        store.outbox_settle(first.id, status="pending", error="ERP 503", visible_at=160.0)
        assert first.id not in [o.id for o in store.outbox_due("erp", 159.0, 10)]
        later = store.outbox_due("erp", 160.0, 10)  # visible_at is inclusive
        assert [o.id for o in later] == [first.id, second.id]
        assert (later[0].status, later[0].attempts, later[0].visible_at,
                later[0].last_error) == ("pending", 1, 160.0, "ERP 503")
        store.outbox_settle(first.id, status="sent", visible_at=170.0)
        assert [o.id for o in store.outbox_due("erp", 1e12, 10)] == [second.id]
        [sent] = store.outbox_items("sent")
        assert (sent.id, sent.status, sent.attempts, sent.last_error) == (
            first.id, "sent", 2, "")
        assert [o.id for o in store.outbox_items("pending")] == [second.id]
        assert store.counts()["outbox_pending"] == 1

    def test_outbox_due_keeps_destination_order_behind_a_waiting_retry(
            self, store: Store) -> None:
        """An outbox is drained in order: a row waiting for its retry holds back the later
        rows of its destination (not other destinations); a dead row holds back nothing."""
        self._queue(store, 3, [("erp", "csv", b"c"), ("archive", "csv", b"a")])
        first, second, third = store.outbox_due("erp", 100.0, 10)
        store.outbox_settle(first.id, status="pending", error="ERP 503", visible_at=160.0)
        assert store.outbox_due("erp", 159.0, 10) == []
        assert [o.batch_id for o in store.outbox_due("archive", 159.0, 10)] == [
            "B0", "B1", "B2"]
        assert [o.id for o in store.outbox_due("erp", 160.0, 10)] == [
            first.id, second.id, third.id]
        store.outbox_settle(first.id, status="dead", error="400 bad account")
        store.outbox_settle(third.id, status="pending", error="ERP 503", visible_at=200.0)
        assert [o.id for o in store.outbox_due("erp", 160.0, 10)] == [second.id]

    def test_outbox_dead_is_never_due_and_keeps_its_reason(self, store: Store) -> None:
        self._queue(store, 1, [("erp", "csv", b"c")])
        [item] = store.outbox_due("erp", 0.0, 10)
        store.outbox_settle(item.id, status="dead", error="400 invalid account 9999")
        store.outbox_settle(item.id + 1000, status="dead", error="unknown id: no-op")
        assert store.outbox_due("erp", 1e12, 10) == []
        [dead] = store.outbox_items("dead")
        assert (dead.id, dead.attempts, dead.last_error) == (item.id, 1,
                                                             "400 invalid account 9999")
        assert store.outbox_items("sent") == []
        assert [o.id for o in store.outbox_items()] == [item.id]
        assert store.counts()["outbox_pending"] == 0

    def test_outbox_error_is_bounded(self, store: Store) -> None:
        self._queue(store, 1, [("erp", "csv", b"c")])
        [item] = store.outbox_due("erp", 0.0, 10)
        store.outbox_settle(item.id, status="pending", error="x" * 5000, visible_at=1.0)
        [kept] = store.outbox_items()
        assert kept.last_error == "x" * 2000

    # counts ----------------------------------------------------------------------------------

    def test_counts_of_an_empty_store(self, store: Store) -> None:
        assert store.counts() == {
            "messages": 0, "rejected": 0, "unpublished": 0, "patients": 0, "charges": 0,
            "journal_entries": 0, "journal_lines": 0, "open_work_items": 0, "batches": 0,
            "outbox_pending": 0, "held": 0}

    def test_counts_follow_every_table(self, store: Store) -> None:
        store.accept([inbound("C1"), inbound("C2", status="rejected", ack_code="AR",
                                                  events=b""), inbound("C3")])
        with store.transaction() as tx:
            tx.put_patient(patient("HOSP|1"))
            tx.record_charge(charge_record("ev1"))
            tx.record_charge(charge_record("ev2"))
            tx.insert_entry(entry("E1"))
            tx.insert_entry(entry("E2"))
        w = work(store, "ev1")
        work(store, "ev2")
        assert w is not None
        store.set_work_item_status(w, "resolved", "", now=1.0)
        store.mark_published([store.unpublished(1)[0].id])
        store.record_batch(detailed("B1", [entry("E1")]), FILES, now=1.0)
        [first, _] = store.outbox_items()
        store.outbox_settle(first.id, status="sent", visible_at=2.0)
        assert store.counts() == {
            "messages": 3, "rejected": 1, "unpublished": 1, "patients": 1, "charges": 2,
            "journal_entries": 2, "journal_lines": 4, "open_work_items": 1, "batches": 1,
            "outbox_pending": 1, "held": 0}

    # flow state and applied ids ---------------------------------------------------------------

    def test_flow_state_saves_and_rolls_back_with_its_transaction(self, store: Store) -> None:
        with store.transaction() as tx:
            assert tx.load_state("supply") is None
            tx.save_state("supply", b"one")
            tx.mark_applied("supply/usage/U1", b"")
        with pytest.raises(RuntimeError), store.transaction() as tx:
            tx.save_state("supply", b"two")
            tx.mark_applied("supply/usage/U2", b"x")
            raise RuntimeError("the event's transaction fails")
        with store.transaction() as tx:
            assert tx.load_state("supply") == b"one"
            assert tx.applied("supply/usage/U1") == b""
            assert tx.applied("supply/usage/U2") is None
            tx.mark_applied("supply/usage/U1", b"again")  # the first record stays
            assert tx.applied("supply/usage/U1") == b""
            assert tx.load_state("other") is None

    def test_flow_state_writers_take_turns(self, store: Store) -> None:
        def bump() -> None:
            for _ in range(15):
                with store.transaction() as tx:
                    n = int(tx.load_state("counter") or b"0")
                    time.sleep(0.001)  # widen the window a lost update would need
                    tx.save_state("counter", str(n + 1).encode())

        workers = [threading.Thread(target=bump) for _ in range(2)]
        for w in workers:
            w.start()
        for w in workers:
            w.join()
        with store.transaction() as tx:
            assert tx.load_state("counter") == b"30"
