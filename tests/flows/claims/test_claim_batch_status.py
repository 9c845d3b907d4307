"""A 277CA that rejects a whole 837 batch (information receiver level, 2200B) or one billing
provider's claims of it (2200C), with no claim level under it: every claim of that batch
(or of that provider in it) moves to rejected with the status code, one work item per
batch names the reason; on the in-memory store."""

from __future__ import annotations

from pathlib import Path

from isthmus.config import ClaimSettings
from isthmus.connectors.claim_files import FileSender
from isthmus.flows import claim_acks, claim_submission
from isthmus.flows import claim_life as life
from isthmus.formats.x12 import read
from isthmus.formats.x12.claim_status import parse_status
from isthmus.formats.x12.responses import response_events
from isthmus.model import ClaimBatchStatusReported
from isthmus.store.memory import MemoryStore
from tests.flows.claims.claim_files import institutional, professional
from tests.formats.x12.x12_corpus import ISA

T0 = 1_800_000_000.0
JONES, KILDARE = "1234567893", "1912301953"  # the billing providers of the two files


def ca_277(batch: str, category: str, provider: str = "") -> str:
    """A 277CA whose only STC is at the receiver level, or at the provider level when
    ``provider`` (an NPI) is given."""
    body = [
        "ST*277*0001*005010X214",
        "BHT*0085*08*R1*20270116*0800*TH",
        "HL*1**20*1",
        "NM1*AY*2*CLEARING*****46*CH1",
        "TRN*1*R1",
        "DTP*050*D8*20270116",
        "DTP*009*D8*20270116",
        "HL*2*1*21*1",
        "NM1*41*2*NORTH*****46*NH",
        f"TRN*2*{batch}",
    ]
    if provider:
        body += [
            "STC*A1:19:PR*20270116*WQ*150",
            "QTY*90*3",
            "HL*3*2*19*0",
            f"NM1*85*2*NORTH*****XX*{provider}",
            "TRN*1*0",
            f"STC*{category}*20270116*U*150",
            "QTY*AA*1",
        ]
    else:
        body += [f"STC*{category}*20270116*U*150", "QTY*AA*3"]
    body.append(f"SE*{len(body) + 1}*0001")
    return (
        ISA
        + "GS*HN*CLEARING*NORTHHOSP*20270116*0800*91*X*005010X214~"
        + "~".join(body)
        + "~GE*1*91~IEA*1*000000123~"
    )


def two_batches(tmp_path: Path) -> MemoryStore:
    """Batch B1: the institutional file (JONES, 756048Q and 756049Q); B2: the
    professional one (KILDARE, 26463774)."""
    store = MemoryStore()
    sender = FileSender(tmp_path)
    for text in (institutional(), professional()):
        got = claim_submission.submit_837(
            store, text, settings=ClaimSettings(), sender=sender, now=T0, source="billing"
        )
        assert got.clean
    sent = sorted(tmp_path.glob("837-*"))
    assert [
        s.strip().split("*")[3]
        for f in sent
        for s in f.read_text().split("~")
        if s.strip().startswith("BHT")
    ] == ["B1", "B2"]  # BHT03: what a 277CA 2200B echoes
    return store


def states(store: MemoryStore) -> dict[str, str]:
    return {c.claim_key: c.state for c in store.claim_states()}


def test_the_level_status_names_its_batch_and_becomes_one_event() -> None:
    text = ca_277("B1", "A3:24", provider=JONES)
    (receiver, provider) = parse_status(text).levels
    assert (receiver.level, receiver.batch, receiver.statuses[0].category) == ("21", "B1", "A1")
    assert (provider.level, provider.batch, provider.party.npi) == ("19", "B1", JONES)
    ic = read(text)
    events = [k.event for k in response_events(ic, ["277"], interchange_id="x")]
    assert [
        (e.level, e.batch, e.provider_npi, e.statuses[0].category)
        for e in events
        if isinstance(e, ClaimBatchStatusReported)
    ] == [("21", "B1", "", "A1"), ("19", "B1", JONES, "A3")]
    keys = [k.business_key for k in response_events(ic, ["277"], interchange_id="y")]
    assert keys[1] == f"277CA-batch|CH1|B1|19|{JONES}|2027-01-16|A3"  # content, not envelope


def test_a_receiver_level_rejection_rejects_every_claim_of_the_batch(tmp_path: Path) -> None:
    store = two_batches(tmp_path)
    got = claim_acks.apply_277(store, ca_277("B1", "A3:24:41"), now=T0 + 60, source="ca")
    assert got.claims == {"756048Q": life.REJECTED, "756049Q": life.REJECTED}
    assert states(store) == {"756048Q": "rejected", "756049Q": "rejected", "26463774": "submitted"}
    c = next(x for x in store.claim_states() if x.claim_key == "756049Q")
    assert (c.status_category, c.status_code) == ("A3", "24")
    [item] = store.work_items(status="open")
    assert (item.queue, item.kind, item.key) == (
        "claim-rejections",
        "claim_batch_rejected",
        "batch B1",
    )
    assert "information receiver" in item.detail and "A3:24:41" in item.detail
    assert "756048Q, 756049Q" in item.detail and "JONES" not in item.detail
    timeline = store.claim_events("756048Q")
    assert (timeline[-1].kind, timeline[-1].to_state) == ("ack_rejected", "rejected")
    assert "batch B1" in timeline[-1].detail
    # the same file again: the claims are rejected already, no second item
    again = claim_acks.apply_277(store, ca_277("B1", "A3:24:41"), now=T0 + 61, source="ca2")
    assert set(again.claims.values()) == {"rejected"}
    assert len(store.work_items(status="open")) == 1


def test_a_provider_level_rejection_rejects_that_providers_claims(tmp_path: Path) -> None:
    store = two_batches(tmp_path)
    wrong = claim_acks.apply_277(
        store, ca_277("B2", "A3:85:85", provider=JONES), now=T0 + 60, source="ca1"
    )
    assert (wrong.claims, wrong.unknown) == ({}, 1)  # B2 has no claim of JONES
    got = claim_acks.apply_277(
        store, ca_277("B2", "A3:85:85", provider=KILDARE), now=T0 + 61, source="ca2"
    )
    assert got.claims == {"26463774": life.REJECTED}
    assert states(store)["756048Q"] == "submitted"
    [item] = store.work_items(status="open")
    assert item.key == f"batch B2/{KILDARE}" and f"NPI {KILDARE}" in item.detail


def test_an_acceptance_or_an_unknown_batch_moves_nothing(tmp_path: Path) -> None:
    store = two_batches(tmp_path)
    assert (
        claim_acks.apply_277(store, ca_277("B1", "A1:19:PR"), now=T0 + 60, source="ca").claims == {}
    )
    assert claim_acks.apply_277(store, ca_277("B9", "A3:24"), now=T0 + 60, source="ca").unknown == 1
    assert set(states(store).values()) == {"submitted"}
    assert store.work_items(status="open") == []
