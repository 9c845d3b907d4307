"""Posting rules for remittances (ledger/remit.py): exact sides, and properties.

Expected values are computed here from the lines (plain sums), never with the ledger's own
aggregation helpers.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from isthmus.ledger import validate_entry
from isthmus.ledger.journal import JournalEntry, JournalLine
from isthmus.ledger.remit import RemitAccounts, claim_payment_entry, provider_adjustment_entry

ACCOUNTS = RemitAccounts()
GROUPS = ("CO", "PR", "OA", "PI", "CR")
DEBIT_ACCOUNT = {"CO": "4900", "PR": "1210", "OA": "4910", "PI": "4910", "CR": "4910"}


def _claim(
    paid: Decimal, adjustments: list[tuple[str, str, Decimal]], key: str = "x12/P:1/1/0"
) -> JournalEntry | None:
    return claim_payment_entry(
        paid=paid,
        adjustments=adjustments,
        currency="USD",
        accounts=ACCOUNTS,
        company="C1",
        account_token="PA-1",
        entry_key=key,
        posted_on=date(2026, 11, 5),
        period="2026-11",
        channel="x12",
        memo="835 payment",
        correlation_id="x12/P:1",
        causation_id=key,
    )


def _net(entry: JournalEntry | None) -> dict[str, Decimal]:
    out: dict[str, Decimal] = {}
    for ln in entry.lines if entry else ():
        out[ln.account] = out.get(ln.account, Decimal(0)) + ln.debit - ln.credit
    return out


def test_each_group_has_its_account() -> None:
    e = _claim(Decimal("10.00"), [(g, "45", Decimal("1.00")) for g in GROUPS])
    assert e is not None and validate_entry(e) == []
    assert _net(e) == {
        "1010": Decimal("10.00"),
        "1200": Decimal("-15.00"),
        "4900": Decimal("1.00"),
        "1210": Decimal("1.00"),
        "4910": Decimal("3.00"),
    }
    pr = [ln for ln in e.lines if ln.account == "1210"]
    assert pr[0].dims.account_token == "PA-1"  # self-pay A/R stays on the patient's token


def test_nothing_to_post_is_none() -> None:
    assert _claim(Decimal(0), [("CO", "45", Decimal("0.00"))]) is None


def test_plb_positive_withholds_cash_negative_adds_it() -> None:
    def plb(amount: str) -> dict[str, Decimal]:
        return _net(
            provider_adjustment_entry(
                amount=Decimal(amount),
                currency="USD",
                accounts=ACCOUNTS,
                company="C1",
                entry_key="k",
                posted_on=date(2026, 11, 5),
                period="2026-11",
                channel="x12",
                memo="PLB",
                correlation_id="c",
                causation_id="k",
            )
        )

    assert plb("20.00") == {"4920": Decimal("20.00"), "1010": Decimal("-20.00")}
    assert plb("-1.27") == {"1010": Decimal("1.27"), "4920": Decimal("-1.27")}


cents = st.integers(min_value=-10_000_000, max_value=10_000_000).map(
    lambda n: Decimal(n).scaleb(-2)
)
adjustment = st.tuples(
    st.sampled_from(GROUPS), st.sampled_from(["1", "2", "45", "97", "A2"]), cents
)


@settings(max_examples=200, deadline=None)
@given(paid=cents, adjustments=st.lists(adjustment, max_size=6))
def test_any_remittance_balances_and_credits_ar_by_paid_plus_adjustments(
    paid: Decimal, adjustments: list[tuple[str, str, Decimal]]
) -> None:
    e = _claim(paid, adjustments)
    total = paid + sum((a for _, _, a in adjustments), Decimal(0))
    if e is None:
        assert paid == 0 and all(a == 0 for _, _, a in adjustments)
        return
    assert validate_entry(e) == []
    assert sum((ln.debit for ln in e.lines), Decimal(0)) == sum(
        (ln.credit for ln in e.lines), Decimal(0)
    )
    net = _net(e)
    assert net.get("1200", Decimal(0)) == -total
    assert net.get("1010", Decimal(0)) == paid
    for group, account in DEBIT_ACCOUNT.items():
        if account == "4910":
            continue
        assert net.get(account, Decimal(0)) == sum(
            (a for g, _, a in adjustments if g == group), Decimal(0)
        )
    assert net.get("4910", Decimal(0)) == sum(
        (a for g, _, a in adjustments if g in ("OA", "PI", "CR")), Decimal(0)
    )


@settings(max_examples=200, deadline=None)
@given(paid=cents, adjustments=st.lists(adjustment, min_size=1, max_size=6))
def test_a_reversal_mirrors_the_original(
    paid: Decimal, adjustments: list[tuple[str, str, Decimal]]
) -> None:
    original = _claim(paid, adjustments, key="a")
    reversal = _claim(-paid, [(g, r, -a) for g, r, a in adjustments], key="b")
    if original is None:
        assert reversal is None
        return
    assert reversal is not None
    both = _net(original)
    for account, amount in _net(reversal).items():
        both[account] = both.get(account, Decimal(0)) + amount
    assert all(v == 0 for v in both.values())

    def key(ln: JournalLine, flip: bool) -> tuple[str, Decimal, Decimal, str, str]:
        d, c = (ln.credit, ln.debit) if flip else (ln.debit, ln.credit)
        return (ln.account, d, c, ln.dims.account_token, ln.dims.service_line)

    assert sorted(key(ln, False) for ln in reversal.lines) == sorted(
        key(ln, True) for ln in original.lines
    )
