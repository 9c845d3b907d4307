"""Expected vs paid per 835 service line: each paid line priced with the payer's fee
schedule (pure), an underpayment item per short line, lines the schedule does not price
left alone, and the claim-level comparison when no line is priced; on the in-memory store
(the ledger side is asserted in the e2e, test_claim_life_e2e.py)."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path

from isthmus.config import ClaimSettings
from isthmus.connectors.claim_files import FileSender
from isthmus.demo.chart import demo_mappings
from isthmus.flows import claim_submission
from isthmus.flows.claim_pricing import ClaimPolicy, FeeSchedule, compare_lines
from isthmus.flows.claim_remit import Books, on_remitted
from isthmus.ledger.periods import FiscalCalendar
from isthmus.model import ClaimRemitted, RemitAdjustment, RemitServiceLine
from isthmus.model.envelope import Envelope, Source
from isthmus.store.memory import MemoryStore
from tests.flows.claims.claim_files import institutional

D = Decimal
T0 = 1_800_000_000.0
SCHEDULE = FeeSchedule("USD", {"85025": D("13.39"), "93005": D("20.00"), "0300": D("45.00")})
POLICY = ClaimPolicy(
    settings=ClaimSettings(underpayment_tolerance=D("1.00")), schedules={"99999": SCHEDULE}
)
BOOKS = Books("s", demo_mappings(), FiscalCalendar())


def line(
    code: str,
    billed: str,
    paid: str,
    *,
    units: str | None = None,
    rev: str = "",
    cas: tuple[tuple[str, str, str], ...] = (),
    ctl: str = "",
) -> RemitServiceLine:
    return RemitServiceLine(
        code=code,
        qualifier="HC",
        charge=D(billed),
        paid=D(paid),
        units=D(units) if units else None,
        revenue_code=rev,
        adjustments=tuple(RemitAdjustment(g, r, D(a)) for g, r, a in cas),
        service_date=date(2026, 11, 2),
        control_number=ctl,
    )


def test_compare_lines_prices_each_paid_line() -> None:
    got = compare_lines(
        (
            line("85025", "13.39", "10.00", cas=(("PR", "1", "3.39"),), ctl="A"),
            line("93005", "76.56", "40.00", units="3", cas=(("CO", "45", "36.56"),)),
            line("99999", "10.00", "0.00"),  # not in the schedule: left out
            line("", "50.00", "30.00", rev="0300", units="0"),  # revenue code, units 0 -> 1
        ),
        SCHEDULE,
    )
    assert [(v.number, v.code, v.expected, v.allowed, v.contractual, v.variance) for v in got] == [
        (1, "85025", D("13.39"), D("13.39"), D(0), D("0.00")),  # PR is part of allowed
        (2, "93005", D("60.00"), D("40.00"), D("36.56"), D("20.00")),
        (4, "0300", D("45.00"), D("30.00"), D(0), D("15.00")),
    ]
    assert got[0].describe().startswith("line 1 (REF*6R A) code 85025: expected 13.39")


def remitted(
    pcn: str, lines: tuple[RemitServiceLine, ...], paid: str
) -> tuple[Envelope, ClaimRemitted]:
    co = sum((a.amount for x in lines for a in x.adjustments if a.group == "CO"), D(0))
    ev = ClaimRemitted(
        payer_id="99999",
        payer_name="P",
        payee_npi="1234567893",
        payee_tin="",
        trace_number="EFT9",
        payment_method="ACH",
        payment_date=date(2026, 11, 5),
        patient_control_number=pcn,
        claim_status="1",
        charge=sum((x.charge for x in lines), D(0)),
        paid=D(paid),
        payer_claim_control_number="P1",
        adjustments=(RemitAdjustment("CO", "45", co),) if co else (),
        lines=lines,
    )
    at = datetime.fromtimestamp(T0 + 60, UTC)
    env = Envelope(
        event_id=f"x12/P:9/0001/{pcn}",
        type="ClaimRemitted",
        occurred_at=at,
        recorded_at=at,
        source=Source("x12", "P:9", "x12/P:9"),
        correlation_id="x12/P:9",
        causation_id="x12/P:9",
        key=f"remit|{pcn}",
        payload=ev,
    )
    return env, ev


def submitted(tmp_path: Path) -> MemoryStore:
    store = MemoryStore()
    got = claim_submission.submit_837(
        store,
        institutional(),
        settings=ClaimSettings(),
        sender=FileSender(tmp_path),
        now=T0,
        source="f",
    )
    assert got.clean == ["756048Q", "756049Q"]
    return store


def apply(store: MemoryStore, env: Envelope, ev: ClaimRemitted) -> str:
    with store.transaction() as tx:
        return on_remitted(tx, env, ev, policy=POLICY, books=BOOKS, outcome="applied")


def test_an_item_per_short_line_naming_it(tmp_path: Path) -> None:
    store = submitted(tmp_path)
    env, ev = remitted(
        "756048Q",
        (
            line("85025", "13.39", "13.39", ctl="1"),
            line("93005", "76.56", "46.61", units="3", cas=(("CO", "45", "29.95"),), ctl="2"),
            line("99999", "5.00", "1.00", cas=(("CO", "45", "4.00"),), ctl="3"),
        ),
        "61.00",
    )
    assert apply(store, env, ev) == "partially_paid"
    [item] = store.work_items(status="open")
    assert (item.queue, item.kind, item.key) == ("underpayments", "underpayment", "756048Q")
    assert item.event_id == f"claim-underpaid/{env.event_id}/2"
    assert (
        "line 2 (REF*6R 2) code 93005: expected 60.00, paid 46.61, payer allowed 46.61, "
        "variance 13.39 USD"
    ) in item.detail
    event = store.claim_events("756048Q")[-1]
    assert "line 1 (REF*6R 1) code 85025" in event.detail and "99999" not in event.detail


def test_lines_within_tolerance_are_paid(tmp_path: Path) -> None:
    store = submitted(tmp_path)
    env, ev = remitted(
        "756049Q", (line("", "50.00", "44.50", rev="0300", cas=(("CO", "45", "5.50"),)),), "44.50"
    )
    assert apply(store, env, ev) == "paid"  # short 0.50 of 45.00, tolerance 1.00
    assert store.work_items(status="open") == []


def test_no_priced_line_falls_back_to_the_claim_level(tmp_path: Path) -> None:
    store = submitted(tmp_path)
    # the 835 line's code is not in the schedule: the claim as submitted is priced
    # instead (85025 13.39 + 93005 3 x 20.00 = 73.39 expected, 50.00 allowed)
    env, ev = remitted(
        "756048Q", (line("99213", "89.95", "50.00", cas=(("CO", "45", "39.95"),)),), "50.00"
    )
    assert apply(store, env, ev) == "partially_paid"
    [item] = store.work_items(status="open")
    assert item.event_id == f"claim-underpaid/{env.event_id}"
    assert "allowed 50.00 USD, fee schedule 73.39 (short 23.39" in item.detail
