"""Each sink renders the typed batch byte for byte as before (tests/connectors/erp/golden_cases.py).

The outputs were captured before a batch became one typed outbox row: the files of the
file drop, the Tryton `account.move.create` JSON-RPC bodies and the REST move bodies, for
each batch and allow-list variant. Both outbox forms are checked against them: the batch
row this version queues, and the csv + jsonl rows the previous version queued.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from pathlib import Path

import pytest
from tests.connectors.erp.golden_cases import (
    CASES,
    GOLDEN,
    VARIANTS,
    RestRecorder,
    accounts_of,
    created,
)
from tests.governance.tryton_fake import RecordingTryton

from isthmus.connectors.erp_allowlist import guarded
from isthmus.connectors.erp_file import ErpFileSink
from isthmus.connectors.erp_ports import ErpBatchSink
from isthmus.ledger import batch_codec
from isthmus.ledger.batch import JournalBatch
from isthmus.ledger.batch_codec import QueuedBatch
from isthmus.ledger.batch_file import batch_to_csv, batch_to_jsonl
from isthmus.ports.erp import BatchSink, ErpRejected

MANIFEST = json.loads((GOLDEN / "manifest.json").read_text())
FORMS = ("batch", "legacy")


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _rows(batch: JournalBatch, form: str) -> list[QueuedBatch]:
    """The batch as the dispatcher decodes it from its outbox row(s)."""
    if form == "batch":
        return [batch_codec.decode(*batch_codec.encode(batch))]
    return [
        batch_codec.decode("csv", batch_to_csv(batch).encode()),
        batch_codec.decode("jsonl", batch_to_jsonl(batch).encode()),
    ]


def _send(sink: BatchSink, rows: list[QueuedBatch], sent: Callable[[], list[bytes]]) -> str:
    """The digest of what the ERP was sent, or the refusal."""
    try:
        for row in rows:
            sink.deliver(row)
    except ErpRejected as exc:
        return "rejected: " + exc.reason
    return _sha(b"\n".join(sent()))


def test_every_case_has_its_golden_outputs() -> None:
    assert sorted(MANIFEST) == sorted(CASES)
    assert {n for n in CASES if n.startswith("demo-")} >= {"demo-mllp", "demo-x12"}


@pytest.mark.parametrize("form", FORMS)
@pytest.mark.parametrize("name", sorted(CASES))
def test_sinks_render_the_batch_as_before(name: str, form: str, tmp_path: Path) -> None:
    batch = CASES[name]()
    golden = MANIFEST[name]
    assert (batch.batch_id, len(batch.lines)) == (golden["batch_id"], golden["lines"])
    rows = _rows(batch, form)
    out: dict[str, str] = {}
    for variant, withheld in VARIANTS.items():
        folder = tmp_path / form / variant
        for row in rows:
            guarded(ErpFileSink(folder), withheld).deliver(row)
        assert sorted(p.name for p in folder.iterdir()) == [
            f"{batch.batch_id}.csv",
            f"{batch.batch_id}.jsonl",
        ]
        for fmt in ("csv", "jsonl"):
            out[f"file/{variant}/{fmt}"] = _sha((folder / f"{batch.batch_id}.{fmt}").read_bytes())
        tryton = RecordingTryton(*accounts_of(batch))
        out[f"tryton/{variant}"] = _send(
            guarded(ErpBatchSink(tryton.erp()), withheld), rows, lambda t=tryton: created(t.bodies)
        )
        rest = RestRecorder()
        out[f"rest/{variant}"] = _send(
            guarded(ErpBatchSink(rest.erp()), withheld), rows, lambda r=rest: r.sent
        )
    assert out == golden["outputs"]
