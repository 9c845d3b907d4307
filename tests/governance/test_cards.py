"""Card numbers (issue 16, item 5): one detector, on every field that enters the hub.

`formats.cards` is the detector (13 to 19 digits with any blanks, dots or dashes between,
Luhn valid). A hit is refused with the field named, never the value, is masked in what is
kept, and never becomes part of a key: settlement and bank CSV cells, the refund and
workforce JSON bodies, timecard files, HL7 v2 PID-18 and FT1 fields.
"""

from __future__ import annotations

import hashlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from isthmus.api.json_body import BodyRefused, loads
from isthmus.config import LimitSettings
from isthmus.flows.hl7_inbound import classify
from isthmus.flows.labor_intake import timecard_intake
from isthmus.flows.settlement_intake import csv_intake
from isthmus.formats import cards
from isthmus.formats.settlement import BANK, SETTLEMENT, mask_cards, parse_bank, parse_settlement
from tests.flows.helpers import ft1, msh, pid, pv1
from tests.flows.settlement.files import bank_csv, settlement_csv

CARD = "4111111111111111"
WRITTEN = [
    "4111111111111111",
    "4111 1111 1111 1111",
    "4111-1111-1111-1111",
    "4111.1111.1111.1111",
    "4111  1111  1111  1111",
    "4111 - 1111 - 1111 - 1111",
    "ref 4111.1111.1111.1111 x",
    "378282246310005",
    "5555 5555 5555 4444",
]
NOT_CARDS = [
    "4111111111111112",
    "A500018",
    "2026110412345",
    "0000000000000000",
    "20261104",
    "1250.00",
    "ch_001",
    "4111 1111 1111",
    "2026-11-04 2026-11-05",
]


@pytest.mark.parametrize("text", WRITTEN)
def test_any_separators_are_found_and_masked_to_the_last_four(text: str) -> None:
    assert cards.has_card(text)
    masked = cards.mask(text)
    assert not cards.has_card(masked)
    assert masked.count("*") >= 9 and masked.rstrip(" x").endswith(text.rstrip(" x")[-4:])


@pytest.mark.parametrize("text", NOT_CARDS)
def test_what_is_not_a_card_is_left_alone(text: str) -> None:
    assert not cards.has_card(text) and cards.mask(text) == text


def test_luhn_valid_ach_traces_and_ids_are_not_cards() -> None:
    """An ACH trace number is 15 digits opening with the ODFI's routing number (01-12,
    21-32, ...): about one in ten passes the Luhn check, none is a card network's number."""
    traces = [
        f"{routing}{seq:07d}"
        for routing in ("02100002", "12200066", "32107598")
        for seq in range(200)
    ]
    luhn_valid = [t for t in traces if cards.luhn(t)]
    assert len(luhn_valid) >= 30  # the check alone would refuse these bank deposits
    assert not any(cards.has_card(t) for t in luhn_valid)
    assert not cards.has_card("8000000000000002")  # Luhn-valid, no network's range
    assert cards.has_card("378282246310005") and cards.has_card("5555555555554444")


def test_a_card_beside_another_number_is_found() -> None:
    assert cards.mask(f"{CARD} 20261104") == "************1111 20261104"


@pytest.mark.parametrize("account", ["4111.1111.1111.1111", "4111  1111  1111  1111"])
def test_a_settlement_account_with_any_separators_is_refused_and_masked(account: str) -> None:
    raw = settlement_csv([("D1", "T1", "payment", account, "100.00", "3.00")])
    sf = parse_settlement(raw)
    assert [(f.row, f.column) for f in sf.findings] == [(2, "account_number")]
    assert not sf.deposits or not any(t.account_number for d in sf.deposits for t in d.transactions)
    intake = csv_intake(raw, kind=SETTLEMENT, peer="t", now=0.0, tenant="t")
    assert intake.inbound.status == "rejected" and not intake.events
    assert account.encode() not in intake.inbound.raw
    assert b"************1111" in intake.inbound.raw
    assert account not in intake.inbound.error
    assert intake.inbound.digest == hashlib.sha256(raw).hexdigest()


@pytest.mark.parametrize("column", ["transaction_id", "deposit_id", "processor"])
def test_a_card_in_an_id_column_never_becomes_a_key(column: str) -> None:
    rows = {
        "transaction_id": ("D1", CARD, "payment", "A1", "100.00", "3.00"),
        "deposit_id": (CARD, "T1", "payment", "A1", "100.00", "3.00"),
        "processor": ("D1", "T1", "payment", "A1", "100.00", "3.00"),
    }[column]
    raw = settlement_csv([rows], processor=CARD if column == "processor" else "DemoPay")
    intake = csv_intake(raw, kind=SETTLEMENT, peer="t", now=0.0, tenant="t")
    assert intake.inbound.status == "rejected" and intake.events == ()
    assert [f.column for f in intake.findings] == [column]
    assert CARD.encode() not in intake.inbound.raw and CARD not in intake.inbound.error


def test_a_card_in_the_bank_reference_or_an_unread_column_is_refused_and_masked() -> None:
    raw = bank_csv([("2026-11-05", "96.80", "4111-1111-1111-1111", "card")])
    bf = parse_bank(raw)
    assert {f.column for f in bf.findings} == {"reference", "Description"}
    assert not bf.deposits
    intake = csv_intake(raw, kind=BANK, peer="t", now=0.0, tenant="t")
    assert intake.inbound.status == "rejected"
    assert b"4111-1111-1111-1111" not in intake.inbound.raw
    assert mask_cards(raw) == intake.inbound.raw


def _dft(pid_seg: str, ft1_seg: str, cid: str = "C1") -> bytes:
    return "\r".join(
        [msh(cid, "DFT^P03"), "EVN|P03|20261102", pid_seg, pv1("V1"), ft1_seg]
    ).encode()


@pytest.mark.parametrize(
    ("where", "raw"),
    [
        ("PID-18", _dft(pid("M1", account="4111.1111.1111.1111"), ft1(1, "T1"))),
        ("FT1-2", _dft(pid("M1"), ft1(1, "4111 1111 1111 1111"))),
        ("FT1-13", _dft(pid("M1"), ft1(1, "T1", dept="4111-1111-1111-1111"))),
    ],
)
def test_hl7_account_fields_with_a_card_are_refused_and_stored_masked(
    where: str, raw: bytes
) -> None:
    inbound, _ = classify(raw, channel="mllp", peer="t", now=0.0, tenant="t", currency="USD")
    assert inbound.status == "rejected" and inbound.ack_code == "AE"
    assert inbound.events == b""
    assert where in inbound.error and "card number" in inbound.error
    assert not cards.has_card(inbound.raw.decode())
    assert b"************1111" in inbound.raw
    assert inbound.digest == hashlib.sha256(raw).hexdigest()


def test_hl7_dates_and_amounts_are_not_taken_for_cards() -> None:
    raw = _dft(pid("M1"), ft1(1, "T1", amount="4111111111111111.00"))
    inbound, _ = classify(raw, channel="mllp", peer="t", now=0.0, tenant="t", currency="USD")
    assert "card" not in inbound.error


@pytest.mark.parametrize(
    "body",
    [
        b'{"account": "4111 1111 1111 1111", "amount": "10.00"}',
        b'{"account": "A1", "reason": "card 4111.1111.1111.1111 refunded"}',
        b'{"items": [{"ref": 4111111111111111}]}',
    ],
)
def test_json_bodies_with_a_card_are_refused_naming_the_path(body: bytes) -> None:
    with pytest.raises(BodyRefused) as caught:
        loads(body, LimitSettings(max_body_bytes=4096, max_json_depth=8))
    exc = caught.value
    assert exc.status == 400 and exc.error == "card_number" and exc.key.startswith("$")
    assert "4111" not in exc.reason


def test_a_timecard_with_a_card_is_refused_and_kept_masked() -> None:
    raw = b"shift_id,employee_id,work_date,regular_hours\nS1,4111-1111-1111-1111,2026-11-02,8\n"
    intake = timecard_intake(raw, peer="t", now=0.0, tenant="t")
    assert intake.inbound.status == "rejected" and intake.field == "employee_id"
    assert b"4111-1111-1111-1111" not in intake.inbound.raw


_TEXT = st.text(alphabet="0123456789 -.\t|^&A\u2012", max_size=60)


@given(before=_TEXT, pan=st.sampled_from(WRITTEN), after=_TEXT)
@settings(max_examples=300)
def test_the_cheap_prefilter_never_misses_what_the_detector_finds(
    before: str, pan: str, after: str
) -> None:
    # `may_hold_card` is the HL7 ACK path's first look (most messages stop there): it must
    # let through every text in which `has_card` would find a card number
    for text in (before + pan + after, before + after, pan):
        if cards.has_card(text):
            assert cards.may_hold_card(text), text


def test_timestamps_dates_and_amounts_do_not_pass_the_prefilter() -> None:
    fields = "|20261102053456|20261102|19421217|114.78&USD|1000000004^MIREBROOK|555-0046|"
    assert not cards.may_hold_card(fields)
    assert cards.may_hold_card(fields + "4111 1111 1111 1111|")
