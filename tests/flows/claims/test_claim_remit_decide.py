"""An 835 claim payment decided for the claim it names, without a store (issue 17):
`claim_remit.decide_remitted` over a claim as the hub submitted it (scrubbed from the
institutional corpus 837), with the claim-life moves, work items and the underpayment
entry it decides asserted as data."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal

from isthmus.config import ClaimSettings
from isthmus.demo.chart import demo_mappings
from isthmus.flows import claim_life as life
from isthmus.flows.claim_expected import ExpectedFacts
from isthmus.flows.claim_life import ClaimMove
from isthmus.flows.claim_pricing import ClaimPolicy, FeeSchedule
from isthmus.flows.claim_remit import Books, RemitFacts, Remitted, decide_remitted
from isthmus.flows.claim_submission import claim_body
from isthmus.flows.decision import Decision
from isthmus.flows.outcome import APPLIED, POSTED
from isthmus.formats.x12.claim_edits import scrub
from isthmus.ledger.periods import FiscalCalendar
from isthmus.model import ClaimRemitted, RemitAdjustment, RemitServiceLine
from isthmus.model.envelope import Envelope, Source
from isthmus.store.ports import ClaimState
from tests.flows.claims.claim_files import institutional

D = Decimal
T0 = 1_800_000_000.0
SCHEDULE = FeeSchedule("USD", {"85025": D("13.39"), "93005": D("20.00")})
POLICY = ClaimPolicy(
    settings=ClaimSettings(underpayment_tolerance=D("1.00"), appeal_days=90),
    schedules={"99999": SCHEDULE},
)
BOOKS = Books("s", demo_mappings(), FiscalCalendar())
WHERE = ExpectedFacts("C01", "tok-1")  # the account's company and A/R token


def claim(state: str = life.SUBMITTED) -> ClaimState:
    """756048Q as submitted: 85025 x 1 (13.39) and 93005 x 3 (76.56), charge 89.95; the
    schedule expects 13.39 + 3 x 20.00 = 73.39."""
    c = next(x for x in scrub(institutional()) if x.patient_control_number == "756048Q")
    return ClaimState(
        claim_key="756048Q",
        state=state,
        payer_id=c.payer_id,
        total_charge=c.total_charge,
        currency="USD",
        created_at=T0,
        updated_at=T0,
        body=claim_body(c),
    )


def remit(
    paid: str,
    cas: tuple[tuple[str, str, str], ...] = (),
    *,
    status: str = "1",
    lines: tuple[RemitServiceLine, ...] = (),
    channel: str = "x12",
    control: str = "P:9",
) -> tuple[Envelope, ClaimRemitted]:
    ev = ClaimRemitted(
        payer_id="99999",
        payer_name="P",
        payee_npi="1234567893",
        payee_tin="",
        trace_number="EFT9",
        payment_method="ACH",
        payment_date=date(2026, 11, 5),
        patient_control_number="756048Q",
        claim_status=status,
        charge=D("89.95"),
        paid=D(paid),
        payer_claim_control_number="PCC1",
        adjustments=tuple(RemitAdjustment(g, r, D(a)) for g, r, a in cas),
        lines=lines,
    )
    at = datetime.fromtimestamp(T0 + 60, UTC)
    env = Envelope(
        event_id="x12/P:9/0001/756048Q",
        type="ClaimRemitted",
        occurred_at=at,
        recorded_at=at,
        source=Source(channel, control, f"{channel}/{control}"),
        correlation_id="x12/P:9",
        causation_id="x12/P:9",
        key="remit|756048Q",
        payload=ev,
    )
    return env, ev


def decide(
    env: Envelope,
    ev: ClaimRemitted,
    c: ClaimState | None,
    *,
    outcome: str = "posted",
    where: ExpectedFacts = WHERE,
) -> Remitted:
    facts = RemitFacts(c, where)
    return decide_remitted(env, ev, facts, policy=POLICY, books=BOOKS, outcome=outcome)


def claim_moves(got: Remitted) -> list[ClaimMove]:
    out = [m for m in got.decision.writes if isinstance(m, ClaimMove)]
    assert len(out) == len(got.decision.writes)  # a claim's life writes nothing else
    return out


def moves(got: Remitted) -> list[tuple[str, str, str]]:
    return [(m.kind, m.claim.state, m.to) for m in claim_moves(got)]


def test_a_claim_the_hub_did_not_submit_is_left_alone() -> None:
    env, ev = remit("89.95")
    assert decide(env, ev, None) == Remitted("", Decision(APPLIED))


def test_underpaid_claim_opens_an_item_and_puts_the_shortfall_back_on_ar() -> None:
    env, ev = remit("50.00", (("CO", "45", "39.95"),))
    got = decide(env, ev, claim())
    assert got.state == life.PARTIALLY_PAID
    assert moves(got) == [("remit_partial", "submitted", "partially_paid")]
    [m] = claim_moves(got)
    assert m.after(T0 + 60).paid == D("50.00")
    assert m.after(T0 + 60).payer_claim_id == "PCC1"
    [item] = got.decision.open
    assert (item.kind, item.queue, item.key, item.event_id) == (
        "underpayment",
        "underpayments",
        "756048Q",
        f"claim-underpaid/{env.event_id}",
    )
    assert "fee schedule 73.39 (short 23.39, tolerance 1.00)" in item.detail
    assert got.decision.outcome is POSTED
    [entry] = got.decision.entries
    assert entry.entry_key == f"claim-expected/{env.event_id}"
    assert [(x.account, x.debit, x.credit) for x in entry.lines] == [
        ("1200", D("23.39"), D(0)),
        ("4900", D(0), D("23.39")),
    ]
    assert entry.lines[0].dims.account_token == "tok-1"
    assert entry.lines[1].dims.service_line == "underpayment"
    assert {x.dims.company for x in entry.lines} == {"C01"}


def test_the_shortfall_put_back_is_at_most_the_contractual_write_off() -> None:
    env, ev = remit("50.00", (("CO", "45", "10.00"), ("OA", "23", "29.95")))
    [entry] = decide(env, ev, claim()).decision.entries
    assert [x.amount for x in entry.lines] == [D("10.00"), D("-10.00")]


def test_no_entry_unless_the_payment_posted_somewhere() -> None:
    env, ev = remit("50.00", (("CO", "45", "39.95"),))
    for got in (
        decide(env, ev, claim(), outcome="applied"),
        decide(env, ev, claim(), where=ExpectedFacts()),  # no account, or unmapped
    ):
        assert got.state == life.PARTIALLY_PAID
        assert got.decision.entries == ()
        assert [i.queue for i in got.decision.open] == ["underpayments"]


def test_paid_within_tolerance_is_paid() -> None:
    env, ev = remit("72.89", (("CO", "45", "16.56"), ("PR", "1", "0.50")))
    got = decide(env, ev, claim())
    assert got.state == life.PAID
    assert moves(got) == [("remit_paid", "submitted", "paid")]
    assert got.decision.open == () and got.decision.entries == ()
    assert got.decision.outcome is APPLIED


def test_denial_files_the_claim_under_its_category() -> None:
    env, ev = remit("0", (("CO", "50", "89.95"),), status="4")
    got = decide(env, ev, claim())
    assert got.state == life.DENIED
    [m] = claim_moves(got)
    after = m.after(T0 + 60)
    assert (after.denial_category, after.appeal_due) == ("medical-necessity", "2027-02-03")
    [r] = got.decision.resolve
    assert (r.event_id, r.resolution) == (env.event_id, "worked in denials-medical-necessity")
    [item] = got.decision.open
    assert (item.kind, item.queue, item.event_id) == (
        "claim_denial",
        "denials-medical-necessity",
        f"claim-denial/{env.event_id}",
    )
    assert got.decision.entries == ()


def test_a_claim_that_cannot_move_keeps_the_payment_as_a_fact() -> None:
    env, ev = remit("50.00", (("CO", "45", "39.95"),))
    got = decide(env, ev, claim(life.CLOSED))
    assert got.state == life.CLOSED
    assert moves(got) == [("remit", "closed", "closed")]
    assert got.decision.open == () and got.decision.entries == ()


def test_reversal_is_kept_on_the_claim() -> None:
    env, ev = remit("-50.00", status="22")
    got = decide(env, ev, claim(life.PAID))
    assert got.state == life.PAID
    [m] = claim_moves(got)
    assert (m.kind, m.to) == ("remit_reversed", "paid")
    assert m.after(T0 + 60).paid == D("-50.00")


def line(code: str, billed: str, paid: str, units: str, co: str, n: str) -> RemitServiceLine:
    return RemitServiceLine(
        code=code,
        qualifier="HC",
        charge=D(billed),
        paid=D(paid),
        units=D(units),
        adjustments=(RemitAdjustment("CO", "45", D(co)),) if D(co) else (),
        service_date=date(2026, 11, 2),
        control_number=n,
    )


def test_an_item_and_a_journal_pair_per_short_line() -> None:
    lines = (
        line("85025", "13.39", "13.39", "1", "0", "1"),
        line("93005", "76.56", "46.61", "3", "29.95", "2"),  # expected 60.00: short 13.39
    )
    env, ev = remit("60.00", (("CO", "45", "29.95"),), lines=lines)
    got = decide(env, ev, claim())
    assert got.state == life.PARTIALLY_PAID
    [item] = got.decision.open
    assert (item.queue, item.event_id) == ("underpayments", f"claim-underpaid/{env.event_id}/2")
    [entry] = got.decision.entries
    assert [(x.account, x.amount) for x in entry.lines] == [
        ("1200", D("13.39")),
        ("4900", D("-13.39")),
    ]
    assert "line 2 93005" in entry.memo


def test_fhir_claim_response_submits_accepts_then_pays() -> None:
    env, ev = remit("73.39", (("CO", "45", "16.56"),), channel="fhir", control="ClaimResponse/7")
    got = decide(env, ev, claim(life.SCRUBBED))
    assert got.state == life.PAID
    assert moves(got) == [
        ("submitted", "scrubbed", "submitted"),
        ("ack_accepted", "submitted", "accepted"),
        ("remit_paid", "accepted", "paid"),
    ]


def test_fhir_claim_response_that_pays_nothing_rejects() -> None:
    env, ev = remit("0", (("CO", "16", "89.95"),), channel="fhir", control="ClaimResponse/8")
    got = decide(env, ev, claim())
    assert got.state == life.REJECTED
    assert moves(got) == [("ack_rejected", "submitted", "rejected")]
    [r] = got.decision.resolve
    assert r.resolution == "worked in claim-rejections"
    [item] = got.decision.open
    assert (item.kind, item.queue, item.event_id) == (
        "claim_rejected",
        "claim-rejections",
        f"claim-rejected/756048Q/{env.event_id}",
    )
