"""Every 835 of the shared corpus: ingested, its balancing findings reported, the books
balanced, and the cash posted equal to what the payer says it paid (BPR02)."""

from __future__ import annotations

import os
from decimal import Decimal
from pathlib import Path

import pytest

from isthmus.flows import remit_holds
from isthmus.flows.denial_codes import is_denial
from isthmus.flows.relay import relay_unpublished
from isthmus.formats.x12 import Level, parse_835
from isthmus.model import ClaimRemitted, ProviderAdjusted
from tests.flows.helpers import Rig, hl7, msh, pid, pv1
from tests.flows.remit.helpers import ingest_x12

CORPUS = Path(__file__).resolve().parents[3] / ".." / "shared" / "corpora" / "x12"
FILES = sorted(CORPUS.rglob("*.835")) if CORPUS.is_dir() else []


def _require_corpus() -> None:
    if not FILES:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"no 835 corpus under {CORPUS}; CI=true requires it")
        pytest.skip(f"no 835 corpus under {CORPUS}")


def test_the_corpus_is_there() -> None:
    _require_corpus()
    assert len(FILES) >= 5


@pytest.mark.parametrize("path", FILES, ids=[p.name for p in FILES])
def test_corpus_835_ingests_posts_and_balances(rig: Rig, path: Path) -> None:
    raw = path.read_bytes()
    batch = parse_835(raw)
    pcns = sorted({c.patient_control_number for r in batch.remittances for c in r.claims})
    rig.ingest(
        [
            hl7(
                msh(f"B{i}", "BAR^P01^BAR_P01"),
                "EVN|P01|20261102101500",
                pid(f"9{i:05d}", account=pcn),
                pv1(f"V{i}"),
            )
            for i, pcn in enumerate(pcns)
        ]
    )
    rig.drain()  # the accounts first: a payment resolves its account when processed
    for r in batch.remittances:
        if r.payee is not None:
            rig.store.set_mapping_override("payee_company", r.payee.npi or r.payee.tin, "C100")
    intake = ingest_x12(rig, raw)
    assert intake.ack.startswith(b"ISA") and b"AK9*" in intake.ack
    expected_balance = [x for x in batch.findings if x.level is Level.BALANCE]
    assert intake.balance_findings == expected_balance  # reported, not hidden
    if expected_balance:  # held: nothing posts until a person releases it
        assert intake.inbound.status == "held", intake.inbound.error
        rig.drain()
        assert not list(rig.store.journal_lines())
        remit_holds.release(
            rig.store,
            intake.inbound.control_id,
            actor="pat",
            reason="payer confirmed the amounts by phone",
            now=1.0,
        )
        relay_unpublished(rig.store, rig.bus)
    else:
        assert intake.inbound.status == "accepted", intake.inbound.error
    rig.drain()
    assert rig.balanced()
    claims = [k.event for k in intake.events if isinstance(k.event, ClaimRemitted)]
    plbs = [k.event for k in intake.events if isinstance(k.event, ProviderAdjusted)]
    assert len(claims) == sum(len(r.claims) for r in batch.remittances)
    cash = sum(
        (ln.debit - ln.credit for ln in rig.store.journal_lines() if ln.account == "1010"),
        Decimal(0),
    )
    expected = sum((c.paid for c in claims if not is_denial(c)), Decimal(0)) - sum(
        (p.amount for p in plbs), Decimal(0)
    )
    assert cash == expected
    if not expected_balance and not any(is_denial(c) for c in claims):
        assert cash == sum((r.amount for r in batch.remittances), Decimal(0))  # BPR02
    open_items = rig.store.work_items("open")
    assert all(w.kind == "denial" for w in open_items), [w.detail for w in open_items]
