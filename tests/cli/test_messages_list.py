"""`isthmus messages list`: newest first, its filters, its cursor, its JSON (issue 15).

The JSON is one page, `{"messages": [...], "next": cursor or null}`; each row has the
identity, type, status, ACK and time of a message, never its raw bytes or a patient field.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from isthmus.cli.main import run
from tests.flows.helpers import adt, charge

ROW = {"id", "channel", "control_id", "type", "status", "ack", "received_at", "error"}


def _south(raw: bytes) -> bytes:
    return raw.replace(b"|EHR|NORTH|", b"|EHR|SOUTH|", 1)


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Five messages in this order: ADT A04 (A1), DFT (C1), ADT A08 from SOUTH (A2),
    an unreadable DFT (rejected), DFT from SOUTH reusing MSH-10 C1."""
    root = tmp_path_factory.mktemp("list")
    raws = [
        adt("A1", "M1"),
        charge("C1", "M1"),
        _south(adt("A2", "M2", trigger="A08")),
        b"MSH|^~\\&|EHR|NORTH|ISTHMUS|HUB|20261102||DFT^P03|BAD1|P|2.5.1\rPID|x\r",
        _south(charge("C1", "M2")),
    ]
    files = []
    for i, raw in enumerate(raws):
        f = root / f"m{i}.hl7"
        f.write_bytes(raw)
        files.append(str(f))
    assert run(["ingest", *files, "--data-dir", str(root / "data"), "--json"]) == 1  # BAD1
    return root / "data"


def _list(capsys: pytest.CaptureFixture[str], data: Path, *argv: str, code: int = 0) -> Any:
    capsys.readouterr()
    rc = run(["messages", "list", *argv, "--data-dir", str(data), "--json"])
    out, err = capsys.readouterr()
    assert rc == code, (rc, out, err)
    return json.loads(out) if code == 0 else err


def _ids(page: dict[str, Any]) -> list[str]:
    return [m["control_id"] for m in page["messages"]]


def test_newest_first_in_one_page(data: Path, capsys: pytest.CaptureFixture[str]) -> None:
    page = _list(capsys, data)
    assert set(page) == {"messages", "next"} and page["next"] is None
    assert all(set(m) == ROW for m in page["messages"])
    assert _ids(page) == [
        "EHR^SOUTH:C1",
        "EHR^NORTH:BAD1",
        "EHR^SOUTH:A2",
        "EHR^NORTH:C1",
        "EHR^NORTH:A1",
    ]
    assert "M1" not in json.dumps(page) and "DOE" not in json.dumps(page)  # no PHI


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["--status", "rejected"], ["EHR^NORTH:BAD1"]),
        (
            ["--channel", "mllp", "--status", "accepted"],
            ["EHR^SOUTH:C1", "EHR^SOUTH:A2", "EHR^NORTH:C1", "EHR^NORTH:A1"],
        ),
        (["--channel", "x12"], []),
        (["--type", "ADT"], ["EHR^SOUTH:A2", "EHR^NORTH:A1"]),
        (["--type", "ADT^A08"], ["EHR^SOUTH:A2"]),
        (["--sender", "EHR^SOUTH"], ["EHR^SOUTH:C1", "EHR^SOUTH:A2"]),
        (["--control-id", "C1"], ["EHR^SOUTH:C1", "EHR^NORTH:C1"]),
        (["--control-id", "EHR^NORTH:C1"], ["EHR^NORTH:C1"]),
        (["--sender", "EHR^NORTH", "--type", "DFT"], ["EHR^NORTH:BAD1", "EHR^NORTH:C1"]),
        (
            ["--since", "2000-01-01"],
            ["EHR^SOUTH:C1", "EHR^NORTH:BAD1", "EHR^SOUTH:A2", "EHR^NORTH:C1", "EHR^NORTH:A1"],
        ),
        (["--until", "2000-01-01T00:00:00+00:00"], []),
        (["--since", "2999-01-01"], []),
    ],
)
def test_each_filter(
    data: Path, capsys: pytest.CaptureFixture[str], argv: list[str], expected: list[str]
) -> None:
    assert _ids(_list(capsys, data, *argv)) == expected


def test_the_cursor_walks_every_page_once(data: Path, capsys: pytest.CaptureFixture[str]) -> None:
    seen: list[str] = []
    cursor: list[str] = []
    pages = 0
    while True:
        page = _list(capsys, data, "--limit", "2", *cursor)
        assert len(page["messages"]) <= 2
        seen += _ids(page)
        pages += 1
        if not page["next"]:
            break
        cursor = ["--cursor", page["next"]]
    assert pages == 3 and seen == _ids(_list(capsys, data))
    # the filters stay with the cursor
    first = _list(capsys, data, "--type", "ADT", "--limit", "1")
    rest = _list(capsys, data, "--type", "ADT", "--limit", "1", "--cursor", first["next"])
    assert _ids(first) + _ids(rest) == ["EHR^SOUTH:A2", "EHR^NORTH:A1"]


def test_text_output_names_the_next_cursor(data: Path, capsys: pytest.CaptureFixture[str]) -> None:
    capsys.readouterr()
    assert run(["messages", "list", "--limit", "2", "--data-dir", str(data)]) == 0
    out = capsys.readouterr().out
    assert "channel" in out and "EHR^SOUTH:C1" in out and "more: --cursor " in out


@pytest.mark.parametrize(
    ("argv", "says"),
    [
        (["--cursor", "not-a-cursor"], "cursor"),
        (["--limit", "0"], "limit"),
        (["--limit", "501"], "limit"),
        (["--since", "yesterday"], "ISO"),
    ],
)
def test_bad_paging_or_filter_is_a_usage_error(
    data: Path, capsys: pytest.CaptureFixture[str], argv: list[str], says: str
) -> None:
    err = _list(capsys, data, *argv, code=2)
    assert says in err and "Traceback" not in err and err.count("\n") == 1
