"""Issue 15: the ADT, BAR and DFT events beyond admit/charge, through the worker against a
real SQLite store: transfers move the cost center, cancellations and deletes of visits or
people with postings open work items, identifier moves are applied, an ended
account holds later charges, FT1 payments and adjustments post against A/R."""

from __future__ import annotations

from decimal import Decimal

import pytest

from isthmus.flows import visits
from isthmus.flows.relay import publications
from tests.flows.helpers import (
    AR,
    DAY,
    Rig,
    adt,
    bar,
    charge,
    dft,
    ft1,
    hl7,
    msh,
    pid,
    token,
)

P, Q = "EV100", "EV200"


def visit_msg(cid: str, mrn: str, trigger: str, location: str = "OPC", pclass: str = "I") -> bytes:
    """An ADT visit event on visit V<mrn> with PV1-3 point of care `location`."""
    return hl7(
        msh(cid, f"ADT^{trigger}^ADT_A01"),
        f"EVN|{trigger}|{DAY}101500",
        pid(mrn),
        f"PV1|1|{pclass}|{location}^1^A^NORTH|R||||||MED|||||||||V{mrn}^^^NORTH^VN",
    )


def cost_centers(rig: Rig) -> list[str]:
    return [
        line.dims.cost_center
        for line in rig.store.journal_lines()
        if line.account != AR and line.dims.cost_center
    ]


def kinds(rig: Rig) -> list[str]:
    return sorted(w.kind for w in rig.store.work_items("open"))


def test_charges_after_a_transfer_land_on_the_new_cost_center(rig: Rig) -> None:
    rig.ingest([adt("T1", P), visit_msg("T2", P, "A02", "LAB"), charge("T3", P, dept="")])
    rig.drain()
    rig.ingest([visit_msg("T4", P, "A02", "RAD"), charge("T5", P, dept="")])
    rig.drain()
    assert cost_centers(rig) == ["CC-4200", "CC-4100"]
    # A12 undoes the transfer to RAD: the next charge is LAB's again; FT1-13 still wins
    rig.ingest(
        [visit_msg("T6", P, "A12", "LAB"), charge("T7", P, dept=""), charge("T8", P, dept="ED")]
    )
    rig.drain()
    assert cost_centers(rig) == ["CC-4200", "CC-4100", "CC-4200", "CC-4300"]
    assert rig.balanced() and not kinds(rig)


def test_cancel_admit_of_a_visit_with_charges_opens_a_work_item(rig: Rig) -> None:
    rig.ingest([adt("C1", P, trigger="A01"), charge("C2", P), adt("C3", Q, trigger="A01")])
    rig.drain()
    rig.ingest([visit_msg("C4", P, "A11"), visit_msg("C5", Q, "A11")])
    rig.drain()
    items = rig.store.work_items("open")
    assert [(w.kind, w.queue) for w in items] == [
        ("cancelled_visit_with_charges", "patient-accounting")
    ]
    assert P not in items[0].detail  # no PHI in work items
    assert rig.ar() == {(token(P), "USD"): Decimal("100.00")}  # never reversed by the hub


def test_pending_events_are_recorded_without_posting(rig: Rig) -> None:
    rig.ingest(
        [
            visit_msg("PE1", P, "A14"),
            visit_msg("PE2", P, "A16"),
            visit_msg("PE3", P, "A25"),
            visit_msg("PE4", P, "A15"),
        ]
    )
    rig.drain()
    with rig.store.transaction() as tx:
        state = visits.load_visit(tx, "V" + P)
    assert state.pending == ["A14", "A15"]
    assert not list(rig.store.journal_lines()) and not kinds(rig)


def test_patient_class_change_and_cancel_discharge(rig: Rig) -> None:
    rig.ingest(
        [
            adt("K1", P, trigger="A01"),
            visit_msg("K2", P, "A06", pclass="I"),
            visit_msg("K3", P, "A03"),
            visit_msg("K4", P, "A13"),
        ]
    )
    rig.drain()
    with rig.store.transaction() as tx:
        state = visits.load_visit(tx, "V" + P)
    assert (state.patient_class, state.status) == ("I", "active")


def test_delete_person_with_postings_is_refused_into_a_work_item(rig: Rig) -> None:
    rig.ingest([adt("D1", P), charge("D2", P), adt("D3", Q)])
    rig.drain()
    rig.ingest([adt("D4", P, trigger="A29"), adt("D5", Q, trigger="A29")])
    rig.drain()
    assert kinds(rig) == ["person_delete_refused"]
    assert rig.ar() == {(token(P), "USD"): Decimal("100.00")}


def test_identifier_moves_are_applied_without_work_items(rig: Rig) -> None:
    """Each move trigger is taken by flows/merges.py (tests/flows/test_merges*.py say what
    each does): nothing waits for a person and, with no balances, nothing posts."""
    for n, trigger in enumerate(("A41", "A42", "A44", "A45", "A47", "A49", "A50", "A51")):
        rig.ingest(
            [
                hl7(
                    msh(f"MV{n}", f"ADT^{trigger}^ADT_A39"),
                    f"EVN|{trigger}|{DAY}",
                    pid(P),
                    f"PV1|1|I|||||||||||||||||V{P}",
                    f"MRG|{Q}^^^HOSPMRN^MR||A{Q}||V{Q}",
                )
            ]
        )
    rig.drain()
    assert not rig.store.work_items("open")
    assert not list(rig.store.journal_lines())


def test_an_ended_account_holds_later_charges(rig: Rig) -> None:
    end = hl7(msh("E2", "BAR^P06^BAR_P06"), f"EVN|P06|{DAY}", pid(P))
    rig.ingest([bar("E1", P), end])
    rig.drain()
    rig.ingest([charge("E3", P)])
    rig.drain()
    assert kinds(rig) == ["charge_to_closed_account"] and not rig.ar()
    rig.ingest([bar("E4", P), charge("E5", P, amount="40.00")])  # reopened by BAR P01
    rig.drain()
    assert rig.ar() == {(token(P), "USD"): Decimal("40.00")}


def test_ft1_payments_and_adjustments_post_against_ar(rig: Rig) -> None:
    rig.ingest(
        [
            adt("F1", P),
            dft(
                "F2",
                P,
                ft1(1, "TX1", amount="100.00"),
                ft1(2, "TX2", amount="-30.00", ttype="PY"),
                ft1(3, "TX3", amount="-20.00", ttype="AJ"),
                ft1(4, "TX4", amount="5.00", ttype="AJ"),
            ),
        ]
    )
    rig.drain()
    assert rig.ar() == {(token(P), "USD"): Decimal("55.00")}
    lines = list(rig.store.journal_lines())
    assert sum(x.debit for x in lines if x.account == "1010") == Decimal("30.00")
    assert sum(x.debit - x.credit for x in lines if x.account == "4910") == Decimal("15.00")
    assert rig.balanced() and not kinds(rig)


def test_an_unmapped_transaction_type_is_held(rig: Rig) -> None:
    rig.ingest([adt("U1", P), dft("U2", P, ft1(1, "TZ1", ttype="ZZ"))])
    rig.drain()
    assert kinds(rig) == ["unmapped_transaction_type"] and not rig.ar()


def timed(cid: str, mrn: str, trigger: str, hhmm: str, location: str = "4W") -> bytes:
    """`visit_msg` sent (MSH-7, EVN-2) at `hhmm` on DAY: a resend under a new control id
    keeps its times, a new event has its own."""
    at = f"{DAY}{hhmm}00"
    return hl7(
        f"MSH|^~\\&|EHR|NORTH|ISTHMUS|HUB|{at}||ADT^{trigger}^ADT_A01|{cid}|P|2.5.1",
        f"EVN|{trigger}|{at}",
        pid(mrn),
        f"PV1|1|I|{location}^1^A^NORTH|R||||||MED|||||||||V{mrn}^^^NORTH^VN",
    )


def pending_of(rig: Rig, mrn: str) -> list[str]:
    with rig.store.transaction() as tx:
        return visits.load_visit(tx, "V" + mrn).pending


@pytest.mark.parametrize("trigger", ["A01", "A04"])
def test_a_charge_without_a_department_lands_on_the_admit_location(rig: Rig, trigger: str) -> None:
    """The first location of a visit is its A01/A04's PV1-3, as an A02 sets a later one."""
    rig.ingest([visit_msg("L1", P, trigger, "ED"), charge("L2", P, dept="")])
    rig.drain()
    assert cost_centers(rig) == ["CC-4300"] and not kinds(rig)
    # a transfer moves later charges; cancelling it comes back to the admit location
    rig.ingest(
        [
            visit_msg("L3", P, "A02", "LAB"),
            charge("L4", P, dept=""),
            visit_msg("L5", P, "A12", "ED"),
            charge("L6", P, dept=""),
        ]
    )
    rig.drain()
    assert cost_centers(rig) == ["CC-4300", "CC-4200", "CC-4300"]
    # a resend of the admit under a new control id adds no second stop
    rig.ingest([visit_msg("L7", P, trigger, "ED")])
    rig.drain()
    with rig.store.transaction() as tx:
        stops = visits.load_visit(tx, "V" + P).stops
    assert [(s.trigger, s.department) for s in stops] == [(trigger, "ED")]
    assert rig.balanced() and not kinds(rig)


def test_completed_pending_events_leave_the_pending_list(rig: Rig) -> None:
    rig.ingest([timed("C1", P, "A14", "0800"), timed("C2", P, "A01", "0900")])
    rig.drain()
    assert pending_of(rig, P) == []
    rig.ingest([timed("C3", P, "A15", "1000"), timed("C4", P, "A16", "1005")])
    rig.drain()
    assert pending_of(rig, P) == ["A15", "A16"]
    rig.ingest([timed("C5", P, "A02", "1100", "ICU")])
    rig.drain()
    assert pending_of(rig, P) == ["A16"]
    rig.ingest([timed("C6", P, "A03", "1200")])
    rig.drain()
    assert pending_of(rig, P) == []
    assert not list(rig.store.journal_lines()) and not kinds(rig)


def test_cancelled_pending_events_leave_the_pending_list(rig: Rig) -> None:
    rig.ingest(
        [
            timed(f"X{n}", P, t, f"08{n}0")
            for n, t in enumerate(("A14", "A15", "A16", "A25", "A26", "A27"))
        ]
    )
    rig.drain()
    assert pending_of(rig, P) == []
    with rig.store.transaction() as tx:
        assert visits.load_visit(tx, "V" + P).status == "cancelled"  # A27 cancels the visit


def test_completing_a_pending_event_is_idempotent(rig: Rig) -> None:
    """Resent under new control ids (same MSH-7) or replayed, the pending events and their
    completions change nothing; a new pending event after them stays pending."""
    msgs = [
        timed("I1", P, "A15", "0800"),
        timed("I2", P, "A02", "0900", "ICU"),
        timed("I3", P, "A15", "1000"),
    ]
    inbound = rig.ingest(msgs)
    rig.drain()
    assert pending_of(rig, P) == ["A15"]
    rig.ingest([timed("I1b", P, "A15", "0800"), timed("I2b", P, "A02", "0900", "ICU")])
    rig.drain()
    assert pending_of(rig, P) == ["A15"]
    rig.bus.replay([p for i in inbound for p in publications(i.events)])
    rig.drain()
    assert pending_of(rig, P) == ["A15"]
    rig.ingest([timed("I4", P, "A02", "1100", "4W")])
    rig.drain()
    assert pending_of(rig, P) == []
    with rig.store.transaction() as tx:
        stops = visits.load_visit(tx, "V" + P).stops
    assert [s.department for s in stops] == ["ICU", "4W"]  # the resent A02 added none
