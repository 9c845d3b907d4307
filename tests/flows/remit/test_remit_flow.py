"""835 remittances end to end on the flow rig: match, post, reverse, deny, hold, resubmit."""

from __future__ import annotations

from decimal import Decimal

import msgspec

from isthmus.bus.ports import Publish
from isthmus.flows import mapping_holds, workitems
from isthmus.flows.relay import TOPIC
from isthmus.model.envelope import decode_envelope
from tests.flows.helpers import Rig, bar, charge, token
from tests.flows.remit.helpers import PATIENT_FAMILY, PATIENT_GIVEN, Clp, Remit, ingest_x12

MRN = "500018"
ACCOUNT = "A" + MRN  # PID-18 as the demo EHR sends it


def _balances(rig: Rig) -> dict[str, Decimal]:
    out: dict[str, Decimal] = {}
    for ln in rig.store.journal_lines():
        out[ln.account] = out.get(ln.account, Decimal(0)) + ln.debit - ln.credit
    return out


def _open_account(rig: Rig, amount: str = "800.00") -> None:
    rig.ingest([bar("B1", MRN), charge("D1", MRN, amount=amount)])
    rig.drain()


def _paid_claim(**kw: object) -> Clp:
    args: dict[str, object] = {
        "pcn": ACCOUNT,
        "paid": "450.00",
        "responsibility": "300.00",
        "cas": [("CO", "45", "50.00")],
        "line_cas": [("PR", "1", "300.00")],
    }
    args.update(kw)
    return Clp(**args)  # type: ignore[arg-type]


def test_payment_contractual_and_patient_responsibility_post_exactly(rig: Rig) -> None:
    _open_account(rig)
    intake = ingest_x12(rig, Remit([_paid_claim()]).build())
    assert intake.inbound.status == "accepted" and intake.inbound.ack_code == "999-A"
    rig.drain()
    [entry] = [e for e in rig.store.entries() if e.channel == "x12"]
    assert entry.entry_key == "x12/PAYERX:000000001/0001/0"
    assert entry.correlation_id == "x12/PAYERX:000000001"
    tok = token(MRN)
    got = [
        (ln.account, str(ln.debit), str(ln.credit), ln.dims.company, ln.dims.account_token)
        for ln in entry.lines
    ]
    assert got == [
        ("1010", "450.00", "0.00", "C100", ""),
        ("1200", "0.00", "450.00", "C100", tok),
        ("4900", "50.00", "0.00", "C100", ""),
        ("1200", "0.00", "50.00", "C100", tok),
        ("1210", "300.00", "0.00", "C100", tok),
        ("1200", "0.00", "300.00", "C100", tok),
    ]
    b = _balances(rig)
    assert b["1200"] == 0  # the 800.00 charge is fully resolved
    assert b["1010"] == Decimal("450.00") and b["1210"] == Decimal("300.00")
    assert b["4900"] == Decimal("50.00")
    assert rig.balanced()
    assert rig.store.work_items() == []


def test_reversal_undoes_the_payment(rig: Rig) -> None:
    _open_account(rig)
    ingest_x12(rig, Remit([_paid_claim()]).build())
    rig.drain()
    reversal = _paid_claim(
        status="22",
        charge="-800.00",
        paid="-450.00",
        responsibility="-300.00",
        cas=[("CO", "45", "-50.00")],
        line_cas=[("PR", "1", "-300.00")],
    )
    ingest_x12(rig, Remit([reversal], icn=2, trace="EFT0002").build())
    rig.drain()
    b = _balances(rig)
    assert b["1200"] == Decimal("800.00")  # back to the charge
    assert b["1010"] == 0 and b["1210"] == 0 and b["4900"] == 0
    [rev] = [e for e in rig.store.entries() if e.entry_key.startswith("x12/PAYERX:000000002")]
    assert "reversal" in rev.memo
    assert rig.balanced()


def test_denial_becomes_a_work_item_and_posts_nothing(rig: Rig) -> None:
    _open_account(rig)
    denied = Clp(
        pcn=ACCOUNT, paid="0.00", status="4", cas=[("CO", "50", "800.00")], remarks=["N115"]
    )
    ingest_x12(rig, Remit([denied]).build())
    rig.drain()
    [item] = rig.store.work_items()
    assert (item.kind, item.queue, item.status) == ("denial", "denials", "open")
    assert "CO-50" in item.detail and "N115" in item.detail
    assert [e.channel for e in rig.store.entries()] == ["mllp"]  # only the charge


def test_zero_paid_with_a_denial_carc_is_a_denial_too(rig: Rig) -> None:
    _open_account(rig)
    ingest_x12(rig, Remit([Clp(pcn=ACCOUNT, paid="0.00", cas=[("CO", "197", "800.00")])]).build())
    rig.drain()
    assert [w.kind for w in rig.store.work_items()] == ["denial"]


def test_deductible_with_nothing_paid_is_posted_not_denied(rig: Rig) -> None:
    _open_account(rig)
    ingest_x12(
        rig,
        Remit(
            [Clp(pcn=ACCOUNT, paid="0.00", responsibility="800.00", cas=[("PR", "1", "800.00")])]
        ).build(),
    )
    rig.drain()
    assert rig.store.work_items() == []
    b = _balances(rig)
    assert b["1200"] == 0 and b["1210"] == Decimal("800.00")


def test_unmatched_payment_waits_as_unapplied_cash_then_resolves(rig: Rig) -> None:
    ingest_x12(rig, Remit([_paid_claim()]).build())
    rig.drain()
    [item] = rig.store.work_items()
    assert (item.kind, item.queue, item.status) == ("unapplied_cash", "cash-posting", "open")
    assert rig.store.entries() == []
    _open_account(rig)  # the BAR^P01 arrives, with the charge
    env = decode_envelope(item.envelope)
    rig.bus.replay([Publish(env.event_id, TOPIC, env.key, item.envelope)])
    rig.store.set_work_item_status(item.id, "resubmitted", "", 1.0)
    rig.drain()
    [done] = rig.store.work_items()
    assert done.status == "resolved"
    assert _balances(rig)["1200"] == 0 and rig.balanced()


def test_reingesting_the_same_file_changes_nothing(rig: Rig) -> None:
    _open_account(rig)
    raw = Remit([_paid_claim()], plb=[("L6", "-2.50")]).build()
    ingest_x12(rig, raw)
    rig.drain()
    before = (
        rig.store.counts(),
        [e.entry_key for e in rig.store.entries()],
        [(w.kind, w.status) for w in rig.store.work_items()],
    )
    again = ingest_x12(rig, raw)
    assert again.inbound.control_id == "PAYERX:000000001"
    rig.drain()
    after = (
        rig.store.counts(),
        [e.entry_key for e in rig.store.entries()],
        [(w.kind, w.status) for w in rig.store.work_items()],
    )
    assert after == before


def test_plb_posts_against_cash_clearing_once_the_payee_has_a_company(rig: Rig) -> None:
    _open_account(rig)
    raw = Remit([_paid_claim()], plb=[("WO", "20.00"), ("L6", "-2.50")]).build()
    intake = ingest_x12(rig, raw)
    assert intake.balance_findings == []
    rig.drain()
    # both PLB adjustments wait behind the ONE item of the payee (flows/mapping_holds.py)
    [held] = [w for w in rig.store.work_items() if w.kind == "unmapped_payee"]
    assert (held.queue, held.key, held.event_id) == (
        "finance-master-data",
        "1999999984",
        "mapping:payee_company/1999999984",
    )
    totals = rig.store.hold_totals([held.event_id])[held.event_id]
    assert (totals.count, totals.amounts) == (2, (("USD", Decimal("17.50")),))
    workitems.resolve(rig.store, held.id, {"company": "C100"}, "", 1.0, bus=rig.bus)
    rig.drain()
    assert mapping_holds.outcome(rig.store, held.event_id)["posted"] == 2
    b = _balances(rig)
    assert b["1010"] == Decimal("432.50")  # BPR02: 450.00 - 20.00 + 2.50
    assert b["4920"] == Decimal("17.50")
    assert rig.balanced()


def test_unbalanced_835_is_reported_and_held_not_posted(rig: Rig) -> None:
    _open_account(rig)
    before = rig.store.entries()
    intake = ingest_x12(rig, Remit([_paid_claim()], bpr="999.99").build())
    assert [f.code for f in intake.balance_findings] == ["PAYMENT_UNBALANCED"]
    assert intake.inbound.status == "held"  # tests/flows/remit/test_remit_holds.py: the rest
    rig.drain()
    assert rig.store.entries() == before and rig.balanced()


def test_no_patient_name_in_events_journal_or_work_items(rig: Rig) -> None:
    _open_account(rig)
    denied = Clp(pcn=ACCOUNT, paid="0.00", status="4", cas=[("CO", "50", "800.00")])
    unmatched = _paid_claim(pcn="NOPE1")
    intake = ingest_x12(rig, Remit([_paid_claim(), denied, unmatched]).build())
    rig.drain()
    texts = [
        intake.inbound.events,
        msgspec.json.encode(list(rig.store.entries())),
        *(w.envelope + w.detail.encode() for w in rig.store.work_items()),
    ]
    for blob in texts:
        assert PATIENT_FAMILY.encode() not in blob and PATIENT_GIVEN.encode() not in blob
    assert len(rig.store.work_items()) == 2
