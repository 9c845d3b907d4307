"""The public sample moves of shared/corpora/hl7v2 (fhir-converter ADT-A41-01, ADT-A45-01,
ADT-A47-01), as they are, after lines on the identifiers they name: each is answered AA
and does what flows/merges.py says, and the ledger balances."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest

from isthmus.flows.accounts import account_token
from tests.flows.helpers import SECRET, Rig
from tests.flows.merges_rig import cells, line

CORPUS = Path("/work/shared/corpora/hl7v2/fhir-converter")


def sample(name: str) -> bytes:
    path = CORPUS / f"{name}.hl7"
    if not path.exists():
        pytest.skip(f"corpus file {path} is not on this machine")
    return path.read_bytes()


def tok(mrn: str, auth: str) -> str:
    return account_token(SECRET, f"{auth}|{mrn}")


def reclasses(rig: Rig) -> int:
    return sum("move: A/R reclass" in e.memo for e in rig.store.entries())


def test_corpus_a41_merges_the_account_inside_one_patient(rig: Rig) -> None:
    # PID-3 PATID1234 (test1), MRG-3 ACC1234 -> PID-18 4000776, PV1-19 40007716
    rig.ingest([line("CA1", "PATID1234", "ACC1234", "40007716", auth="test1")])
    rig.drain()
    (msg,) = rig.ingest([sample("ADT-A41-01")])
    rig.drain()
    assert (msg.status, msg.ack_code) == ("accepted", "AA")
    assert cells(rig.store, "4000776") == {"40007716": Decimal("100.00")}
    assert cells(rig.store, "ACC1234") == {} and reclasses(rig) == 0
    rig.ingest([line("CA2", "PATID1234", "ACC1234", "40007716", "5.00", auth="test1")])
    rig.drain()
    assert cells(rig.store, "4000776") == {"40007716": Decimal("105.00")}
    assert rig.balanced() and not rig.store.work_items("open")


def test_corpus_a45_moves_the_visit_and_its_ar_to_the_survivor(rig: Rig) -> None:
    # MRG-3 PACCT002 / MRG-5 5001 -> PID-18 PACCT110 of PATID1234 (ADT1); the visit's
    # lines were posted under another patient of the old account: they are reclassified
    rig.ingest(
        [
            line("CB1", "OTHER9", "PACCT002", "5001", auth="ADT1"),
            line("CB2", "OTHER9", "PACCT002", "5002", "30.00", auth="ADT1"),
        ]
    )
    rig.drain()
    (msg,) = rig.ingest([sample("ADT-A45-01")])
    rig.drain()
    assert (msg.status, msg.ack_code) == ("accepted", "AA")
    assert rig.ar() == {
        (tok("OTHER9", "ADT1"), "USD"): Decimal("30.00"),
        (tok("PATID1234", "ADT1"), "USD"): Decimal("100.00"),
    }
    assert cells(rig.store, "PACCT110") == {"5001": Decimal("100.00")}
    assert reclasses(rig) == 1 and rig.balanced()


def test_corpus_a47_changes_the_identifier_and_keeps_the_token(rig: Rig) -> None:
    # MRG-1 MR102 (BCBS) -> PID-3 MR101 (GOOD HEALTH HOSPITAL); PID-18 = MRG-3 PACCT101
    rig.ingest([line("CC1", "MR102", "PACCT101", "7001", auth="BCBS")])
    rig.drain()
    (msg,) = rig.ingest([sample("ADT-A47-01")])
    rig.drain()
    assert (msg.status, msg.ack_code) == ("accepted", "AA")
    rig.ingest([line("CC2", "MR101", "PACCT101", "7001", "20.00", auth="GOOD HEALTH HOSPITAL")])
    rig.drain()
    assert rig.ar() == {(tok("MR102", "BCBS"), "USD"): Decimal("120.00")}
    assert reclasses(rig) == 0 and rig.balanced()
