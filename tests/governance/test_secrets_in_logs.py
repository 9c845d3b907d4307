"""Secrets never reach the logs: API tokens (good, bad, expired), the site key, and the
ERP password, through the CLI, the HTTP API and a failing ERP delivery, logged at DEBUG.
They also stay out of the audit trail and out of error answers."""

from __future__ import annotations

import asyncio
import json
import logging
import time
from pathlib import Path

import httpx
import pytest

from isthmus.api.http import build_app
from isthmus.app import Hub, erp_dispatcher, erp_sink
from isthmus.cli.main import run as cli_run
from isthmus.config import load_settings
from isthmus.flows.export import DESTINATION
from isthmus.ledger.batch import build_batch
from isthmus.ledger.batch_file import batch_to_csv, batch_to_jsonl
from tests.ledger.builders import make_charge, post

SITE_KEY = "site-key-0123456789abcdef-DO-NOT-LOG"
ERP_PASSWORD = "erp-pw-Zq8!vX2#DO-NOT-LOG"


def _cli(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = cli_run(argv)
    out, err = capsys.readouterr()
    return code, out, err


def test_tokens_site_key_and_erp_password_stay_out_of_logs(
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    caplog.set_level(logging.DEBUG)
    pw = tmp_path / "tryton.pass"
    pw.write_text(ERP_PASSWORD + "\n")
    conf = tmp_path / "hub.toml"
    conf.write_text(
        f'[hub]\ntoken_secret = "{SITE_KEY}"\n'
        f'[erp]\nkind = "tryton"\nurl = "http://127.0.0.1:9"\n'
        f'database = "erp"\npassword_file = "{pw}"\ntimeout_s = 2\n'
    )
    data = tmp_path / "data"
    base = ["--config", str(conf), "--data-dir", str(data), "--json"]
    monkeypatch.delenv("ISTHMUS_TOKEN", raising=False)
    errors: list[str] = []

    code, out, err = _cli(["init", *base], capsys)
    assert code == 0, err
    admin = json.loads(out)["token"]
    monkeypatch.setenv("ISTHMUS_TOKEN", admin)
    code, out, err = _cli(
        [
            "tokens",
            "create",
            "--principal",
            "feed",
            "--role",
            "integration-engineer",
            "--expires-days",
            "1",
            *base,
        ],
        capsys,
    )
    assert code == 0, err
    feed = json.loads(out)["token"]
    errors.append(err)
    for argv in (
        ["tokens", "list"],
        ["audit", "list"],
        ["audit", "verify"],
        ["dlq", "list"],
        ["status"],
    ):
        code, out, err = _cli([*argv, *base], capsys)
        errors.append(err)
        assert admin not in out and feed not in out
    monkeypatch.setenv("ISTHMUS_TOKEN", feed)  # a role that may not
    code, _, err = _cli(["tokens", "list", *base], capsys)
    assert code == 2
    errors.append(err)
    monkeypatch.setenv("ISTHMUS_TOKEN", admin[:-4] + "AAAA")  # a wrong one
    code, _, err = _cli(["backup", "--to", str(tmp_path / "b"), *base], capsys)
    assert code == 2
    errors.append(err)

    hub = Hub.open(load_settings(conf, data_dir=data))
    try:

        async def http() -> list[str]:
            transport = httpx.ASGITransport(app=build_app(hub), client=("192.0.2.1", 1))
            async with httpx.AsyncClient(transport=transport, base_url="http://hub") as c:
                out = []
                for tok in (admin, feed, admin[:-4] + "AAAA", "isth_x_" + SITE_KEY):
                    for path in ("/metrics", "/api/v1/ledger/trial-balance", "/nope"):
                        r = await c.get(path, headers={"Authorization": f"Bearer {tok}"})
                        out.append(r.text + json.dumps(dict(r.headers)))
                return out

        answers = asyncio.run(http())

        # an ERP delivery that fails (nothing listens): its error is logged
        entry = post(make_charge())
        with hub.store.transaction() as tx:
            assert tx.insert_entry(entry)
        batch = build_batch("JB-mllp-secret", [entry], policy="detailed", channel="mllp")
        assert hub.store.record_batch(
            batch,
            [
                (DESTINATION, "csv", batch_to_csv(batch).encode()),
                (DESTINATION, "jsonl", batch_to_jsonl(batch).encode()),
            ],
            time.time(),
        )
        erp_dispatcher(
            hub.settings, hub.store, erp_sink(hub.settings, hub.export_dir), hub.policy
        ).run_once(time.time())
        last_errors = [i.last_error for i in hub.store.outbox_items()]
        audit = [
            json.dumps(r.event.detail) + r.event.target + r.event.actor
            for r in hub.governance.audit_rows(after=0)
        ]
        key_file = (data / "token.key").read_text() if (data / "token.key").exists() else ""
    finally:
        hub.close()

    assert any("unreachable" in e or "refused" in e.lower() for e in last_errors), last_errors
    assert any("ERP delivery" in r.getMessage() for r in caplog.records), caplog.text
    assert len(audit) >= 5
    secrets = {
        "admin token": admin,
        "feed token": feed,
        "site key": SITE_KEY,
        "ERP password": ERP_PASSWORD,
    }
    if key_file.strip():
        secrets["token.key"] = key_file.strip()
    places = {
        "log text": caplog.text,
        "log records": "\n".join(
            f"{r.getMessage()} {r.args!r} {r.exc_text or ''}" for r in caplog.records
        ),
        "stderr": "\n".join(errors),
        "http answers": "\n".join(answers),
        "outbox errors": "\n".join(last_errors),
        "audit trail": "\n".join(audit),
    }
    leaks = [
        (what, where) for what, s in secrets.items() for where, text in places.items() if s in text
    ]
    assert not leaks, leaks
