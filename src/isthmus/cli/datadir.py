"""Is there a hub where the command is pointed? Read commands must not conjure an empty one.

Opening the store creates it (and migrates it), which is right for `serve`, `migrate`,
`demo` and `init`, and wrong for a command that only reads: a mistyped `--data-dir` on
`isthmus ledger trial-balance` would make a new empty hub and print zeros with exit 0, as
if the site had no ledger. So the read commands (`READS`) first check that the data
directory holds a hub (embedded: any of its SQLite files; scale-out: the PostgreSQL schema
the data directory names), and otherwise exit 3 (what was asked for does not exist, as
the CLI's other exit codes say) naming the path and how to make one.
"""

from __future__ import annotations

import argparse
import contextlib
from typing import Final

from isthmus.app import site_name
from isthmus.config import Settings

# the commands (and actions) that only read a hub: None stands for every action
READS: Final[dict[str, frozenset[str] | None]] = {
    "status": None,
    "backup": None,
    "ledger": frozenset({"trial-balance", "journal"}),
    "messages": frozenset({"show", "list"}),
    "dlq": frozenset({"list"}),
    "workitems": frozenset({"list"}),
    "audit": frozenset({"list", "verify"}),
    "recon": frozenset({"erp", "deposits"}),
    "refunds": frozenset({"list"}),
    "remits": frozenset({"list"}),
    "supply": frozenset({"report", "margin"}),
    "labor": frozenset({"budget", "payroll-posted"}),
    "tokens": frozenset({"list"}),
    "analytics": frozenset({"export"}),  # reads a hub: never makes one
    "purge": None,  # changes a hub, never makes one
    "channels": None,  # reads a hub's channels or pauses one: never makes a hub
}
EMBEDDED_FILES: Final = ("store.db", "governance.db", "bus.db")


def needs_hub(args: argparse.Namespace) -> bool:
    """True when the command only reads a hub, so that a missing one is a mistake."""
    if args.cmd not in READS:
        return False
    actions = READS[args.cmd]
    return actions is None or getattr(args, "action", None) in actions


def missing_hub(settings: Settings) -> str | None:
    """Why `settings` names no hub, or None when there is one (or it cannot be told)."""
    data = settings.data_dir
    how = (
        "check --data-dir, ISTHMUS_DATA_DIR or [hub] data_dir; to create a hub there, "
        "run `isthmus migrate` (or `isthmus serve`)"
    )
    if settings.store != "postgresql":
        if any((data / name).is_file() for name in EMBEDDED_FILES):
            return None
        return f"no hub in data directory {data}: {how}"
    schema = settings.scaleout.pg_schema or site_name(settings)
    if _pg_schema_exists(settings.scaleout.pg_dsn, schema) is False:
        return f"no hub in PostgreSQL schema {schema} (data directory {data}): {how}"
    return None


def _pg_schema_exists(dsn: str, schema: str) -> bool | None:
    """None when the server cannot be asked: the command then reports that itself."""
    try:
        import psycopg  # noqa: PLC0415 - scale-out only
    except ImportError:
        return None
    with contextlib.suppress(psycopg.Error), psycopg.connect(dsn, connect_timeout=5) as conn:
        row = conn.execute(
            "SELECT 1 FROM information_schema.schemata WHERE schema_name = %s", (schema,)
        ).fetchone()
        return row is not None
    return None
