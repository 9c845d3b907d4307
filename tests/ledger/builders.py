"""Shared builders and Hypothesis strategies for the ledger tests (not a test module)."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

from hypothesis import strategies as st

from isthmus.ledger import FiscalCalendar, JournalEntry, charge_entry
from isthmus.model import Charge, Money, PatientRef

# Written out here, not taken from the ledger, so the tests check the ledger's table.
EXPONENT = {"USD": 2, "EUR": 2, "JPY": 0}
CURRENCIES = tuple(EXPONENT)
AR = "1200"


def make_charge(
    amount: str = "100.00",
    currency: str = "USD",
    kind: str = "CG",
    *,
    txn: str = "T1",
    service_date: date = date(2024, 3, 15),
) -> Charge:
    return Charge(
        patient=PatientRef(mrn="MRN1", authority="HOSP"),
        transaction_id=txn,
        transaction_type=kind,
        quantity=1,
        amount=Money(Decimal(amount), currency),
        charge_code="99213",
        department="CARD",
        facility="MAIN",
        service_date=service_date,
    )


def post(
    charge: Charge,
    *,
    key: str = "evt-1:charge",
    token: str = "tok-A",
    company: str = "C1",
    cost_center: str = "CC10",
    service_line: str = "Cardiology",
    revenue_account: str = "4000",
    posted_on: date | None = None,
    period: str | None = None,
) -> JournalEntry:
    day = posted_on or charge.service_date
    return charge_entry(
        charge,
        entry_key=key,
        ar_account=AR,
        revenue_account=revenue_account,
        service_line=service_line,
        cost_center=cost_center,
        company=company,
        account_token=token,
        period=period or f"{day.year:04d}-{day.month:02d}",
        posted_on=day,
        channel="dft-main",
        correlation_id=f"inbox-{key}",
        causation_id=f"evt-{key}",
    )


@st.composite
def money(draw: st.DrawFn, currency: str | None = None) -> Money:
    cur = currency or draw(st.sampled_from(CURRENCIES))
    units = draw(st.integers(min_value=1, max_value=10**10))
    return Money(Decimal(units).scaleb(-EXPONENT[cur]), cur)


_MONTHS = [f"{y}-{m:02d}" for y in (2023, 2024) for m in range(1, 13)]

_charge_spec = st.tuples(
    money(),
    st.dates(min_value=date(2023, 1, 1), max_value=date(2024, 12, 31)),
    st.sampled_from(["CG", "CD"]),
    st.sampled_from(["99213", "80053", "71046"]),
    st.sampled_from(["4000", "4100", "4200"]),
    st.sampled_from(["", "Cardiology", "Imaging"]),
    st.sampled_from(["", "CC10", "CC20"]),
    st.sampled_from(["C1", "C2"]),
    st.sampled_from(["tok-A", "tok-B", "tok-C"]),
)


@st.composite
def posted_entries(draw: st.DrawFn, max_size: int = 20) -> list[JournalEntry]:
    """Charges and credits with random money and dimensions, posted through a calendar
    whose closed months are random (policy next_open), so some entries are moved."""
    calendar = FiscalCalendar(
        closed=frozenset(draw(st.lists(st.sampled_from(_MONTHS), max_size=6))),
        policy="next_open",
    )
    specs = draw(st.lists(_charge_spec, min_size=1, max_size=max_size))
    entries = []
    for i, (m, day, kind, code, revenue, line, cc, company, token) in enumerate(specs):
        charge = Charge(
            patient=PatientRef(mrn=f"M{i}", authority="HOSP"),
            transaction_id=f"T{i}",
            transaction_type=kind,
            quantity=1,
            amount=m,
            charge_code=code,
            department="D",
            facility="MAIN",
            service_date=day,
        )
        where = calendar.assign(day)
        entries.append(
            charge_entry(
                charge,
                entry_key=f"evt-{i}:charge",
                ar_account=AR,
                revenue_account=revenue,
                service_line=line,
                cost_center=cc,
                company=company,
                account_token=token,
                period=where.period,
                posted_on=where.posted_on,
                channel="dft-main",
                correlation_id=f"inbox-{i % 4}",
                causation_id=f"evt-{i}",
                moved_from=where.moved_from,
            )
        )
    return entries
