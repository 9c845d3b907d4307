"""System-of-record ownership: a write in a domain from a system that does not own it is
refused on every channel (HL7 over MLLP and in files, X12 files, FHIR), kept for
inspection, and allowed from the owner; with no [ownership] table everything passes."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from isthmus.api.http import build_app
from isthmus.app import Hub
from isthmus.config import ConfigError, load_settings
from isthmus.connectors.mllp_client import send_messages
from isthmus.flows.file_intake import take_file
from isthmus.flows.hl7_inbound import classify, decode_error
from isthmus.formats.hl7v2 import build_ack
from isthmus.governance import identity, ownership, rbac
from isthmus.runtime import start
from tests.flows.helpers import adt, charge
from tests.flows.remit.helpers import Clp, Remit

NOW = 1_700_000_000.0
OWNERS = '[ownership]\npatient = "EPIC"\nencounter = ["EPIC"]\nremittance = "PAYERX"\n'


def test_decide_is_open_without_owners_and_names_domain_and_owner() -> None:
    assert ownership.decide({}, ["patient"], ["ANY"]) is None
    owners = {"patient": frozenset({"EPIC"}), "claim": frozenset({"BILL", "PFS"})}
    assert ownership.decide(owners, ["charge", "account"], ["LAB"]) is None  # not governed
    assert ownership.decide(owners, ["patient"], ["OTHER", "EPIC"]) is None
    r = ownership.decide(owners, ["charge", "claim"], ["LAB"])
    assert r is not None and r.domain == "claim" and r.owners == ("BILL", "PFS")
    assert "LAB may not write claim data" in r.text and "BILL, PFS" in r.text
    assert ownership.decide(owners, ["patient"], ["", " "]) is not None


@pytest.mark.parametrize(
    ("table", "message"),
    [
        ('[ownership]\nwards = "EPIC"\n', "unknown data domain"),
        ("[ownership]\npatient = []\n", "non-empty list"),
        ("[ownership]\npatient = 3\n", "system name"),
    ],
)
def test_bad_ownership_tables_are_refused_at_load(tmp_path: Path, table: str, message: str) -> None:
    conf = tmp_path / "c.toml"
    conf.write_text(table)
    with pytest.raises(ConfigError, match=message):
        load_settings(conf, data_dir=tmp_path)


def _hl7_answer(raw: bytes, owners: ownership.Owners) -> tuple[str, str, bytes]:
    inbound, msg = classify(
        raw, channel="mllp", peer="t", now=NOW, tenant="default", currency="USD", owners=owners
    )
    ack = build_ack(msg, inbound.ack_code, error=decode_error(inbound.error), original=raw)
    return inbound.status, inbound.ack_code, ack


def test_hl7_from_a_non_owner_is_refused_with_an_err_segment() -> None:
    owners = {"patient": frozenset({"EPIC"})}
    status, code, ack = _hl7_answer(adt("OWN1", "M1"), owners)  # MSH-3 EHR, MSH-4 NORTH
    assert (status, code) == ("rejected", "AR")
    err = next(s for s in ack.split(b"\r") if s.startswith(b"ERR"))
    assert b"patient" in err and b"EPIC" in err and b"MSH^1^3" in err
    # the owner, by sending application or by facility
    assert _hl7_answer(adt("OWN2", "M1"), {"patient": frozenset({"EHR"})})[:2] == ("accepted", "AA")
    assert _hl7_answer(adt("OWN3", "M1"), {"patient": frozenset({"NORTH"})})[:2] == (
        "accepted",
        "AA",
    )
    # a domain nobody claims stays open: the charge passes, the ADT does not
    assert _hl7_answer(charge("OWN4", "M1"), owners)[0] == "accepted"


@pytest.fixture
def owned_hub(tmp_path: Path) -> Iterator[Hub]:
    conf = tmp_path / "hub.toml"
    conf.write_text(OWNERS)
    hub = Hub.open(load_settings(conf, data_dir=tmp_path / "data"))
    try:
        yield hub
    finally:
        hub.close()


def test_files_from_a_non_owner_are_rejected_with_the_reason(owned_hub: Hub) -> None:
    rows = take_file(owned_hub.store, owned_hub.settings, adt("FILE1", "M2"), "adt.hl7", NOW)
    assert rows[0]["status"] == "rejected" and "system of record for patient" in rows[0]["error"]
    remit = Remit([Clp("PCN1", "100.00")], sender="OTHERPAYER").build()
    [row] = take_file(owned_hub.store, owned_hub.settings, remit, "r.835", NOW)
    assert row["status"] == "rejected" and row["events"] == 0
    assert "OTHERPAYER may not write remittance data" in row["error"]
    kept = owned_hub.store.message_by_control_id("x12", row["control_id"])
    assert kept is not None and kept.status == "rejected" and kept.raw == remit
    ok = Remit([Clp("PCN2", "50.00")], icn=2, sender="PAYERX").build()
    [row] = take_file(owned_hub.store, owned_hub.settings, ok, "ok.835", NOW)
    assert row["status"] == "accepted" and row["events"] > 0


def test_without_an_ownership_table_everything_passes(tmp_path: Path) -> None:
    hub = Hub.open(load_settings(None, data_dir=tmp_path))
    try:
        assert hub.settings.ownership == {}
        remit = Remit([Clp("PCN3", "10.00")], sender="ANYONE").build()
        [row] = take_file(hub.store, hub.settings, remit, "r.835", NOW)
        assert row["status"] == "accepted"
    finally:
        hub.close()


def _token(hub: Hub, name: str, role: str = rbac.ENGINEER) -> str:
    p = identity.principal(name, "service", (role,), NOW)
    hub.governance.save_principal(p)
    issued = identity.issue(p, (role,), NOW)
    hub.governance.add_token(issued.token)
    return issued.clear


def _post(hub: Hub, token: str, path: str, body: dict[str, Any]) -> httpx.Response:
    async def go() -> httpx.Response:
        transport = httpx.ASGITransport(app=build_app(hub), client=("127.0.0.1", 5000))
        async with httpx.AsyncClient(transport=transport, base_url="http://hub") as c:
            return await c.post(
                path,
                content=json.dumps(body).encode(),
                headers={
                    "Authorization": f"Bearer {token}",
                    "Content-Type": "application/fhir+json",
                },
            )

    return asyncio.run(go())


PATIENT = {
    "resourceType": "Patient",
    "id": "own-p1",
    "gender": "female",
    "identifier": [
        {"type": {"coding": [{"code": "MR"}]}, "system": "urn:mrn", "value": "MRN-OWN-1"}
    ],
}


def test_fhir_writes_from_a_non_owner_are_403_outcomes_and_kept(owned_hub: Hub) -> None:
    admin = identity.principal("root", "user", (rbac.ADMIN,), NOW)
    assert owned_hub.governance.initialize(admin, identity.issue(admin, (rbac.ADMIN,), NOW).token)
    other, epic = _token(owned_hub, "lab-feed"), _token(owned_hub, "EPIC")
    before = owned_hub.store.counts()["rejected"]
    r = _post(owned_hub, other, "/fhir/Patient", PATIENT)
    assert r.status_code == 403 and r.headers["content-type"] == "application/fhir+json"
    issue = r.json()["issue"][0]
    assert issue["code"] == "forbidden" and issue["expression"] == ["patient"]
    assert "lab-feed may not write patient data" in issue["diagnostics"]
    assert "EPIC" in issue["diagnostics"]
    bundle = {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            {
                "fullUrl": "urn:uuid:1",
                "resource": PATIENT,
                "request": {"method": "POST", "url": "Patient"},
            }
        ],
    }
    assert _post(owned_hub, other, "/fhir", bundle).status_code == 403
    assert owned_hub.store.counts()["rejected"] == before + 2
    assert owned_hub.store.message_by_control_id("fhir", "Patient/own-p1") is None
    assert owned_hub.governance.audit_rows(after=0)[-1].event.action == "fhir.refused"
    assert _post(owned_hub, epic, "/fhir/Patient", PATIENT).status_code == 201


def test_the_mllp_listener_applies_the_ownership_table(owned_hub: Hub) -> None:
    async def go() -> list[bytes]:
        run = await start(owned_hub, role="listener", mllp_port=0)
        try:
            assert run.mllp is not None
            report = await send_messages(
                "127.0.0.1", run.mllp.port, [adt("MLLP-OWN1", "M5"), charge("MLLP-OWN2", "M5")]
            )
            return list(report.acks)
        finally:
            await run.stop()

    refused, taken = asyncio.run(go())
    assert b"MSA|AR|MLLP-OWN1" in refused and b"ERR|" in refused
    assert b"EHR/NORTH may not write patient data" in refused
    assert b"MSA|AA|MLLP-OWN2" in taken  # charges are not owned: open
    kept = owned_hub.store.message_by_control_id("mllp", "EHR^NORTH:MLLP-OWN1")
    assert kept is not None and kept.status == "rejected"


def test_fhir_files_are_judged_by_their_meta_source(owned_hub: Hub) -> None:
    def bundle(source: str, pid: str) -> bytes:
        patient = {**PATIENT, "id": pid}
        return json.dumps(
            {
                "resourceType": "Bundle",
                "type": "transaction",
                "meta": {"source": source},
                "entry": [
                    {
                        "fullUrl": f"urn:uuid:{pid}",
                        "resource": patient,
                        "request": {"method": "PUT", "url": f"Patient/{pid}"},
                    }
                ],
            }
        ).encode()

    before = owned_hub.store.counts()["rejected"]
    [row] = take_file(
        owned_hub.store, owned_hub.settings, bundle("lab-system", "fp1"), "lab.json", NOW
    )
    assert row["status"] == "rejected" and "lab-system may not write patient" in row["error"]
    assert owned_hub.store.counts()["rejected"] == before + 1  # kept for inspection
    assert owned_hub.store.message_by_control_id("fhir", "Patient/fp1") is None
    [row] = take_file(owned_hub.store, owned_hub.settings, bundle("EPIC", "fp2"), "epic.json", NOW)
    assert row["status"] == "accepted", row
    assert owned_hub.store.message_by_control_id("fhir", "Patient/fp2") is not None
    assert ownership.fhir_write(b"not json") == ownership.FhirWrite((), "")
