"""Retention (issue 19): bodies past their [retention] limit are blanked, in every adapter
and in both modes, while the row, its lineage, the journal and the audit trail stay.

Three layers: the decision (flows/retention.rules, pure), the purge through each store
adapter (memory, SQLite, PostgreSQL), and the operator's path: `isthmus purge [--dry-run]`
on a hub fed real HL7 v2 through `isthmus ingest`, then `messages show` saying what was
purged and when, and the audit trail holding the purge.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import sqlite3
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg import sql

from isthmus.app import Hub
from isthmus.cli.main import run
from isthmus.config import ConfigError, RetentionRule, RetentionSettings, load_settings
from isthmus.flows import retention
from isthmus.runtime.loops import retention_loop, retention_round
from isthmus.store.memory import MemoryStore
from isthmus.store.ports import Hold, Inbound, PurgeRule, Store
from isthmus.store.postgres import PostgresStore
from isthmus.store.sqlite import SqliteStore
from tests.conftest import site_streams
from tests.e2e.scaleout import drop_streams
from tests.flows.helpers import adt, charge
from tests.services import NATS, POSTGRES, require
from tests.support import wait_until

DAY = 86_400.0
NOW = 1_800_000_000.0
DSN = f"postgresql://postgres@{POSTGRES[0]}:{POSTGRES[1]}/test"
SITE = RetentionSettings(raw_days=30, ignored_days=7, channels={"x12": RetentionRule(raw_days=0)})


@pytest.fixture(autouse=True)
def _embedded(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in (
        "ISTHMUS_STORE",
        "ISTHMUS_BUS",
        "ISTHMUS_PG_SCHEMA",
        "ISTHMUS_TOKEN",
        "ISTHMUS_CONFIG",
        "ISTHMUS_DATA_DIR",
        "ISTHMUS_NATS_STREAM",
    ):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def schema() -> Iterator[str]:
    require("PostgreSQL", *POSTGRES)
    name = f"r_{uuid.uuid4().hex[:12]}"
    yield name
    with psycopg.connect(DSN, autocommit=True) as c:
        c.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(name)))


# --- the decision ----------------------------------------------------------------------


def test_rules_per_channel_over_the_site_limits() -> None:
    got = retention.rules(
        RetentionSettings(
            raw_days=90,
            ignored_days=7,
            channels={"x12": RetentionRule(ignored_days=1), "fhir": RetentionRule(raw_days=365)},
        ),
        NOW,
    )
    assert got == [
        PurgeRule(NOW - 365 * DAY, False, "fhir"),
        PurgeRule(NOW - 7 * DAY, True, "fhir"),
        PurgeRule(NOW - 90 * DAY, False, "x12"),
        PurgeRule(NOW - 1 * DAY, True, "x12"),
        PurgeRule(NOW - 90 * DAY, False, None, ("fhir", "x12")),
        PurgeRule(NOW - 7 * DAY, True, None, ("fhir", "x12")),
    ]


def test_zero_keeps_forever_and_ignored_follows_raw_when_unset() -> None:
    assert retention.rules(RetentionSettings(), NOW) == []
    assert not retention.enabled(RetentionSettings())
    assert retention.rules(RetentionSettings(raw_days=30), NOW) == [
        PurgeRule(NOW - 30 * DAY, False, None, ("fhir",)),
        PurgeRule(NOW - 30 * DAY, True, None, ("fhir",)),
    ]
    assert retention.enabled(RetentionSettings(channels={"mllp": RetentionRule(raw_days=1)}))
    assert retention.rules(RetentionSettings(ignored_days=3), NOW) == [
        PurgeRule(NOW - 3 * DAY, True, None, ("fhir",))
    ]


def test_the_retention_table_is_checked(tmp_path: Path) -> None:
    conf = tmp_path / "c.toml"
    conf.write_text(
        "[retention]\nraw_days = 90\nignored_days = 7\n[retention.channels.mllp]\nraw_days = 30\n"
    )
    s = load_settings(conf, data_dir=tmp_path)
    assert s.retention == RetentionSettings(90, 7, {"mllp": RetentionRule(raw_days=30)})
    for bad, says in (
        ("[retention]\nraw_day = 9\n", "did you mean retention.raw_days"),
        ("[retention]\nraw_days = -1\n", "retention.raw_days must be"),
        ("[retention]\nignored_days = '7'\n", "retention.ignored_days must"),
        ("[retention.channels.mllp]\nraw = 1\n", "retention.channels.mllp.raw"),
        ("[retention.channels.mllp]\nraw_days = true\n", "must be a whole"),
    ):
        conf.write_text(bad)
        with pytest.raises(ConfigError, match=says.replace(".", r"\.")):
            load_settings(conf, data_dir=tmp_path)


# --- the purge through each adapter -----------------------------------------------------


def _msg(
    cid: str,
    age_days: float,
    *,
    channel: str = "mllp",
    status: str = "accepted",
    events: bytes = b"",
    hold: Hold | None = None,
) -> Inbound:
    return Inbound(
        channel,
        cid,
        f"MSH|{cid}|DOE^JANE".encode(),
        NOW - age_days * DAY,
        "10.0.0.7:1",
        "ADT^A01",
        status,
        "AE" if status == "rejected" else "AA",
        "",
        events,
        digest=f"dig-{cid}",
        hold=hold,
    )


@pytest.fixture(params=["memory", "sqlite", "postgresql"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    s: Store
    if request.param == "memory":
        s = MemoryStore()
    elif request.param == "sqlite":
        s = SqliteStore(tmp_path / "store.db", synchronous="NORMAL")
    else:
        name = request.getfixturevalue("schema")
        s = PostgresStore(DSN, schema=name)
    yield s
    s.close()


def test_purge_blanks_what_is_past_its_limit_and_keeps_the_rest(store: Store) -> None:
    held = Hold("mapping", "charge-master", "code unmapped")
    batch = [
        _msg("OLD", 100),
        _msg("UNPUB", 100, events=b"[]"),
        _msg("HELD", 100, status="held", events=b"[]", hold=held),
        _msg("IGN", 10, status="ignored"),
        _msg("REJ", 40, status="rejected"),
        _msg("FHIR", 100, channel="fhir"),
        _msg("X12", 100, channel="x12"),
        _msg("NEW", 5),
        _msg("IGN-NEW", 3, status="ignored"),
    ]
    ids = {m.control_id: a.message_id for m, a in zip(batch, store.accept(batch), strict=True)}

    dry = retention.purge(store, SITE, NOW, dry_run=True)
    assert (dry.purged, dry.ignored, dict(dry.by_channel)) == (3, 1, {"mllp": 3})
    assert all(store.message(i).raw for i in ids.values())  # type: ignore[union-attr]

    done = retention.purge(store, SITE, NOW + 1)
    assert (done.purged, done.ignored) == (3, 1)
    gone = {c for c, i in ids.items() if store.message(i).raw == b""}  # type: ignore[union-attr]
    assert gone == {"OLD", "IGN", "REJ"}
    old = store.message(ids["OLD"])
    assert old is not None and old.purged_at == NOW + 1
    assert (old.digest, old.status, old.ack_code, old.control_id) == (
        "dig-OLD",
        "accepted",
        "AA",
        "OLD",
    )
    assert old.received_at == NOW - 100 * DAY

    store.mark_published([ids["UNPUB"]])  # on the bus now: its body may go
    again = retention.purge(store, SITE, NOW + 2)
    assert again.purged == 1 and store.message(ids["UNPUB"]).raw == b""  # type: ignore[union-attr]
    assert store.message(ids["OLD"]).purged_at == NOW + 1  # type: ignore[union-attr]
    assert retention.purge(store, SITE, NOW + 3).purged == 0  # idempotent
    held_msg = store.message(ids["HELD"])
    assert held_msg is not None and held_msg.raw and held_msg.status == "held"


# --- the operator's path, both modes ----------------------------------------------------


def _age(mode: str, data: Path, schema: str, days: float) -> None:
    """As if every stored message had come `days` earlier."""
    q = f"UPDATE inbox SET received_at = received_at - {days * DAY}"
    if mode == "embedded":
        conn = sqlite3.connect(data / "store.db")
        conn.execute(q)
        conn.commit()
        conn.close()
        return
    with psycopg.connect(DSN, autocommit=True) as c:
        c.execute(sql.SQL("SET search_path TO {}").format(sql.Identifier(schema)))
        c.execute(q)  # type: ignore[arg-type]


def _cli(capsys: pytest.CaptureFixture[str], *argv: str, code: int = 0) -> Any:
    capsys.readouterr()
    got = run([*argv, "--json"])
    out, err = capsys.readouterr()
    assert got == code, (argv, got, out, err)
    return json.loads(out)


@pytest.fixture
def scaleout(schema: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """Scale-out mode for the CLI: PostgreSQL (a schema of its own) and NATS JetStream (the
    data directory's own stream, dropped afterwards)."""
    require("NATS", *NATS)
    for name, value in (
        ("ISTHMUS_STORE", "postgresql"),
        ("ISTHMUS_PG_DSN", DSN),
        ("ISTHMUS_PG_SCHEMA", schema),
        ("ISTHMUS_BUS", "nats"),
        ("ISTHMUS_NATS_URL", f"nats://{NATS[0]}:{NATS[1]}"),
    ):
        monkeypatch.setenv(name, value)
    yield schema
    with contextlib.suppress(Exception):
        asyncio.run(drop_streams(*site_streams(tmp_path)))


@pytest.mark.parametrize("mode", ["embedded", "scale-out"])
def test_purge_command_keeps_lineage_journal_and_audit(
    mode: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    request: pytest.FixtureRequest,
    capsys: pytest.CaptureFixture[str],
) -> None:
    schema = request.getfixturevalue("scaleout") if mode == "scale-out" else ""
    data = tmp_path / "data"
    conf = tmp_path / "isthmus.toml"
    conf.write_text(
        '[mappings]\ninclude = "demo"\n[channels.mllp.messages]\n'
        '"ADT^A08" = "ignore"\n[retention]\nraw_days = 30\nignored_days = 7\n'
    )
    monkeypatch.setenv("ISTHMUS_CONFIG", str(conf))
    files = []
    for name, raw in (("dft", charge("C1", "M1")), ("a08", adt("A8", "M1", trigger="A08"))):
        (tmp_path / f"{name}.hl7").write_bytes(raw)
        files.append(str(tmp_path / f"{name}.hl7"))
    ingest = _cli(capsys, "ingest", *files, "--apply", "--data-dir", str(data), code=1)
    assert ingest["refused"] == 1  # the A08, answered AA and kept as ignored
    ignored = _cli(capsys, "messages", "list", "--status", "ignored", "--data-dir", str(data))
    assert [m["control_id"] for m in ignored["messages"]] == ["EHR^NORTH:A8"]
    before = _cli(capsys, "messages", "show", "mllp/EHR^NORTH:C1", "--data-dir", str(data))
    assert before["message"]["purged_at"] is None and before["message"]["bytes"] > 0
    assert before["events"] and before["journal_entries"]

    _age(mode, data, schema, 10)  # the ignored A08 is past 7 days, the DFT not past 30
    dry = _cli(capsys, "purge", "--dry-run", "--data-dir", str(data))
    assert (dry["dry_run"], dry["purged"], dry["ignored"]) == (True, 1, 1)
    assert (
        _cli(capsys, "messages", "show", "mllp/EHR^NORTH:A8", "--data-dir", str(data))["message"][
            "bytes"
        ]
        > 0
    )
    _age(mode, data, schema, 25)
    done = _cli(capsys, "purge", "--data-dir", str(data))
    assert (done["purged"], done["ignored"], done["by_channel"]) == (2, 1, {"mllp": 2})

    after = _cli(capsys, "messages", "show", "mllp/EHR^NORTH:C1", "--data-dir", str(data))
    m = after["message"]
    assert m["purged_at"] is not None and m["bytes"] == 0
    moved = ("purged_at", "bytes", "received_at")  # received_at: aged by the test
    assert {k: v for k, v in m.items() if k not in moved} == {
        k: v for k, v in before["message"].items() if k not in moved
    }
    assert after["events"] == before["events"]
    assert after["journal_entries"] == before["journal_entries"]
    capsys.readouterr()
    assert run(["messages", "show", "mllp/EHR^NORTH:C1", "--data-dir", str(data)]) == 0
    assert "body purged at" in capsys.readouterr().out
    assert _cli(capsys, "ledger", "trial-balance", "--data-dir", str(data))["balanced"]
    audit = _cli(capsys, "audit", "list", "--data-dir", str(data))
    purges = [
        r
        for r in (audit if isinstance(audit, list) else audit["rows"])
        if r["action"] == "cli purge"
    ]
    assert [p["outcome"] for p in purges] == ["ok", "ok"]  # the dry run, then the purge
    assert "DOE" not in json.dumps(purges)
    assert _cli(capsys, "purge", "--data-dir", str(data))["purged"] == 0


def test_the_daily_job_purges_and_audits_once_per_site(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    conf = tmp_path / "isthmus.toml"
    conf.write_text("[retention]\nraw_days = 1\n")
    hub = Hub.open(load_settings(conf, data_dir=tmp_path / "data"))
    try:
        hub.store.accept([_msg("OLD", 2), _msg("NEW", 0)])
        assert hub.bus.claim("retention", "other-worker", 3600.0, NOW)
        assert retention_round(hub, "worker-1", NOW) is None  # another process holds it
        report = retention_round(hub, "worker-1", NOW + 3601)
        assert report is not None and report.purged == 1
        [row] = [r for r in hub.governance.audit_rows() if r.event.action == "retention purge"]
        assert row.event.actor == "system:retention"
        assert json.loads(row.event.detail)["purged"] == 1
        report = retention_round(hub, "worker-1", NOW + 3700)
        assert report is not None and report.purged == 0
        assert [r.event.action for r in hub.governance.audit_rows()].count(
            "retention purge"
        ) == 1  # nothing purged, nothing recorded
    finally:
        hub.close()


def test_serve_runs_the_purge_on_its_own(tmp_path: Path) -> None:
    """The daily job as `serve` starts it (runtime.loops), its first wait shortened."""
    conf = tmp_path / "isthmus.toml"
    conf.write_text("[retention]\nraw_days = 1\n")
    hub = Hub.open(load_settings(conf, data_dir=tmp_path / "data"))
    [old] = hub.store.accept(
        [
            Inbound(
                "mllp",
                "OLD",
                b"MSH|OLD",
                time.time() - 2 * DAY,
                "p",
                "ADT^A01",
                "accepted",
                "AA",
                "",
                b"",
            )
        ]
    )
    loop = asyncio.new_event_loop()
    task = loop.create_task(retention_loop(hub, "worker-1", first_s=0.0))

    def serve() -> None:
        with contextlib.suppress(asyncio.CancelledError):
            loop.run_until_complete(task)

    thread = threading.Thread(target=serve)
    thread.start()
    try:
        wait_until(
            lambda: hub.store.message(old.message_id).purged_at,  # type: ignore[union-attr]
            what="the retention job to purge the old body",
        )
    finally:
        loop.call_soon_threadsafe(task.cancel)
        thread.join(10)
        loop.close()
        hub.close()
