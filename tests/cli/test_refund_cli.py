"""`isthmus refunds list|request|approve|reject`: the principal of the token acts, the
requester cannot approve, refusals are one line on stderr with the flow's exit code."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from isthmus.app import Hub
from isthmus.cli.main import run
from isthmus.config import load_settings
from tests.chart import demo_config
from tests.flows.refunds.helpers import move_ar, open_account


@pytest.fixture
def data(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.delenv("ISTHMUS_TOKEN", raising=False)
    monkeypatch.setenv("ISTHMUS_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.delenv("ISTHMUS_STORE", raising=False)
    monkeypatch.setenv("ISTHMUS_CONFIG", str(demo_config(tmp_path)))  # its refunds post
    hub = Hub.open(load_settings(None))
    try:
        move_ar(hub.store, open_account(hub.store), "-800.00", key="overpaid")
    finally:
        hub.close()
    return tmp_path / "data"


def _run(
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    token: str | None,
    argv: list[str],
    code: int = 0,
) -> Any:
    if token is None:
        monkeypatch.delenv("ISTHMUS_TOKEN", raising=False)
    else:
        monkeypatch.setenv("ISTHMUS_TOKEN", token)
    capsys.readouterr()
    assert run([*argv, "--json"]) == code
    out, err = capsys.readouterr()
    if code:
        assert err.count("\n") == 1 and err.startswith("isthmus: "), err
        return err
    return json.loads(out)


def test_request_approve_reject_list_with_exit_codes(
    data: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    admin = _run(capsys, monkeypatch, None, ["init"])["token"]
    tokens = {
        name: _run(
            capsys,
            monkeypatch,
            admin,
            ["tokens", "create", "--principal", name, *[a for r in roles for a in ("--role", r)]],
        )["token"]
        for name, roles in (
            ("alice", ("revenue-cycle", "finance-approver")),
            ("bob", ("finance-approver",)),
        )
    }
    ask = [
        "refunds",
        "request",
        "--account",
        "A100",
        "--amount",
        "600",
        "--reason",
        "overpaid",
        "--idempotency-key",
        "cli-1",
    ]
    assert "needs a token" in _run(capsys, monkeypatch, None, ask, 2)
    assert "may not cli refunds request" in _run(capsys, monkeypatch, tokens["bob"], ask, 2)
    r = _run(capsys, monkeypatch, tokens["alice"], ask)
    assert (r["status"], r["amount"], r["requested_by"]) == ("pending", "600.00", "alice")
    rid = r["id"]
    [item] = _run(capsys, monkeypatch, None, ["workitems", "list", "--status", "open"])
    for action in ("resolve", "resubmit"):  # decided by the refund flow only
        assert f"refunds approve|reject {rid}" in _run(
            capsys, monkeypatch, admin, ["workitems", action, str(item["id"])], 2
        )
    err = _run(capsys, monkeypatch, tokens["alice"], ["refunds", "approve", rid], 2)
    assert "segregation of duties" in err
    posted = _run(capsys, monkeypatch, tokens["bob"], ["refunds", "approve", rid])
    assert (posted["status"], posted["decided_by"]) == ("posted", "bob")
    assert "already" in _run(
        capsys, monkeypatch, tokens["bob"], ["refunds", "reject", rid, "--reason", "late"], 4
    )
    more = ["refunds", "request", "--account", "A100", "--amount", "200.01", "--reason", "x"]
    assert "exceeds the refundable credit 200.00" in _run(
        capsys, monkeypatch, tokens["alice"], more, 4
    )
    assert "no billing account" in _run(
        capsys, monkeypatch, tokens["alice"], [*more[:3], "NOPE", *more[4:]], 3
    )
    assert "needs --reason" in _run(
        capsys, monkeypatch, tokens["bob"], ["refunds", "reject", rid], 2
    )
    listed = _run(capsys, monkeypatch, None, ["refunds", "list", "--status", "posted"])
    assert [x["id"] for x in listed] == [rid]
    assert _run(capsys, monkeypatch, None, ["audit", "verify"])["ok"] is True
