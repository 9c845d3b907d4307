"""Business keys of the X12 events: from the content (payer, TRN02, CLP01/CLP07, PLB, CLM01),
never from the envelope, so a clearinghouse re-sending an 835 in a new interchange (new
ISA13, GS06, ST02) is the same facts: its own inbox record and 999, the same keys, and the
money posts once."""

from __future__ import annotations

import re
from decimal import Decimal
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from isthmus.config import load_settings
from isthmus.flows.file_intake import take_file
from isthmus.flows.interchanges import x12_intake
from isthmus.formats.x12 import parse_835, parse_837
from isthmus.formats.x12.events import claim_events, remittance_events
from isthmus.store.sqlite import SqliteStore
from tests.flows.helpers import Rig, bar, charge
from tests.flows.remit.helpers import Clp, Remit, ingest_x12

CORPUS = (
    Path(__file__).resolve().parents[3] / ".." / "shared" / "corpora" / "x12" / "linuxforhealth"
)


def _keys(raw: bytes) -> list[tuple[str, str]]:
    return [
        (type(k.event).__name__, k.business_key)
        for k in remittance_events(parse_835(raw), interchange_id="x")
    ]


def test_corpus_835_keys() -> None:
    raw = (CORPUS / "835_005010X221A1" / "medicare-part-a.835").read_bytes()
    assert _keys(raw) == [
        ("ClaimRemitted", "835|1512345678|12345|666123|1999999444444|pay"),
        ("ClaimRemitted", "835|1512345678|12345|777777|1999999444445|pay"),
        ("ProviderAdjusted", "835-PLB|1512345678|12345|6543210903|2002-12-31|CV|CP"),
        ("RemittancePaid", "835-EFT|1512345678|12345"),
    ]
    raw = (CORPUS / "835_005010X221A1" / "managed-care.835").read_bytes()
    assert [k for _, k in _keys(raw)] == [
        "835|1935665544|7170066655|5554555444|94060555410000|pay",
        "835|1935665544|7170066655|8765432112|94077799230000|pay",
        "835-EFT|1935665544|7170066655",
    ]


def test_corpus_837_keys() -> None:
    raw = (CORPUS / "837_005010X223A3" / "two-claims-single-provider.837i").read_bytes()
    keys = [k.business_key for k in claim_events(parse_837(raw), interchange_id="x")]
    assert len(keys) == 2 and len(set(keys)) == 2
    assert all(k.startswith("837|") and k.endswith("|1") for k in keys)


def test_a_reversal_and_its_correction_have_their_own_keys() -> None:
    raw = Remit(
        [
            Clp(
                pcn="A1",
                paid="-450.00",
                charge="-800.00",
                status="22",
                cas=[("CO", "45", "-350.00")],
            ),
            Clp(pcn="A1", paid="400.00", charge="800.00", status="1", cas=[("CO", "45", "400.00")]),
        ]
    ).build()
    [rev, pay] = [k for _, k in _keys(raw)][:2]
    assert rev.endswith("|rev") and pay.endswith("|pay") and rev[:-3] == pay[:-3]


def test_a_key_repeated_in_one_set_is_numbered() -> None:
    raw = Remit(
        [Clp(pcn="A1", paid="10.00", charge="10.00"), Clp(pcn="A1", paid="10.00", charge="10.00")]
    ).build()
    [first, second, _eft] = [k for _, k in _keys(raw)]
    assert second == first + "#2"


def _renumbered(raw: bytes, icn: int, gs06: int, st02: str) -> bytes:
    """The same 835 in another envelope: ISA13/IEA02, GS06/GE02 and ST02/SE02 renumbered."""
    text = raw.decode()
    # anchored at a segment's start: a CLP01 ending in "GE" or "SE" is not a trailer
    text = re.sub(r"\*\d{9}\*0\*T\*:", f"*{icn:09d}*0*T*:", text)
    text = re.sub(r"(?m)^IEA\*1\*\d+", f"IEA*1*{icn:09d}", text)
    text = re.sub(r"(?m)^(GS\*HP\*[^*]*\*[^*]*\*\d+\*\d+)\*\d+\*", rf"\g<1>*{gs06}*", text)
    text = re.sub(r"(?m)^GE\*1\*\d+", f"GE*1*{gs06}", text)
    text = re.sub(r"(?m)^ST\*835\*\w+\*", f"ST*835*{st02}*", text)
    text = re.sub(r"(?m)^SE\*(\d+)\*\w+", rf"SE*\g<1>*{st02}", text)
    return text.encode()


_pcn = st.text("ABCDEFGHJK0123456789", min_size=1, max_size=12)


@settings(max_examples=60, deadline=None)
@given(
    pcns=st.lists(_pcn, min_size=1, max_size=4, unique=True),
    icn=st.integers(1, 999_999_999),
    gs06=st.integers(1, 99_999),
    st02=st.from_regex(r"\A[0-9]{4,9}\Z"),
)
def test_keys_do_not_depend_on_the_envelope_and_differ_per_claim(
    pcns: list[str], icn: int, gs06: int, st02: str
) -> None:
    raw = Remit(
        [Clp(pcn=p, paid="10.00", charge="10.00") for p in pcns], plb=[("WO", "1.00")]
    ).build()
    again = _renumbered(raw, icn, gs06, st02)
    first = x12_intake(raw, peer="t", now=1.0, tenant="default")
    second = x12_intake(again, peer="t", now=2.0, tenant="default")
    assert first.inbound.status == second.inbound.status == "accepted"
    assert [k.business_key for k in first.events] == [k.business_key for k in second.events]
    keys = [k.business_key for k in first.events]
    assert len(set(keys)) == len(keys) == len(pcns) + 2  # claims, the PLB, the EFT
    if (icn, st02) != (1, "0001"):
        assert {k.event_id for k in first.events}.isdisjoint(k.event_id for k in second.events)


def test_a_re_enveloped_835_is_its_own_interchange_with_the_same_keys(tmp_path: Path) -> None:
    settings_ = load_settings(None, data_dir=tmp_path / "data", env={})
    store = SqliteStore(tmp_path / "store.db")
    raw = Remit([Clp(pcn="A1", paid="10.00", charge="10.00")], icn=41).build()
    again = _renumbered(raw, 42, 42, "7777")
    [a] = take_file(store, settings_, raw, "first.835", 1.0)
    [b] = take_file(store, settings_, again, "second.835", 2.0)
    assert (a["control_id"], b["control_id"]) == ("PAYERX:000000041", "PAYERX:000000042")
    assert not b["duplicate"] and a["message_id"] != b["message_id"]
    assert Path(a["ack_file"]).name == "000000041.999"
    assert Path(b["ack_file"]).name == "000000042.999"
    assert b"AK2*835*7777*" in Path(b["ack_file"]).read_bytes()
    first = x12_intake(raw, peer="t", now=1.0, tenant="default")
    second = x12_intake(again, peer="t", now=2.0, tenant="default")
    assert [k.business_key for k in first.events] == [k.business_key for k in second.events]


def test_an_isa13_reused_with_other_content_is_a_distinct_interchange(tmp_path: Path) -> None:
    """The same sender and ISA13, other claims (a sender whose counter restarted): kept as
    its own interchange under `<id>#<digest>`, with its own 999; the same bytes again are a
    duplicate of whichever copy they match."""
    settings_ = load_settings(None, data_dir=tmp_path / "data", env={})
    store = SqliteStore(tmp_path / "store.db")
    first = Remit([Clp(pcn="A1", paid="10.00", charge="10.00")], icn=41).build()
    other = Remit([Clp(pcn="B2", paid="20.00", charge="20.00")], icn=41, trace="EFT0002").build()
    [a] = take_file(store, settings_, first, "first.835", 1.0)
    [b] = take_file(store, settings_, other, "other.835", 2.0)
    assert a["control_id"] == "PAYERX:000000041" and not b["duplicate"]
    assert b["control_id"].startswith("PAYERX:000000041#") and b["status"] == "accepted"
    assert a["message_id"] != b["message_id"] and b["claims"] == 1
    [again] = take_file(store, settings_, other, "other-again.835", 3.0)
    assert again["duplicate"] and again["message_id"] == b["message_id"]


def test_a_re_enveloped_835_posts_its_money_once(rig: Rig) -> None:
    rig.ingest([bar("B1", "500018"), charge("D1", "500018", amount="800.00")])
    rig.drain()
    raw = Remit(
        [
            Clp(
                pcn="A500018",
                paid="450.00",
                responsibility="300.00",
                cas=[("CO", "45", "50.00")],
                line_cas=[("PR", "1", "300.00")],
            )
        ],
        icn=41,
    ).build()
    ingest_x12(rig, raw)
    rig.drain()
    ingest_x12(rig, _renumbered(raw, 42, 42, "0002"))
    rig.drain()
    cash = sum(
        (ln.debit - ln.credit for ln in rig.store.journal_lines() if ln.account == "1010"),
        Decimal(0),
    )
    assert cash == Decimal("450.00")
    assert len(rig.store.messages()) == 4  # BAR, DFT and both interchanges, each kept
