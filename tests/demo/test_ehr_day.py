"""The simulated hospital day: valid HL7 where promised, realistic order, totals that add up."""

from __future__ import annotations

from collections import Counter, defaultdict
from datetime import date
from decimal import Decimal

import hl7
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from isthmus.demo.chart import demo_mappings
from isthmus.demo.ehr_day import (
    KINDS,
    MALFORMED_VARIANTS,
    SimMessage,
    corpus_like,
    expected_totals,
    hospital_day,
)
from isthmus.demo.ehr_segments import CHARGE_CODES, DEPARTMENTS, FAMILY_NAMES, GIVEN_NAMES

DAY = date(2026, 11, 2)
MAPPINGS = demo_mappings()
TYPES = {
    "register": {"ADT^A04^ADT_A01"},
    "admit": {"ADT^A01^ADT_A01"},
    "update": {"ADT^A08^ADT_A01"},
    "discharge": {"ADT^A03^ADT_A03"},
    "merge": {"ADT^A40^ADT_A39"},
    "bar": {"BAR^P01^BAR_P01"},
    "charge": {"DFT^P03^DFT_P03"},
    "credit": {"DFT^P03^DFT_P03"},
    "unmapped": {"DFT^P03^DFT_P03"},
    "unsupported": {"ORU^R01^ORU_R01", "SIU^S12^SIU_S12"},
}
# Per-unit price bounds by service line, as the brief asks for realism.
PRICE = {
    "Laboratory": (20, 200),
    "Imaging": (150, 1500),
    "Surgery": (5000, 40000),
    "Emergency": (50, 3000),
    "Pharmacy": (5, 80),
    "Cardiology": (50, 2500),
}


def parse(m: SimMessage) -> hl7.Message:
    return hl7.parse(m.raw.decode("utf-8"))


def fld(seg: hl7.Segment, n: int) -> str:
    """Field n as text; python-hl7 numbers MSH from MSH-1 too, so index n is field n."""
    return str(seg[n]) if len(seg) > n else ""


def money(value: str) -> Decimal:
    amount, currency = value.split("&")
    assert currency == "USD"
    assert Decimal(amount).as_tuple().exponent == -2
    return Decimal(amount)


@pytest.fixture(scope="module")
def day() -> list[SimMessage]:
    return hospital_day()


@pytest.fixture(scope="module")
def parsed(day: list[SimMessage]) -> list[tuple[SimMessage, hl7.Message | None]]:
    return [(m, None if m.kind == "malformed" else parse(m)) for m in day]


def test_every_wellformed_message_parses_with_the_promised_header(parsed):
    for m, msg in parsed:
        if msg is None:
            continue
        msh = msg.segment("MSH")
        assert fld(msh, 9) in TYPES[m.kind], m.kind
        assert fld(msh, 10) == m.control_id
        assert (fld(msh, 11), fld(msh, 12)) == ("P", "2.5.1")
        assert fld(msh, 4) in ("NORTH", "SOUTH")
        assert m.raw.endswith(b"\r") and b"\n" not in m.raw


def test_counts_per_kind_match_the_parameters(day):
    kinds = Counter(m.kind for m in day)
    assert len(day) == 2000
    assert (kinds["malformed"], kinds["unmapped"], kinds["unsupported"]) == (10, 8, 4)
    assert kinds["merge"] == 2
    assert set(kinds) <= set(KINDS)
    assert all(kinds[k] > 0 for k in KINDS)
    assert kinds["register"] + kinds["admit"] == kinds["bar"]


def test_other_parameters_are_honoured():
    msgs = hospital_day(
        messages=500,
        seed=3,
        malformed=3,
        unmapped=0,
        unsupported=7,
        facilities=("EAST",),
        control_prefix="EX",
        day=date(2027, 1, 5),
    )
    kinds = Counter(m.kind for m in msgs)
    assert (len(msgs), kinds["malformed"], kinds["unmapped"], kinds["unsupported"]) == (
        500,
        3,
        0,
        7,
    )
    for m in msgs:
        if m.control_id:
            assert m.control_id.startswith("EX")
        if m.kind != "malformed":
            msh = parse(m).segment("MSH")
            assert fld(msh, 4) == "EAST"
            assert fld(msh, 7).startswith("20270105")
            assert m.patient_key == "" or m.patient_key.startswith("EASTMRN|")


@pytest.mark.parametrize("seed", [1, 7, 42, 1234])
def test_charges_are_55_to_65_percent(seed):
    msgs = hospital_day(seed=seed)
    share = sum(m.kind == "charge" for m in msgs) / len(msgs)
    assert 0.55 <= share <= 0.65


def test_deterministic_per_seed_and_different_across_seeds(day):
    assert [m.raw for m in hospital_day()] == [m.raw for m in day]
    assert hospital_day() == day
    assert [m.raw for m in hospital_day(seed=8)] != [m.raw for m in day]


def test_control_ids_unique_and_timestamps_progress_through_the_day(parsed):
    ids = [m.control_id for m, _ in parsed if m.control_id]
    assert len(ids) == len(set(ids))
    missing = [m for m, _ in parsed if not m.control_id]
    assert missing and all(m.kind == "malformed" for m in missing)
    assert all(f"|{m.control_id}|".encode() in m.raw for m, _ in parsed if m.control_id)
    stamps = [fld(msg.segment("MSH"), 7) for _, msg in parsed if msg is not None]
    assert stamps == sorted(stamps)
    assert all(s.startswith("20261102") and len(s) == 14 for s in stamps)
    assert stamps[0] < "20261102060000" < "20261102180000" < stamps[-1]


def test_each_patient_events_come_in_a_sensible_order(day):
    seen: dict[str, list[str]] = defaultdict(list)
    for m in day:
        if m.patient_key and m.kind not in ("malformed", "merge"):
            seen[m.patient_key].append(m.kind)
    for key, kinds in seen.items():
        assert kinds[0] in ("register", "admit"), key
        assert kinds.count("register") + kinds.count("admit") == 1
        assert kinds.count("bar") == 1
        assert "charge" in kinds
        if "discharge" in kinds:
            assert kinds[-1] == "discharge" and kinds.count("discharge") == 1


def test_arrival_message_matches_patient_class_and_facility(parsed):
    for m, msg in parsed:
        if m.kind not in ("register", "admit", "bar", "charge"):
            continue
        facility = fld(msg.segment("MSH"), 4)
        pid, pv1 = msg.segment("PID"), msg.segment("PV1")
        mrn, _, _, auth, id_type = fld(pid, 3).split("^")
        assert (auth, id_type) == (f"{facility}MRN", "MR")
        assert m.patient_key == f"{auth}|{mrn}"
        assert str(pv1[3][0][3]) == facility
        assert fld(pv1, 19).endswith("^VN") and fld(pid, 18).endswith("^AN")
        assert fld(pid, 8) in ("F", "M") and len(fld(pid, 7)) == 8
        family, given = fld(pid, 5).split("^")[:2]
        assert family in FAMILY_NAMES and given in GIVEN_NAMES
        if m.kind in ("register", "admit"):
            assert (fld(pv1, 2) == "I") == (m.kind == "admit")
            assert fld(pv1, 2) in ("E", "O", "I")


def test_charge_lines_use_mapped_codes_departments_and_realistic_prices(parsed):
    service_dept = {line: dept for line, (dept, _) in DEPARTMENTS.items()}
    txns: list[str] = []
    for m, msg in parsed:
        if m.kind != "charge":
            continue
        total = Decimal(0)
        for seg in msg.segments("FT1"):
            txns.append(fld(seg, 2))
            assert fld(seg, 4) == "20261102" and fld(seg, 6) == "CG"
            code, _, system = fld(seg, 7).split("^")
            assert system in ("CPT", "HCPCS")
            assert code in MAPPINGS.charge_codes
            line = MAPPINGS.charge_codes[code].service_line
            dept = fld(seg, 13).split("^")[0]
            assert dept == service_dept[line] and dept in MAPPINGS.department_cost_center
            qty, ext, unit = int(fld(seg, 10)), money(fld(seg, 11)), money(fld(seg, 12))
            assert ext == unit * qty and qty >= 1
            low, high = PRICE[line]
            assert low <= unit <= high
            npi, _, _ = fld(seg, 20).split("^")
            assert len(npi) == 10 and npi.isdigit()
            total += ext
        assert total == m.amount > 0 and m.currency == "USD"
    assert len(txns) == len(set(txns))


def test_merges_move_a_duplicate_registered_and_charged_earlier(parsed):
    arrived: set[str] = set()
    charged: set[str] = set()
    merged: set[str] = set()
    merges = 0
    for m, msg in parsed:
        if m.kind == "malformed":
            continue
        assert m.patient_key not in merged, "the duplicate has no events after its merge"
        if m.kind in ("register", "admit"):
            arrived.add(m.patient_key)
        elif m.kind == "charge":
            charged.add(m.patient_key)
        elif m.kind == "merge":
            merges += 1
            mrn, _, _, auth, _ = fld(msg.segment("MRG"), 1).split("^")
            dup = f"{auth}|{mrn}"
            assert dup != m.patient_key and auth == m.patient_key.split("|")[0]
            assert dup in arrived and dup in charged
            assert m.patient_key in arrived
            survivor_pid = msg.segment("PID")
            assert fld(survivor_pid, 3).split("^")[0] == m.patient_key.split("|")[1]
            merged.add(dup)
    assert merges == 2


def test_credits_reverse_part_of_an_earlier_charge_of_the_same_patient(parsed):
    lines: dict[str, tuple[str, str, Decimal]] = {}
    credits = 0
    for m, msg in parsed:
        if m.kind == "charge":
            for seg in msg.segments("FT1"):
                lines[fld(seg, 2)] = (m.patient_key, fld(seg, 7), money(fld(seg, 11)))
        elif m.kind == "credit":
            credits += 1
            (seg,) = msg.segments("FT1")
            assert fld(seg, 6) == "CD"
            txn = fld(seg, 2)
            original = txn.removesuffix("-CR")
            assert original != txn and original in lines, "credit precedes its charge"
            key, code, amount = lines[original]
            credit = money(fld(seg, 11))
            assert (key, code) == (m.patient_key, fld(seg, 7))
            assert Decimal("0.01") <= credit <= amount
            assert credit == m.amount
    assert credits == 20


def test_expected_totals_agree_with_the_parsed_ft1_segments(parsed, day):
    charges, credits, unmapped = Decimal(0), Decimal(0), Decimal(0)
    for _, msg in parsed:
        if msg is None or fld(msg.segment("MSH"), 9) != "DFT^P03^DFT_P03":
            continue
        for seg in msg.segments("FT1"):
            code = fld(seg, 7).split("^")[0]
            amount = money(fld(seg, 11))
            if code not in MAPPINGS.charge_codes:
                unmapped += amount
            elif fld(seg, 6) == "CG":
                charges += amount
            else:
                credits += amount
    totals = expected_totals(day)
    assert totals["charges"] == {"USD": charges}
    assert totals["credits"] == {"USD": credits}
    assert totals["unmapped"] == {"USD": unmapped}
    assert totals["net"] == {"USD": charges - credits}
    assert totals["kinds"] == {k: sum(m.kind == k for m in day) for k in KINDS}
    assert totals["messages"] == 2000
    keys = {m.patient_key for m in day if m.kind in ("register", "admit")}
    assert totals["patients"] == len(keys)
    assert totals["patients_after_merge"] == len(keys) - 2


def _defect(m: SimMessage) -> str:
    """A small independent validator: why the hub must refuse this message, or ""."""
    text = m.raw.decode()
    if not text.startswith("MSH|^~\\&|"):
        return "no MSH"
    try:
        msg = hl7.parse(text)
    except Exception as exc:  # python-hl7 raises assorted errors on garbage
        return f"unparseable: {exc}"
    msh = msg.segment("MSH")
    if not fld(msh, 9) or not fld(msh, 10) or not fld(msh, 12):
        return "MSH incomplete"
    names = [str(s[0]) for s in msg]
    if "FT1" in names and names.index("FT1") < names.index("PID"):
        return "segment order"
    if not fld(msg.segment("PID"), 3):
        return "PID-3 empty"
    for seg in msg.segments("FT1"):
        try:
            money(fld(seg, 11))
            date(int(fld(seg, 4)[:4]), int(fld(seg, 4)[4:6]), int(fld(seg, 4)[6:8]))
        except (ValueError, ArithmeticError):
            return "FT1 value"
    return ""


def test_malformed_messages_are_varied_and_really_defective(day):
    bad = [m for m in day if m.kind == "malformed"]
    assert all(_defect(m) for m in bad)
    assert all(m.expect_ack in ("AE", "AR") for m in bad)
    assert {"AE", "AR"} == {m.expect_ack for m in bad}
    assert all(m.amount == 0 and m.currency == "" for m in bad)
    assert all(m.control_id == "" or m.control_id.startswith("SIM") for m in bad)
    assert len({_defect(m) for m in bad}) >= 5
    good = [m for m in day[:600] if m.kind in ("charge", "credit", "unmapped")]
    assert good and not any(_defect(m) for m in good)
    assert len(MALFORMED_VARIANTS) == 8


def test_other_kinds_expect_the_right_ack(day):
    for m in day:
        if m.kind == "unsupported":
            assert m.expect_ack == "AA" and m.amount == 0  # accepted and ignored
        elif m.kind != "malformed":
            assert m.expect_ack == "AA"
        if m.kind == "unmapped":
            assert b"|Z9999^" in m.raw and m.amount > 0


def test_ten_thousand_messages():
    msgs = hospital_day(messages=10_000, seed=11)
    kinds = Counter(m.kind for m in msgs)
    assert len(msgs) == 10_000
    assert (kinds["malformed"], kinds["unmapped"], kinds["unsupported"]) == (10, 8, 4)
    assert 0.55 <= kinds["charge"] / 10_000 <= 0.65
    ids = [m.control_id for m in msgs if m.control_id]
    assert len(ids) == len(set(ids))
    assert expected_totals(msgs)["charges"]["USD"] > 0


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    messages=st.integers(120, 1500),
    seed=st.integers(0, 2**32),
    malformed=st.integers(0, 12),
    unsupported=st.integers(0, 6),
)
def test_any_size_and_seed_keeps_the_counts_and_the_order(messages, seed, malformed, unsupported):
    msgs = hospital_day(messages=messages, seed=seed, malformed=malformed, unsupported=unsupported)
    kinds = Counter(m.kind for m in msgs)
    assert len(msgs) == messages
    assert (kinds["malformed"], kinds["unsupported"], kinds["unmapped"]) == (
        malformed,
        unsupported,
        8,
    )
    first: set[str] = set()
    for m in msgs:
        if m.kind in ("register", "admit"):
            first.add(m.patient_key)
        elif m.kind in ("charge", "credit", "bar", "discharge"):
            assert m.patient_key in first


def test_too_few_messages_or_bad_names_are_refused():
    with pytest.raises(ValueError, match="too few"):
        hospital_day(messages=30)
    with pytest.raises(ValueError, match="separator"):
        hospital_day(facilities=("NO|RTH",))
    with pytest.raises(ValueError):
        hospital_day(malformed=-1)


def test_every_price_table_code_is_in_the_demo_chart():
    assert {c.code for c in CHARGE_CODES} <= set(MAPPINGS.charge_codes)


def test_corpus_like_is_valid_mapped_charges_over_a_quarter_as_many_patients():
    raws = corpus_like(400, seed=5)
    assert len(raws) == 400 and raws == corpus_like(400, seed=5)
    ids, patients = set(), set()
    for raw in raws:
        msg = hl7.parse(raw.decode())
        msh = msg.segment("MSH")
        assert fld(msh, 9) == "DFT^P03^DFT_P03"
        ids.add(fld(msh, 10))
        patients.add(fld(msg.segment("PID"), 3))
        for seg in msg.segments("FT1"):
            assert fld(seg, 6) == "CG"
            assert fld(seg, 7).split("^")[0] in MAPPINGS.charge_codes
            assert money(fld(seg, 11)) > 0
    assert len(ids) == 400
    assert 50 <= len(patients) <= 100
