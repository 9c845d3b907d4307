"""The batches and allow-list variants of the ERP golden tests (not a test module).

Golden outputs (tests/connectors/erp/golden/manifest.json) were captured from the sinks as they were
before a batch became one typed outbox row (csv and jsonl rows, each sink reading text
back): the files written, the Tryton JSON-RPC `account.move.create` bodies and the REST
move bodies, for each batch below and each allow-list variant. The demo's batches are the
files `isthmus demo` wrote (tests/connectors/erp/golden/demo/*.jsonl.gz); the others are built here,
with the awkward values a CSV or JSON writer must quote or escape.
"""

from __future__ import annotations

import gzip
import json
from collections.abc import Callable
from datetime import date
from decimal import Decimal
from pathlib import Path

import httpx
from tests.ledger.builders import make_charge, post

from isthmus.connectors.erp_rest import RestErp
from isthmus.governance import allowlist
from isthmus.ledger.batch import JournalBatch, build_batch
from isthmus.ledger.batch_file import batch_from_jsonl
from isthmus.ledger.journal import Dimensions, JournalEntry, JournalLine

GOLDEN = Path(__file__).parent / "golden"
LEAN = frozenset(allowlist.REQUIRED | {"company"})
VARIANTS: dict[str, frozenset[str]] = {
    "full": frozenset(),
    "lean": allowlist.OPTIONAL - LEAN,
    "nokeys": frozenset({"source_entries", "correlation_ids", "account_token"}),
}


def _entry(
    key: str, day: date, lines: list[tuple[str, str, str, str, Dimensions]], corr: str
) -> JournalEntry:
    return JournalEntry(
        entry_key=key,
        posted_on=day,
        period=f"{day.year:04d}-{day.month:02d}",
        channel="odd",
        memo="",
        correlation_id=corr,
        causation_id=f"c-{key}",
        lines=tuple(
            JournalLine(account=a, debit=Decimal(d), credit=Decimal(c), currency=cur, dims=dims)
            for a, d, c, cur, dims in lines
        ),
    )


def _charges(policy: str) -> JournalBatch:
    entries = [
        post(
            make_charge(
                f"{100 + 7 * i}.{i:02d}",
                kind="CD" if i % 4 == 3 else "CG",
                txn=f"T{i}",
                service_date=date(2024, 3, 10 + i % 3),
            ),
            key=f"evt-{i}:charge",
            token=f"tok-{i % 5}",
            cost_center=("CC10", "CC20")[i % 2],
            company=("C1", "C2")[i % 3 == 0],
            service_line=("Cardiology", "Lab")[i % 2],
        )
        for i in range(12)
    ]
    return build_batch(
        f"JB-dft-{policy}",
        entries,
        policy=policy,  # type: ignore[arg-type]
        channel="dft-main",
    )


def _currencies() -> JournalBatch:
    entries = [
        post(
            make_charge(amount, currency=cur, txn=f"T{i}"), key=f"evt-{i}:charge", token=f"tok-{i}"
        )
        for i, (amount, cur) in enumerate(
            [("10.00", "USD"), ("12.50", "EUR"), ("1500", "JPY"), ("0.01", "USD")]
        )
    ]
    return build_batch("JB-fx-1", entries, policy="summary", channel="dft-main")


def _awkward() -> JournalBatch:
    """Values with commas, quotes, a newline, non-ASCII text and a netted-to-zero group."""
    odd = Dimensions(
        company="C,1", cost_center='CC "10"', service_line="Cardio\nlogy é", account_token="tok;ü"
    )
    plain = Dimensions(company="C,1", cost_center="CC9")
    entries = [
        _entry(
            "k,1",
            date(2024, 2, 29),
            [("4000", "0.00", "5.10", "USD", odd), ("1200", "5.10", "0.00", "USD", plain)],
            'corr "a"',
        ),
        _entry(
            'k"2',
            date(2024, 2, 29),
            [("4000", "5.10", "0.00", "USD", odd), ("1200", "0.00", "5.10", "USD", plain)],
            "corr é",
        ),
        _entry(
            "k3",
            date(2024, 3, 1),
            [
                ("4000", "0.00", "1234567.89", "USD", odd),
                ("1200", "1234567.89", "0.00", "USD", plain),
            ],
            "x",
        ),
    ]
    return build_batch("JB-odd-1", entries, policy="detailed", channel="odd")


def _awkward_summary() -> JournalBatch:
    return build_batch("JB-odd-2", _awkward_entries(), policy="summary", channel="odd")


def _awkward_entries() -> list[JournalEntry]:
    odd = Dimensions(company="C,1", cost_center='CC "10"', service_line="Cardio\nlogy é")
    plain = Dimensions(company="C,1", cost_center="CC9")
    return [
        _entry(
            "k1",
            date(2024, 2, 29),
            [("4000", "0.00", "5.10", "USD", odd), ("1200", "5.10", "0.00", "USD", plain)],
            "a",
        ),
        _entry(
            "k2",
            date(2024, 2, 29),
            [("4000", "5.10", "0.00", "USD", odd), ("1200", "0.00", "5.10", "USD", plain)],
            "b",
        ),
        _entry(
            "k3",
            date(2024, 2, 29),
            [("4000", "0.00", "7.00", "USD", odd), ("1200", "7.00", "0.00", "USD", plain)],
            "c",
        ),
    ]


def _demo(name: str) -> Callable[[], JournalBatch]:
    def load() -> JournalBatch:
        return batch_from_jsonl(gzip.decompress((GOLDEN / "demo" / name).read_bytes()).decode())

    return load


CASES: dict[str, Callable[[], JournalBatch]] = {
    "detailed": lambda: _charges("detailed"),
    "summary": lambda: _charges("summary"),
    "currencies": _currencies,
    "awkward": _awkward,
    "awkward-summary": _awkward_summary,
    **{
        f"demo-{p.name.removesuffix('.jsonl.gz')}": _demo(p.name)
        for p in sorted((GOLDEN / "demo").glob("*.jsonl.gz"))
    },
}


class RestRecorder:
    """A REST ERP (httpx.MockTransport) holding nothing, recording each move it is sent."""

    def __init__(self) -> None:
        self.sent: list[bytes] = []

    def handle(self, request: httpx.Request) -> httpx.Response:
        if request.method == "GET":
            return httpx.Response(200, json={"references": []})
        key = request.headers.get("Idempotency-Key", "")
        self.sent.append(key.encode() + b"\n" + request.content)
        return httpx.Response(201, json={})

    def erp(self) -> RestErp:
        return RestErp("http://erp.test/api", "tok", transport=httpx.MockTransport(self.handle))


def accounts_of(batch: JournalBatch) -> tuple[list[str], list[str]]:
    return (
        sorted({x.account for x in batch.lines}),
        sorted({x.dims.cost_center for x in batch.lines if x.dims.cost_center}),
    )


def created(bodies: list[bytes]) -> list[bytes]:
    """The JSON-RPC bodies that create moves (login and look-ups left out)."""
    return [b for b in bodies if json.loads(b)["method"] == "model.account.move.create"]
