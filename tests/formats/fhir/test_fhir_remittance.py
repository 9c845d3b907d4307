"""FHIR payer answers (EOB, ClaimResponse, PaymentReconciliation) -> 835-shaped events."""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal

import msgspec
from hypothesis import given
from hypothesis import strategies as st
from tests.formats.fhir.fhir_corpus import CORPUS, SYNTHEA, load_json, require_corpus

from isthmus.formats.fhir import Claim, decode_resource
from isthmus.formats.fhir.events import events_of
from isthmus.formats.fhir.remittance import cents
from isthmus.model import ClaimRemitted, PatientRef, ProviderAdjusted, RemitAdjustment
from isthmus.model.events import RemittancePaid

EXAMPLES = CORPUS / "examples"
_NUMBERS = msgspec.json.Encoder(decimal_format="number")


def _events(name: str, claims: dict[str, Claim] | None = None) -> list[object]:
    _, res = decode_resource((EXAMPLES / name).read_bytes())
    return [
        ev
        for _, ev in events_of(
            res, lambda ref: PatientRef(ref.split("/")[-1], "urn:test"), (claims or {}).get
        )
    ]


def test_claim_response_posts_payment_and_copay_as_patient_responsibility() -> None:
    [ev] = _events("ClaimResponse-R3500.json")
    assert isinstance(ev, ClaimRemitted)
    assert ev.paid == Decimal("100.47") and ev.charge == Decimal("135.57")
    assert ev.adjustments == (RemitAdjustment("PR", "3", Decimal("10.00")),)
    assert ev.patient_responsibility == Decimal("10.00")
    assert ev.trace_number == "201408-2-1569478"  # payment.identifier: the EFT trace
    assert ev.patient_control_number == "15476332402"  # ClaimResponse.request URL id
    assert ev.claim_status == "1" and ev.remarks == ("ar002",)
    assert ev.facility == "1" and ev.patient == PatientRef("1", "urn:test")
    assert ev.payer_id == "555123"  # insurer.identifier


def test_payment_adjustment_is_a_plb_and_cash_equals_payment_amount() -> None:
    claim, plb = _events("ClaimResponse-R3502.json")
    assert isinstance(claim, ClaimRemitted) and isinstance(plb, ProviderAdjusted)
    # payment.amount 107 = benefit 182 - adjustment 75 (prior overpayment, a002)
    assert claim.paid == Decimal("182.00") and plb.amount == Decimal("75.00")
    assert plb.reason == "a002" and claim.paid - plb.amount == Decimal("107.00")
    assert claim.patient_control_number == "6612346"  # request.identifier.value


def test_error_outcomes_are_denials_and_preauthorizations_move_no_money() -> None:
    [denied] = _events("ClaimResponse-R3501.json")
    assert isinstance(denied, ClaimRemitted)
    assert denied.claim_status == "4" and denied.paid == 0 and denied.remarks == ("a002",)
    # EB3501 (outcome error) names ClaimResponse/R3500: that one decides; on its own, the
    # EOB is a denial
    assert _events("ExplanationOfBenefit-EB3501.json") == []
    doc = load_json(EXAMPLES / "ExplanationOfBenefit-EB3501.json")
    del doc["claimResponse"]
    [(key, eob)] = events_of(decode_resource(_NUMBERS.encode(doc))[1], lambda _: None)
    assert isinstance(eob, ClaimRemitted) and eob.claim_status == "4" and eob.paid == 0
    assert eob.charge == Decimal("2478.57") and key == "remit|100150"
    assert _events("ClaimResponse-UR3503.json") == []  # use = preauthorization
    # EB3500 names ClaimResponse/R3500, which posts the money: the EOB is its copy
    assert _events("ExplanationOfBenefit-EB3500.json") == []
    assert _events("PaymentNotice-77654.json") == []


def test_eob_claim_reference_resolves_to_the_registered_claim_number() -> None:
    _, claim = decode_resource((EXAMPLES / "Claim-100150.json").read_bytes())
    assert isinstance(claim, Claim)
    [ev] = _events("ClaimResponse-R3501.json", {"Claim/100156": claim})
    assert isinstance(ev, ClaimRemitted)
    assert ev.patient_control_number == "12345"  # Claim.identifier[0].value


def test_payment_reconciliation_is_the_835_bpr_trn() -> None:
    [(key, ev)] = events_of(
        decode_resource((EXAMPLES / "PaymentReconciliation-ER2500.json").read_bytes())[1],
        lambda _: None,
    )
    assert isinstance(ev, RemittancePaid)
    assert (ev.trace_number, ev.amount, ev.currency) == ("10-12345", Decimal("7000.00"), "USD")
    assert key == "deposit|10-12345" and str(ev.payment_date) == "2014-08-01"


def test_every_synthea_eob_pays_its_payment_amount_rounded_to_the_cent() -> None:
    require_corpus()
    n = 0
    for path in SYNTHEA:
        doc = load_json(path)
        for e in doc["entry"]:
            r = e["resource"]
            if r["resourceType"] != "ExplanationOfBenefit":
                continue
            r["patient"]["reference"] = "Patient/" + r["patient"]["reference"][9:]  # urn:uuid:
            raw = _NUMBERS.encode(r)
            _, eob = decode_resource(raw)
            evs = [ev for _, ev in events_of(eob, lambda ref: PatientRef(ref, "urn:t"))]
            [ev] = evs
            assert isinstance(ev, ClaimRemitted)
            want = Decimal(str(r["payment"]["amount"]["value"])).quantize(
                Decimal("0.01"), ROUND_HALF_UP
            )
            assert ev.paid == want and ev.claim_status == "1"
            assert ev.patient is not None and ev.patient.mrn == r["patient"]["reference"]
            coins = sum(
                (
                    Decimal(str(a["amount"]["value"]))
                    for i in r.get("item", [])
                    for a in i.get("adjudication", [])
                    if a["category"]["coding"][0]["code"].endswith("line_coinsrnc_amt")
                ),
                Decimal(0),
            )
            assert ev.patient_responsibility >= coins.quantize(
                Decimal("0.01"), ROUND_HALF_UP
            ) - Decimal("0.01")
            n += 1
    assert n == 398


@given(st.decimals(min_value=Decimal("-1e9"), max_value=Decimal("1e9"), allow_nan=False, places=6))
def test_cents_is_within_half_a_cent_and_on_the_cent(value: Decimal) -> None:
    c = cents(value, "USD")
    assert c.as_tuple().exponent == -2
    assert abs(c - value) <= Decimal("0.005")
    assert cents(value, "JPY").as_tuple().exponent == 0


_amount = st.decimals(
    min_value=Decimal("-99999"),
    max_value=Decimal("99999"),
    allow_nan=False,
    allow_infinity=False,
    places=4,
)
_category = st.sampled_from(
    [
        "submitted",
        "eligible",
        "copay",
        "deductible",
        "benefit",
        "https://bluebutton.cms.gov/resources/variables/line_coinsrnc_amt",
        "eligpercent",
        "tax",
    ]
)


@given(
    payment=st.none() | _amount,
    adjustment=st.none() | _amount,
    outcome=st.sampled_from(["complete", "partial", "error", "queued"]),
    items=st.lists(st.lists(st.tuples(_category, _amount), max_size=6), max_size=4),
    currency=st.sampled_from(["USD", "JPY", "EUR"]),
)
def test_any_eob_maps_to_postable_835_amounts(
    payment: Decimal | None,
    adjustment: Decimal | None,
    outcome: str,
    items: list[list[tuple[str, Decimal]]],
    currency: str,
) -> None:
    """Whatever the adjudication says, the event carries amounts a ledger can post (on the
    currency's minor unit), cash (paid - PLB) is payment.amount, a denial pays nothing."""
    pay: dict[str, object] = {}
    if payment is not None:
        pay["amount"] = {"value": payment, "currency": currency}
    if adjustment is not None:
        pay["adjustment"] = {"value": adjustment, "currency": currency}
    doc = {
        "resourceType": "ExplanationOfBenefit",
        "id": "e1",
        "status": "active",
        "use": "claim",
        "outcome": outcome,
        "patient": {"reference": "Patient/p"},
        "claim": {"reference": "Claim/c1"},
        "payment": pay,
        "total": [
            {
                "category": {"coding": [{"code": "submitted"}]},
                "amount": {"value": Decimal(100), "currency": currency},
            }
        ],
        "item": [
            {
                "sequence": i + 1,
                "adjudication": [
                    {
                        "category": {"coding": [{"code": c}]},
                        "amount": {"value": v, "currency": currency},
                    }
                    for c, v in adj
                ],
            }
            for i, adj in enumerate(items)
        ],
    }
    _, eob = decode_resource(_NUMBERS.encode(doc))
    evs = [ev for _, ev in events_of(eob, lambda ref: PatientRef(ref, "urn:t"))]
    if outcome == "queued" or (payment is None and outcome != "error"):
        assert evs == []
        return
    claim = evs[0]
    assert isinstance(claim, ClaimRemitted) and claim.patient_control_number == "c1"
    exp = -2 if currency != "JPY" else 0
    for amount in (claim.paid, claim.charge, *(a.amount for a in claim.adjustments)):
        assert amount.as_tuple().exponent == exp
    if outcome == "error":
        assert claim.claim_status == "4" and claim.paid == 0 and claim.adjustments == ()
        return
    plb = sum((e.amount for e in evs[1:] if isinstance(e, ProviderAdjusted)), Decimal(0))
    assert payment is not None
    unit = Decimal(1).scaleb(exp)  # two roundings, half a unit each
    assert abs(claim.paid - plb - payment) <= unit
