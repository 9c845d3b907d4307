"""PHI minimization (issue 6, item 5): nothing that leaves the hub carries PHI of its inputs.

The public corpora go through a real in-process hub: every HL7 v2 message of
../shared/corpora/hl7v2 (files split with `split_messages`) and a simulated hospital day
(600 messages) over the MLLP listener, every X12 835/837 of ../shared/corpora/x12 through
`isthmus ingest`; then `hub.export()` seals and delivers the ERP batches (file sink).

PHI values searched for, taken from the inputs themselves:

* HL7: PID-5 family and given names, PID-7 birth date (its first 8 characters, CCYYMMDD),
  PID-3.1 MRNs, PID-11.1 street, PID-13.1 phone, MRG-1.1 prior MRN, NK1-2 names,
  DG1-3.1/.2 diagnosis code and text (every repetition);
* X12: NM103/NM104 names and NM109 member id of NM1*QC (patient) and NM1*IL (subscriber),
  DMG02 birth dates, and N301/N302 addresses of those two parties (provider and payer
  addresses are not PHI and are not searched for).

Values too short or too generic to mean anything are ignored: under 4 characters, numbers
(digits with separators) of fewer than 6 digits, and common words or placeholders
(TEST, PATIENT, UNKNOWN, ...; see GENERIC). A match is a case-insensitive substring; a
purely alphabetic value (a name) must not be part of a longer run of letters, so MARY is
not found in "summary" but is in "MARY", "mary_12" or "Smith^Mary"; a purely numeric one
(an MRN) not part of a longer run of digits, so 123456789 is not found in the NPI
1234567893. A value that is also a sender's identity (MSH-3 or MSH-4 of any message: the
application and facility, echoed in ACKs and reuse errors by design) is not patient data
and is not searched for.

The misplaced names (issue 16, no echo): names of the corpus typed into FT1-6, FT1-7,
FT1-11 and FT1-13 of extra DFT messages (`misplaced`). Besides what leaves the hub, the
texts every role reads are scanned: the ACKs' MSA-3 and ERR segments, the inbox error
column and the work items (kind, queue and detail; the key and ref of a missing mapping's
item).

What is scanned (what leaves the hub): every file under <data_dir>/exports/ and
<data_dir>/outbound/ (ERP batches, 999/TA1 acknowledgements), every outbox payload, every
journal entry (accounts, dimensions, memo, lines), the HTTP /metrics JSON and the
/api/v1/ledger/trial-balance JSON, every log record captured at DEBUG (message with its
arguments rendered, and the formatted text with tracebacks), every request body the
Tryton JSON-RPC and REST ERP adapters would send for the sealed batches (recording fakes),
and the alert webhook bodies (evaluated ten days later, so the work queues fire).

The scan must not be vacuous: the PHI list is long, and the raw inbox messages (which hold
PHI by design and never leave the hub) contain most of it.

Runs through `Hub.open`, so on the embedded adapters and, in the second CI pass, on
PostgreSQL + NATS.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
import os
import re
import time
from collections.abc import Iterable
from pathlib import Path

import httpx
import msgspec
import pytest

from isthmus.api.http import build_app
from isthmus.app import Hub
from isthmus.cli.main import run as cli_run
from isthmus.config import load_settings
from isthmus.connectors.erp_ports import batches_of
from isthmus.connectors.erp_rest import RestErp
from isthmus.connectors.mllp_client import send_messages
from isthmus.demo.ehr_day import hospital_day
from isthmus.formats.hl7v2 import HL7ParseError, parse_message, split_messages
from isthmus.formats.x12 import X12Error, read
from isthmus.observe.alerts import Alerter
from isthmus.runtime import start
from tests.chart import demo_config
from tests.governance.tryton_fake import RecordingTryton
from tests.support import await_until, settled

REPO = Path(__file__).resolve().parents[2]
HL7_CORPUS = (REPO / ".." / "shared" / "corpora" / "hl7v2").resolve()
X12_CORPUS = (REPO / ".." / "shared" / "corpora" / "x12").resolve()
X12_SUFFIXES = (".835", ".837", ".837i")

GENERIC = frozenset(
    {
        "TEST",
        "TESTING",
        "PATIENT",
        "UNKNOWN",
        "NONE",
        "NULL",
        "DOE",
        "JOHN",
        "JANE",
        "MALE",
        "FEMALE",
        "OTHER",
        "MOTHER",
        "FATHER",
        "SPOUSE",
        "CHILD",
        "SELF",
        "BABY",
        "GIRL",
        "BOY",
        "HOME",
        "WORK",
        "MAIN",
        "STREET",
        "CITY",
        "NAME",
        "FIRST",
        "LAST",
        "SMITH",
    }
)
MIN_PHI_VALUES = 150  # the corpora give several hundred; far fewer means extraction broke


def _require(path: Path) -> None:
    if path.is_dir():
        return
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"no corpus at {path}; CI=true requires it")
    pytest.skip(f"no corpus at {path}")


def meaningful(value: str) -> str | None:
    v = value.strip()
    if len(v) < 4 or v.upper() in GENERIC:
        return None
    if re.fullmatch(r"[\d\s().+/-]+", v) and len(re.sub(r"\D", "", v)) < 6:
        return None
    return v


def hl7_phi(raw: str) -> set[str]:
    try:
        msg = parse_message(raw)
    except HL7ParseError:
        return set()
    out: list[str] = []
    for pid in msg.segments_named("PID"):
        for rep in range(1, len(pid.repetitions(3)) + 1):
            out.append(pid.value(3, 1, 1, rep))
        for rep in range(1, len(pid.repetitions(5)) + 1):
            out += [pid.value(5, 1, 1, rep), pid.value(5, 2, 1, rep)]
        out.append(pid.value(7)[:8])
        for field in (11, 13):
            for rep in range(1, len(pid.repetitions(field)) + 1):
                out.append(pid.value(field, 1, 1, rep))
    for mrg in msg.segments_named("MRG"):
        out.append(mrg.value(1))
    for nk1 in msg.segments_named("NK1"):
        for rep in range(1, len(nk1.repetitions(2)) + 1):
            out += [nk1.value(2, 1, 1, rep), nk1.value(2, 2, 1, rep)]
    for dg1 in msg.segments_named("DG1"):
        out += [dg1.value(3, 1), dg1.value(3, 2)]
    return {m for v in out if (m := meaningful(v))}


def senders(hl7: list[bytes]) -> set[str]:
    """MSH-3.1 and MSH-4.1 of every message: who sent it, not whom it is about."""
    out: set[str] = set()
    for raw in hl7:
        try:
            msg = parse_message(raw)
        except HL7ParseError:
            continue
        out |= {v for v in (msg.get("MSH-3.1"), msg.get("MSH-4.1")) if v}
    return out


def x12_phi(raw: bytes) -> set[str]:
    try:
        ic = read(raw)
    except X12Error:
        return set()
    out: list[str] = []
    party = ""
    for seg in ic:
        if seg.id == "NM1":
            party = seg.element(1)
            if party in ("QC", "IL"):
                out += [seg.element(3), seg.element(4), seg.element(9)]
        elif seg.id == "DMG":
            out.append(seg.element(2))
        elif seg.id == "N3" and party in ("QC", "IL"):
            out += [seg.element(1), seg.element(2)]
    return {m for v in out if (m := meaningful(v))}


def hits(phi: Iterable[str], text: str) -> set[str]:
    low = text.lower()
    found = set()
    for v in phi:
        lv = v.lower()
        if lv not in low:
            continue
        if lv.isalpha() and not re.search(rf"(?<![a-z]){re.escape(lv)}(?![a-z])", low):
            continue  # a name inside a longer word ("mary" in "summary") is not that name
        if lv.isdigit() and not re.search(rf"(?<![0-9]){lv}(?![0-9])", low):
            continue  # a number inside a longer number (an NPI, an amount) is not that one
        found.add(v)
    return found


async def _idle(hub: Hub) -> None:
    await await_until(lambda: settled(hub), what="the hub to apply what it took")


async def _http(hub: Hub) -> dict[str, str]:
    transport = httpx.ASGITransport(app=build_app(hub, {}))
    out = {}
    async with httpx.AsyncClient(transport=transport, base_url="http://hub") as c:
        for path in ("/metrics", "/api/v1/status", "/api/v1/ledger/trial-balance"):
            r = await c.get(path)
            assert r.status_code == 200, (path, r.status_code, r.text)
            out[path] = r.text
    return out


def misplaced(hl7: list[bytes], count: int = 8) -> list[bytes]:
    """DFT messages carrying names of the corpus in fields that hold no name (issue 16,
    no echo): "FAMILY, GIVEN" in FT1-6, FT1-7, FT1-11 and FT1-13, in turn, under a PID of
    no one. The message is sound but for that field: FT1-11 is refused (AE), the others
    wait for a mapping in a work item."""
    names: list[str] = []
    for raw in hl7:
        try:
            msg = parse_message(raw)
        except HL7ParseError:
            continue
        pid = msg.segment("PID")
        family, given = (pid.value(5, 1), pid.value(5, 2)) if pid is not None else ("", "")
        if (
            meaningful(family)
            and meaningful(given)
            and family.isalpha()
            and f"{family}, {given}" not in names
        ):
            names.append(f"{family}, {given}")
        if len(names) == count:
            break
    out = []
    for i, name in enumerate(names):
        ft1 = [
            "FT1",
            "1",
            f"TM{i}",
            "",
            "20261102",
            "20261102",
            "CG",
            "80053^TEST^CPT",
            "",
            "",
            "1",
            "100.00&USD",
            "100.00&USD",
            "LAB^DEPT",
        ]
        ft1[(6, 7, 11, 13)[i % 4]] = name
        out.append(
            "\r".join(
                [
                    f"MSH|^~\\&|EHR|NORTH|ISTHMUS|HUB|20261102101500||DFT^P03^DFT_P03|MISPLACED{i}"
                    "|P|2.5.1",
                    "EVN|P03|20261102101500",
                    f"PID|1||ZZ{i:04d}^^^HOSPMRN^MR||NOONE^NOBODY||19000101|U||||||||||AZZ{i}",
                    f"PV1|1|O|OPC^1^A^NORTH|R||||||MED|||||||||VZZ{i}^^^NORTH^VN",
                    "|".join(ft1),
                ]
            ).encode()
            + b"\r"
        )
    return out


def _ack_texts(ack: bytes) -> str:
    """The texts of an ACK: MSA-3 and the ERR segments. (MSH and MSA-2 repeat the sender's
    own MSH-3/4 and MSH-10, as HL7 v2 2.9 asks: the sender's identifiers, not a field's
    content.)"""
    out = []
    for seg in ack.decode("utf-8", "replace").replace("\n", "\r").split("\r"):
        fields = seg.split("|")
        if fields[0] == "MSA":
            out.append("|".join(fields[3:]))
        elif fields[0] == "ERR":
            out.append(seg)
    return "\n".join(out)


async def _push(hub: Hub, hl7: list[bytes], x12: list[Path]) -> dict[str, str]:
    run = await start(hub, mllp_port=0, export_every_s=3600)
    try:
        assert run.mllp is not None
        report = await send_messages("127.0.0.1", run.mllp.port, hl7, connections=4, window=8)
        assert len(report.acks) == len(hl7)
        assert all(report.acks), "a message got no answer"
        acks = {f"ack {i}": _ack_texts(bytes(a)) for i, a in enumerate(report.acks)}
        code = await asyncio.to_thread(
            cli_run, ["ingest", *map(str, x12), "--data-dir", str(hub.settings.data_dir)]
        )
        assert code in (0, 1), code  # 1: some interchange refused (answered with a 999)
        await _idle(hub)
    finally:
        await run.stop()
    hub.export()
    return acks | await _http(hub)


def test_nothing_that_leaves_the_hub_carries_phi(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    _require(HL7_CORPUS)
    _require(X12_CORPUS)
    caplog.set_level(logging.DEBUG, logger="isthmus")

    hl7: list[bytes] = []
    for path in sorted(HL7_CORPUS.rglob("*.hl7")):
        try:
            hl7 += [m.encode() for m in split_messages(path.read_bytes())]
        except HL7ParseError:
            hl7.append(path.read_bytes())  # malformed on purpose: sent as one block
    corpus_count = len(hl7)
    hl7 += [m.raw for m in hospital_day(messages=600)]
    wrong = misplaced(hl7)
    assert len(wrong) == 8, wrong
    hl7 += wrong
    x12 = sorted(p for p in X12_CORPUS.rglob("*") if p.suffix in X12_SUFFIXES)
    assert corpus_count >= 50 and len(x12) >= 20, (corpus_count, len(x12))

    phi: set[str] = set()
    for raw in hl7:
        phi |= hl7_phi(raw.decode("utf-8", "replace"))
    phi -= senders(hl7)
    for path in x12:
        phi |= x12_phi(path.read_bytes())
    assert len(phi) >= MIN_PHI_VALUES, sorted(phi)

    hub = Hub.open(load_settings(demo_config(tmp_path), data_dir=tmp_path / "hub"))
    try:
        http = asyncio.run(_push(hub, hl7, x12))
        data = hub.settings.data_dir
        leaving: dict[str, str] = {}
        for sub in ("exports", "outbound"):
            for f in sorted((data / sub).rglob("*")):
                if f.is_file():
                    leaving[f"file {f.relative_to(data)}"] = f.read_text("utf-8", "replace")
        for item in hub.store.outbox_items():
            leaving[f"outbox {item.id} {item.destination}"] = (
                f"{item.batch_id} {item.destination}\n" + item.payload.decode("utf-8", "replace")
            )
        leaving["journal lines"] = "\n".join(
            msgspec.json.encode(line).decode() for line in hub.store.journal_lines()
        )
        entries = hub.store.entries()
        leaving["journal entries"] = "\n".join(msgspec.json.encode(e).decode() for e in entries)
        for route, body in http.items():
            leaving[f"http {route}"] = body  # and the ACKs ("ack <n>")
        # what every role reads: the inbox error texts and the work items
        for m in hub.store.messages(limit=1_000_000):
            if m.error:
                leaving[f"inbox error {m.channel} {m.control_id}"] = m.error
        items = hub.store.work_items(None, limit=1_000_000)
        for w in items:
            shown = [w.kind, w.queue, w.detail]
            if w.event_id.startswith("mapping:"):  # a missing mapping's own item
                shown += [w.key, w.event_id]
            leaving[f"work item {w.id}"] = " ".join(shown)
        leaving["tryton rpc"], leaving["rest erp"] = _erp_wire(hub)
        leaving["alert webhooks"] = _alerts(hub)
        for i, rec in enumerate(caplog.records):
            leaving[f"log {i} {rec.name}"] = f"{rec.getMessage()} {rec.args!r}"
        leaving["log text"] = caplog.text
        control = "\n".join(
            m.raw.decode("utf-8", "replace") for m in hub.store.messages(limit=1_000_000)
        )
        stats = hub.store.counts()
    finally:
        hub.close()

    # not vacuous: the ERP got batches, the logs said something, the inbox holds the PHI
    assert "account.move" in leaving["tryton rpc"] and '"lines"' in leaving["rest erp"]
    assert '"status": "firing"' in leaving["alert webhooks"], leaving["alert webhooks"]
    assert any(k.startswith("file exports/") for k in leaving), sorted(leaving)
    assert any(k.startswith("file outbound/") for k in leaving), sorted(leaving)
    assert entries and stats["journal_lines"] > 0, stats
    assert {w.kind for w in items} >= {
        "unmapped_transaction_type",
        "unmapped_charge_code",
        "unmapped_department",
    }  # the misplaced names waited
    assert caplog.records
    seen = hits(phi, control)
    assert len(seen) >= 0.8 * len(phi), sorted(phi - seen)

    leaks = {where: sorted(found) for where, text in leaving.items() if (found := hits(phi, text))}
    assert not leaks, {w: (f, _ctx(leaving[w], f)) for w, f in leaks.items()}


def _erp_wire(hub: Hub) -> tuple[str, str]:
    """What the Tryton JSON-RPC and the REST adapters would put on the wire for every
    sealed batch: each batch posted through the real adapter to a recording fake."""
    batches = batches_of(hub.store.outbox_items())
    assert batches
    accounts = sorted({x.account for b in batches for x in b.lines})
    centers = sorted({x.dims.cost_center for b in batches for x in b.lines if x.dims.cost_center})
    tryton = RecordingTryton(accounts, centers)
    erp = tryton.erp()
    rest_bodies: list[bytes] = []

    def rest(request: httpx.Request) -> httpx.Response:
        rest_bodies.append(request.url.path.encode() + b" " + request.content)
        if request.method == "GET":
            return httpx.Response(200, json=[])
        return httpx.Response(201, json={"id": len(rest_bodies)})

    rest_erp = RestErp("http://erp.test", "t", transport=httpx.MockTransport(rest))
    for b in batches:
        erp.post_batch(b)
        rest_erp.post_batch(b)
    return tryton.sent(), "\n".join(x.decode("utf-8", "replace") for x in rest_bodies)


def _alerts(hub: Hub) -> str:
    """The alert webhook bodies, ten days on (every open work queue is then old)."""
    sent: list[dict[str, object]] = []
    settings = dataclasses.replace(hub.settings.alerts, webhook_url="http://alerts.test/")
    Alerter(
        hub.store, hub.bus, settings, hub.settings.sla, post=lambda _url, body: sent.append(body)
    ).run_once(time.time() + 10 * 86400)
    return "\n".join(json.dumps(b) for b in sent)


def _ctx(text: str, found: list[str]) -> list[str]:
    """Where each value sits in the text, for the failure message."""
    low = text.lower()
    out = []
    for v in found:
        i = low.find(v.lower())
        out.append(text[max(0, i - 40) : i + len(v) + 40])
    return out
