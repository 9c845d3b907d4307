"""PHI minimization (DESIGN, governance): after a whole hospital day, nothing that leaves
for the ERP (the exported files, the outbox payloads, the sealed batch bodies) nor the
flows' log records carries a patient's name, birth date or MRN."""

from __future__ import annotations

import logging
import re
from pathlib import Path

import pytest

from isthmus.connectors.erp_file import ErpFileSink
from isthmus.demo.ehr_day import hospital_day
from isthmus.flows.export import Dispatcher, seal_batches
from isthmus.flows.retry import RetryPolicy
from isthmus.formats.hl7v2 import HL7ParseError, parse_message
from tests.flows.helpers import Rig


def phi_of(raws: list[bytes]) -> set[str]:
    """Family and given names (PID-5.1/5.2), birth dates (PID-7) and MRNs (PID-3.1, MRG-1.1)
    of every message, read with the project's own parser."""
    found: set[str] = set()
    for raw in raws:
        try:
            msg = parse_message(raw)
        except HL7ParseError:
            continue
        for path in ("PID-5.1", "PID-5.2", "PID-7.1", "PID-3.1", "MRG-1.1"):
            value = msg.get(path).strip()
            if value:
                found.add(value)
    return found


_WORD = re.compile(r"[A-Za-z0-9]+")


def leaks(text: str, phi: set[str]) -> set[str]:
    """The PHI values that occur in `text` as whole words (an MRN inside a hash is no leak)."""
    words = set(_WORD.findall(text))
    return {v for v in phi if (v in words if _WORD.fullmatch(v) else v in text)}


@pytest.mark.parametrize("policy", ["summary", "detailed"])
def test_nothing_exported_carries_phi(
    rig: Rig, tmp_path: Path, policy: str, caplog: pytest.LogCaptureFixture
) -> None:
    msgs = hospital_day(messages=600, seed=21)
    raws = [m.raw for m in msgs]
    phi = phi_of(raws)
    # sanity: the scan knows what to look for, and would see it in a message
    assert len(phi) > 100
    assert any(v.startswith("M0") for v in phi) and any(v.isdigit() for v in phi)
    assert leaks(raws[0].decode(), phi)

    caplog.set_level(logging.DEBUG, logger="isthmus")
    rig.ingest(raws)
    rig.drain()
    made = seal_batches(rig.store, policy_of=lambda ch: policy, now=1_800_000_000.0)
    assert made
    folder = tmp_path / "exports"
    Dispatcher(rig.store, ErpFileSink(folder), RetryPolicy()).run_once(1_800_000_000.0)

    files = sorted(folder.iterdir())
    assert len(files) == 2 * len(made)
    outbound = [p.read_text() for p in files]
    outbound += [i.payload.decode() for i in rig.store.outbox_items()]
    outbound += [(rig.store.batch_body(b.batch_id) or b"").decode() for b in made]
    outbound += [r.getMessage() for r in caplog.records]
    found = {v for text in outbound for v in leaks(text, phi)}
    assert found == set()
    if policy == "detailed":  # the ERP gets opaque tokens instead
        assert any("PA-" in text for text in outbound)
