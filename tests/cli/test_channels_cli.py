"""`isthmus channels`, `channels pause NAME`, `channels resume NAME` (issue 18): the list
with its counters, the state kept in the store for every process, the audit trail, and
exit code 2 naming the known channels for an unknown one."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from isthmus.app import Hub
from isthmus.cli.main import run
from isthmus.config import load_settings
from isthmus.flows.hl7_inbound import classify
from isthmus.governance import identity, rbac
from tests.flows.helpers import adt

CONFIG = '[channels.lab]\nport = 2650\n[channels.x12]\nsummarization = "detailed"\n'


@pytest.fixture
def site(tmp_path: Path) -> tuple[Path, Path]:
    conf = tmp_path / "isthmus.toml"
    conf.write_text(CONFIG)
    data = tmp_path / "data"
    hub = Hub.open(load_settings(conf, data_dir=data))
    try:
        taken, _ = classify(
            adt("CLI-1", "M1"),
            channel="lab",
            peer="t",
            now=1000.0,
            tenant="default",
            currency="USD",
        )
        refused, _ = classify(
            adt("CLI-2", "M2"),
            channel="lab",
            peer="t",
            now=2000.0,
            tenant="default",
            currency="USD",
            senders={"LAB^MAIN"},
        )
        hub.store.accept([taken, refused])
    finally:
        hub.close()
    return conf, data


def args(site: tuple[Path, Path], *rest: str) -> list[str]:
    return ["channels", *rest, "--config", str(site[0]), "--data-dir", str(site[1])]


def test_list_shows_every_channel_with_its_counters(
    site: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(args(site, "--json")) == 0
    rows = {r["name"]: r for r in json.loads(capsys.readouterr().out)}
    assert set(rows) == {"drop", "fhir", "lab", "mllp", "x12"}
    assert rows["x12"]["address"].endswith("drop (via drop)") and not rows["x12"]["pausable"]
    lab = rows["lab"]
    assert (lab["transport"], lab["address"], lab["state"]) == ("mllp", "127.0.0.1:2650", "running")
    assert (lab["received"], lab["refused"], lab["queued"], lab["delivered"]) == (2, 1, 1, 0)
    assert lab["last_message_at"].startswith("1970-01-01T00:33:20")
    assert run(args(site)) == 0
    text = capsys.readouterr().out
    assert "received" in text and "lab" in text and "127.0.0.1:2650" in text


def test_pause_and_resume_are_kept_in_the_store_and_audited(
    site: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(args(site, "pause", "lab", "--reason", "lab upgrade", "--json")) == 0
    row = json.loads(capsys.readouterr().out)
    assert (row["name"], row["state"], row["reason"]) == ("lab", "paused", "lab upgrade")
    hub = Hub.open(load_settings(site[0], data_dir=site[1]))
    try:
        st = hub.store.channel_states()["lab"]
        assert st.state == "paused" and st.reason == "lab upgrade"
        audit = hub.governance.audit_rows()
        assert audit[-1].event.action == "cli channels pause"
        assert audit[-1].event.target == "lab" and audit[-1].event.outcome == "ok"
    finally:
        hub.close()
    assert run(args(site, "resume", "lab")) == 0
    assert "channel lab running" in capsys.readouterr().out
    assert run(args(site, "--json")) == 0
    assert {r["name"]: r["state"] for r in json.loads(capsys.readouterr().out)}["lab"] == "running"


def test_an_unknown_channel_exits_2_naming_the_known_ones(
    site: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(args(site, "pause", "labb")) == 2
    err = capsys.readouterr().err
    assert "no channel 'labb'" in err and "drop, fhir, lab, mllp" in err
    assert run(args(site, "pause")) == 2
    assert "needs a channel name" in capsys.readouterr().err
    assert run(args(site, "pause", "x12")) == 2  # files come in through the drop folder
    assert "no listener of its own" in capsys.readouterr().err


def test_pause_needs_an_engineer_token_once_initialized(
    site: tuple[Path, Path], capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    hub = Hub.open(load_settings(site[0], data_dir=site[1]))
    now = time.time()
    try:
        admin = identity.principal("root", "user", (rbac.ADMIN,), now)
        assert hub.governance.initialize(admin, identity.issue(admin, (rbac.ADMIN,), now).token)
        tokens = {}
        for name, role in (("reader", rbac.READ_ONLY), ("eng", rbac.ENGINEER)):
            p = identity.principal(name, "user", (role,), now)
            hub.governance.save_principal(p)
            issued = identity.issue(p, (role,), now)
            hub.governance.add_token(issued.token)
            tokens[name] = issued.clear
    finally:
        hub.close()
    monkeypatch.delenv("ISTHMUS_TOKEN", raising=False)
    assert run(args(site, "pause", "lab")) == 2
    assert "needs a token" in capsys.readouterr().err
    assert run(args(site, "pause", "lab", "--token", tokens["reader"])) == 2
    assert run(args(site, "pause", "lab", "--token", tokens["eng"])) == 0
    assert "channel lab paused by eng" in capsys.readouterr().out
    assert run(args(site)) == 0  # the list is a read: no token
