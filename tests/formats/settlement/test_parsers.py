"""Settlement and bank CSV parsers: golden files written for these tests (no public corpus
has them), and properties: any column order, case, BOM or line end reads the same; any
bytes give findings, never an exception; a broken amount is named by row and column."""

from __future__ import annotations

import csv
import hashlib
import io
from datetime import date
from decimal import Decimal
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from isthmus.flows.settlement_intake import csv_intake
from isthmus.formats.settlement import (
    BANK,
    SETTLEMENT,
    detect,
    looks_like_card,
    mask_cards,
    parse_bank,
    parse_settlement,
)

GOLDEN = Path(__file__).parent / "golden"
COLUMNS = [
    "processor",
    "deposit_id",
    "deposit_date",
    "transaction_id",
    "transaction_date",
    "type",
    "account_number",
    "gross",
    "fee",
    "net",
    "currency",
]


def test_golden_processor_file_with_aliases_quotes_and_a_control_row() -> None:
    sf = parse_settlement((GOLDEN / "processor_mixed.csv").read_bytes())
    assert sf.ok
    first, second = sf.deposits
    assert (first.deposit_id, first.deposit_date, first.currency) == (
        "PO-1001",
        date(2026, 11, 4),
        "USD",
    )
    assert [
        (t.transaction_id, t.kind, t.account_number, t.gross, t.fee, t.net)
        for t in first.transactions
    ] == [
        ("ch_001", "payment", "A500018", Decimal("1250.00"), Decimal("36.55"), Decimal("1213.45")),
        ("ch_002", "payment", "A500019", Decimal("75.00"), Decimal("2.48"), Decimal("72.52")),
        ("re_003", "refund", "A500018", Decimal("-50.00"), Decimal("0.00"), Decimal("-50.00")),
    ]
    assert (first.gross, first.fee, first.net) == (
        Decimal("1275.00"),
        Decimal("39.03"),
        Decimal("1235.97"),
    )
    assert [t.kind for t in second.transactions] == ["payment", "chargeback"]
    assert second.net == Decimal("-70.88")  # the dispute's fee makes it a debit
    assert first.transactions[0].transaction_date == date(2026, 11, 3)


def test_golden_bad_processor_file_names_every_row_and_column() -> None:
    sf = parse_settlement((GOLDEN / "processor_bad.csv").read_bytes())
    assert [str(f) for f in sf.findings] == [
        "row 3, column account_number: holds a card number; send the patient's billing "
        "account number or the processor's ids, never card data",
        "row 3, column deposit_date: deposit D1 has 2026-11-04 on row 2",
        "row 4, column gross: is not a decimal amount",
        "row 4, column transaction_date: is not a date (YYYY-MM-DD, YYYYMMDD or MM/DD/YYYY)",
        "row 5, column gross: a refund must be negative",
        "row 6, column currency: is not an ISO 4217 currency code",
        "row 6, column currency: deposit D1 has USD on row 2",
        "row 6, column transaction_id: appears twice in deposit D1 (first on row 2)",
        "row 6, column type: is not payment, refund, chargeback or deposit",
        "row 7, column fee: deposit D1 control total 3.50 but its transactions sum to 4.00",
        "row 7, column gross: deposit D1 control total 999.00 but its transactions sum to 125.00",
        "row 7, column net: deposit D1 control total 995.50 but its transactions sum to 131.00",
    ]
    assert "4111111111111111" not in repr(sf)  # card data is never kept


def test_golden_bank_file_crlf_quoted_thousands_and_methods() -> None:
    data = (GOLDEN / "bank_ok.csv").read_bytes()
    assert detect(data) == BANK
    bf = parse_bank(data)
    assert bf.ok
    assert [(b.deposit_date, b.amount, b.reference, b.method) for b in bf.deposits] == [
        (date(2026, 11, 6), Decimal("450.00"), "EFT7", "ACH"),
        (date(2026, 11, 5), Decimal("48.50"), "d1", "CARD"),
        (date(2026, 11, 7), Decimal("1200.00"), "CHK1001", "CHECK"),
    ]


def test_missing_columns_and_bad_bank_rows() -> None:
    sf = parse_settlement(b"deposit_id,gross\nD1,10\n")
    assert {f.column for f in sf.findings} == {
        "deposit_date",
        "transaction_id",
        "account_number",
        "fee",
        "net",
    }
    assert all(f.row == 1 for f in sf.findings) and not sf.deposits
    bf = parse_bank(
        b"date,amount,reference\n2026-11-01,-5.00,X\n2026-11-01,5.00,\n"
        b"2026-11-01,5.00,Y\n2026-11-01,5.00,Y\n"
    )
    assert [str(f) for f in bf.findings] == [
        "row 2, column amount: a deposit must be positive",
        "row 3, column reference: is empty",
        "row 5, column reference: the same deposit as row 4",
    ]
    assert parse_bank(b"").findings[0].text == "the file is empty"
    assert parse_bank(b"date,amount,reference\n").findings[0].text.startswith("the file has")
    assert parse_bank(b"\xff\xfe").findings[0].text.startswith("not UTF-8")


def test_detect_tells_the_kinds_apart_and_knows_neither() -> None:
    assert detect((GOLDEN / "processor_mixed.csv").read_bytes()) == SETTLEMENT
    assert detect(b"ISA*00*") == "" and detect(b"MSH|^~\\&|") == ""
    assert detect(b"a,b,c\n1,2,3\n") == "" and detect(b"\x00\xff") == ""


def test_card_numbers_are_recognized_by_luhn() -> None:
    assert looks_like_card("4111 1111 1111 1111") and looks_like_card("378282246310005")
    assert not looks_like_card("4111111111111112") and not looks_like_card("A500018")
    assert not looks_like_card("500018")


cents = st.integers(min_value=1, max_value=10_000_000).map(lambda c: Decimal(c).scaleb(-2))
fees = st.integers(min_value=0, max_value=500).map(lambda c: Decimal(c).scaleb(-2))
txn = st.tuples(
    st.sampled_from(["payment", "refund", "chargeback"]),
    cents,
    fees,
    st.from_regex(r"A[0-9]{3,8}", fullmatch=True),
)


def _write(
    rows: list[dict[str, str]], order: list[str], *, bom: bool, crlf: bool, upper: bool
) -> bytes:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\r\n" if crlf else "\n")
    w.writerow([c.upper().replace("_", " ") if upper else c for c in order])
    for r in rows:
        w.writerow([r[c] for c in order])
    return (b"\xef\xbb\xbf" if bom else b"") + buf.getvalue().encode()


@settings(max_examples=60, deadline=None)
@given(
    deposits=st.lists(st.lists(txn, min_size=1, max_size=6), min_size=1, max_size=4),
    order=st.permutations(COLUMNS),
    bom=st.booleans(),
    crlf=st.booleans(),
    upper=st.booleans(),
)
def test_any_column_order_case_bom_and_line_end_read_the_same(
    deposits: list[list[tuple[str, Decimal, Decimal, str]]],
    order: list[str],
    bom: bool,
    crlf: bool,
    upper: bool,
) -> None:
    rows, expected = [], []
    for d, txns in enumerate(deposits):
        for t, (kind, amount, fee, account) in enumerate(txns):
            gross = amount if kind == "payment" else -amount
            rows.append(
                {
                    "processor": "P",
                    "deposit_id": f"D{d}",
                    "deposit_date": "2026-11-04",
                    "transaction_id": f"T{t}",
                    "transaction_date": "2026-11-03",
                    "type": kind,
                    "account_number": account,
                    "gross": str(gross),
                    "fee": str(fee),
                    "net": str(gross - fee),
                    "currency": "USD",
                }
            )
            expected.append((f"D{d}", f"T{t}", kind, account, gross, fee, gross - fee))
    sf = parse_settlement(_write(rows, list(order), bom=bom, crlf=crlf, upper=upper))
    assert sf.findings == ()
    got = [
        (d.deposit_id, t.transaction_id, t.kind, t.account_number, t.gross, t.fee, t.net)
        for d in sf.deposits
        for t in d.transactions
    ]
    assert got == expected
    for dep in sf.deposits:
        assert dep.gross - dep.fee == dep.net


@settings(max_examples=60, deadline=None)
@given(deposits=st.lists(txn, min_size=2, max_size=8), data=st.data())
def test_a_broken_net_is_named_by_its_row_and_column(
    deposits: list[tuple[str, Decimal, Decimal, str]], data: st.DataObject
) -> None:
    rows = []
    for t, (_kind, amount, fee, account) in enumerate(deposits):
        rows.append(
            {
                "processor": "P",
                "deposit_id": "D",
                "deposit_date": "2026-11-04",
                "transaction_id": f"T{t}",
                "transaction_date": "2026-11-03",
                "type": "payment",
                "account_number": account,
                "gross": str(amount),
                "fee": str(fee),
                "net": str(amount - fee),
                "currency": "USD",
            }
        )
    bad = data.draw(st.integers(min_value=0, max_value=len(rows) - 1))
    rows[bad]["net"] = str(Decimal(rows[bad]["net"]) + Decimal("0.01"))
    sf = parse_settlement(_write(rows, COLUMNS, bom=False, crlf=False, upper=False))
    assert [(f.row, f.column) for f in sf.findings] == [(bad + 2, "net")]


@settings(max_examples=200, deadline=None)
@given(
    st.binary(max_size=400)
    | st.text(alphabet=',"\r\n\ufeffabc0123.-$()/ ', max_size=200).map(
        lambda s: (
            "deposit_id,deposit_date,transaction_id,account_number,gross,fee,net\n" + s
        ).encode()
    )
)
def test_any_bytes_give_findings_never_an_exception(data: bytes) -> None:
    for parsed in (parse_settlement(data), parse_bank(data)):
        assert all(f.row >= 0 and str(f) for f in parsed.findings)
        if not parsed.findings:
            assert parsed.deposits
    detect(data)


def test_card_numbers_are_masked_in_what_is_kept() -> None:
    raw = (GOLDEN / "processor_bad.csv").read_bytes()
    intake = csv_intake(raw, kind=SETTLEMENT, peer="t", now=0.0, tenant="t")
    assert intake.inbound.status == "rejected"
    assert b"4111111111111111" not in intake.inbound.raw
    assert b"************1111" in intake.inbound.raw
    assert intake.inbound.digest == hashlib.sha256(raw).hexdigest()  # idempotent on the file
    assert (
        mask_cards(b"ref 4111-1111-1111-1112 and 2026110412345")
        == b"ref 4111-1111-1111-1112 and 2026110412345"
    )  # no Luhn, no mask


bank_row = st.tuples(
    st.dates(min_value=date(2020, 1, 1), max_value=date(2030, 12, 31)),
    cents,
    st.from_regex(r"[A-Z0-9]{4,15}", fullmatch=True),
    st.sampled_from(["ACH", "card", "check", "wire", ""]),
)


@settings(max_examples=60, deadline=None)
@given(
    rows=st.lists(bank_row, min_size=1, max_size=10, unique_by=lambda r: (r[0], r[2], r[1])),
    fmt=st.sampled_from(["%Y-%m-%d", "%Y%m%d", "%m/%d/%Y"]),
    crlf=st.booleans(),
)
def test_bank_rows_read_back_in_any_date_format(
    rows: list[tuple[date, Decimal, str, str]], fmt: str, crlf: bool
) -> None:
    end = "\r\n" if crlf else "\n"
    text = end.join(
        ["Reference,Type,Amount,Value Date"]
        + [f"{ref},{kind},{amount},{day.strftime(fmt)}" for day, amount, ref, kind in rows]
    )
    bf = parse_bank(text.encode())
    assert bf.findings == ()
    assert [(b.deposit_date, b.amount, b.reference) for b in bf.deposits] == [
        (day, amount, ref) for day, amount, ref, _ in rows
    ]
