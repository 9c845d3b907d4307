"""Settlement identity (issue 14): a card payment is the processor's transaction, not the
deposit that lists it. The same transaction listed again under another deposit id posts
once (the second listing is a conflict work item in cash-posting naming both events); a
bank credit's business key is its natural key on the statement."""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import pytest

from isthmus.flows import identity
from isthmus.flows.settlement_intake import csv_intake
from isthmus.model import BankDeposited, PatientPaymentSettled, ProcessorDeposited
from isthmus.model.envelope import decode_envelope
from tests.flows.helpers import bar
from tests.flows.identity_rig import GateRig, open_store
from tests.flows.settlement.files import bank_csv, settlement_csv


@pytest.fixture(params=["memory", "sqlite"])
def rig(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[GateRig]:
    with open_store(request.param, tmp_path) as store:
        yield GateRig(store)


def _ar(rig: GateRig) -> Decimal:
    return sum(
        (x.debit - x.credit for x in rig.store.journal_lines() if x.account == "1200"), Decimal(0)
    )


def test_the_same_transaction_under_two_deposit_ids_posts_once(rig: GateRig) -> None:
    rig.hl7([bar("S1", "M1")])
    rig.drain()
    first = rig.csv(
        settlement_csv([("D1", "T1", "payment", "AM1", "100.00", "3.00")]), "settlement"
    )
    rig.drain()
    again = rig.csv(
        settlement_csv([("D2", "T1", "payment", "AM1", "100.00", "3.00")]), "settlement"
    )
    rig.drain()
    cards = [e.entry_key for e in rig.store.entries() if e.memo.startswith("card ")]
    assert cards == ["settlement/DemoPay/D1/T1"]
    assert _ar(rig) == Decimal("-100.00")  # the patient paid 100.00 once
    (item,) = rig.store.work_items("open")
    assert (item.kind, item.queue) == (identity.CONFLICT_KIND, "cash-posting")
    (pay1,) = [e for e in first if isinstance(e.payload, PatientPaymentSettled)]
    (pay2,) = [e for e in again if isinstance(e.payload, PatientPaymentSettled)]
    assert pay1.business_key == pay2.business_key == "card|DemoPay|T1"
    assert pay1.event_id in item.detail and pay2.event_id in item.detail
    assert "card|DemoPay|T1" in item.detail
    assert decode_envelope(item.envelope).event_id == pay2.event_id
    assert rig.ledger()[1].balanced


def test_business_keys_of_settlement_and_bank_events() -> None:
    settle = csv_intake(
        settlement_csv([("D1", "T1", "payment", "AM1", "100.00", "3.00")]),
        kind="settlement",
        peer="t",
        now=0.0,
        tenant="default",
    )
    bank = csv_intake(
        bank_csv([("2026-11-05", "96.80", "d1", "card")]),
        kind="bank",
        peer="t",
        now=0.0,
        tenant="default",
    )
    keys = {type(k.event): (k.event_id, k.business_key) for k in settle.events + bank.events}
    assert keys == {
        PatientPaymentSettled: ("settlement/DemoPay/D1/T1", "card|DemoPay|T1"),
        ProcessorDeposited: ("settlement/DemoPay/D1", "payout|DemoPay|D1"),
        BankDeposited: ("bank/2026-11-05/D1/96.80", "bank|-|2026-11-05|D1|96.80"),
    }
    # the stored envelopes carry them, built by the one intake (lineage as every channel)
    for intake in (settle, bank):
        envs = intake.inbound.events
        assert b'"business_key"' in envs
        assert f'"correlation_id":"{intake.inbound.channel}/'.encode() in envs


def test_a_bank_credit_is_keyed_by_its_account_when_the_file_names_one() -> None:
    raw = b"Posted Date,Amount,Reference,Type,Bank Account\n2026-11-05,96.80,d1,card,OPERATING-1\n"
    intake = csv_intake(raw, kind="bank", peer="t", now=0.0, tenant="default")
    (k,) = intake.events
    assert k.business_key == "bank|OPERATING-1|2026-11-05|D1|96.80"
    assert k.event_id == "bank/2026-11-05/D1/96.80"  # the id is as before
