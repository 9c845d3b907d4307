"""Issue 15, ADT merges and moves (flows/merges.py, flows/lineage.py), through the worker
against a real SQLite store: per event, where the A/R goes (reclassified between account
tokens, never edited), where a later line naming the old identifiers lands, and the
policies where HL7 is silent (facility, currency, unknown survivor)."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

from isthmus.flows import lineage, visits, workitems
from isthmus.flows.relay import relay_unpublished
from isthmus.flows.settlement_intake import csv_intake
from isthmus.ledger.journal import JournalEntry
from isthmus.ledger.periods import FiscalCalendar
from tests.flows.helpers import AR, Rig, key, make_rig, merge, token
from tests.flows.merges_rig import cells, line, move, opened
from tests.flows.remit.helpers import Clp, Remit, ingest_x12
from tests.flows.settlement.files import settlement_csv

A, B, N = "MG100", "MG200", "MG300"
USD = "USD"


def entries(rig: Rig) -> dict[str, JournalEntry]:
    return {e.entry_key: e for e in rig.store.entries()}


def moves(rig: Rig) -> list[JournalEntry]:
    return [e for e in rig.store.entries() if "move: A/R reclass" in e.memo]


def open_items(rig: Rig) -> list[tuple[str, str]]:
    return sorted((w.kind, w.queue) for w in rig.store.work_items("open"))


def test_a44_moves_the_accounts_ar_to_the_new_patient(rig: Rig) -> None:
    rig.ingest(
        [
            line("L1", A, "X1", "V1"),
            line("L2", A, "X1", "V2", "40.00"),
            line("L3", A, "Z1", "V3", "50.00"),
            line("L4", B, "Y1", "V4", "10.00"),
        ]
    )
    rig.drain()
    before = entries(rig)
    rig.ingest([move("M1", "A44", B, account="X1", prior_mrn=A, prior_account="X1")])
    rig.drain()
    assert rig.ar() == {(token(A), USD): Decimal("50.00"), (token(B), USD): Decimal("150.00")}
    (reclass,) = moves(rig)
    assert {(ln.dims.account_token, ln.debit, ln.credit) for ln in reclass.lines} == {
        (token(B), Decimal("140.00"), Decimal("0.00")),
        (token(A), Decimal("0.00"), Decimal("140.00")),
    }
    assert all(entries(rig)[k] == e for k, e in before.items())  # never edited
    # a line sent late under the old patient for the moved account lands on the new one
    rig.ingest([line("L5", A, "X1", "V1", "5.00")])
    rig.drain()
    assert rig.ar()[(token(B), USD)] == Decimal("155.00")
    assert cells(rig.store, "X1") == {"V1": Decimal("105.00"), "V2": Decimal("40.00")}
    with rig.store.transaction() as tx:
        acct = tx.get_billing_account("X1")
    assert acct is not None and acct.patient_key == key(B)
    assert rig.balanced() and not open_items(rig)


def test_a44_moves_the_balance_net_of_payments_and_adjustments(rig: Rig) -> None:
    rig.ingest(
        [
            line("P1", A, "X2", "V5"),
            line("P2", A, "X2", "V5", "-30.00", ttype="PY"),
            line("P3", A, "X2", "V5", "-20.00", ttype="AJ"),
            line("P4", A, "Z2", "V6", "50.00"),
        ]
    )
    rig.drain()
    rig.ingest([move("P5", "A44", B, account="X2", prior_mrn=A, prior_account="X2")])
    rig.drain()
    assert rig.ar() == {(token(A), USD): Decimal("50.00"), (token(B), USD): Decimal("50.00")}
    assert rig.balanced()


def test_a41_inside_one_patient_moves_no_money_and_later_lines_follow(rig: Rig) -> None:
    rig.ingest(
        [opened("F0", A, "Y3", "V7"), line("F1", A, "X3", "V7"), line("F2", A, "Y3", "V8", "50.00")]
    )
    rig.drain()
    count = len(entries(rig))
    rig.ingest([move("F3", "A41", A, account="Y3", prior_mrn=A, prior_account="X3")])
    rig.drain()
    assert len(entries(rig)) == count and not moves(rig)  # same token: nothing to move
    assert cells(rig.store, "Y3") == {"V7": Decimal("100.00"), "V8": Decimal("50.00")}
    assert cells(rig.store, "X3") == {}
    rig.ingest([line("F4", A, "X3", "V7", "7.00")])  # the old number, sent late
    rig.drain()
    assert cells(rig.store, "Y3")["V7"] == Decimal("107.00")
    # the survivor is ended by BAR P06: a line to the merged number is held like one to it
    rig.ingest(
        [
            opened("F5", A, "Y3", "V7")
            .replace(b"BAR^P01^BAR_P01", b"BAR^P06^BAR_P06")
            .replace(b"EVN|P01", b"EVN|P06"),
            line("F6", A, "X3", "V7", "9.00"),
        ]
    )
    rig.drain()
    assert open_items(rig) == [("charge_to_closed_account", "patient-accounting")]
    assert rig.ar() == {(token(A), USD): Decimal("157.00")} and rig.balanced()


def test_a41_across_patients_reclassifies_both_accounts_to_the_survivor(rig: Rig) -> None:
    rig.ingest([line("G1", A, "X4", "V9", "60.00"), line("G2", B, "Y4", "V10", "25.00")])
    rig.drain()
    rig.ingest([move("G3", "A41", B, account="Y4", prior_mrn=A, prior_account="X4")])
    rig.drain()
    assert rig.ar() == {(token(A), USD): Decimal("0.00"), (token(B), USD): Decimal("85.00")}
    assert len(moves(rig)) == 1 and rig.balanced()


def test_a45_moves_one_visit_to_another_patients_account(rig: Rig) -> None:
    rig.ingest(
        [
            line("H1", A, "X5", "V11"),
            line("H2", A, "X5", "V12", "40.00"),
            line("H3", B, "Y5", "V13", "10.00"),
        ]
    )
    rig.drain()
    rig.ingest(
        [
            move(
                "H4",
                "A45",
                B,
                account="Y5",
                visit="V11",
                prior_mrn=A,
                prior_account="X5",
                prior_visit="V11",
            )
        ]
    )
    rig.drain()
    assert rig.ar() == {(token(A), USD): Decimal("40.00"), (token(B), USD): Decimal("110.00")}
    assert cells(rig.store, "X5") == {"V12": Decimal("40.00")}
    assert cells(rig.store, "Y5") == {"V11": Decimal("100.00"), "V13": Decimal("10.00")}
    with rig.store.transaction() as tx:
        assert visits.load_visit(tx, "V11").patient_key == key(B)
    rig.ingest([line("H5", A, "X5", "V11", "3.00")])  # late, under the old patient/account
    rig.drain()
    assert rig.ar()[(token(B), USD)] == Decimal("113.00")
    assert cells(rig.store, "Y5")["V11"] == Decimal("103.00")
    assert rig.balanced() and not open_items(rig)


def test_a42_merges_the_visit_state_and_later_lines_follow_its_location(rig: Rig) -> None:
    transfer = (
        b"MSH|^~\\&|EHR|NORTH|ISTHMUS|HUB|20261102101500||ADT^A02^ADT_A02|J2|P|2.5.1\r"
        b"EVN|A02|20261102101500\r"
        b"PID|1||MG100^^^HOSPMRN^MR||DOE^JANE\r"
        b"PV1|1|I|RAD^1^A^NORTH|R||||||MED|||||||||V15^^^NORTH^VN\r"
    )
    rig.ingest([line("J1", A, "X6", "V14"), transfer])
    rig.drain()
    rig.ingest([move("J3", "A42", A, account="X6", visit="V15", prior_mrn=A, prior_visit="V14")])
    rig.drain()
    with rig.store.transaction() as tx:
        merged = visits.load_visit(tx, "V15")
        posted_on = lineage.load_visit(tx, "V15").accounts
    assert posted_on == ["X6"] and merged.stops[0].department == "RAD"
    rig.ingest([line("J4", A, "X6", "V14", "20.00", dept="")])  # old visit, no FT1-13
    rig.drain()
    ccs = [ln.dims.cost_center for ln in rig.store.journal_lines() if ln.account != AR]
    assert ccs == ["CC-4200", "CC-4100"]  # RAD, the merged visit's location
    assert cells(rig.store, "X6") == {"V15": Decimal("120.00")} and not moves(rig)


def test_a47_to_a_new_identifier_keeps_the_token(rig: Rig) -> None:
    rig.ingest([line("K1", A, "X7", "V16")])
    rig.drain()
    count = len(entries(rig))
    rig.ingest([move("K2", "A47", N, account="X7", prior_mrn=A, prior_account="X7")])
    rig.drain()
    assert len(entries(rig)) == count  # an alias: no money moves
    rig.ingest([line("K3", N, "X7", "V16", "30.00"), line("K4", A, "X7", "V16", "5.00")])
    rig.drain()
    assert rig.ar() == {(token(A), USD): Decimal("135.00")}
    with rig.store.transaction() as tx:
        new, old = tx.get_patient(key(N)), tx.get_patient(key(A))
    assert new is not None and new.token == token(A) and not new.merged_into
    assert old is not None and old.merged_into == key(N)


def test_a47_onto_another_known_patient_is_a_merge_with_reclass(rig: Rig) -> None:
    rig.ingest([line("Q1", A, "X8", "V17"), line("Q2", B, "Y8", "V18", "20.00")])
    rig.drain()
    rig.ingest([move("Q3", "A47", B, account="Y8", prior_mrn=A)])
    rig.drain()
    assert rig.ar() == {(token(A), USD): Decimal("0.00"), (token(B), USD): Decimal("120.00")}
    assert len(moves(rig)) == 1 and rig.balanced()


def test_a49_a50_renumber_and_a51_change_nothing_in_money(rig: Rig) -> None:
    rig.ingest([line("R1", A, "X9", "V19")])
    rig.drain()
    rig.ingest(
        [
            move("R2", "A49", A, account="X9B", prior_mrn=A, prior_account="X9"),
            move("R3", "A50", A, account="X9B", visit="V19B", prior_mrn=A, prior_visit="V19"),
            move("R4", "A51", A, account="X9B", visit="V19B", prior_mrn=A),
        ]
    )
    rig.drain()
    rig.ingest([line("R5", A, "X9", "V19", "11.00")])
    rig.drain()
    assert not moves(rig) and rig.ar() == {(token(A), USD): Decimal("111.00")}
    assert cells(rig.store, "X9B") == {"V19B": Decimal("111.00")}
    with rig.store.transaction() as tx:
        assert lineage.final_account(tx, "X9") == "X9B"
        assert lineage.final_visit(tx, "V19") == "V19B"


def test_a_merge_across_facilities_is_refused_into_a_work_item(rig: Rig) -> None:
    rig.ingest(
        [
            opened("S1", A, "X10", "V20"),
            opened("S2", B, "Y10", "V21", "SOUTH"),
            line("S3", A, "X10", "V20"),
        ]
    )
    rig.drain()
    rig.ingest([move("S4", "A41", B, account="Y10", prior_mrn=A, prior_account="X10")])
    rig.drain()
    items = rig.store.work_items("open")
    assert [(w.kind, w.queue) for w in items] == [("merge_refused", "merge-review")]
    assert "facility" in items[0].detail and A not in items[0].detail
    assert "X10" not in items[0].detail
    assert rig.ar() == {(token(A), USD): Decimal("100.00")} and not moves(rig)
    assert cells(rig.store, "X10") == {"V20": Decimal("100.00")}


def test_a_merge_across_currencies_is_refused_into_a_work_item(rig: Rig) -> None:
    rig.ingest([line("E1", A, "X11", "V22"), line("E2", B, "Y11", "V23", "10.00", currency="EUR")])
    rig.drain()
    rig.ingest([move("E3", "A41", B, account="Y11", prior_mrn=A, prior_account="X11")])
    rig.drain()
    items = rig.store.work_items("open")
    assert [w.kind for w in items] == ["merge_refused"] and "EUR" in items[0].detail
    assert not moves(rig)
    # a resend is a duplicate; once the survivor's EUR balance is credited, a resubmit
    # of the work item applies the merge
    rig.ingest([move("E4", "A41", B, account="Y11", prior_mrn=A, prior_account="X11")])
    rig.ingest([line("E5", B, "Y11", "V23", "10.00", currency="EUR", ttype="CD")])
    rig.drain()
    assert [w.kind for w in rig.store.work_items("open")] == ["merge_refused"]
    workitems.resubmit(rig.store, rig.bus, items[0].id, "EUR credited", 1.0)
    rig.drain()
    assert [w.status for w in rig.store.work_items()] == ["resolved"]
    assert len(moves(rig)) == 1
    assert rig.ar()[(token(B), USD)] == Decimal("100.00") and rig.balanced()


def test_a_merge_into_an_unknown_account_creates_the_survivor(rig: Rig) -> None:
    rig.ingest([opened("U1", A, "X12", "V24"), line("U2", A, "X12", "V24")])
    rig.drain()
    rig.ingest([move("U3", "A41", A, account="NEW12", prior_mrn=A, prior_account="X12")])
    rig.drain()
    with rig.store.transaction() as tx:
        acct = tx.get_billing_account("NEW12")
    assert acct is not None and (acct.patient_key, acct.facility) == (key(A), "NORTH")
    assert cells(rig.store, "NEW12") == {"V24": Decimal("100.00")}


def test_a_resend_under_a_new_control_id_moves_nothing_twice(rig: Rig) -> None:
    rig.ingest([line("W1", A, "X13", "V25")])
    rig.drain()
    msg = move("W2", "A44", B, account="X13", prior_mrn=A, prior_account="X13")
    rig.ingest([msg, msg.replace(b"|W2|", b"|W2-again|")])
    rig.drain()
    assert len(moves(rig)) == 1
    assert rig.ar() == {(token(A), USD): Decimal("0.00"), (token(B), USD): Decimal("100.00")}
    # moved back later (a new MSH-7): a new fact, it moves again
    rig.ingest(
        [
            move(
                "W3",
                "A44",
                A,
                account="X13",
                prior_mrn=B,
                prior_account="X13",
                when="20261103090000",
            )
        ]
    )
    rig.drain()
    assert len(moves(rig)) == 2 and rig.ar()[(token(A), USD)] == Decimal("100.00")


def test_lines_without_an_account_follow_their_visit(rig: Rig) -> None:
    """FT1 lines naming only a visit (no PID-18): its cells are kept per visit, and a move
    of the visit to another patient's account takes them along."""
    rig.ingest([line("V1", A, "", "V30"), line("V2", A, "", "V31", "20.00")])
    rig.drain()
    rig.ingest([move("V3", "A42", A, visit="V31", prior_mrn=A, prior_visit="V30")])
    rig.drain()
    assert not moves(rig) and rig.ar() == {(token(A), USD): Decimal("120.00")}
    rig.ingest([move("V4", "A45", B, account="Y30", visit="V31", prior_mrn=A, prior_visit="V31")])
    rig.drain()
    assert rig.ar() == {(token(A), USD): Decimal("0.00"), (token(B), USD): Decimal("120.00")}
    assert cells(rig.store, "Y30") == {"V31": Decimal("120.00")}
    rig.ingest([line("V5", A, "", "V30", "1.00")])  # the first visit's number, no account
    rig.drain()
    assert rig.ar()[(token(B), USD)] == Decimal("121.00")
    assert cells(rig.store, "Y30") == {"V31": Decimal("121.00")} and rig.balanced()


def _balances(rig: Rig, account: str) -> dict[str, Decimal]:
    out: dict[str, Decimal] = {}
    for ln in rig.store.journal_lines():
        if ln.account == account and ln.dims.account_token:
            t = ln.dims.account_token
            out[t] = out.get(t, Decimal(0)) + ln.debit - ln.credit
    return {t: v for t, v in out.items() if v}


def test_a44_moves_what_835_and_card_payments_left_on_the_account(rig: Rig) -> None:
    """An 835 claim payment (CLP01 = the account) and a card payment are attributed to the
    account they name: the move takes the account's A/R net of them, and its patient A/R
    (PR, 1210) too."""
    rig.ingest(
        [
            opened("N1", A, "X40", "V40"),
            line("N2", A, "X40", "V40", "800.00"),
            line("N3", A, "Z40", "V41", "50.00"),
        ]
    )
    rig.drain()
    ingest_x12(
        rig,
        Remit(
            [
                Clp(
                    pcn="X40",
                    paid="450.00",
                    responsibility="300.00",
                    cas=[("CO", "45", "50.00")],
                    line_cas=[("PR", "1", "300.00")],
                )
            ]
        ).build(),
    )
    card = csv_intake(
        settlement_csv([("D1", "CARD1", "payment", "X40", "100.00", "2.00")]),
        kind="settlement",
        peer="t",
        now=1_800_000_000.0,
        tenant="default",
    )
    rig.store.accept([card.inbound])
    relay_unpublished(rig.store, rig.bus)
    rig.drain()
    assert _balances(rig, AR) == {token(A): Decimal("-50.00")}  # 850 - 450 - 50 - 300 - 100
    assert _balances(rig, "1210") == {token(A): Decimal("300.00")}
    rig.ingest([move("N4", "A44", B, account="X40", prior_mrn=A, prior_account="X40")])
    rig.drain()
    assert _balances(rig, AR) == {token(A): Decimal("50.00"), token(B): Decimal("-100.00")}
    assert _balances(rig, "1210") == {token(B): Decimal("300.00")}
    assert len(moves(rig)) == 2 and rig.balanced()


def test_a_move_dated_in_a_closed_month_posts_in_the_next_open_one(tmp_path: Path) -> None:
    r = make_rig(tmp_path, calendar=FiscalCalendar(closed=frozenset({"2026-10"}), policy="reject"))
    try:
        r.ingest([line("O1", A, "X50", "V50")])
        r.drain()
        r.ingest(
            [
                move(
                    "O2",
                    "A44",
                    B,
                    account="X50",
                    prior_mrn=A,
                    prior_account="X50",
                    when="20261030120000",
                )
            ]
        )
        r.drain()
        (reclass,) = moves(r)
        assert (reclass.period, reclass.moved_from) == ("2026-11", "2026-10")
        assert r.ar()[(token(B), USD)] == Decimal("100.00") and r.balanced()
    finally:
        r.store.close()


def test_a40_moves_the_patient_ar_too(rig: Rig) -> None:
    """A40 (flows/accounts.py) moves the merged token's patient A/R (835 PR, 1210) beside
    its A/R, so a merge leaves nothing on the retired token."""
    rig.ingest([opened("Y1", A, "X60", "V60"), line("Y2", A, "X60", "V60", "800.00")])
    rig.drain()
    ingest_x12(
        rig,
        Remit(
            [
                Clp(
                    pcn="X60",
                    paid="450.00",
                    responsibility="300.00",
                    cas=[("CO", "45", "50.00")],
                    line_cas=[("PR", "1", "300.00")],
                )
            ],
            icn=7,
        ).build(),
    )
    rig.drain()
    rig.ingest([merge("Y3", B, A)])
    rig.drain()
    assert _balances(rig, "1210") == {token(B): Decimal("300.00")}
    assert _balances(rig, AR) == {} and rig.balanced()
