"""Replay through the gates, and the audited release of one refused HL7 message.

A refusal stays a refusal: `replay` publishes what intake accepted and never what it
refused ([ownership], AR 205); `messages release ID --reason` re-runs intake for one
message, audited, and never releases an AR 205 conflict copy over the original. HL7 files
take the listener's conflict mechanism (AR 205, not a silent duplicate)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from isthmus.cli.main import run
from tests.flows.helpers import charge, ident

CHART = '[mappings]\ninclude = "demo"\n'  # the charges below post to the demo chart
OWN_CHARGES = CHART + '[ownership]\ncharge = "BILLING"\n'  # the sender (MSH-3 EHR) is not it


def cli(capsys: pytest.CaptureFixture[str], data: Path, *argv: str, code: int = 0) -> Any:
    capsys.readouterr()
    if "--config" not in argv:
        conf = data.parent / "chart.toml"
        conf.write_text(CHART)
        argv = (*argv, "--config", str(conf))
    rc = run([*argv, "--data-dir", str(data), "--json"])
    out, err = capsys.readouterr()
    assert rc == code, (rc, out, err)
    return json.loads(out) if out.strip() else {"stderr": err}


def ingest(
    capsys: pytest.CaptureFixture[str],
    data: Path,
    raw: bytes,
    name: str,
    code: int = 0,
    conf: Path | None = None,
) -> Any:
    path = data.parent / name
    path.write_bytes(raw)
    extra = ["--config", str(conf)] if conf else []
    return cli(capsys, data, "ingest", str(path), "--apply", *extra, code=code)


def journal(capsys: pytest.CaptureFixture[str], data: Path) -> list[str]:
    rows = cli(capsys, data, "ledger", "journal", "--limit", "1000")
    assert isinstance(rows, list)
    return sorted(r["correlation_id"] for r in rows)


def test_an_hl7_file_reusing_an_identity_with_other_content_is_ar_205(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = tmp_path / "data"
    ingest(capsys, data, charge("F1", "M1", amount="10.00"), "a.hl7")
    r = ingest(capsys, data, charge("F1", "M1", amount="99.00"), "b.hl7", code=1)
    (row,) = r["items"]
    assert (row["status"], row["ack"], row["duplicate"]) == ("rejected", "AR", False)
    assert row["control_id"].startswith(ident("F1") + "#") and "already identifies" in row["error"]
    assert journal(capsys, data) == [f"mllp/{ident('F1')}"]  # the first one stands


def test_replay_never_posts_an_ar_205_copy_and_release_refuses_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = tmp_path / "data"
    ingest(capsys, data, charge("F2", "M1", amount="10.00"), "a.hl7")
    ingest(capsys, data, charge("F2", "M1", amount="99.00"), "b.hl7", code=1)
    r = cli(capsys, data, "replay", "--since", "2000-01-01", "--apply")
    assert r["still_rejected"] == 1 and r["releasable"] == []
    assert journal(capsys, data) == [f"mllp/{ident('F2')}"]
    (copy,) = cli(capsys, data, "messages", "list", "--status", "rejected")["messages"]
    err = cli(capsys, data, "messages", "release", str(copy["id"]), "--reason", "fix", code=2)
    assert "never released over the original" in str(err["stderr"])
    assert journal(capsys, data) == [f"mllp/{ident('F2')}"]


def test_replay_keeps_an_ownership_refusal_and_release_is_audited(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data, conf = tmp_path / "data", tmp_path / "hub.toml"
    conf.write_text(OWN_CHARGES)
    c = ["--config", str(conf)]
    r = ingest(capsys, data, charge("O1", "M1"), "o.hl7", code=1, conf=conf)
    (row,) = r["items"]
    assert (row["status"], row["ack"]) == ("rejected", "AR")
    r = cli(capsys, data, "replay", "--since", "2000-01-01", "--apply", *c)
    assert (r["still_rejected"], r["releasable"], r["events_replayed"]) == (1, [], 0)
    assert journal(capsys, data) == []  # refused by [ownership]: replay posts nothing
    ref = f"mllp/{ident('O1')}"
    r = cli(capsys, data, "messages", "release", ref, "--reason", "ok", *c, code=4)
    assert r["released"] is False and "may not write charge data" in str(r["error"])
    assert journal(capsys, data) == []
    cli(capsys, data, "messages", "release", ref, *c, code=2)  # a reason is required
    r = cli(
        capsys,
        data,
        "messages",
        "release",
        ref,
        "--reason",
        "billing confirmed",
        "--override-ownership",
        "--apply",
        *c,
    )
    assert r["released"] is True and r["released_as"] == ref + "!released"
    assert journal(capsys, data) == [ref + "!released"]
    again = cli(
        capsys,
        data,
        "messages",
        "release",
        ref,
        "--reason",
        "again",
        "--override-ownership",
        "--apply",
        *c,
    )
    assert again["duplicate"] is True and journal(capsys, data) == [ref + "!released"]
    shown = cli(capsys, data, "messages", "show", ref, *c)
    assert shown["released_as"] == ref + "!released"
    audit = cli(capsys, data, "audit", "list", *c)
    assert isinstance(audit, list)
    rows = [a for a in audit if a["action"] == "cli messages release"]
    assert any(a["outcome"] == "ok" and "billing confirmed" in json.dumps(a) for a in rows)


def test_messages_show_finds_a_bare_msh10_used_by_one_sender(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = tmp_path / "data"
    ingest(capsys, data, charge("B1", "M1"), "a.hl7")
    shown = cli(capsys, data, "messages", "show", "mllp/B1")
    assert shown["message"]["control_id"] == ident("B1")
