"""Acceptance: the public HL7 v2 corpus, sent by python-hl7's own `mllp_send`, to `isthmus serve`.

Every message of ../shared/corpora/hl7v2 (fhir-converter and python-hl7 samples; batch and
multi-message files split one message per MLLP block, FHS/BHS/BTS/FTS dropped) goes over a
real socket to a real `serve` subprocess. Each gets an answer naming its MSH-10; the one
DFT^P03 charge the corpus carries reaches the ledger; sending everything again changes
nothing, not even the answers.

About MSH-10: the corpus reuses control ids across unrelated sample files (32 messages say
"MSG00001", 16 say "12334456778890", ...), across senders and within one. The hub's
idempotency key is (channel, MSH-3, MSH-4, MSH-10), `<MSH-3>^<MSH-4>:<MSH-10>`: the same id
from another sending application is another message; the first message with a given
identity is stored and takes effect; a resend of the same content gets the first one's
answer (same MSA-1, same error) with no second effect; a different message reusing the
identity (within the reuse window) is kept for inspection and refused with AR, ERR code
205 (duplicate key identifier). The assertions below follow that rule. The DFT files are
sent first, so the charges are originals whatever the sender.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from decimal import Decimal
from pathlib import Path
from typing import Any

import hl7.client
import pytest

from isthmus.formats.hl7v2 import identity_of, parse_message
from tests.e2e.conftest import ServeFactory
from tests.e2e.helpers import (
    HOST,
    CorpusMessage,
    all_messages,
    has_err,
    isthmus,
    isthmus_json,
    ledger_snapshot,
    msa_of,
    run_mllp_send,
)

# The message types with a finance meaning (README, "HL7 v2 events"): no ADT, BAR or DFT
# message is refused. Anything else (ORU, SIU, MDM, VXU, orders) is acknowledged AA and kept
# as `ignored` with its reason: an EHR interface that stops on AR is never stopped by them.
FINANCE = ("ADT", "BAR", "DFT")
# taken with no finance effect (issue 15: tracking and allergy events, APC groups): ignored
NO_EFFECT = {"ADT^A09", "ADT^A10", "ADT^A32", "ADT^A33", "ADT^A60", "BAR^P10"}


def expected_status(message_type: str) -> str:
    """The stored status of a corpus message the hub answered AA."""
    if message_type in NO_EFFECT:
        return "ignored"
    return "accepted" if message_type.split("^", maxsplit=1)[0] in FINANCE else "ignored"


# Site master data for the corpus' facility (PV1-3.4 of DFT-P03-01.hl7); the file replaces
# the facility table, so the demo facilities are repeated.
CONFIG = """
[mappings]
include = "demo"

[mappings.facility_company]
"HOMERTON UNIVER" = "C300"
NORTH = "C100"
SOUTH = "C200"
"""


def ordered(corpus: list[CorpusMessage]) -> list[CorpusMessage]:
    """DFT messages first (see the module docstring), then the rest in file order."""
    return sorted(corpus, key=lambda m: not m.message_type.startswith("DFT"))


def answer(ack: bytes) -> tuple[str, str, str]:
    """(MSA-1, MSA-2, ERR-8 text): what must repeat identically for a duplicate."""
    code, cid = msa_of(ack)
    text = ""
    for seg in ack.split(b"\r"):
        if seg.startswith(b"ERR"):
            fields = seg.decode("utf-8", "replace").split("|")
            text = fields[8] if len(fields) > 8 else ""
    return code, cid, text


def ft1_lines(raw: bytes) -> list[dict[str, Any]]:
    """FT1 lines of a DFT, read by hand (not by the hub's parser)."""
    out = []
    for seg in raw.decode("utf-8").split("\r"):
        f = seg.split("|")
        if f[0] == "FT1":
            out.append(
                {
                    "code": f[7].split("^")[0],
                    "amount": Decimal(f[11].split("&")[0]),
                    "currency": f[11].split("&")[1] if "&" in f[11] else "USD",
                    "department": f[13].split("^")[0],
                }
            )
    return out


def identity(m: CorpusMessage) -> str:
    """The hub's identity of a corpus message: `<MSH-3.1>^<MSH-4.1>:<MSH-10>`."""
    return identity_of(parse_message(m.raw))


kinds: dict[str, str] = {}  # identity -> MSH-9 of the first message under it


def check_answers(
    msgs: list[CorpusMessage], acks: list[bytes]
) -> tuple[dict[str, tuple[str, str, str]], set[str]]:
    """Per-message ACK checks; returns the answer of the original of each control id, and
    the keys under which the hub keeps messages that reused a taken MSH-10 (`id#digest`)."""
    assert len(acks) == len(msgs), f"{len(acks)} ACKs for {len(msgs)} messages"
    first: dict[str, tuple[str, str, str]] = {}
    content: dict[str, bytes] = {}
    conflicts: set[str] = set()
    kinds.clear()
    for m, ack in zip(msgs, acks, strict=True):
        code, cid, text = answer(ack)
        assert cid == m.control_id, (m.source, cid)
        assert code in ("AA", "AE", "AR"), (m.source, code)
        assert has_err(ack) == (code != "AA"), (m.source, code, ack)
        key = identity(m)
        if key in first:
            if m.raw.rstrip(b"\r") == content[key]:  # a duplicate: the same answer
                assert (code, cid, text) == first[key], m.source
            else:  # another message reusing a taken identity: refused, table 0357 code 205
                assert code == "AR" and b"|205^" in ack, (m.source, ack)
                digest = hashlib.sha256(m.raw.rstrip(b"\r")).hexdigest()
                conflicts.add(f"{key}#{digest[:16]}")
            continue
        first[key] = (code, cid, text)
        content[key] = m.raw.rstrip(b"\r")
        kinds[key] = m.message_type
        assert code == "AA", (m.source, code, text)  # taken, or accepted and ignored
    return first, conflicts


def send_in_process(port: int, msgs: list[CorpusMessage]) -> list[bytes]:
    """python-hl7's MLLPClient in this process: exactly one ACK back per message."""
    out = []
    with hl7.client.MLLPClient(HOST, port) as client:
        for m in msgs:
            framed = client.send_message(m.raw)
            assert framed.startswith(b"\x0b") and framed.endswith(b"\x1c\r"), framed
            out.append(framed[1:-2])
    return out


def state(data: Path) -> dict[str, Any]:
    return {
        "ledger": ledger_snapshot(data),
        "messages": all_messages(data_dir=data),
        "workitems": isthmus_json("workitems", "list", data_dir=data),
    }


def test_corpus_over_mllp_send_then_again(
    corpus: list[CorpusMessage], serve_factory: ServeFactory, tmp_path: Path
) -> None:
    cfg = tmp_path / "isthmus.toml"
    cfg.write_text(CONFIG)
    hub = serve_factory(config=cfg)
    msgs = ordered(corpus)
    assert {Path(m.source).parts[0] for m in msgs} == {"fhir-converter", "python-hl7"}
    assert all(m.raw.startswith(b"MSH") for m in msgs)

    acks = run_mllp_send(hub.mllp_port, [m.raw for m in msgs], tmp_path)
    first, conflicts = check_answers(msgs, acks)
    assert conflicts, "the corpus reuses MSH-10 values across different messages"
    hub.wait_idle()
    data = hub.data_dir

    # One stored row per distinct message, with the status its answer announced.
    listed = all_messages(data_dir=data)
    assert Counter(x["control_id"] for x in listed) == Counter(set(first) | conflicts)
    for x in listed:
        if x["control_id"] in conflicts:
            assert (x["status"], x["ack"]) == ("rejected", "AR")
        else:
            assert (x["status"], x["ack"]) == (expected_status(kinds[x["control_id"]]), "AA")
    rejected = all_messages("--status", "rejected", data_dir=data)
    assert {x["control_id"] for x in rejected} == {
        c for c, a in first.items() if a[0] != "AA"
    } | conflicts
    assert rejected and all(x["error"] for x in rejected)

    # The DFT^P03 charge is in the ledger, traced to its message; a line the site cannot
    # map (no department) waits as a work item instead of being posted or dropped.
    dft = next(m for m in msgs if m.source == "fhir-converter/DFT-P03-01.hl7#0")
    corr = f"mllp/{identity(dft)}"
    lines = ft1_lines(dft.raw)
    assert len(lines) == 2
    journal = isthmus_json("ledger", "journal", "--limit", "1000000", data_dir=data)
    mine = [e for e in journal if e["correlation_id"] == corr]
    assert len(mine) == 1 and len(journal) == 1, journal
    posted = lines[0]
    amount = f"{posted['amount']:.2f}"
    assert sorted((ln[0], ln[1], ln[2], ln[3]) for ln in mine[0]["lines"]) == [
        ("1200", amount, "0.00", posted["currency"]),
        ("4100", "0.00", amount, posted["currency"]),  # 71045 -> Imaging revenue
    ]
    assert {ln[4] for ln in mine[0]["lines"]} == {"C300"}
    items = isthmus_json("workitems", "list", data_dir=data)
    # one item per missing key (the empty department), holding the line; the account and
    # visit moves (A41, A45) are applied by flows/merges.py (nothing to reclassify here)
    assert Counter(w["kind"] for w in items) == {"unmapped_department": 1}
    [dept] = [w for w in items if w["kind"] == "unmapped_department"]
    assert (dept["event_id"], dept["status"]) == ("mapping:department_cost_center/", "open")
    assert lines[1]["department"] == ""
    trace = isthmus_json("messages", "show", corr, data_dir=data)
    assert trace["message"]["type"] == "DFT^P03"
    # two FT1 charges, then its IN1 coverage and its DG1/PR1 codes kept for claims
    assert [(e["event_id"], e["type"]) for e in trace["events"]] == [
        (f"{corr}/0", "Charge"),
        (f"{corr}/1", "Charge"),
        (f"{corr}/2", "CoverageRecorded"),
        (f"{corr}/3", "ClinicalCodesRecorded"),
    ]
    assert [j["entry_key"] for j in trace["journal_entries"]] == [f"{corr}/0"]

    tb = isthmus_json("ledger", "trial-balance", data_dir=data)
    assert tb["balanced"] is True
    assert tb["totals"] == [
        {"currency": "USD", "debit": amount, "credit": amount, "balanced": True}
    ]

    # Everything again, after a clean restart, through python-hl7's client in-process:
    # same answers, nothing new stored, posted or queued.
    before = state(data)
    assert hub.stop() == 0
    hub.start()
    again = send_in_process(hub.mllp_port, msgs)
    hub.wait_idle()
    assert [answer(a) for a in again] == [answer(a) for a in acks]
    check_answers(msgs, again)
    after = state(data)
    assert after == before
    assert after["ledger"]["entries"] == 1


def test_mllp_send_cli_resend_is_idempotent(
    corpus: list[CorpusMessage], serve_factory: ServeFactory, tmp_path: Path
) -> None:
    """The same corpus twice in one `mllp_send` run: the second copy changes nothing."""
    hub = serve_factory()
    msgs = ordered(corpus)
    acks = run_mllp_send(hub.mllp_port, [m.raw for m in msgs] * 2, tmp_path)
    assert len(acks) == 2 * len(msgs)
    once, twice = acks[: len(msgs)], acks[len(msgs) :]
    first, conflicts = check_answers(msgs, once)
    assert [answer(a) for a in twice] == [answer(a) for a in once]
    hub.wait_idle()
    listed = all_messages(data_dir=hub.data_dir)
    assert len(listed) == len(first) + len(conflicts)
    res = isthmus("ledger", "trial-balance", "--json", data_dir=hub.data_dir)
    assert res.returncode == 0 and json.loads(res.stdout)["balanced"] is True


@pytest.mark.parametrize(
    "name",
    ["python-hl7/sample_file1.hl7", "python-hl7/sample_batch1.hl7", "fhir-converter/ADT04-23.hl7"],
)
def test_corpus_files_split_into_messages(corpus: list[CorpusMessage], name: str) -> None:
    """The splitter the acceptance relies on: batch envelopes gone, one MSH per message."""
    parts = [m for m in corpus if m.source.startswith(name + "#")]
    want = {
        "python-hl7/sample_file1.hl7": 3,
        "python-hl7/sample_batch1.hl7": 2,
        "fhir-converter/ADT04-23.hl7": 1,
    }[name]
    assert len(parts) == want
    for m in parts:
        segs = m.raw.rstrip(b"\r").split(b"\r")
        assert segs[0].startswith(b"MSH|") and b"\n" not in m.raw
        assert not any(s[:3] in (b"FHS", b"BHS", b"BTS", b"FTS") for s in segs)
        assert sum(s.startswith(b"MSH") for s in segs) == 1
