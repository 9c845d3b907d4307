"""The generated hospital week: the same bytes for the same seed, invented people only,
every event of the README's table, messages any HL7 reader can read."""

from __future__ import annotations

import hl7

from isthmus.demo.ehr_segments import FAMILY_NAMES, GIVEN_NAMES
from isthmus.demo.hospital_week import DAYS, VERSIONS, hospital_week
from tests.e2e.week_model import README_EVENTS


def test_same_seed_same_bytes_other_seed_other_amounts() -> None:
    a, b, c = hospital_week(15), hospital_week(15), hospital_week(16)
    assert [m.raw for m in a] == [m.raw for m in b]
    assert [m.fact.event for m in a] == [m.fact.event for m in c]
    assert [m.raw for m in a] != [m.raw for m in c]


def test_every_event_of_the_table_merges_last() -> None:
    week = hospital_week()
    events = {m.fact.event for m in week}
    assert events - {"ORU^R01", "SIU^S12"} == README_EVENTS
    first = next(i for i, m in enumerate(week) if m.fact.prior is not None)
    end = week[first:]  # Sunday evening: merges and moves, with late lines between them
    assert all(m.day == DAYS - 1 for m in end)
    assert all(m.fact.prior is not None or m.fact.event == "DFT^P03" for m in end)
    assert {m.fact.event for m in end if m.fact.prior is not None} == {
        f"ADT^A{n}" for n in (40, 41, 42, 44, 45, 47, 49, 50, 51)
    }
    assert {ln.ttype for m in week for ln in m.fact.lines} == {"CG", "CD", "PY", "AJ"}
    assert [m.day for m in week] == sorted(m.day for m in week)
    assert {m.day for m in week} == set(range(DAYS))
    assert [m.at for m in week] == sorted(m.at for m in week)


def test_messages_parse_and_say_what_their_fact_says() -> None:
    week = hospital_week()
    assert len({m.control_id for m in week}) == len(week)
    assert {m.version for m in week} == set(VERSIONS)
    for m in week:
        msg = hl7.parse(m.raw.decode())
        assert str(msg.segment("MSH")[9]) == m.fact.event
        assert str(msg.segment("MSH")[10]) == m.control_id
        names = [str(s[0]) for s in msg]
        assert names.count("FT1") == len(m.fact.lines)
        assert names.count("IN1") == names.count("IN2") == len(m.fact.payers)
        assert names.count("DG1") == len(m.fact.diagnoses)
        assert names.count("PR1") == len(m.fact.procedures)
        if m.fact.person is not None:
            pid = msg.segment("PID")
            assert str(pid[3][0][0]) == m.fact.person.mrn
            assert str(pid[5][0][0]) in FAMILY_NAMES and str(pid[5][0][1]) in GIVEN_NAMES
    assert any(b"\rZPV|" in m.raw for m in week)  # a site's Z-segment, tolerated


def test_a_swap_names_two_patients_and_their_new_units() -> None:
    [swap] = [m for m in hospital_week() if m.fact.event == "ADT^A17"]
    msg = hl7.parse(swap.raw.decode())
    assert swap.fact.other is not None
    units = [str(s[3][0][0]) for s in msg if str(s[0]) == "PV1"]
    assert units == [swap.fact.unit, swap.fact.other[1]]


def test_merges_name_prior_identifiers_and_a_resend_repeats_one() -> None:
    week = hospital_week()
    for m in week:
        msg = hl7.parse(m.raw.decode())
        mrg = [str(s).split("|") + [""] * 6 for s in msg if str(s[0]) == "MRG"]
        assert len(mrg) == (m.fact.prior is not None)
        if m.fact.prior is not None and m.fact.person is not None:
            first_components = [mrg[0][n].split("^")[0] for n in (1, 3, 5)]
            prior = m.fact.prior
            assert first_components == [prior.mrn, prior.account, prior.visit]
            assert str(msg.segment("PID")[18]).split("^")[0] == m.fact.person.account
    [i] = [i for i, m in enumerate(week) if m.fact.resent]
    first, again = week[i - 1], week[i]
    assert (first.at, first.fact.event) == (again.at, again.fact.event)
    assert first.control_id != again.control_id
    assert first.raw.replace(first.control_id.encode(), b"") == again.raw.replace(
        again.control_id.encode(), b""
    )
