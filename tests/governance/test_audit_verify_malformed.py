"""`audit verify` on a malformed chain: exit 4 naming the row, never a crash (issue 16, 9).

Malformed is more than edited: a head record that is not `seq:hash`, a field missing or
of the wrong type, a detail that is not JSON, a hash that is not a hash, a row the store
adapter cannot even read back.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sqlite3
from contextlib import closing
from pathlib import Path
from typing import Any

import pytest

from isthmus.cli import security
from isthmus.cli.gate import Gate
from isthmus.cli.main import run
from isthmus.config import load_settings
from isthmus.governance import audit
from isthmus.store.memory_governance import MemoryGovernance

embedded_only = pytest.mark.skipif(
    load_settings(None).store != "sqlite", reason="tampers with governance.db (embedded mode)"
)


@pytest.fixture
def data(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.delenv("ISTHMUS_TOKEN", raising=False)
    monkeypatch.setenv("ISTHMUS_DATA_DIR", str(tmp_path / "data"))
    for _ in range(3):
        assert run(["dlq", "replay", "--all"]) == 0
    assert run(["audit", "verify"]) == 0
    return tmp_path / "data"


def _sql(data: Path, *statements: str, args: tuple[Any, ...] = ()) -> None:
    with closing(sqlite3.connect(data / "governance.db")) as c:
        c.execute("DROP TRIGGER IF EXISTS gov_audit_no_update")
        for s in statements:
            c.execute(s, args if "?" in s else ())
        c.commit()


def _verify(capsys: pytest.CaptureFixture[str]) -> tuple[dict[str, Any], str]:
    capsys.readouterr()
    assert run(["audit", "verify", "--json"]) == 4
    out = json.loads(capsys.readouterr().out)
    assert run(["audit", "verify"]) == 4
    cap = capsys.readouterr()
    assert "Traceback" not in cap.err
    return out, cap.out


@embedded_only
@pytest.mark.parametrize("head", ["abc:" + "0" * 64, "3", "3:not-a-hash", ":", ""])
def test_malformed_head_row_exits_4(
    data: Path, capsys: pytest.CaptureFixture[str], head: str
) -> None:
    _sql(data, "UPDATE gov_meta SET value = ? WHERE key = 'audit_head'", args=(head,))
    out, text = _verify(capsys)
    assert not out["ok"] and out["fault"]["seq"] == 3 and out["head"] is None
    assert "head record is malformed" in out["fault"]["reason"]
    assert text.startswith("audit trail BROKEN at row 3: the head record is malformed")


def _rehash_last(data: Path, column: str, value: Any) -> None:
    """Store `value` in row 3 (the last) and re-seal it and the head, so only the field's
    form is wrong: the chain itself still links."""
    with closing(sqlite3.connect(data / "governance.db")) as c:
        c.execute("DROP TRIGGER IF EXISTS gov_audit_no_update")
        c.execute(f"UPDATE gov_audit SET {column} = ? WHERE seq = 3", (value,))
        r = c.execute("SELECT * FROM gov_audit WHERE seq = 3").fetchone()
        ev = audit.AuditEvent(*r[1:7])
        digest = audit.chain_hash(r[7], 3, ev)
        c.execute("UPDATE gov_audit SET hash = ? WHERE seq = 3", (digest,))
        c.execute("UPDATE gov_meta SET value = ? WHERE key = 'audit_head'", (f"3:{digest}",))
        c.commit()


@embedded_only
@pytest.mark.parametrize(
    ("column", "value", "why"),
    [
        ("detail", "{not json", "detail is not JSON"),
        ("detail", "[1, 2]", "detail is not a JSON object"),
        ("outcome", "maybe", "outcome 'maybe' is not one of"),
        ("at", "yesterday", "at 'yesterday' is not an ISO 8601 time"),
        ("actor", b"\x00\xff", "actor is bytes, not text"),
    ],
)
def test_malformed_row_exits_4_with_the_row(
    data: Path, capsys: pytest.CaptureFixture[str], column: str, value: Any, why: str
) -> None:
    _rehash_last(data, column, value)
    out, text = _verify(capsys)
    fault = out["fault"]
    assert fault["seq"] == 3 and fault["reason"].startswith("malformed row: " + why)
    assert fault["row"]["seq"] == "3" and fault["row"]["action"] == "cli dlq replay"
    assert "audit trail BROKEN at row 3: malformed row" in text and "stored: seq=3" in text


@embedded_only
def test_a_broken_hash_value_exits_4(data: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _sql(data, "UPDATE gov_audit SET hash = 'x' WHERE seq = 2")
    out, _ = _verify(capsys)
    assert out["fault"]["seq"] == 2
    assert out["fault"]["reason"] == "malformed row: hash is not 64 lowercase hex digits"


def _chain(n: int = 4) -> MemoryGovernance:
    gov = MemoryGovernance()
    for i in range(n):
        audit.record(gov, "admin", "cli workitems resolve", str(i), k=i)
    return gov


@pytest.mark.parametrize(
    "change", [{"actor": None}, {"detail": None}, {"at": 5}, {"outcome": b"ok"}]
)
def test_verify_names_a_row_with_a_missing_or_mistyped_field(change: dict[str, Any]) -> None:
    gov = _chain()
    r = gov.rows[1]
    gov.rows[1] = dataclasses.replace(r, event=dataclasses.replace(r.event, **change))
    fault = audit.verify(gov.rows, gov.head)
    assert fault is not None and fault.seq == 2 and fault.reason.startswith("malformed row")
    assert fault.row is not None and fault.row["seq"] == "2"


@pytest.mark.parametrize(
    "bad", [{"seq": "2"}, {"seq": None}, {"prev_hash": None}, {"hash": 7}, {"event": None}]
)
def test_verify_never_raises_on_a_mistyped_row(bad: dict[str, Any]) -> None:
    gov = _chain()
    gov.rows[1] = dataclasses.replace(gov.rows[1], **bad)
    fault = audit.verify(gov.rows, gov.head)
    assert fault is not None and fault.seq == 2 and fault.reason.startswith("malformed row")
    assert audit.verify([*gov.rows[:1], "junk"], gov.head) is not None  # type: ignore[list-item]


@pytest.mark.parametrize("head", [(4, None), ("4", "0" * 64), (4,), "4:abc", (True, "0" * 64)])
def test_verify_names_a_malformed_head(head: Any) -> None:
    gov = _chain()
    fault = audit.verify(gov.rows, head)
    assert fault is not None and fault.seq == 4 and "head record is malformed" in fault.reason


class _Unreadable(MemoryGovernance):
    """An adapter that cannot read row 3 back (a stored value its row mapper refuses)."""

    def audit_rows(self, *, after: int = 0, limit: int | None = None) -> list[audit.AuditRow]:
        rows = super().audit_rows(after=after, limit=limit)
        if any(r.seq == 3 for r in rows):
            raise ValueError("invalid literal for int() with base 10: 'x'")
        return rows


def test_a_row_the_adapter_cannot_read_is_named(tmp_path: Path) -> None:
    gov = _Unreadable()
    for i in range(4):
        audit.record(gov, "admin", "cli workitems resolve", str(i))
    gate = Gate(
        load_settings(None, data_dir=tmp_path), "cli audit verify", "local:test", False, _gov=gov
    )
    data, text, code = security.dispatch(
        gate.settings, argparse.Namespace(cmd="audit", action="verify", limit=50), gate
    )
    assert code == 4 and data["rows"] == 2 and data["fault"]["seq"] == 3
    assert "the row after row 2 cannot be read (ValueError" in text(data)
