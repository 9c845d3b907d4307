"""Versioned migrations (issue 19): a store made by revision 1 upgrades in place, in both
modes, and every command refuses an old schema with the command that upgrades it.

The revision-1 stores come from tests/store/fixtures/rev1_*.sql, dumped from stores that
the code of revision 1 made and filled (build_rev1.py): two messages, two journal entries,
a charge and a work item. Each test loads one, upgrades it to HEAD with `isthmus migrate`
and reads everything back through the store's port.
"""

from __future__ import annotations

import json
import sqlite3
import uuid
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg import sql

from isthmus.cli.main import run
from isthmus.store.migrations import HEAD, REVISIONS, SchemaNotCurrent
from isthmus.store.migrations.runner import Target, check, downgrade, upgrade
from isthmus.store.migrations.versions import r0001_baseline
from isthmus.store.ports import Store
from isthmus.store.postgres import PostgresStore
from isthmus.store.sqlite import SqliteStore
from isthmus.store.sqlite_connection import StorageUnavailable
from isthmus.store.sqlite_governance import SqliteGovernance
from tests.services import POSTGRES, require

FIXTURES = Path(__file__).parent / "fixtures"
DSN = f"postgresql://postgres@{POSTGRES[0]}:{POSTGRES[1]}/test"
DFT_RAW = (
    b"MSH|^~\\&|EHR|NORTH|||20240305||DFT^P03|MSG00001|P|2.5\r"
    b"PID|1||MRN1^^^HOSP||DOE^JANE||19800101|F"
)


# --- building revision-1 stores --------------------------------------------------------


def sqlite_rev1(path: Path) -> Path:
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    conn = sqlite3.connect(path)
    conn.executescript((FIXTURES / "rev1_sqlite.sql").read_text(encoding="utf-8"))
    conn.close()
    path.chmod(0o600)
    return path


def postgres_rev1(schema: str) -> None:
    dump = (FIXTURES / "rev1_postgresql.sql").read_text(encoding="utf-8")
    with psycopg.connect(DSN, autocommit=True) as c:
        c.execute(dump.replace("__SCHEMA__", f'"{schema}"'))  # type: ignore[arg-type]


@pytest.fixture(autouse=True)
def _embedded(monkeypatch: pytest.MonkeyPatch) -> None:
    """The CLI runs here see no scale-out or site variables but the ones a test sets."""
    for name in (
        "ISTHMUS_STORE",
        "ISTHMUS_BUS",
        "ISTHMUS_PG_SCHEMA",
        "ISTHMUS_TOKEN",
        "ISTHMUS_CONFIG",
        "ISTHMUS_DATA_DIR",
    ):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def schema() -> Iterator[str]:
    require("PostgreSQL", *POSTGRES)
    name = f"m_{uuid.uuid4().hex[:12]}"
    yield name
    with psycopg.connect(DSN, autocommit=True) as c:
        c.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(name)))


# --- comparing schemas -----------------------------------------------------------------


def sqlite_schema(path: Path) -> dict[str, Any]:
    conn = sqlite3.connect(path)
    try:
        tables = [
            r[0]
            for r in conn.execute(
                "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' "
                "ORDER BY name"
            )
        ]
        return {
            "columns": {t: conn.execute(f"PRAGMA table_info({t})").fetchall() for t in tables},
            "indexes": sorted(
                " ".join(r[0].split())
                for r in conn.execute(
                    "SELECT sql FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL"
                )
            ),
            "unique": {
                t: sorted(
                    tuple(c[2] for c in conn.execute(f"PRAGMA index_info('{i[1]}')"))
                    for i in conn.execute(f"PRAGMA index_list({t})")
                    if i[2]
                )
                for t in tables
            },
            "version": conn.execute("SELECT * FROM alembic_version").fetchall()
            if "alembic_version" in tables
            else None,
            "meta": conn.execute("SELECT * FROM meta").fetchall(),
        }
    finally:
        conn.close()


def postgres_schema(schema: str) -> dict[str, Any]:
    with psycopg.connect(DSN, autocommit=True) as c:

        def rows(q: str) -> list[tuple[Any, ...]]:
            return [
                tuple(str(v).replace(schema, "S") for v in r)
                for r in c.execute(q, (schema,)).fetchall()
            ]

        return {
            "columns": rows(
                "SELECT table_name, ordinal_position, column_name, data_type, "
                "is_nullable, column_default, is_identity, identity_generation "
                "FROM information_schema.columns WHERE table_schema = %s "
                "ORDER BY 1, 2"
            ),
            "indexes": rows(
                "SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = %s ORDER BY 1"
            ),
            "constraints": rows(
                "SELECT conrelid::regclass::text, conname, "
                "pg_get_constraintdef(oid) FROM pg_constraint WHERE "
                "connamespace = %s::regnamespace ORDER BY 1, 2"
            ),
            "version": rows(
                f'SELECT version_num FROM "{schema}".alembic_version WHERE %s::text IS NOT NULL'
            )
            if c.execute(
                "SELECT to_regclass(%s || '.alembic_version')", (f'"{schema}"',)
            ).fetchone()
            != (None,)
            else None,
            "meta": rows(f'SELECT name, value FROM "{schema}".meta WHERE %s::text IS NOT NULL'),
        }


# --- reading revision 1's rows back ----------------------------------------------------


def read_back(store: Store) -> None:
    """What revision 1 wrote (build_rev1.fill), read through today's port."""
    dft = store.message_by_control_id("mllp", "EHR^NORTH:MSG00001")
    assert dft is not None and dft.raw == DFT_RAW and dft.digest == "d1"
    assert (dft.status, dft.ack_code, dft.message_type) == ("accepted", "AA", "DFT^P03")
    assert dft.received_at == 1_709_600_000.0 and dft.purged_at == 0.0
    ignored = store.message_by_control_id("mllp", "EHR^NORTH:MSG00002")
    assert ignored is not None and ignored.status == "ignored" and ignored.raw.endswith(b"2.5")
    entries = {e.entry_key: e for e in store.entries(correlation_id="mllp/EHR^NORTH:MSG00001")}
    assert set(entries) == {"E-1", "E-2"}
    assert sum(ln.debit for ln in entries["E-1"].lines) == Decimal("125.50")
    assert sum(ln.credit for ln in entries["E-2"].lines) == Decimal("80.25")
    assert entries["E-2"].posted_on.isoformat() == "2024-03-06"
    [item] = store.work_items_for("mllp/EHR^NORTH:MSG00001")
    assert (item.kind, item.queue, item.status, item.detail) == (
        "unmapped_code",
        "charge-master",
        "open",
        "code 99999 unmapped",
    )
    assert item.envelope == b"env-3"
    # and today's writes work on the upgraded tables
    assert store.purge_bodies([dft.id], 1_800_000_000.0) == 1
    after = store.message(dft.id)
    assert after is not None and after.raw == b"" and after.purged_at == 1_800_000_000.0
    assert after.digest == "d1" and after.status == "accepted"


def cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    capsys.readouterr()
    code = run(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


# --- SQLite ----------------------------------------------------------------------------


def test_the_fixture_is_revision_0001_exactly(tmp_path: Path) -> None:
    rev1 = sqlite_rev1(tmp_path / "fixture.db")
    made = tmp_path / "made.db"
    conn = sqlite3.connect(made)
    for stmt in r0001_baseline.statements(r0001_baseline.SQLITE):
        conn.execute(stmt)
    conn.execute("INSERT INTO meta VALUES ('schema_version', '1')")
    conn.commit()
    conn.close()
    a, b = sqlite_schema(rev1), sqlite_schema(made)
    assert a == b


def test_the_chain_from_nothing_builds_the_head_schema_sqlite(tmp_path: Path) -> None:
    done = upgrade(Target(sqlite_path=tmp_path / "chain" / "store.db"))
    assert (done.before, done.after, done.applied) == (None, HEAD, REVISIONS)
    SqliteStore(tmp_path / "fresh" / "store.db").close()
    chain = sqlite_schema(tmp_path / "chain" / "store.db")
    fresh = sqlite_schema(tmp_path / "fresh" / "store.db")
    assert chain == fresh
    assert fresh["version"] == [(HEAD,)] and fresh["meta"] == [("schema_version", str(int(HEAD)))]


def test_revision_1_upgrades_in_place_sqlite(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = tmp_path / "data"
    sqlite_rev1(data / "store.db")
    with pytest.raises(SchemaNotCurrent, match=f"revision 0001, this release needs {HEAD}"):
        SqliteStore(data / "store.db")
    hint = f"run `isthmus migrate`: isthmus migrate --data-dir {data}"
    for argv in (["serve"], ["serve", "--role", "worker"], ["messages", "list"], ["status"]):
        code, _, err = cli(capsys, *argv, "--data-dir", str(data))
        assert (code, err.strip().endswith(hint)) == (4, True), (argv, code, err)
    code, out, _ = cli(capsys, "migrate", "--check", "--data-dir", str(data), "--json")
    assert code == 4 and json.loads(out)["pending"] == list(REVISIONS[1:])
    assert json.loads(out)["revision"] == "0001"
    code, _, err = cli(
        capsys, "backup", "--to", str(tmp_path / "before"), "--data-dir", str(data)
    )  # the step before the upgrade works on the old schema
    assert code == 0, err
    assert sqlite_schema(tmp_path / "before" / "store.db") == sqlite_schema(data / "store.db")
    code, out, _ = cli(capsys, "migrate", "--data-dir", str(data), "--json")
    assert code == 0, out
    assert json.loads(out) | {"store": ""} == {
        "store": "",
        "schema_version": int(HEAD),
        "revision": HEAD,
        "from": "0001",
        "applied": list(REVISIONS[1:]),
    }
    code, out, _ = cli(capsys, "migrate", "--data-dir", str(data), "--json")
    assert (code, json.loads(out)["applied"]) == (0, [])  # idempotent
    code, out, _ = cli(capsys, "migrate", "--check", "--data-dir", str(data))
    assert code == 0 and "current" in out
    audit = SqliteGovernance(data / "governance.db").audit_rows()
    assert [r.event.action for r in audit].count("cli migrate") == 1  # the one that changed
    store = SqliteStore(data / "store.db")
    try:
        read_back(store)
    finally:
        store.close()


def test_migrate_check_on_a_new_data_directory_creates_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = cli(capsys, "migrate", "--check", "--data-dir", str(tmp_path / "d"))
    assert code == 4 and "none (no store yet)" in out
    assert not (tmp_path / "d" / "store.db").exists()
    assert cli(capsys, "migrate", "--data-dir", str(tmp_path / "d"))[0] == 0
    assert cli(capsys, "migrate", "--check", "--data-dir", str(tmp_path / "d"))[0] == 0


def test_a_failed_revision_leaves_the_store_at_its_revision(tmp_path: Path) -> None:
    path = sqlite_rev1(tmp_path / "store.db")
    conn = sqlite3.connect(path)  # a column in the way: revision 0002's ALTER fails
    conn.execute("ALTER TABLE inbox ADD COLUMN purged_at TEXT")
    conn.commit()
    conn.close()
    with pytest.raises(StorageUnavailable, match="duplicate column"):
        upgrade(Target(sqlite_path=path))
    state = check(Target(sqlite_path=path))
    assert (state.legacy, state.at) == (True, "0001")  # not even the stamp stayed


def test_a_store_of_a_newer_release_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = tmp_path / "data"
    SqliteStore(data / "store.db").close()
    conn = sqlite3.connect(data / "store.db")
    conn.execute("UPDATE alembic_version SET version_num = '0099'")
    conn.commit()
    conn.close()
    code, _, err = cli(capsys, "status", "--data-dir", str(data))
    assert code == 4 and "newer release" in err and "isthmus migrate" not in err
    code, _, err = cli(capsys, "migrate", "--data-dir", str(data))
    assert code == 4 and "newer release" in err
    assert cli(capsys, "migrate", "--check", "--data-dir", str(data))[0] == 4


def test_revision_0002_goes_back_and_forth(tmp_path: Path) -> None:
    target = Target(sqlite_path=tmp_path / "store.db")
    upgrade(target)
    downgrade(target, "0001")
    assert check(target).at == "0001"
    assert upgrade(target).applied == REVISIONS[1:]
    assert check(target).current


# --- PostgreSQL ------------------------------------------------------------------------


@pytest.mark.service
def test_the_chain_from_nothing_builds_the_head_schema_postgres(schema: str) -> None:
    done = upgrade(Target(dsn=DSN, schema=schema))
    assert done.applied == REVISIONS
    chain = postgres_schema(schema)
    fresh_name = schema + "_f"
    try:
        PostgresStore(DSN, schema=fresh_name).close()
        fresh = postgres_schema(fresh_name)
    finally:
        with psycopg.connect(DSN, autocommit=True) as c:
            c.execute(
                sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(fresh_name))
            )
    fresh = {
        k: [tuple(str(v).replace("S_f", "S") for v in r) for r in rows] for k, rows in fresh.items()
    }
    assert chain == fresh
    assert fresh["version"] == [(HEAD,)] and fresh["meta"] == [("schema_version", str(int(HEAD)))]


@pytest.mark.service
def test_the_postgres_fixture_is_revision_0001_exactly(schema: str) -> None:
    postgres_rev1(schema)
    made = schema + "_m"
    try:
        with psycopg.connect(DSN, autocommit=True) as c:
            c.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(made)))
            c.execute(sql.SQL("SET search_path TO {}").format(sql.Identifier(made)))
            c.execute(r0001_baseline.POSTGRESQL)  # type: ignore[arg-type]
            c.execute("INSERT INTO meta VALUES ('schema_version', '1')")
        a = postgres_schema(schema)
        b = {
            k: [tuple(str(v).replace("S_m", "S") for v in r) for r in rows]
            for k, rows in postgres_schema(made).items()
            if rows is not None
        }
    finally:
        with psycopg.connect(DSN, autocommit=True) as c:
            c.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(made)))
    assert a.pop("version") is None
    assert a == b


@pytest.mark.service
def test_revision_1_upgrades_in_place_postgres(
    schema: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    postgres_rev1(schema)
    for name, value in (
        ("ISTHMUS_STORE", "postgresql"),
        ("ISTHMUS_PG_DSN", DSN),
        ("ISTHMUS_PG_SCHEMA", schema),
        ("ISTHMUS_BUS", "sqlite"),
    ):
        monkeypatch.setenv(name, value)
    data = tmp_path / "data"
    with pytest.raises(SchemaNotCurrent, match="revision 0001"):
        PostgresStore(DSN, schema=schema)
    hint = f"isthmus migrate --data-dir {data}"
    for argv in (["serve", "--role", "api"], ["serve", "--role", "worker"], ["status"]):
        code, _, err = cli(capsys, *argv, "--data-dir", str(data))
        assert (code, err.strip().endswith(hint)) == (4, True), (argv, code, err)
    code, out, _ = cli(capsys, "migrate", "--check", "--data-dir", str(data), "--json")
    assert code == 4 and json.loads(out)["pending"] == list(REVISIONS[1:])
    code, out, _ = cli(capsys, "migrate", "--data-dir", str(data), "--json")
    assert code == 0 and json.loads(out)["applied"] == list(REVISIONS[1:]), out
    code, out, _ = cli(capsys, "migrate", "--data-dir", str(data), "--json")
    assert (code, json.loads(out)["applied"]) == (0, [])
    assert cli(capsys, "migrate", "--check", "--data-dir", str(data))[0] == 0
    store = PostgresStore(DSN, schema=schema)
    try:
        read_back(store)
    finally:
        store.close()
