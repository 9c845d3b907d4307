"""A refund end to end, over real HTTP, with segregation of duties.

`isthmus serve` runs as a subprocess on free ports. The EHR opens a billing account
(BAR^P01) and sends a 900.00 credit (DFT^P03, FT1-6 CD) over MLLP, so the account holds a
credit balance. Then, with tokens made by `isthmus init` / `tokens create`:
alice (revenue-cycle and finance-approver) asks for 750.00, above the 500.00 threshold;
she cannot approve her own refund (403, segregation of duties); rita (revenue-cycle only)
cannot approve at all (403, role); bob (finance-approver) approves and it posts
DR A/R 1200 / CR refunds payable 2100. The ERP batch written at shutdown carries it, the
lineage walks from the request to the batch lines, the audit trail names alice and bob,
and `isthmus audit verify` passes.
"""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx

from isthmus.connectors.mllp_client import send_messages_sync
from tests.e2e.conftest import ServeFactory
from tests.e2e.helpers import HOST, Serve, isthmus, isthmus_json, msa_of

PID = (
    "PID|1||M0000077^^^NORTHMRN^MR||TESTER^PAT^^^^^L||19800101|F|||1 MAIN ST^^ISTHMUS "
    "CITY^WI^53700^USA||555-0100|||||A0000077^^^NORTH^AN"
)
PV1 = "PV1|1|O|OPC^1^A^NORTH|R|||1000000001^VANTERPOOL^ROBIN|||MED|||||||||V0000077^^^NORTH^VN"


def _msg(*segs: str) -> bytes:
    return ("\r".join(segs) + "\r").encode()


BAR = _msg(
    "MSH|^~\\&|SIMEHR|NORTH|ISTHMUS|HUB|20261102080000||BAR^P01^BAR_P01|RF-BAR-1|P|2.5.1",
    "EVN|P01|20261102080000",
    PID,
    PV1,
)
CREDIT = _msg(
    "MSH|^~\\&|SIMEHR|NORTH|ISTHMUS|HUB|20261102090000||DFT^P03^DFT_P03|RF-CD-1|P|2.5.1",
    "EVN|P03|20261102090000",
    PID,
    PV1,
    "FT1|1|TRF-CD-1||20261102|20261102|CD|80053^PANEL^CPT|||1|900.00&USD|"
    "900.00&USD|LAB^DEPT|||||||1000000001^VANTERPOOL^ROBIN",
)


def _token(data_dir: Path, admin: str, principal: str, *roles: str) -> str:
    args = ["tokens", "create", "--principal", principal]
    for r in roles:
        args += ["--role", r]
    res = isthmus(*args, "--json", data_dir=data_dir, env={"ISTHMUS_TOKEN": admin})
    assert res.returncode == 0, res.stderr
    return str(json.loads(res.stdout)["token"])


def _as(hub: Serve, token: str, method: str, path: str, body: Any = None) -> httpx.Response:
    return httpx.request(
        method,
        f"http://{HOST}:{hub.http_port}{path}",
        json=body,
        headers={"Authorization": f"Bearer {token}"},
        timeout=15.0,
    )


def test_refund_with_segregation_of_duties_over_http(serve_factory: ServeFactory) -> None:
    hub = serve_factory()
    acks = send_messages_sync(HOST, hub.mllp_port, [BAR, CREDIT], timeout_s=15)
    assert [msa_of(a)[0] for a in acks.acks if a is not None] == ["AA", "AA"]
    hub.wait_idle()
    admin = str(isthmus_json("init", data_dir=hub.data_dir)["token"])
    alice = _token(hub.data_dir, admin, "alice", "revenue-cycle", "finance-approver")
    rita = _token(hub.data_dir, admin, "rita", "revenue-cycle")
    bob = _token(hub.data_dir, admin, "bob", "finance-approver")

    ask = {
        "account": "A0000077",
        "amount": "750.00",
        "currency": "USD",
        "reason": "overpaid visit",
        "idempotency_key": "e2e-1",
    }
    r = _as(hub, alice, "POST", "/api/v1/refunds", ask)
    assert r.status_code == 201, r.text
    refund = r.json()
    rid = refund["id"]
    assert (refund["status"], refund["requested_by"]) == ("pending", "alice")
    again = _as(hub, alice, "POST", "/api/v1/refunds", ask)
    assert (again.status_code, again.json()["id"], again.json()["replayed"]) == (200, rid, True)
    over = _as(hub, alice, "POST", "/api/v1/refunds", {**ask, "idempotency_key": "e2e-2"})
    assert over.status_code == 409 and over.json()["error"] == "duplicate_request"
    bad = _as(
        hub,
        alice,
        "POST",
        "/api/v1/refunds",
        {**ask, "amount": "12.345", "idempotency_key": "e2e-3"},
    )
    assert (bad.status_code, bad.json()["field"]) == (400, "amount")

    own = _as(hub, alice, "POST", f"/api/v1/refunds/{rid}/approve")
    assert own.status_code == 403, own.text
    assert own.json()["error"] == "segregation_of_duties"
    assert own.json()["reason"].startswith("segregation of duties")
    role = _as(hub, rita, "POST", f"/api/v1/refunds/{rid}/approve")
    assert role.status_code == 403 and role.json()["error"] == "forbidden"
    pending = _as(hub, bob, "GET", "/api/v1/refunds?status=pending").json()
    assert [p["id"] for p in pending["refunds"]] == [rid] and pending["next"] is None

    ok = _as(hub, bob, "POST", f"/api/v1/refunds/{rid}/approve", {"note": "checked EOB"})
    assert ok.status_code == 200, ok.text
    assert (ok.json()["status"], ok.json()["decided_by"]) == ("posted", "bob")
    retry = _as(hub, bob, "POST", f"/api/v1/refunds/{rid}/approve")
    assert (retry.status_code, retry.json()["replayed"]) == (200, True)
    assert _as(hub, bob, "GET", f"/api/v1/refunds/{rid}").json()["entry_key"] == f"refund/{rid}"

    journal = isthmus_json("ledger", "journal", "--limit", "1000", data_dir=hub.data_dir)
    [entry] = [e for e in journal if e["entry_key"] == f"refund/{rid}"]
    assert [(ln[0], ln[1], ln[2]) for ln in entry["lines"]] == [
        ("1200", "750.00", "0.00"),
        ("2100", "0.00", "750.00"),
    ]
    assert hub.stop() == 0  # seals and exports the ERP batches on the way out

    files = sorted((hub.data_dir / "exports" / "erp").glob("JB-refunds-*"))
    assert [f.suffix for f in files] == [".csv", ".jsonl"], files
    exported = files[1].read_text()
    assert f"refund/{rid}" in exported and "2100" in exported
    assert "TESTER" not in exported and "M0000077" not in exported  # no PHI leaves
    lineage = isthmus_json("messages", "show", f"refunds/{rid}", data_dir=hub.data_dir)
    [traced] = lineage["journal_entries"]
    assert traced["batch_id"].startswith("JB-refunds-") and traced["batch_lines"]
    assert Decimal(sum(Decimal(b["credit"]) for b in traced["batch_lines"])) == Decimal("750")

    rows = isthmus_json("audit", "list", "--limit", "500", data_dir=hub.data_dir)
    refund_rows = [
        (x["actor"], x["action"], x["outcome"])
        for x in rows
        if x["action"].startswith("refund.") and x["target"] == rid
    ]
    assert ("alice", "refund.request", "ok") in refund_rows
    assert ("alice", "refund.approve", "denied") in refund_rows
    assert ("bob", "refund.approve", "ok") in refund_rows
    verified = isthmus("audit", "verify", data_dir=hub.data_dir)
    assert verified.returncode == 0 and "verified" in verified.stdout, verified.stdout
