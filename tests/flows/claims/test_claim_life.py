"""The claim state machine (pure), denial categories, fee schedules, and the refusals of
the denial actions; rejections by 999 and 277CA, on the in-memory store."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from isthmus.config import ClaimSettings
from isthmus.connectors.claim_files import FileSender
from isthmus.demo.chart import demo_mappings
from isthmus.flows import claim_acks, claim_denials, claim_submission
from isthmus.flows import claim_life as life
from isthmus.flows.claim_pricing import ClaimPolicy, FeeSchedule, expected_allowed
from isthmus.flows.claim_remit import Books
from isthmus.flows.denial_codes import category_of
from isthmus.ledger.periods import FiscalCalendar
from isthmus.store.memory import MemoryStore
from tests.flows.claims.claim_files import institutional, professional
from tests.formats.x12.x12_corpus import ISA

T0 = 1_800_000_000.0
HAPPY = [
    "edits_passed",
    "submitted",
    "ack_accepted",
    "status_pending",
    "remit_denied",
    "appealed",
    "remit_paid",
    "closed",
]


def test_happy_path_and_resubmission() -> None:
    state = life.CREATED
    for kind in HAPPY:
        state = life.decide("K", state, kind)
    assert state == life.CLOSED
    seen = [life.decide("K", life.REJECTED, "corrected")]
    for kind in ("edits_passed", "submitted"):
        seen.append(life.decide("K", seen[-1], kind))
    assert seen == [life.CORRECTED, life.SCRUBBED, life.SUBMITTED]


@given(st.sampled_from(life.STATES), st.sampled_from(sorted(life.TRANSITIONS)))
def test_decide_is_the_table(state: str, kind: str) -> None:
    allowed, target = life.TRANSITIONS[kind]
    if state in allowed:
        assert life.decide("K", state, kind) == target
    else:
        with pytest.raises(life.InvalidTransition, match=kind):
            life.decide("K", state, kind)


def test_closed_and_written_off_are_final() -> None:
    for final in (life.CLOSED, life.WRITTEN_OFF):
        assert not any(life.can(final, k) for k in life.TRANSITIONS)


@pytest.mark.parametrize(
    ("codes", "category"),
    [
        (["27"], "eligibility"),
        (["197"], "authorization"),
        (["16", "M51"], "coding"),
        (["29"], "timely-filing"),
        (["50"], "medical-necessity"),
        (["18"], "duplicate"),
        (["45"], "other"),
        (["45", "N30"], "eligibility"),
    ],
)
def test_denial_categories(codes: list[str], category: str) -> None:
    assert category_of(codes) == category


def test_fee_schedule_csv_is_decimal_and_checked() -> None:
    fs = FeeSchedule.from_csv("code,allowed\n99213,40.10\n", "USD")
    assert fs.allowed == {"99213": Decimal("40.10")}
    with pytest.raises(ValueError, match="code,allowed"):
        FeeSchedule.from_csv("cpt,amount\n1,2\n", "USD")
    with pytest.raises(ValueError, match="line 2"):
        FeeSchedule.from_csv("code,allowed\n99213,forty\n", "USD")


def submitted(tmp_path: Path) -> tuple[MemoryStore, FileSender, list[str]]:
    store = MemoryStore()
    sender = FileSender(tmp_path)
    got = claim_submission.submit_837(
        store, institutional(), settings=ClaimSettings(), sender=sender, now=T0, source="f"
    )
    return store, sender, got.clean


def test_999_rejection_opens_item_without_data_copy(tmp_path: Path) -> None:
    store, _, clean = submitted(tmp_path)
    ack = (
        ISA + "GS*FA*R*S*20240101*1200*9*X*005010X231A1~ST*999*0001*005010X231A1~"
        "AK1*HC*1*005010X223A3~AK2*837*0001*005010X223A3~IK3*NM1*8*2010AA*8~"
        "IK4*9*67*7*SECRETVALUE~IK5*R*5~AK9*R*1*1*0~SE*8*0001~GE*1*9~IEA*1*000000123~"
    )
    got = claim_acks.apply_999(store, ack, now=T0 + 1, source="999-R")
    assert got.claims == dict.fromkeys(clean, life.REJECTED)
    items = store.work_items(status="open")
    assert {(w.queue, w.key) for w in items} == {("claim-rejections", k) for k in clean}
    assert all("IK3 NM1 position 8" in w.detail and "SECRETVALUE" not in w.detail for w in items)
    # the same numbers for an unknown group: nothing moves
    assert (
        claim_acks.apply_999(
            store, ack.replace("AK1*HC*1*", "AK1*HC*77*"), now=T0 + 2, source="999-x"
        ).unknown
        == 1
    )


def test_277ca_rejection_then_correction_resubmits_as_replacement(tmp_path: Path) -> None:
    store, sender, _ = submitted(tmp_path)
    ca = (
        ISA + "GS*HN*C*H*20240101*1200*5*X*005010X214~ST*277*0001*005010X214~"
        "BHT*0085*08*B*20240101*1200*TH~HL*1**20*1~NM1*AY*2*CH*****46*1~HL*2*1*21*1~"
        "NM1*41*2*H*****46*2~HL*3*2*19*1~NM1*85*2*H*****XX*1234567893~HL*4*3*PT~"
        "NM1*QC*1*X*Y~TRN*2*756049Q~STC*A7:562:85*20240101*U*50~REF*D9*756049Q~"
        "SE*15*0001~GE*1*5~IEA*1*000000123~"
    )
    assert claim_acks.apply_277(store, ca, now=T0 + 5, source="ca").claims == {
        "756049Q": life.REJECTED
    }
    claim_denials.mark_corrected(store, "756049Q", actor="dana", now=T0 + 6)
    assert not [w for w in store.work_items(status="open") if w.key == "756049Q"]
    fixed = institutional().replace("CLM*756049Q*50.00***13:A:1", "CLM*756049Q*50.00***13:A:7")
    refused = claim_submission.submit_837(
        store, fixed, settings=ClaimSettings(), sender=sender, now=T0 + 7, source="f2"
    )
    assert "REF*F8" in refused.failed["756049Q"][0]  # a replacement names the payer's claim
    fixed = fixed.replace(
        "CLM*756049Q*50.00***13:A:7*Y*C*Y*Y~", "CLM*756049Q*50.00***13:A:7*Y*C*Y*Y~REF*F8*PAYER9~"
    )
    fixed = fixed.replace("SE*48*", "SE*49*")
    got = claim_submission.submit_837(
        store, fixed, settings=ClaimSettings(), sender=sender, now=T0 + 8, source="f3"
    )
    assert got.clean == ["756049Q"], got.failed
    state = store.claim_states()
    c = next(x for x in state if x.claim_key == "756049Q")
    assert (c.state, c.frequency, c.controls.split("/")[0]) == ("submitted", "7", "000000002")
    assert "756048Q" in got.failed  # the other claim of the file is in flight: not resent


def test_appeal_after_deadline_and_small_write_off(tmp_path: Path) -> None:
    store, sender, _ = submitted(tmp_path)
    with store.transaction() as tx:
        c = tx.get_claim_state("756049Q")
        assert c is not None
        tx.put_claim_state(
            life.advance(
                tx, c, "remit_denied", now=T0, appeal_due="2027-01-01", denial_category="coding"
            )
        )
    with pytest.raises(claim_denials.ClaimActionRefused, match="deadline"):
        claim_denials.appeal(store, "756049Q", actor="a", now=T0 + 400 * 86400.0, sender=sender)
    with pytest.raises(claim_denials.ClaimActionRefused, match="cannot happen"):
        claim_denials.appeal(store, "756048Q", actor="a", now=T0, sender=sender)
    policy = ClaimPolicy(settings=ClaimSettings(write_off_threshold=Decimal("60.00")))
    books = Books("s", demo_mappings(), FiscalCalendar())
    with pytest.raises(claim_denials.ClaimActionRefused, match="billing account"):
        claim_denials.request_write_off(
            store,
            "756049Q",
            amount=Decimal("50.00"),
            reason="r",
            requested_by="a",
            now=T0,
            policy=policy,
            books=books,
        )
    with pytest.raises(claim_denials.ClaimActionRefused, match="at most the charge"):
        claim_denials.request_write_off(
            store,
            "756049Q",
            amount=Decimal("50.01"),
            reason="r",
            requested_by="a",
            now=T0,
            policy=policy,
            books=books,
        )


def test_999_after_277ca_is_kept_as_a_fact(tmp_path: Path) -> None:
    store, _, clean = submitted(tmp_path)
    ca = (
        ISA + "GS*HN*C*H*20240101*1200*5*X*005010X214~ST*277*0001*005010X214~"
        "BHT*0085*08*B*20240101*1200*TH~HL*1**20*1~NM1*AY*2*CH*****46*1~HL*2*1*21*1~"
        "NM1*41*2*H*****46*2~HL*3*2*19*1~NM1*85*2*H*****XX*1234567893~HL*4*3*PT~"
        "NM1*QC*1*X*Y~TRN*2*756049Q~STC*A2:20*20240101*WQ*50~REF*1K*PC77~"
        "SE*14*0001~GE*1*5~IEA*1*000000123~"
    )
    claim_acks.apply_277(store, ca, now=T0 + 1, source="ca")
    ack = (
        ISA + "GS*FA*R*S*20240101*1200*9*X*005010X231A1~ST*999*0001*005010X231A1~"
        "AK1*HC*1*005010X223A3~AK2*837*0001*005010X223A3~IK5*A~AK9*A*1*1*1~"
        "SE*6*0001~GE*1*9~IEA*1*000000123~"
    )
    got = claim_acks.apply_999(store, ack, now=T0 + 2, source="999")
    assert got.claims == dict.fromkeys(clean, life.ACCEPTED)
    events = store.claim_events("756049Q")
    assert [e.kind for e in events][-2:] == ["ack_accepted", "ack"]
    assert events[-1].from_state == events[-1].to_state == life.ACCEPTED
    c = next(x for x in store.claim_states() if x.claim_key == "756049Q")
    assert c.payer_claim_id == "PC77"


def test_expected_allowed_by_payer_and_plan(tmp_path: Path) -> None:
    store = MemoryStore()
    claim_submission.submit_837(
        store,
        professional(),
        settings=ClaimSettings(),
        sender=FileSender(tmp_path),
        now=T0,
        source="f",
    )
    with store.transaction() as tx:
        claim = tx.get_claim_state("26463774")
    assert claim is not None
    prices = {
        "99213": Decimal("30"),
        "87070": Decimal("10"),
        "99214": Decimal("30"),
        "86663": Decimal("5"),
    }
    payer_only = ClaimPolicy(schedules={"999996666": FeeSchedule("USD", prices)})
    assert expected_allowed(claim, payer_only) == Decimal("75")
    by_plan = ClaimPolicy(
        schedules={
            "999996666": FeeSchedule("USD", prices),
            "999996666/2222-SJ": FeeSchedule("USD", {k: v * 2 for k, v in prices.items()}),
        }
    )
    assert expected_allowed(claim, by_plan) == Decimal("150")  # SBR03 names the plan
    missing = ClaimPolicy(schedules={"999996666": FeeSchedule("USD", {"99213": D40})})
    assert expected_allowed(claim, missing) is None  # a line not priced: no expectation
    assert expected_allowed(claim, ClaimPolicy()) is None


D40 = Decimal("40")
