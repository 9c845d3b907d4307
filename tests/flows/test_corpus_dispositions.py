"""Issue 15 done-when: every message of the public HL7 v2 corpus gets an ACK naming its
MSH-10; no ADT, BAR or DFT message is refused; every other type is AA and stored `ignored`
with its reason; the ledger balances. Sent as it is (classify: the answer each message
gets alone) and again with unique control ids through the store and the worker."""

from __future__ import annotations

import re
from pathlib import Path

from isthmus.flows.hl7_inbound import classify, decode_error
from isthmus.formats.hl7v2 import build_ack, split_messages
from tests.flows.helpers import Rig

CORPUS = Path("/work/shared/corpora/hl7v2")
TAKEN = ("ADT", "BAR", "DFT")


def corpus() -> list[bytes]:
    return [
        t.encode() for f in sorted(CORPUS.glob("*/*.hl7")) for t in split_messages(f.read_bytes())
    ]


def msa(ack: bytes) -> list[str]:
    return next(s for s in ack.decode().split("\r") if s.startswith("MSA")).split("|")


def with_control_id(raw: bytes, cid: str) -> bytes:
    fs = raw[3:4]
    head, _, rest = raw.partition(b"\r")
    fields = head.split(fs)
    fields[9] = cid.encode()
    return fs.join(fields) + b"\r" + rest


def test_each_message_alone_is_taken_or_ignored_and_its_ack_names_it() -> None:
    messages = corpus()
    assert len(messages) > 90
    for raw in messages:
        inbound, msg = classify(
            raw, channel="mllp", peer="t", now=1.0, tenant="default", currency="USD"
        )
        assert msg is not None
        ack = build_ack(
            msg,
            inbound.ack_code,
            error=decode_error(inbound.error),  # type: ignore[arg-type]
            original=raw,
        )
        fields = msa(ack)
        assert fields[2] == msg.control_id, inbound.message_type
        if msg.message_type in TAKEN and inbound.message_type not in (
            "ADT^A09",
            "ADT^A10",
            "ADT^A60",
        ):
            assert (inbound.status, fields[1]) == ("accepted", "AA"), inbound.error
        else:
            assert (inbound.status, fields[1]) == ("ignored", "AA"), inbound.message_type
            reason = decode_error(inbound.error)
            assert reason is not None and re.search(r"no finance effect", reason.text)


def test_the_corpus_with_unique_control_ids_posts_balanced_and_ignores_the_rest(rig: Rig) -> None:
    raws = [with_control_id(r, f"UQ{i:04d}") for i, r in enumerate(corpus())]
    inbound = rig.ingest(raws)
    rig.drain()
    stored = {m.control_id.split(":")[-1]: m for m in rig.store.messages(limit=10_000)}
    assert len(stored) == len(raws)
    for m in stored.values():
        assert m.ack_code == "AA", (m.message_type, m.error)
        assert m.status == (
            "accepted"
            if m.message_type[:3] in TAKEN
            and m.message_type not in ("ADT^A09", "ADT^A10", "ADT^A60")
            else "ignored"
        )
    ignored = [m for m in inbound if m.status == "ignored"]
    assert {m.message_type[:3] for m in ignored} >= {"ORU", "SIU", "MDM", "VXU", "ORM"}
    counts = rig.store.message_counts()
    assert sum(n for (_c, st, _a), n in counts.items() if st == "ignored") == len(ignored)
    assert rig.balanced()  # the corpus facility has no ERP company: its charges are held
    assert not rig.bus.dead_letters(100)
