"""An 835 that does not balance (005010X221A1 1.10.2.1) is held: nothing of it posts, its
999 says where it is out, a `cash-posting` work item names the imbalance, and only a
person's release lets it post. A large file streamed a set at a time holds the same way."""

from __future__ import annotations

import re
from decimal import Decimal
from pathlib import Path

import pytest

from isthmus.config import load_settings
from isthmus.flows import file_intake, remit_holds
from isthmus.flows.file_intake import take_file
from isthmus.flows.relay import relay_unpublished
from isthmus.flows.workitems import ActionRefused, resolve
from isthmus.store.ports import HELD
from isthmus.store.sqlite import SqliteStore
from tests.flows.helpers import Rig, bar, charge
from tests.flows.remit.helpers import PATIENT_FAMILY, PATIENT_GIVEN, Clp, Remit, ingest_x12
from tests.formats.x12.x12_corpus import synthetic_835

ACCOUNT = "A500018"


def _open_account(rig: Rig) -> None:
    rig.ingest([bar("B1", "500018"), charge("D1", "500018", amount="800.00")])
    rig.drain()


def _cash(rig: Rig) -> Decimal:
    return sum(
        (ln.debit - ln.credit for ln in rig.store.journal_lines() if ln.account == "1010"),
        Decimal(0),
    )


def _claim(**kw: object) -> Clp:
    args: dict[str, object] = {
        "pcn": ACCOUNT,
        "paid": "450.00",
        "responsibility": "300.00",
        "cas": [("CO", "45", "50.00")],
        "line_cas": [("PR", "1", "300.00")],
    }
    args.update(kw)
    return Clp(**args)  # type: ignore[arg-type]


def test_bpr_out_of_balance_is_held_answered_and_queued(rig: Rig) -> None:
    _open_account(rig)
    before = rig.store.entries()
    intake = ingest_x12(rig, Remit([_claim()], bpr="999.99", trace="EFT77").build())
    assert intake.inbound.status == HELD and intake.unbalanced == ("0001",)
    ack = intake.ack.decode()
    # IK3 at the BPR (position 2 of the set, header: no loop), IK4 at BPR02 (782) with
    # I12 and a copy of the amount, the set accepted with errors noted: kept, not rejected
    assert "IK3*BPR*2**8~IK4*2*782*I12*999.99~IK5*E*I5~AK9*E*1*1*1~" in ack, ack
    assert intake.inbound.ack_code == "999-E"
    rig.drain()
    assert _cash(rig) == 0 and rig.store.entries() == before  # nothing posted
    [item] = [w for w in rig.store.work_items("open") if w.kind == "unbalanced_remittance"]
    assert item.queue == "cash-posting"
    assert "BPR02 999.99 != sum of CLP04 - sum of PLB; out by 549.99" in item.detail
    assert "TRN02 EFT77" in item.detail
    for phi in (PATIENT_FAMILY, PATIENT_GIVEN, ACCOUNT, "W99887766"):
        assert phi not in item.detail


def test_claim_out_of_balance_points_the_999_at_clp04(rig: Rig) -> None:
    _open_account(rig)
    raw = Remit([_claim()]).build().replace(b"CAS*CO*45*50.00", b"CAS*CO*45*40.00")
    intake = ingest_x12(rig, raw)
    assert intake.inbound.status == HELD
    assert "IK3*CLP*9*2100*8~IK4*4*782*I12*450.00~IK5*E*I5~" in intake.ack.decode()
    rig.drain()
    assert _cash(rig) == 0
    [item] = rig.store.work_items("open")
    assert "CLP03 800.00 - CLP04 450.00 != sum of CAS; out by 10.00" in item.detail


def test_release_posts_the_held_money_once_and_resolves_the_item(rig: Rig) -> None:
    _open_account(rig)
    intake = ingest_x12(rig, Remit([_claim()], bpr="449.00").build())
    rig.drain()
    assert _cash(rig) == 0
    cid = intake.inbound.control_id
    with pytest.raises(remit_holds.HoldError) as no_reason:
        remit_holds.release(rig.store, cid, actor="pat", reason="  ", now=5.0)
    assert no_reason.value.exit_code == 2
    done = remit_holds.release(
        rig.store, f"x12/{cid}", actor="pat", reason="payer confirmed by phone", now=5.0
    )
    assert done.events == 2  # the claim payment and the EFT
    relay_unpublished(rig.store, rig.bus)
    rig.drain()
    assert _cash(rig) == Decimal("450.00")
    [item] = [w for w in rig.store.work_items() if w.kind == "unbalanced_remittance"]
    assert (item.status, item.resolution) == (
        "resolved",
        "released by pat: payer confirmed by phone",
    )
    with pytest.raises(remit_holds.HoldError) as again:
        remit_holds.release(rig.store, cid, actor="pat", reason="again", now=6.0)
    assert again.value.exit_code == 4
    with pytest.raises(remit_holds.HoldError) as unknown:
        remit_holds.release(rig.store, "NOPE:1", actor="pat", reason="x", now=6.0)
    assert unknown.value.exit_code == 3
    ingest_x12(rig, Remit([_claim()], bpr="449.00").build())  # the same file again
    relay_unpublished(rig.store, rig.bus)
    rig.drain()
    assert _cash(rig) == Decimal("450.00")


def test_a_hold_is_not_resolved_as_a_generic_work_item(rig: Rig) -> None:
    ingest_x12(rig, Remit([_claim()], bpr="1.00").build())
    [item] = rig.store.work_items("open")
    with pytest.raises(ActionRefused, match="remits release"):
        resolve(rig.store, item.id, {}, "looks fine", 1.0)


def test_a_balanced_set_waits_with_the_unbalanced_one_of_its_interchange(rig: Rig) -> None:
    """The interchange is the unit of the hold: two sets, one out; nothing posts."""
    _open_account(rig)
    good = Remit([_claim()], st="0001").build().decode().split("~\n")
    bad = Remit([_claim(pcn="A2")], st="0002", bpr="1.00", trace="EFT2").build().decode()
    body = bad.split("~\n")[2:-3]  # ST..SE of the second set
    raw = ("~\n".join([*good[:-3], *body, "GE*2*1", good[-2], ""])).encode()
    intake = ingest_x12(rig, raw)
    assert intake.inbound.status == HELD and intake.unbalanced == ("0002",)
    ack = intake.ack.decode()
    assert "AK2*835*0001*005010X221A1~IK5*A~" in ack and "AK9*E*2*2*2~" in ack
    rig.drain()
    assert _cash(rig) == 0


def test_a_streamed_file_holds_its_unbalanced_set_alone(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(file_intake, "STREAM_OVER", 1000)
    settings = load_settings(None, data_dir=tmp_path / "data", env={})
    store = SqliteStore(tmp_path / "store.db")
    path = tmp_path / "big.835"
    data = b"".join(synthetic_835(3, 4))
    path.write_bytes(re.sub(rb"(ST\*835\*0002~BPR\*I\*)[0-9.]+", rb"\g<1>1.00", data))
    rows = take_file(store, settings, path, path.name, 1_800_000_000.0)
    assert [(r["control_id"], r["status"], r["ack"]) for r in rows] == [
        ("SENDER:000000123/7/0001", "accepted", "999-A"),
        ("SENDER:000000123/7/0002", HELD, "999-E"),
        ("SENDER:000000123/7/0003", "accepted", "999-A"),
    ]
    assert b"IK4*2*782*I12*1.00" in Path(rows[1]["ack_file"]).read_bytes()
    assert [m.control_id for m in store.unpublished(10)] == [
        "SENDER:000000123/7/0001",
        "SENDER:000000123/7/0003",
    ]
    [item] = store.work_items("open")
    assert item.event_id == "x12/SENDER:000000123/7/0002" and item.queue == "cash-posting"
    assert [h["control_id"] for h in remit_holds.held(store)] == ["SENDER:000000123/7/0002"]
