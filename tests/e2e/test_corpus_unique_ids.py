"""Issue 15 done-when, the second half over a real socket: every message of the public HL7 v2
corpus, given a unique control id, sent over MLLP to `isthmus serve`, gets an ACK naming its
MSH-10; no ADT, BAR or DFT message is refused; the rest are AA and `ignored`; the ledger
balances. (Sent as they are: test_corpus_over_mllp.py.) And each batch or file of the corpus
(FHS/BHS envelopes) sent whole in one MLLP block gets a batch of ACKs, one per message,
each naming its MSH-10 (HL7 v2.5.1 2.10.3.3).
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import hl7.client

from isthmus.formats.hl7v2 import ack_code
from tests.e2e.conftest import ServeFactory
from tests.e2e.helpers import (
    CORPUS,
    HOST,
    CorpusMessage,
    all_messages,
    control_id_of,
    has_err,
    isthmus_json,
    msa_of,
    split_hl7_file,
)
from tests.e2e.test_corpus_over_mllp import CONFIG, expected_status, ordered

ENVELOPES = (b"FHS", b"BHS", b"BTS", b"FTS")


def with_control_id(raw: bytes, cid: str) -> bytes:
    head, _, rest = raw.partition(b"\r")
    fields = head.split(head[3:4])
    fields[9] = cid.encode()
    return head[3:4].join(fields) + b"\r" + rest


def test_corpus_with_unique_control_ids_over_mllp(
    corpus: list[CorpusMessage], serve_factory: ServeFactory, tmp_path: Path
) -> None:
    cfg = tmp_path / "isthmus.toml"
    cfg.write_text(CONFIG)
    hub = serve_factory(config=cfg)
    # DFT first: the corpus' BAR^P02 purges the account its DFT files charge, and a charge
    # to a purged account is held (README), which would leave nothing to balance
    sent = [(m, with_control_id(m.raw, f"UQ{i:05d}")) for i, m in enumerate(ordered(corpus))]
    with hl7.client.MLLPClient(HOST, hub.mllp_port) as client:
        for m, raw in sent:
            framed = client.send_message(raw)
            ack = framed[1:-2]
            assert msa_of(ack) == ("AA", control_id_of(raw)), (m.source, ack)
            assert not has_err(ack), (m.source, ack)
    hub.wait_idle()
    listed = all_messages(data_dir=hub.data_dir)
    assert len(listed) == len(sent)
    by_cid = {x["control_id"].rsplit(":", 1)[1]: x for x in listed}
    for m, raw in sent:
        row = by_cid[control_id_of(raw)]
        assert (row["status"], row["ack"]) == (expected_status(m.message_type), "AA"), m.source
    kinds = Counter(x["status"] for x in listed)
    assert kinds["ignored"] and kinds["accepted"] and set(kinds) == {"ignored", "accepted"}
    tb = isthmus_json("ledger", "trial-balance", data_dir=hub.data_dir)
    assert tb["balanced"] is True and tb["totals"], tb
    assert isthmus_json("dlq", "list", data_dir=hub.data_dir) == []


def batch_files() -> list[Path]:
    out = []
    for path in sorted(CORPUS.rglob("*.hl7")):
        data = path.read_bytes().lstrip(b"\xef\xbb\xbf")
        if data[:3] in (b"FHS", b"BHS"):
            out.append(path)
    return out


def test_each_batch_file_in_one_block_gets_an_ack_per_message(
    corpus: list[CorpusMessage], serve_factory: ServeFactory
) -> None:
    files = batch_files()
    assert len(files) >= 4, files
    hub = serve_factory()
    with hl7.client.MLLPClient(HOST, hub.mllp_port) as client:
        for path in files:
            data = path.read_bytes().replace(b"\r\n", b"\r").replace(b"\n", b"\r")
            want = [control_id_of(m) for m in split_hl7_file(data)]
            framed = client.send_message(data)
            reply = framed[1:-2]
            segs = reply.rstrip(b"\r").split(b"\r")
            assert segs[0][:3] in (b"FHS", b"BHS"), (path.name, reply[:80])
            acks = [b"\r".join(segs[i : i + 2]) for i, s in enumerate(segs) if s.startswith(b"MSH")]
            # a misplaced BHS or FHS inside a message does not cut it (as in a file)
            assert [ack_code(a)[1] for a in acks] == want, path.name
            assert all(ack_code(a)[0] in ("AA", "AR") for a in acks), path.name
            trailer = [s for s in segs if s.startswith(b"BTS")]
            assert sum(int(s.split(b"|")[1]) for s in trailer) == len(acks), path.name
    hub.wait_idle()
    assert all_messages(data_dir=hub.data_dir)
