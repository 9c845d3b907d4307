"""Run the store contract against PostgreSQL (the scale-out store), plus what only it shows.

Every test gets a schema of its own in database `test`, dropped afterwards, so runs never
see each other's rows. Needs a server at tests.services.POSTGRES (skipped locally without
one, a failure under CI=true).
"""

from __future__ import annotations

import socket
import threading
import uuid
from collections.abc import Iterator
from typing import cast

import psycopg
import pytest
from psycopg import sql

from isthmus.ledger.journal import JournalEntry
from isthmus.store.ports import Patient, Store
from isthmus.store.postgres import PostgresStore
from isthmus.store.postgres_schema import SCHEMA_VERSION
from isthmus.store.sqlite_connection import StorageUnavailable
from tests.services import POSTGRES, require
from tests.store.contract import FILES, StoreContract, detailed, entry, inbound, post
from tests.store.contract_channels import ChannelContract
from tests.store.contract_find import FindContract

pytestmark = pytest.mark.service

HOST, PORT = POSTGRES
DSN = f"postgresql://postgres@{HOST}:{PORT}/test"


@pytest.fixture
def schema() -> Iterator[str]:
    """A fresh schema name, dropped with everything in it after the test."""
    require("PostgreSQL", *POSTGRES)
    name = f"t_{uuid.uuid4().hex}"
    yield name
    with psycopg.connect(DSN, autocommit=True) as c:
        c.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(name)))


def _dsn(schema: str) -> str:
    """The test DSN, tagged so a test can find its store's server sessions."""
    return f"{DSN}?application_name={schema}"


def _row(schema: str, query: str, key: str) -> tuple[str, ...] | None:
    """Read what is committed, through a connection of its own; {} is the schema."""
    with psycopg.connect(DSN, autocommit=True) as c:
        r = c.execute(sql.SQL(query).format(sql.Identifier(schema)), (key,)).fetchone()
    return tuple(r) if r else None


class TestPostgresStore(StoreContract, FindContract, ChannelContract):
    @pytest.fixture
    def store(self, schema: str) -> Iterator[Store]:
        s = PostgresStore(_dsn(schema), schema=schema)
        yield s
        s.close()

    def encounter_row(
        self, store: Store, visit_number: str
    ) -> tuple[str, str, str, str, str] | None:
        r = _row(
            cast(PostgresStore, store).schema,
            "SELECT patient_key, facility, patient_class, status, updated_at "
            "FROM {}.encounters WHERE visit_number = %s",
            visit_number,
        )
        return None if r is None else (r[0], r[1], r[2], r[3], r[4])

    def billing_account_row(self, store: Store, account_number: str) -> tuple[str, str] | None:
        r = _row(
            cast(PostgresStore, store).schema,
            "SELECT patient_key, facility FROM {}.billing_accounts WHERE account_number = %s",
            account_number,
        )
        return None if r is None else (r[0], r[1])


# --- PostgreSQL only: several stores on one schema, migration, failures ---------------------


def test_pg_two_stores_on_one_schema_see_each_others_commits(schema: str) -> None:
    a, b = PostgresStore(DSN, schema=schema), PostgresStore(DSN, schema=schema)  # two processes
    try:
        [first] = a.accept([inbound("C1")])
        [dup] = b.accept([inbound("C1", ack_code="AE", error="late")])
        assert dup.duplicate and dup.message_id == first.message_id and dup.ack_code == "AA"
        e1 = entry("E1")
        with a.transaction() as tx:
            tx.insert_entry(e1)
            assert b.entries() == []  # not committed yet: b does not see it
            assert b.counts()["journal_lines"] == 0
        assert b.entries() == [e1]
        with b.transaction() as tx:
            assert tx.insert_entry(e1) is False  # the key a committed holds for b too
        assert b.record_batch(detailed("B1", [e1]), FILES, now=1.0)
        assert a.record_batch(detailed("B1", [e1]), FILES, now=2.0) is False
        assert a.unbatched_channels() == []
        [item, _] = a.outbox_due("erp", 5.0, 10)
        b.outbox_settle(item.id, status="sent", visible_at=5.0)
        assert [o.id for o in a.outbox_items("sent")] == [item.id]
    finally:
        a.close()
        b.close()


def test_pg_rollback_is_invisible_to_another_store(schema: str) -> None:
    a, b = PostgresStore(DSN, schema=schema), PostgresStore(DSN, schema=schema)
    try:
        with pytest.raises(RuntimeError), a.transaction() as tx:
            tx.insert_entry(entry("E1"))
            raise RuntimeError("step failed")
        assert b.entries() == [] and b.counts()["journal_lines"] == 0
    finally:
        a.close()
        b.close()


def test_pg_data_survives_close_and_reopen(schema: str) -> None:
    s = PostgresStore(DSN, schema=schema)
    [a] = s.accept([inbound("C1")])
    e1, e2 = entry("E1"), entry("E2")
    post(s, e1, e2)
    with s.transaction() as tx:
        tx.put_patient(Patient(key="HOSP|1", mrn="1", authority="HOSP", token="PA-1"))
    s.set_mapping_override("charge_codes", "99999", "4010")
    s.record_batch(detailed("B1", [e1]), FILES, now=5.0)
    before = s.counts()
    s.close()

    again = PostgresStore(DSN, schema=schema)
    try:
        assert again.counts() == before
        [dup] = again.accept([inbound("C1", ack_code="AR")])
        assert dup.duplicate and dup.message_id == a.message_id and dup.ack_code == "AA"
        assert again.entries() == [e1, e2]
        assert again.entry_batches(["E1", "E2"]) == {"E1": "B1"}
        with again.transaction() as tx:
            assert tx.get_patient("HOSP|1") is not None
            assert tx.mapping_override("charge_codes", "99999") == "4010"
        assert [o.fmt for o in again.outbox_due("erp", 10.0, 10)] == ["csv", "jsonl"]
    finally:
        again.close()


def test_pg_concurrent_accept_across_stores_and_threads(schema: str) -> None:
    """4 threads on 2 stores send the same 60 messages in overlapping batches, half of them
    in the opposite order (which can deadlock on the unique index: the loser is rerun)."""
    stores = [PostgresStore(DSN, schema=schema), PostgresStore(DSN, schema=schema)]
    answers: list[tuple[str, int, bool]] = []
    errors: list[BaseException] = []
    lock = threading.Lock()
    start = threading.Barrier(4)

    def run(n: int) -> None:
        s = stores[n % 2]
        try:
            start.wait()
            for i in range(0, 60, 6):
                batch = [inbound(f"C{j}") for j in range(i + n % 3, i + 6 + n % 3)]
                if n >= 2:
                    batch.reverse()
                got = s.accept(batch)
                with lock:
                    answers.extend(
                        (m.control_id, a.message_id, a.duplicate)
                        for m, a in zip(batch, got, strict=True)
                    )
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(n,)) for n in range(4)]
    try:
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        assert errors == []
        assert len(answers) == 240
        sent = {c for c, _, _ in answers}
        assert sorted(c for c, _, dup in answers if not dup) == sorted(sent)  # once each
        by_control: dict[str, set[int]] = {}
        for control_id, message_id, _ in answers:
            by_control.setdefault(control_id, set()).add(message_id)
        assert all(len(ids) == 1 for ids in by_control.values())
        assert stores[0].counts()["messages"] == len(sent)
        assert len(stores[1].messages(limit=1000)) == len(sent)
    finally:
        for s in stores:
            s.close()


def test_pg_migrate_twice_is_a_no_op(schema: str) -> None:
    s = PostgresStore(DSN, schema=schema)  # the constructor migrates once
    try:
        [a] = s.accept([inbound("C1")])
        assert s.migrate() == SCHEMA_VERSION
        assert s.migrate() == SCHEMA_VERSION
        assert s.counts()["messages"] == 1
        found = s.message(a.message_id)
        assert found is not None and found.control_id == "C1"
        assert _row(
            schema, "SELECT count(*)::text FROM {}.meta WHERE name = %s", "schema_version"
        ) == ("1",)
    finally:
        s.close()


def test_pg_a_read_inside_a_transaction_uses_its_connection(schema: str) -> None:
    """pool_size=1 and a store read inside transaction(): same connection, own writes seen."""
    s = PostgresStore(DSN, schema=schema, pool_size=1)
    try:
        with s.transaction() as tx:
            tx.insert_entry(entry("E1"))
            assert [e.entry_key for e in s.entries()] == ["E1"]
        assert s.counts()["journal_entries"] == 1
    finally:
        s.close()


def test_pg_closed_port_is_storage_unavailable() -> None:
    require("PostgreSQL", *POSTGRES)
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind((HOST, 0))
        port = probe.getsockname()[1]
    with pytest.raises(StorageUnavailable, match=f"{HOST}:{port}"):
        PostgresStore(f"postgresql://postgres@{HOST}:{port}/test?connect_timeout=2")


def test_pg_a_killed_session_fails_one_call_then_reconnects(schema: str) -> None:
    s = PostgresStore(_dsn(schema), schema=schema, pool_size=1)
    try:
        s.accept([inbound("C1")])
        with psycopg.connect(DSN, autocommit=True) as admin:
            killed = admin.execute(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                "WHERE application_name = %s",
                (schema,),
            ).fetchone()
        assert killed == (1,)
        with pytest.raises(StorageUnavailable):
            s.counts()
        assert s.counts()["messages"] == 1  # the broken connection was not pooled again
    finally:
        s.close()


def test_pg_a_nul_in_a_text_field_is_stored_not_fatal_to_its_batch(schema: str) -> None:
    """PostgreSQL TEXT cannot hold NUL: the inbox keeps it as U+FFFD, the raw bytes exact."""
    s = PostgresStore(DSN, schema=schema)
    try:
        bad = inbound(
            "C\x001",
            status="rejected",
            ack_code="AR",
            error="NUL \x00 in MSH-10",
            events=b"",
            raw=b"MSH|C\x001",
        )
        a, b = s.accept([bad, inbound("C2")])
        [again] = s.accept([bad])
        assert (a.duplicate, b.duplicate, again.duplicate) == (False, False, True)
        assert again.message_id == a.message_id and again.ack_code == "AR"
        kept = s.message_by_control_id("adt", "C\x001")
        assert kept is not None and kept.id == a.message_id
        assert (kept.control_id, kept.error, kept.raw) == (
            "C\ufffd1",
            "NUL \ufffd in MSH-10",
            b"MSH|C\x001",
        )
    finally:
        s.close()


def test_pg_racing_exporters_never_seal_an_entry_twice(schema: str) -> None:
    """Two processes seal overlapping batches at once, 20 times: one wins each race whole."""
    a, b = PostgresStore(DSN, schema=schema), PostgresStore(DSN, schema=schema)
    won: dict[str, bool] = {}

    def seal(s: PostgresStore, start: threading.Barrier, batch_id: str, *es: JournalEntry) -> None:
        start.wait()
        won[batch_id] = s.record_batch(detailed(batch_id, list(es)), FILES, now=1.0)

    try:
        for n in range(20):
            shared, left, right = entry(f"S{n}"), entry(f"L{n}"), entry(f"R{n}")
            post(a, shared, left, right)
            start = threading.Barrier(2)
            threads = [
                threading.Thread(target=seal, args=(a, start, f"A{n}", left, shared)),
                threading.Thread(target=seal, args=(b, start, f"B{n}", shared, right)),
            ]
            for t in threads:
                t.start()
            for t in threads:
                t.join(30)
            assert sorted((won[f"A{n}"], won[f"B{n}"])) == [False, True]
            winner = f"A{n}" if won[f"A{n}"] else f"B{n}"
            sealed = b.entry_batches([f"S{n}", f"L{n}", f"R{n}"])
            assert len(sealed) == 2 and set(sealed.values()) == {winner}
        winners = {k for k, v in won.items() if v}
        assert {o.batch_id for o in a.outbox_items()} == winners  # losers queued nothing
        assert {x[0] for x in b.batches()} == winners and len(a.outbox_items()) == 40
    finally:
        a.close()
        b.close()
