"""Issue 15 done-when: a generated hospital week over MLLP, every finance event of the README's
"HL7 v2 events" table, with the accounts, encounters, cost centers and the ledger checked
after each message.

`isthmus.demo.hospital_week` makes the week (seeded, synthetic people); python-hl7's
MLLPClient sends it, one message at a time on one connection as an EHR interface does, to a
real `isthmus serve`. After each ACK (AA, naming the message's MSH-10) the test waits until
the hub's store shows exactly the state `week_model.Expected` predicts from the message's
fact; at the end of each day, once the hub is idle, the same state must still hold and
`isthmus ledger trial-balance` must be balanced with the expected totals. Sunday ends with
the merges and moves (A40 to A51), each on patients with charges and payments, and one move
resent under a new control id: the A/R per patient token after each is the model's.

The hub's store is read directly (read-only SQL on the tables and flow state), because no
command shows encounters and visit histories. With ISTHMUS_STORE=postgresql and
ISTHMUS_BUS=nats in the environment (the scale-out pass) the hub runs on PostgreSQL and
NATS JetStream, and the probe reads its PostgreSQL schema.
"""

from __future__ import annotations

import json
import os
import sqlite3
from collections import Counter, defaultdict
from collections.abc import Callable
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import hl7.client
import pytest

from isthmus.app import site_name
from isthmus.config import Settings
from isthmus.demo.hospital_week import START, hospital_week
from tests.e2e.conftest import ServeFactory
from tests.e2e.helpers import HOST, Serve, has_err, isthmus, msa_of
from tests.e2e.week_model import README_EVENTS, Expected, chart_toml
from tests.support import WaitTimeout, wait_until

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]
SCALE_OUT = ("ISTHMUS_STORE", "ISTHMUS_BUS", "ISTHMUS_PG_DSN", "ISTHMUS_NATS_URL")


def scale_out_env() -> dict[str, str]:
    """The scale-out settings of this run, passed on to the hub (embedded when none)."""
    if os.environ.get("ISTHMUS_STORE") != "postgresql":
        return {}
    return {k: os.environ[k] for k in SCALE_OUT if os.environ.get(k)}


Rows = Callable[[str], list[tuple[Any, ...]]]


def reader(hub: Serve) -> Rows:
    """Read-only queries on the hub's store, SQLite or PostgreSQL."""
    env = hub.env
    if env.get("ISTHMUS_STORE") == "postgresql":
        import psycopg  # noqa: PLC0415 - scale-out pass only

        schema = site_name(Settings(data_dir=hub.data_dir))
        dsn = env["ISTHMUS_PG_DSN"]

        def pg(sql: str) -> list[tuple[Any, ...]]:
            with psycopg.connect(dsn) as conn:
                conn.execute(f'SET search_path TO "{schema}"')
                return list(conn.execute(sql).fetchall())

        return pg
    path = hub.data_dir / "store.db"

    def lite(sql: str) -> list[tuple[Any, ...]]:
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=10)
        try:
            return list(conn.execute(sql).fetchall())
        finally:
            conn.close()

    return lite


def observed(rows: Rows) -> dict[str, Any]:
    """The hub's state in `Expected.state()`'s shape."""
    inbox = Counter(
        (t, s, a) for t, s, a in rows("SELECT message_type, status, ack_code FROM inbox")
    )
    patients: dict[str, str] = dict(rows("SELECT token, mrn FROM patients"))
    visits, accounts = {}, {}
    charged = set()  # visits whose lineage record holds postings (flows/lineage.py)
    for name, body in rows("SELECT name, body FROM flow_state"):
        kind, _, key = str(name).partition(":")
        if str(name).startswith("lineage:visit:") and json.loads(bytes(body)).get("accounts"):
            charged.add(str(name).removeprefix("lineage:visit:"))
        if kind not in ("visit", "account"):  # lineage records, move marks: not state
            continue
        doc = json.loads(bytes(body))
        if kind == "visit":
            visits[key] = {
                "status": doc.get("status", ""),
                "stops": [s["department"] for s in doc.get("stops", [])],
                "pending": doc.get("pending", []),
                "charged": False,
                "diagnoses": [c["code"] for c in doc.get("diagnoses", [])],
                "procedures": [c["code"] for c in doc.get("procedures", [])],
            }
        elif kind == "account":
            accounts[key] = (
                doc.get("status", "open"),
                tuple(p["payer_id"] for p in doc.get("plans", [])),
            )
    for visit in charged:
        visits.setdefault(
            visit,
            {
                "status": "",
                "stops": [],
                "pending": [],
                "charged": False,
                "diagnoses": [],
                "procedures": [],
            },
        )["charged"] = True
    ledger: defaultdict[tuple[str, str, str, str], Decimal] = defaultdict(Decimal)
    for account, debit, credit, company, cc, token in rows(
        "SELECT account, debit, credit, company, cost_center, account_token FROM journal_lines"
    ):
        mrn = patients.get(token, "?" + token) if token else ""
        ledger[(account, company, cc, mrn)] += Decimal(debit) - Decimal(credit)
    return {
        "inbox": dict(inbox),
        "patients": sorted(patients.values()),
        "billing_accounts": sorted(
            r[0] for r in rows("SELECT account_number FROM billing_accounts")
        ),
        "encounters": {
            v: (s, c)
            for v, s, c in rows("SELECT visit_number, status, patient_class FROM encounters")
        },
        "visits": visits,
        "accounts": accounts,
        "ledger": {k: v for k, v in ledger.items() if v},
        "work_items": dict(Counter((k, s) for k, s in rows("SELECT kind, status FROM work_items"))),
    }


def settle_on(rows: Rows, want: dict[str, Any], what: str) -> None:
    """Wait until the hub shows `want`; on a timeout, fail with the difference."""
    try:
        wait_until(lambda: observed(rows) == want, what=what, timeout=30)
    except WaitTimeout:
        same(observed(rows), want, what)
        raise


def same(got: dict[str, Any], want: dict[str, Any], what: str) -> None:
    for part, value in want.items():  # one part at a time: a readable difference
        assert got[part] == value, f"{what}: {part}"
    assert got == want, what


def test_hospital_week_over_mllp(serve_factory: ServeFactory, tmp_path: Path) -> None:
    week = hospital_week()
    events = {m.fact.event for m in week}
    assert events >= README_EVENTS | {"ORU^R01", "SIU^S12"}
    assert {ln.ttype for m in week for ln in m.fact.lines} == {"CG", "CD", "PY", "AJ"}

    cfg = tmp_path / "site.toml"
    cfg.write_text(chart_toml())
    hub = serve_factory("week", config=cfg, env=scale_out_env())
    rows = reader(hub)
    model = Expected()
    with hl7.client.MLLPClient(HOST, hub.mllp_port) as client:
        for day in range(7):
            for m in (m for m in week if m.day == day):
                framed = client.send_message(m.raw)
                code, cid = msa_of(framed[1:-2])
                assert (code, cid) == ("AA", m.control_id), (m.fact.event, framed)
                assert not has_err(framed), framed
                model.apply(m.fact, START + timedelta(days=day))
                settle_on(rows, model.state(), f"day {day} {m.fact.event} {m.control_id}")
            hub.wait_idle()
            same(observed(rows), model.state(), f"day {day}, idle")
            res = isthmus("ledger", "trial-balance", "--json", data_dir=hub.data_dir, env=hub.env)
            assert res.returncode == 0, res.stderr
            tb = json.loads(res.stdout)
            total = f"{model.debits:.2f}"
            assert tb["balanced"] is True
            assert tb["totals"] == [
                {"currency": "USD", "debit": total, "credit": total, "balanced": True}
            ]
    # what the week proves beyond "it balances": the cost centers of a transfer, a swap and
    # a cancelled transfer; the work items of the documented policies
    state = model.state()
    assert {k[2] for k in state["ledger"] if k[2]} >= {"CC-5100", "CC-5200"}
    # every pending event (A14, A15, A16) was completed (A01, A02, A03) or cancelled (A27,
    # A26, A25), and each visit's history starts at its A01/A04 unit
    assert not any(v["pending"] for v in state["visits"].values())
    [admit] = [m.fact for m in week if m.fact.event == "ADT^A01"]
    assert admit.person is not None
    assert state["visits"][admit.person.visit]["stops"][0] == admit.unit
    # every account or visit that changed patient took its A/R along: the patients whose
    # accounts, visits or identifiers went elsewhere hold none; a resent move moved nothing
    moved = [
        m.fact.prior.mrn
        for m in week
        if m.fact.prior is not None
        and not m.fact.resent
        and m.fact.person is not None
        and m.fact.prior.mrn != m.fact.person.mrn
        and m.fact.event in ("ADT^A40", "ADT^A41", "ADT^A44", "ADT^A47")
    ]
    assert len(moved) == 4
    assert not any(k[0] == "1200" and k[3] in moved for k in state["ledger"])
    assert any(m.fact.resent for m in week)
    assert set(state["work_items"]) == {
        ("cancelled_visit_with_charges", "open"),
        ("person_delete_refused", "open"),
        ("charge_to_closed_account", "open"),
    }
