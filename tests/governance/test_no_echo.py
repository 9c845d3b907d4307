"""No echo (issue 16, item 7): a value in the wrong field is never repeated back.

An error text (the ACK's ERR-8, the inbox error column, `failed/*.error.txt`, work items)
names the field and the rule, never the value: a patient's name typed into FT1-11 must not
travel to every role that reads errors.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from isthmus.flows.inbox import classify
from isthmus.formats.hl7v2 import parse_batch, parse_message
from isthmus.formats.settlement import parse_settlement
from tests.flows.helpers import ft1, msh, pid, pv1
from tests.settlement.files import settlement_csv

NAME = "SMITHSON"
SRC = Path(__file__).resolve().parents[2] / "src" / "isthmus" / "formats"


def _dft(*segments: str) -> bytes:
    return "\r".join([msh("C1", "DFT^P03"), "EVN|P03|20261102", pid("M1"), pv1("V1"),
                      *segments]).encode()


@pytest.mark.parametrize("raw", [
    _dft(ft1(1, "T1", amount=f"{NAME}^JANE")),  # FT1-11 and FT1-12
    _dft(f"FT1|1|T1||20261102|20261102|CG|80053^T^CPT|||{NAME}|100.00&USD"),  # FT1-10
    "\r".join([msh("C2", "DFT^P03"), f"{NAME}|X"]).encode(),  # not a segment
    f"PID|{NAME}\r".encode(),  # not starting with MSH
])
def test_hl7_refusals_name_the_field_not_the_value(raw: bytes) -> None:
    inbound, _ = classify(raw, channel="mllp", peer="t", now=0.0, tenant="t",
                          currency="USD")
    assert inbound.status == "rejected"
    assert NAME not in inbound.error, inbound.error


def test_settlement_findings_name_the_column_not_the_value() -> None:
    raw = settlement_csv([("D1", "T1", NAME, "A1", "100.00", "3.00")])
    sf = parse_settlement(raw)
    assert [f.column for f in sf.findings] == ["type"]
    assert all(NAME not in str(f) for f in sf.findings)


def test_batch_trailer_count_is_not_echoed() -> None:
    text = "\r".join(["BHS|^~\\&|EHR", msh("C1", "ADT^A08"), "EVN|A08", pid("M1"),
                      f"BTS|{NAME}"])
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
