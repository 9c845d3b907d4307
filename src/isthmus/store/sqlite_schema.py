"""The embedded store's schema (SQLite): sql_schema.py's tables in SQLite's types (money as
decimal text, never REAL), and how a new file is created with them.

This is the schema at the head revision (store/migrations): a new database is created
from it and stamped; an existing one changes only through a revision in
store/migrations/versions/ (a test holds the two equal).
"""

from __future__ import annotations

import sqlite3

from isthmus.store.migrations import (
    HEAD,
    VERSION_DDL,
    VERSION_TABLE,
    SchemaNotCurrent,
    sqlite_state,
)
from isthmus.store.sql_schema import ddl

SCHEMA_VERSION = int(HEAD)

SCHEMA = ddl("sqlite")


def prepare(conn: sqlite3.Connection, where: str) -> int:
    """Create a new store at HEAD (one transaction); return the revision of a current one.

    SchemaNotCurrent for an older or newer one: `isthmus migrate` upgrades, not the opener.
    """
    state = sqlite_state(conn.execute)
    if state.fresh:
        try:
            conn.executescript(
                f"BEGIN IMMEDIATE;\n{SCHEMA}\n{VERSION_DDL};\n"
                f"INSERT OR IGNORE INTO {VERSION_TABLE} VALUES ('{HEAD}');\n"
                f"INSERT OR IGNORE INTO meta VALUES ('schema_version', '{SCHEMA_VERSION}');\n"
                "COMMIT;"
            )
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
        state = sqlite_state(conn.execute)
    if not state.current:
        raise SchemaNotCurrent(state, where)
    return SCHEMA_VERSION
