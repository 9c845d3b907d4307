"""`isthmus migrate [--check]`: upgrade the store's schema in place, or say whether one waits.

It runs without opening the hub (a hub refuses to open on an old schema: that is what
this command is for), and so does `isthmus backup`, the step before it. `--check` reads
and writes nothing, and exits 4 when a revision is pending (0 when current), for deploy
scripts and readiness gates. `upgrade_hint` is the exact command a refused `serve` (or
any command) prints for this site.
"""

from __future__ import annotations

import argparse
import os
import shlex
from typing import Any

from isthmus.app import site_name
from isthmus.cli import commands
from isthmus.cli.commands import Result
from isthmus.cli.gate import Gate
from isthmus.config import Settings
from isthmus.store.migrations import HEAD, SchemaNotCurrent


def target_of(settings: Settings) -> Any:
    """The migration target of the store in use: the PostgreSQL DSN and schema, or the
    SQLite file in the data directory."""
    from isthmus.store.migrations.runner import Target  # noqa: PLC0415 - loads Alembic

    if settings.store == "postgresql":
        return Target(
            dsn=settings.scaleout.pg_dsn, schema=settings.scaleout.pg_schema or site_name(settings)
        )
    return Target(sqlite_path=settings.data_dir / "store.db")


def dispatch(settings: Settings, args: argparse.Namespace, gate: Gate) -> Result:
    """`migrate [--check]`, and `backup` (the step before it), neither needing the hub."""
    if args.cmd == "backup":
        try:
            data, text, code = commands.backup(settings, args)
        except commands.UsageError as exc:
            if gate.audited:
                gate.record("failed", str(args.to), error=str(exc))
            raise
        if gate.audited:
            gate.record("ok" if code == 0 else "failed", str(args.to), exit=code, result=data)
        return data, text, code
    from isthmus.store.migrations import runner  # noqa: PLC0415 - loads Alembic

    target = target_of(settings)
    if args.action == "check":
        state = runner.check(target)
        d = {"store": settings.store, **runner.describe(state)}
        if state.newer:
            d["error"] = str(SchemaNotCurrent(state, target.where))
        return (
            d,
            lambda x: (
                f"{x['store']} store at revision {x['revision'] or 'none (no store yet)'}, "
                f"head {x['head']}: "
                + (
                    f"pending {', '.join(x['pending'])}; run `isthmus migrate`"
                    if x["pending"]
                    else x.get("error", "current")
                )
            ),
            0 if state.current else 4,
        )
    try:
        done = runner.upgrade(target)
    except SchemaNotCurrent as exc:
        if gate.audited:
            gate.record("failed", target.where, error=str(exc))
        raise
    d = {
        "store": settings.store,
        "schema_version": int(HEAD),
        "revision": done.after,
        "from": done.before,
        "applied": list(done.applied),
    }
    if gate.audited and done.applied:
        gate.record("ok", target.where, **{k: v for k, v in d.items() if k != "store"})
    return (
        d,
        lambda x: (
            f"{x['store']} store upgraded from revision {x['from'] or 'none'} "
            f"to {x['revision']} (applied {', '.join(x['applied'])})"
            if x["applied"]
            else f"{x['store']} store at revision {x['revision']}: nothing to do"
        ),
        0,
    )


def upgrade_hint(args: argparse.Namespace, settings: Settings) -> str:
    """The command that upgrades the store this invocation names, ready to paste."""
    argv = ["isthmus", "migrate", "--data-dir", str(settings.data_dir)]
    config = args.config or os.environ.get("ISTHMUS_CONFIG")
    if config:
        argv += ["--config", str(config)]
    return shlex.join(argv)
