"""`isthmus init`, `tokens`, `audit` and the gate on admin commands, through the CLI."""

from __future__ import annotations

import json
import sqlite3
from contextlib import closing
from pathlib import Path
from typing import Any

import pytest

from isthmus.cli.main import run
from isthmus.config import load_settings


def _json(capsys: pytest.CaptureFixture[str], argv: list[str], code: int = 0) -> Any:
    capsys.readouterr()
    assert run([*argv, "--json"]) == code
    return json.loads(capsys.readouterr().out)


def _err(capsys: pytest.CaptureFixture[str], argv: list[str], code: int) -> str:
    capsys.readouterr()
    assert run(argv) == code
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0, "one line, no traceback"
    return err


@pytest.fixture
def data(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.delenv("ISTHMUS_TOKEN", raising=False)
    monkeypatch.setenv("ISTHMUS_DATA_DIR", str(tmp_path / "data"))
    return tmp_path / "data"


def _embedded() -> bool:
    return load_settings(None).store == "sqlite"


def test_uninitialized_hub_runs_admin_commands_and_audits_them(
    data: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert _json(capsys, ["dlq", "replay", "--all"]) == {"replayed": 0, "applied": 0}
    assert run(["workitems", "resolve", "999"]) == 3
    rows = _json(capsys, ["audit", "list"])
    assert [(r["action"], r["outcome"]) for r in rows] == [
        ("cli dlq replay", "ok"),
        ("cli workitems resolve", "failed"),
    ]
    assert all(r["actor"].startswith("local:") for r in rows)
    assert _err(capsys, ["tokens", "list"], 2).endswith("run `isthmus init` first")


def test_init_prints_the_admin_token_once(data: Path, capsys: pytest.CaptureFixture[str]) -> None:
    first = _json(capsys, ["init"])
    assert first["principal"] == "admin" and first["token"].startswith("isth_")
    assert "initialized already" in _err(capsys, ["init"], 2)
    listed = _json(capsys, ["tokens", "list", "--token", first["token"]])
    assert [t["id"] for t in listed] == [first["token_id"]]
    assert first["token"] not in json.dumps(listed)
    if _embedded():
        raw = b"".join(p.read_bytes() for p in data.glob("governance.db*"))
        assert first["token"].encode() not in raw, "only the digest is stored"


def test_gate_tokens_and_roles(
    data: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    admin = _json(capsys, ["init"])["token"]
    err = _err(capsys, ["dlq", "replay", "--all"], 2)
    assert err == (
        "isthmus: dlq replay needs a token: --token or ISTHMUS_TOKEN (this hub is initialized)"
    )
    assert (
        _err(capsys, ["replay", "--since", "2026-01-01", "--token", "nope"], 2)
        == "isthmus: replay: invalid token"
    )
    assert run(["messages", "list"]) == 0, "reads stay open locally"
    monkeypatch.setenv("ISTHMUS_TOKEN", admin)
    ro = _json(
        capsys,
        [
            "tokens",
            "create",
            "--principal",
            "dash",
            "--role",
            "read-only",
            "--service",
            "--expires-days",
            "7",
        ],
    )
    eng = _json(
        capsys, ["tokens", "create", "--principal", "ana", "--role", "integration-engineer"]
    )
    assert (
        ro["kind"] == "service" and ro["expires_at"] and eng["scopes"] == ["integration-engineer"]
    )
    monkeypatch.setenv("ISTHMUS_TOKEN", ro["token"])
    assert "may not cli dlq replay" in _err(capsys, ["dlq", "replay", "--all"], 2)
    monkeypatch.setenv("ISTHMUS_TOKEN", eng["token"])
    assert run(["dlq", "replay", "--all"]) == 0
    assert "may not cli backup" in _err(capsys, ["backup", "--to", str(data / "b")], 2)
    assert "may not cli tokens create" in _err(
        capsys, ["tokens", "create", "--principal", "x", "--role", "admin"], 2
    )
    monkeypatch.setenv("ISTHMUS_TOKEN", admin)
    assert _json(capsys, ["tokens", "revoke", eng["token_id"]])["id"] == eng["token_id"]
    assert run(["tokens", "revoke", "000000000000"]) == 3
    admin_id = _json(capsys, ["tokens", "list"])[0]["id"]
    assert "last admin token" in _err(capsys, ["tokens", "revoke", admin_id], 2)
    monkeypatch.setenv("ISTHMUS_TOKEN", eng["token"])
    assert _err(capsys, ["dlq", "replay", "--all"], 2) == "isthmus: dlq replay: token revoked"
    monkeypatch.setenv("ISTHMUS_TOKEN", admin)
    statuses = {t["principal"]: t["status"] for t in _json(capsys, ["tokens", "list"])}
    assert statuses == {"admin": "active", "dash": "active", "ana": "token revoked"}
    trail = _json(capsys, ["audit", "list", "--limit", "100"])
    seen = {(r["actor"], r["action"], r["outcome"]) for r in trail}
    assert {
        ("admin", "cli tokens create", "ok"),
        ("dash", "cli dlq replay", "denied"),
        ("ana", "cli dlq replay", "ok"),
        ("admin", "cli tokens revoke", "ok"),
        ("ana", "cli dlq replay", "denied"),
    } <= seen
    dump = json.dumps(trail)
    assert all(t not in dump for t in (admin, ro["token"], eng["token"])), "no secrets"
    verified = _json(capsys, ["audit", "verify"])
    assert verified["ok"] and verified["rows"] == len(trail)


@pytest.mark.skipif(not _embedded(), reason="tampers with governance.db (embedded mode)")
@pytest.mark.parametrize("how", ["edit", "delete"])
def test_audit_verify_exits_4_on_tampering(
    data: Path, capsys: pytest.CaptureFixture[str], how: str
) -> None:
    for _ in range(3):
        run(["dlq", "replay", "--all"])
    assert run(["audit", "verify"]) == 0
    with closing(sqlite3.connect(data / "governance.db")) as c:
        if how == "edit":
            c.execute("DROP TRIGGER gov_audit_no_update")
            c.execute("UPDATE gov_audit SET actor = 'someone-else' WHERE seq = 2")
        else:
            c.execute("DROP TRIGGER gov_audit_no_delete")
            c.execute("DELETE FROM gov_audit WHERE seq = 2")
        c.commit()
    out = _json(capsys, ["audit", "verify"], code=4)
    assert not out["ok"] and out["fault"]["seq"] == 2
    capsys.readouterr()
    assert run(["audit", "verify"]) == 4
    assert "audit trail BROKEN at row 2" in capsys.readouterr().out


@pytest.mark.skipif(not _embedded(), reason="backup copies the embedded files")
def test_backup_takes_the_governance_file(data: Path, capsys: pytest.CaptureFixture[str]) -> None:
    token = _json(capsys, ["init"])["token"]
    out = _json(capsys, ["backup", "--to", str(data.parent / "bk"), "--token", token])
    assert str(data.parent / "bk" / "governance.db") in out["files"]
