"""270 from an account's coverage (IN1), 271 kept on the account, inactive + scheduled ->
a registration work item; on the flow rig with its real SQLite store."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from isthmus.config import ClaimSettings
from isthmus.connectors.claim_files import FileSender
from isthmus.flows.claim_eligibility import apply_271, eligibility_of, request_eligibility
from isthmus.formats.x12.eligibility import parse_270
from isthmus.formats.x12.remittance import Party
from tests.flows.helpers import Rig, hl7, make_rig, msh, pid, pv1
from tests.formats.x12.x12_corpus import ISA

T0 = 1_800_000_000.0
PROVIDER = Party(name="NORTH HOSPITAL", id_qualifier="XX", id="1234567893", npi="1234567893")


@pytest.fixture
def rig(tmp_path: Path) -> Iterator[Rig]:
    r = make_rig(tmp_path)
    yield r
    r.store.close()


def bar(mrn: str, account: str, in1: str = "") -> bytes:
    segs = [
        msh(f"B{mrn}", "BAR^P01^BAR_P01"),
        "EVN|P01|20261102101500",
        pid(mrn, account=account, family="DOE", given="JANE"),
        pv1("V" + mrn),
    ]
    return hl7(*segs, *([in1] if in1 else []))


def answer(trace_active: str, trace_inactive: str) -> str:
    body = [
        "ST*271*0001*005010X279A1",
        "BHT*0022*11*R1*20270115*0900",
        "HL*1**20*1",
        "NM1*PR*2*TRICARE*****PI*99999",
        "HL*2*1*21*1",
        "NM1*1P*2*NORTH HOSPITAL*****XX*1234567893",
        "HL*3*2*22*0",
        f"TRN*2*{trace_active}*9NORTHHOSP",
        "NM1*IL*1*DOE*JANE****MI*M1",
        "EB*1**30**GOLD PLAN",
        "EB*B**98*HM*GOLD PLAN*27*25.00*****Y",
        "EB*C**30*HM*GOLD PLAN*29*300.00*****Y",
        "EB*G**30*HM*GOLD PLAN*29*1800.00*****Y",
        "HL*4*2*22*0",
        f"TRN*2*{trace_inactive}*9NORTHHOSP",
        "NM1*IL*1*DOE*JOHN****MI*M2",
        "EB*6**30",
    ]
    body.append(f"SE*{len(body) + 1}*0001")
    return (
        ISA
        + "GS*HB*TRICARE*NORTHHOSP*20270115*0900*5*X*005010X279A1~"
        + "~".join(body)
        + "~GE*1*5~IEA*1*000000123~"
    )


def test_270_out_271_kept_inactive_scheduled_opens_registration_item(
    rig: Rig, tmp_path: Path
) -> None:
    rig.ingest(
        [
            bar("700010", "ACC10", "IN1|1|GOLD|99999|TRICARE"),
            bar("700011", "ACC11", "IN1|1|GOLD|99999|TRICARE"),
            bar("700012", "ACC12"),
        ]
    )
    rig.drain()
    out = tmp_path / "out"
    asked = request_eligibility(
        rig.store,
        ["ACC10", "ACC11", "ACC12"],
        settings=ClaimSettings(sender_id="NORTHHOSP"),
        sender=FileSender(out),
        provider=PROVIDER,
        now=T0,
        member_ids={"ACC10": "M1"},
    )
    assert asked.skipped == {"ACC12": "no coverage recorded"}
    assert sorted(asked.traces.values()) == ["ACC10", "ACC11"]
    batch = parse_270((out / asked.sent).read_bytes())
    assert batch.findings == ()
    got = {r.trace: (r.payer.id, r.subscriber.last, r.subscriber.id) for r in batch.requests}
    assert got == {
        t: ("99999", "DOE", "M1" if a == "ACC10" else "ACC11") for t, a in asked.traces.items()
    }

    by_account = {a: t for t, a in asked.traces.items()}
    status = apply_271(
        rig.store,
        answer(by_account["ACC10"], by_account["ACC11"]),
        now=T0 + 60,
        source="271-1",
        scheduled={"ACC11"},
    )
    assert status == {"ACC10": "active", "ACC11": "inactive"}
    kept = eligibility_of(rig.store, "ACC10")
    assert (
        kept["status"],
        kept["plan"],
        kept["copay"],
        kept["deductible_remaining"],
        kept["out_of_pocket_remaining"],
    ) == ("active", "GOLD PLAN", "25.00", "300.00", "1800.00")
    items = [(w.queue, w.kind, w.key) for w in rig.store.work_items(status="open")]
    assert items == [("registration", "eligibility_inactive", "ACC11")]
    assert "DOE" not in rig.store.work_items()[0].detail
    assert eligibility_of(rig.store, "ACC12") == {}
