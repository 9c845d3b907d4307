"""No echo (issue 16, item 7): a value in the wrong field is never repeated back.

An error text (the ACK's ERR-8, the inbox error column, `failed/*.error.txt`, work items)
names the field and the rule, never the value: a patient's name typed into FT1-11 must not
travel to every role that reads errors. A name typed into FT1-6, FT1-7 or FT1-13 is taken
(the message is sound) and waits for a mapping: its work item shows a digest, not the name
(formats/hl7v2/code_display.py); `test_a_name_in_a_wrong_ft1_field_is_echoed_nowhere`
pushes such messages through MLLP and the drop folder and scans every answer, file, inbox
error, work item, held event, API read and log line.
"""

from __future__ import annotations

import asyncio
import logging
import re
from pathlib import Path

import httpx
import pytest

from isthmus.api.http import build_app
from isthmus.app import Hub
from isthmus.config import load_settings
from isthmus.connectors.folder import DropFolder
from isthmus.connectors.mllp_client import send_messages
from isthmus.flows.file_intake import FileIntake
from isthmus.flows.hl7_inbound import classify
from isthmus.formats.hl7v2 import code_display, parse_batch, parse_message
from isthmus.formats.settlement import parse_settlement
from isthmus.runtime import start
from tests.chart import demo_config
from tests.flows.helpers import DAY, ft1, hl7, msh, pid, pv1
from tests.flows.settlement.files import settlement_csv
from tests.support import await_until, settled

NAME = "SMITHSON"
SRC = Path(__file__).resolve().parents[2] / "src" / "isthmus" / "formats"


def _dft(*segments: str) -> bytes:
    return "\r".join(
        [msh("C1", "DFT^P03"), "EVN|P03|20261102", pid("M1"), pv1("V1"), *segments]
    ).encode()


@pytest.mark.parametrize(
    "raw",
    [
        _dft(ft1(1, "T1", amount=f"{NAME}^JANE")),  # FT1-11 and FT1-12
        _dft(f"FT1|1|T1||20261102|20261102|CG|80053^T^CPT|||{NAME}|100.00&USD"),  # FT1-10
        "\r".join([msh("C2", "DFT^P03"), f"{NAME}|X"]).encode(),  # not a segment
        f"PID|{NAME}\r".encode(),  # not starting with MSH
    ],
)
def test_hl7_refusals_name_the_field_not_the_value(raw: bytes) -> None:
    inbound, _ = classify(raw, channel="mllp", peer="t", now=0.0, tenant="t", currency="USD")
    assert inbound.status == "rejected"
    assert NAME not in inbound.error, inbound.error


def test_settlement_findings_name_the_column_not_the_value() -> None:
    raw = settlement_csv([("D1", "T1", NAME, "A1", "100.00", "3.00")])
    sf = parse_settlement(raw)
    assert [f.column for f in sf.findings] == ["type"]
    assert all(NAME not in str(f) for f in sf.findings)


def test_batch_trailer_count_is_not_echoed() -> None:
    text = "\r".join(["BHS|^~\\&|EHR", msh("C1", "ADT^A08"), "EVN|A08", pid("M1"), f"BTS|{NAME}"])
    batch = parse_batch(text.encode())
    assert batch.problems and all(NAME not in str(e) for e in batch.problems)


# an f-string in an error of the formats that interpolates a field's value
_ECHO = re.compile(r"f\"[^\"]*\{[^}]*\.(value|field|get)\([^}]*\)[^}]*(!r)?\}")


def test_no_format_error_interpolates_a_field_value() -> None:
    found = []
    for path in SRC.rglob("*.py"):
        for n, line in enumerate(path.read_text().splitlines(), 1):
            if _ECHO.search(line) and ("Error" in line or "Finding" in line or "text" in line):
                found.append(f"{path.relative_to(SRC)}:{n}: {line.strip()}")
    assert not found, found


def test_message_parse_error_does_not_quote_the_line() -> None:
    with pytest.raises(Exception) as caught:
        parse_message(f"MSH|^~\\&|EHR|N|I|H|20261102||ADT^A08|C1|P|2.5.1\r{NAME} JANE".encode())
    assert NAME not in str(caught.value)


# --- a name in a wrong FT1 field, through the whole hub (issue 16, item 7) ---------------

WRONG = "SMITHSON, JANE Q"  # a written name: a comma and spaces, as no code has them
FIELDS = {  # the DFT FT1 line that carries the name in each field
    "FT1-6": ft1(1, "T6", ttype=WRONG),
    "FT1-7": ft1(1, "T7", code=WRONG),
    "FT1-11": ft1(1, "T11", amount=WRONG),
    "FT1-13": ft1(1, "T13", dept=WRONG),
}


def _wrong_messages() -> list[bytes]:
    return [
        hl7(
            msh(f"W{i}", "DFT^P03^DFT_P03"),
            f"EVN|P03|{DAY}101500",
            pid(f"W{i}"),
            pv1(f"VW{i}"),
            line,
        )
        for i, line in enumerate(FIELDS.values())
    ]


def _leaks(outputs: dict[str, str]) -> dict[str, str]:
    parts = [WRONG, WRONG.split(",", maxsplit=1)[0], WRONG.lower()]
    return {where: text for where, text in outputs.items() if any(p in text for p in parts)}


async def _through_mllp(hub: Hub, raws: list[bytes]) -> list[bytes]:
    run = await start(hub, mllp_port=0, export_every_s=3600)
    try:
        assert run.mllp is not None
        report = await send_messages("127.0.0.1", run.mllp.port, raws, connections=1, window=1)
        await await_until(lambda: settled(hub), what="the hub to apply the charges")
    finally:
        await run.stop()
    return [bytes(a) for a in report.acks]


async def _http_reads(hub: Hub) -> dict[str, str]:
    transport = httpx.ASGITransport(app=build_app(hub, {}), client=("127.0.0.1", 50000))
    out = {}
    async with httpx.AsyncClient(transport=transport, base_url="http://hub") as c:
        for path in ("/api/v1/workitems", "/api/v1/messages?status=rejected", "/metrics"):
            r = await c.get(path)
            assert r.status_code == 200, (path, r.text)
            out[f"http {path}"] = r.text
    return out


def test_a_name_in_a_wrong_ft1_field_is_echoed_nowhere(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="isthmus")
    hub = Hub.open(load_settings(demo_config(tmp_path), data_dir=tmp_path / "hub"))
    try:
        outputs: dict[str, str] = {}
        acks = asyncio.run(_through_mllp(hub, _wrong_messages()))
        for field, ack in zip(FIELDS, acks, strict=True):
            outputs[f"ack {field}"] = ack.decode("utf-8", "replace")
        assert sum("MSA|AE" in a or "MSA|AR" in a for a in outputs.values()) == 1  # FT1-11
        # the same messages as files in the drop folder: failed/*.error.txt, done/
        folder = DropFolder(
            tmp_path / "drop",
            FileIntake(hub.store, hub.bus, hub.settings),
            hub.settings,
            quiet_s=0.0,
        )
        for i, raw in enumerate(_wrong_messages()):
            (folder.inbound / f"dft{i}.hl7").write_bytes(raw.replace(b"|W", b"|F"))
        folder.run_once(0.0)
        folder.run_once(1.0)
        hub.worker().drain()
        errors = sorted(folder.failed.glob("*.error.txt"))
        assert errors, sorted(p.name for p in folder.failed.iterdir())
        for f in errors:
            outputs[f"file {f.name}"] = f.read_text()
        for m in hub.store.messages(limit=10_000):
            outputs[f"inbox error {m.control_id}"] = m.error
        items = hub.store.work_items(None)
        kinds = {w.kind for w in items}
        assert {
            "unmapped_transaction_type",
            "unmapped_charge_code",
            "unmapped_department",
        } <= kinds, kinds  # not vacuous: FT1-6, -7, -13
        for w in items:
            outputs[f"work item {w.id}"] = " ".join(
                (w.kind, w.queue, w.key, w.event_id, w.correlation_id, w.detail)
            )
            for h in hub.store.held_events(w.event_id):
                outputs[f"held {h.event_id}"] = f"{h.ref} {h.key}"
        outputs |= asyncio.run(_http_reads(hub))
        outputs["log"] = caplog.text
        # the stored messages keep the name (for the roles that read patient data)
        assert any(WRONG in m.raw.decode() for m in hub.store.messages(limit=10_000))
    finally:
        hub.close()
    assert not _leaks(outputs), _leaks(outputs)


@pytest.mark.parametrize(
    ("table", "value", "shown_as_is"),
    [
        ("charge_codes", "80053", True),
        ("charge_codes", "J1100", True),
        ("department_cost_center", "LAB", True),
        ("charge_codes", "99213-25", True),
        ("facility_company", "GHHSFacility", True),
        ("payee_company", "1234567890", True),
        ("payee_company", "b0e04623-b02c-3f8b-92ea-943fc4db60da", True),  # a FHIR id
        ("charge_codes", "SMITHSON, JANE", False),
        ("department_cost_center", "Jane Smithson", False),
        ("charge_codes", "ABCDEFGHIJKLMNOPQRSTU", False),  # longer than a CWE identifier
        ("transaction_types", "CG ", False),
        ("charge_codes", "O'BRIEN", False),
        ("charge_codes", "SMITHSON^JANE", False),
        ("charge_codes", "", False),
    ],
)
def test_what_looks_like_a_code(table: str, value: str, shown_as_is: bool) -> None:
    assert code_display.looks_like_code(table, value) is shown_as_is
    display = code_display.shown(table, value)
    assert (display == value) is shown_as_is
    if not shown_as_is and value:
        assert value not in display and "sha256" in display


def test_a_masked_code_leaves_no_copy_in_the_detail() -> None:
    code, detail = code_display.masked(
        "charge_codes", WRONG, f"charge code {WRONG!r} has no revenue account ({WRONG})"
    )
    assert WRONG not in code and WRONG not in detail and code in detail
    assert code_display.masked("charge_codes", "80053", "code '80053'") == ("80053", "code '80053'")
