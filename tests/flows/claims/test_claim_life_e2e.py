"""The claim's whole life, end to end on the flow rig (SQLite store, worker, processor):
claims in, edits, 837 out to a real SFTP server (OpenSSH on loopback), 999 and 277CA back,
a 276/277 round, an 835 that pays one claim, underpays one and denies one; the denied one
appealed and paid, the underpaid one written off with a second approver; claim states and
the ledger asserted at each step."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from decimal import Decimal
from pathlib import Path
from urllib.parse import urlparse

import pytest

from isthmus.config import ClaimSettings
from isthmus.connectors.claim_files import SftpSender
from isthmus.flows import (
    claim_acks,
    claim_denials,
    claim_inquiries,
    claim_life,
    claim_submission,
)
from isthmus.flows.claim_pricing import ClaimPolicy, FeeSchedule
from isthmus.flows.claim_remit import Books
from isthmus.formats.x12 import build_999, parse_837, read
from isthmus.formats.x12.claim_status import parse_status
from isthmus.governance import rbac
from tests.connectors.test_dest_sftp import SshServer
from tests.flows.claims.claim_files import institutional, professional
from tests.flows.helpers import Rig, ft1, hl7, make_processor, make_rig, msh, pid, pv1, token
from tests.flows.remit.helpers import Clp, Remit, ingest_x12
from tests.formats.x12.x12_corpus import ISA

D = Decimal
T0 = 1_800_000_000.0  # 2027-01-15
DAY = 86400.0
ACCOUNTS = {
    "26463774": ("700001", "100.00"),
    "756048Q": ("700002", "89.95"),
    "756049Q": ("700003", "50.00"),
}
SETTINGS = ClaimSettings(
    sender_id="NORTHHOSP",
    receiver_id="CLEARING",
    usage="T",
    turnaround_days={"99999": 21},
    write_off_threshold=D("10.00"),
    underpayment_tolerance=D("1.00"),
    appeal_days=180,
)
POLICY = ClaimPolicy(
    settings=SETTINGS,
    schedules={
        "999996666": FeeSchedule(
            "USD",
            {"99213": D("40.00"), "87070": D("15.00"), "99214": D("35.00"), "86663": D("10.00")},
        ),
        "99999": FeeSchedule.from_csv(
            "code,allowed\n85025,13.39\n93005,20.00\n85087,50.00\n", "USD"
        ),
    },
)
CONTRACTUAL = "4900"  # ledger.remit.RemitAccounts().contractual


@dataclass
class ClpLines(Clp):
    """A CLP paid line by line: (SVC01, SVC04, SVC02 billed, SVC03 paid, SVC05 units,
    CO-45 amount, REF*6R) per 2110 loop, with DTM*472."""

    lines: Sequence[tuple[str, str, str, str, str, str, str]] = ()

    def segments(self) -> list[str]:
        charge = sum((D(x[2]) for x in self.lines), D(0))
        segs = [
            f"CLP*{self.pcn}*1*{charge:.2f}*{self.paid}**12*{self.icn}",
            "NM1*QC*1*DOE*J****MI*W99887766",
        ]
        for svc, rev, billed, paid, units, co, ctl in self.lines:
            segs += [f"SVC*{svc}*{billed}*{paid}*{rev}*{units}", "DTM*472*20261102"]
            segs += [f"CAS*CO*45*{co}"] if co else []
            segs.append(f"REF*6R*{ctl}")
        return segs


@pytest.fixture
def rig(tmp_path: Path) -> Rig:
    r = make_rig(tmp_path, processor=replace(make_processor(), claims=POLICY))
    yield r  # type: ignore[misc]
    r.store.close()


def books() -> Books:
    p = make_processor()
    return Books(p.secret, p.mappings, p.calendar)


def states(rig: Rig) -> dict[str, str]:
    return {c.claim_key: c.state for c in rig.store.claim_states()}


def ar(mrn: str) -> Decimal:
    return rig_ar[0].ar().get((token(mrn), "USD"), D(0))


rig_ar: list[Rig] = []


def contractual(pcn: str) -> Decimal:
    """The contractual allowance net of what was put back, over the 835 entries of one
    claim (its payment and its fee-schedule correction)."""
    rig = rig_ar[0]
    causes = {e.causation_id for e in rig.store.claim_events(pcn) if e.kind.startswith("remit")}
    lines = [
        ln
        for e in rig.store.entries()
        for ln in e.lines
        if ln.account == CONTRACTUAL and (e.entry_key in causes or e.causation_id in causes)
    ]
    return sum((ln.debit - ln.credit for ln in lines), D(0))


def open_items(rig: Rig) -> set[tuple[str, str]]:
    return {(w.queue, w.key) for w in rig.store.work_items(status="open")}


def ca_277(pcns: list[str], category: str) -> str:
    body = [
        "ST*277*0001*005010X214",
        "BHT*0085*08*B1*20270116*0800*TH",
        "HL*1**20*1",
        "NM1*AY*2*CLEARING*****46*CH1",
        "HL*2*1*21*1",
        "NM1*41*2*NORTH*****46*NH",
        "HL*3*2*19*1",
        "NM1*85*2*NORTH*****XX*1234567893",
    ]
    for n, pcn in enumerate(pcns):
        body += [
            f"HL*{4 + n}*3*PT",
            "NM1*QC*1*DOE*J",
            f"TRN*2*{pcn}",
            f"STC*{category}*20270116*WQ*1",
            f"REF*D9*{pcn}",
        ]
    body.append(f"SE*{len(body) + 1}*0001")
    return (
        ISA
        + "GS*HN*CLEARING*NORTHHOSP*20270116*0800*91*X*005010X214~"
        + "~".join(body)
        + "~GE*1*91~IEA*1*000000123~"
    )


def status_277(pcns: list[str], category: str, guide: str = "005010X212") -> str:
    text = ca_277(pcns, category).replace("005010X214", guide)
    return text.replace("*TH~", "*DG~")


@pytest.fixture
def sshd(tmp_path: Path) -> Iterator[SshServer]:
    srv = SshServer(tmp_path / "ssh")
    srv.start()
    yield srv
    srv.stop()


def test_claim_whole_life(rig: Rig, sshd: SshServer) -> None:
    rig_ar[:] = [rig]
    out = sshd.inbox
    sender = SftpSender(
        "127.0.0.1",
        sshd.port,
        user=sshd.user,
        key_file=sshd.user_key,
        known_hosts=sshd.known_hosts,
        path=str(out),
        timeout_s=5.0,
    )
    # accounts and their charges come from the EHR/billing system first
    for pcn, (mrn, amount) in ACCOUNTS.items():
        rig.ingest(
            [
                hl7(
                    msh(f"B{mrn}", "BAR^P01^BAR_P01"),
                    "EVN|P01|20261102101500",
                    pid(mrn, account=pcn),
                    pv1("V" + mrn),
                )
            ]
        )
        rig.drain()
        rig.ingest(
            [
                hl7(
                    msh(f"C{mrn}", "DFT^P03^DFT_P03"),
                    "EVN|P03|20261102101500",
                    pid(mrn, account=pcn),
                    pv1("V" + mrn),
                    ft1(1, f"T{mrn}", amount=amount),
                )
            ]
        )
    rig.drain()
    assert {m: ar(m) for m, _ in ACCOUNTS.values()} == {
        "700001": D("100.00"),
        "700002": D("89.95"),
        "700003": D("50.00"),
    }

    # 1. claims in, edits: one dirty claim stays created with a claim-edits item
    dirty = professional().replace("CLM*26463774", "CLM*DIRTY1").replace("11:B:1", "11:B:9")
    got = claim_submission.submit_837(
        rig.store, dirty, settings=SETTINGS, sender=sender, now=T0, source="billing/1"
    )
    assert got.clean == [] and list(got.failed) == ["DIRTY1"]
    assert ("claim-edits", "DIRTY1") in open_items(rig)
    sub1 = claim_submission.submit_837(
        rig.store, professional(), settings=SETTINGS, sender=sender, now=T0, source="billing/2"
    )
    sub2 = claim_submission.submit_837(
        rig.store, institutional(), settings=SETTINGS, sender=sender, now=T0, source="billing/3"
    )
    assert sub1.clean == ["26463774"] and sub2.clean == ["756048Q", "756049Q"]
    assert states(rig) == {
        "DIRTY1": "created",
        "26463774": "submitted",
        "756048Q": "submitted",
        "756049Q": "submitted",
    }
    # 2. 837s out on the SFTP server with our control numbers
    files = sorted(p.name for p in out.iterdir())
    assert files == ["837-000000001.x12", "837-000000002.x12"]
    sent = [read((out / n).read_bytes()) for n in files]
    assert [ic.control_number for ic in sent] == ["000000001", "000000002"]
    assert [c.patient_control_number for ic in sent for c in parse_837(ic).claims] == [
        "26463774",
        "756048Q",
        "756049Q",
    ]
    # resubmitting the same file: every claim is a duplicate, nothing leaves
    again = claim_submission.submit_837(
        rig.store, professional(), settings=SETTINGS, sender=sender, now=T0, source="billing/4"
    )
    assert again.clean == [] and "duplicate" in again.failed["26463774"][0]

    # 3. 999 back: accepted; 277CA back: accepted (a fact now), payer numbers kept
    for ic in sent:
        claim_acks.apply_999(
            rig.store, build_999(ic, parse_837(ic).findings), now=T0 + 60, source="999"
        )
    assert set(states(rig).values()) == {"created", "accepted"}
    applied = claim_acks.apply_277(
        rig.store,
        ca_277(["756048Q", "756049Q", "26463774"], "A2:20:PR"),
        now=T0 + 120,
        source="277CA",
    )
    assert applied.unknown == 0 and set(applied.claims.values()) == {"accepted"}

    # 4. 276/277 round: past the turnaround the 276 asks, the 277 answers pending
    assert (
        claim_inquiries.request_status(
            rig.store, settings=SETTINGS, sender=sender, now=T0 + 10 * DAY
        )
        == []
    )
    asked = claim_inquiries.request_status(
        rig.store, settings=SETTINGS, sender=sender, now=T0 + 31 * DAY
    )
    assert sorted(asked) == ["26463774", "756048Q", "756049Q"]
    (q276,) = [p for p in out.iterdir() if p.name.startswith("276-")]
    assert sorted(
        c.patient_control_number for c in parse_status(q276.read_bytes()).claims
    ) == sorted(asked)
    assert (
        claim_inquiries.request_status(
            rig.store, settings=SETTINGS, sender=sender, now=T0 + 32 * DAY
        )
        == []
    )  # asked once per period
    claim_acks.apply_277(rig.store, status_277(asked, "P3:317"), now=T0 + 33 * DAY, source="277")
    assert {k: v for k, v in states(rig).items() if k != "DIRTY1"} == dict.fromkeys(
        asked, "pending"
    )
    got_state = rig.store.claim_states("pending")[0]
    assert (got_state.status_category, got_state.status_code) == ("P3", "317")

    # 5. the 835: pays one, underpays one, denies one
    remit = Remit(
        [
            Clp(
                pcn="26463774",
                paid="80.00",
                responsibility="20.00",
                cas=[("PR", "2", "20.00")],
                icn="PAY1",
            ),
            # line by line against the fee schedule: 85025 at 13.39 as agreed;
            # 93005 x 3 billed 76.56, expected 3 x 20.00, allowed 46.61
            ClpLines(
                pcn="756048Q",
                paid="60.00",
                icn="PAY2",
                lines=[
                    ("HC:85025", "0305", "13.39", "13.39", "1", "", "1"),
                    ("HC:93005", "0730", "76.56", "46.61", "3", "29.95", "2"),
                ],
            ),
            Clp(
                pcn="756049Q",
                paid="0.00",
                status="4",
                charge="50.00",
                cas=[("CO", "197", "50.00")],
                icn="PAY3",
            ),
        ],
        icn=7,
        trace="EFT7",
    )
    ingest_x12(rig, remit.build())
    rig.drain()
    assert states(rig) == {
        "DIRTY1": "created",
        "26463774": "paid",
        "756048Q": "partially_paid",
        "756049Q": "denied",
    }
    denied = next(c for c in rig.store.claim_states() if c.claim_key == "756049Q")
    assert (denied.denial_category, denied.payer_claim_id) == ("authorization", "PAY3")
    assert denied.appeal_due == "2027-05-04"  # payment date 2026-11-05 + 180 days
    items = open_items(rig)
    assert {("underpayments", "756048Q"), ("denials-authorization", "756049Q")} <= items
    assert not any(q == "denials" for q, _ in items)  # the generic item went to its queue
    # one underpayment item per short line (line 1 was paid as agreed), naming it
    [under] = [w for w in rig.store.work_items(status="open") if w.queue == "underpayments"]
    assert under.event_id.endswith("/2") and "DOE" not in under.detail
    assert (
        "line 2 (REF*6R 2) code 93005: expected 60.00, paid 46.61, payer allowed "
        "46.61, variance 13.39 USD"
    ) in under.detail
    # ledger: paid claim's A/R 0 (PR moved to patient A/R); underpaid keeps the shortfall
    # of its line open: the contractual allowance posts against the expected amount
    # (billed 76.56 - expected 60.00 = 16.56 of the payer's CO 29.95), the 13.39 to
    # recover stays on A/R; the denied one is untouched
    assert ar("700001") == D("0.00")
    assert ar("700002") == D("13.39")
    assert ar("700003") == D("50.00")
    assert contractual("756048Q") == D("16.56")
    assert rig.balanced()

    # 6. the denied claim is appealed, then paid by the payer's next 835
    ref = claim_denials.appeal(
        rig.store, "756049Q", actor="carol", now=T0 + 40 * DAY, sender=sender, payer_name="TRICARE"
    )
    letter = Path(urlparse(ref).path).read_text()
    assert "756049Q" in letter and "authorization" in letter and "DOE" not in letter
    assert states(rig)["756049Q"] == "appealed"
    ingest_x12(
        rig, Remit([Clp(pcn="756049Q", paid="50.00", icn="PAY3")], icn=8, trace="EFT8").build()
    )
    rig.drain()
    assert states(rig)["756049Q"] == "paid" and ar("700003") == D("0.00")

    # 7. the underpaid remainder written off: over the threshold, a second person approves
    b = books()
    wo = claim_denials.request_write_off(
        rig.store,
        "756048Q",
        amount=D("13.39"),
        reason="small balance",
        requested_by="alice",
        now=T0 + 41 * DAY,
        policy=POLICY,
        books=b,
    )
    assert wo.status == "pending" and ("write-offs", "756048Q") in open_items(rig)
    assert ar("700002") == D("13.39")
    with pytest.raises(claim_denials.ClaimActionRefused, match="segregation of duties"):
        claim_denials.approve_write_off(
            rig.store,
            "756048Q",
            approver="alice",
            roles=frozenset({rbac.FINANCE}),
            now=T0 + 42 * DAY,
            books=b,
        )
    with pytest.raises(claim_denials.ClaimActionRefused, match="role"):
        claim_denials.approve_write_off(
            rig.store,
            "756048Q",
            approver="bob",
            roles=frozenset({rbac.REVENUE}),
            now=T0 + 42 * DAY,
            books=b,
        )
    done = claim_denials.approve_write_off(
        rig.store,
        "756048Q",
        approver="bob",
        roles=frozenset({rbac.FINANCE}),
        now=T0 + 42 * DAY,
        books=b,
    )
    assert (done.status, done.approved_by) == ("posted", "bob")
    assert states(rig)["756048Q"] == "written_off" and ar("700002") == D("0.00")
    assert not any(k == "756048Q" for _, k in open_items(rig))
    assert rig.balanced()

    # every step is an event with lineage on the claim's timeline
    timeline = rig.store.claim_events("756049Q")
    assert [e.to_state for e in timeline if e.from_state != e.to_state] == [
        "created",
        "scrubbed",
        "submitted",
        "accepted",
        "pending",
        "denied",
        "appealed",
        "paid",
    ]
    assert [e.seq for e in timeline] == list(range(1, len(timeline) + 1))
    assert next(e for e in timeline if e.kind == "appealed").actor == "carol"
    assert all(e.causation_id for e in timeline if e.kind != "created")
    with pytest.raises(claim_life.InvalidTransition):
        claim_life.decide("756049Q", "paid", "appealed")
