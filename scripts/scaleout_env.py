"""Prepare a clean scale-out test environment: a fresh PostgreSQL database and no stale
Isthmus streams on the NATS server. Used by scripts/check.py before a scale-out pass.

Only names this project's tests create are touched: the run's database (`isthmus_test`
for `python3 dev.py test`; a second run beside it has its own) and streams named
ISTHMUS_* or KV_ISTHMUS_* (one per test data directory, named after its path). A run
removes its own streams when it ends (tests/conftest.py), so here only streams older than
any run (STALE_S, left by a run that was killed) are dropped: dropping every ISTHMUS_*
stream would pull the streams from under a run going on at the same time (issue 22).
"""

from __future__ import annotations

import asyncio
import datetime
import socket
import sys
from pathlib import Path

import nats
import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from tests.e2e.scaleout import all_streams  # the repository root, just above

PG_ADMIN = "postgresql://postgres@127.0.0.1:5432/postgres"
NATS_URL = "nats://127.0.0.1:4222"
STALE_S = 6 * 3600.0  # far longer than a whole run, even a loaded one


def dsn(database: str) -> str:
    return f"postgresql://postgres@127.0.0.1:5432/{database}"


def reachable(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=2):
            return True
    except OSError:
        return False


def drop_database(database: str) -> None:
    with psycopg.connect(PG_ADMIN, autocommit=True) as c:
        c.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')


def fresh_database(database: str = "isthmus_test") -> None:
    drop_database(database)
    with psycopg.connect(PG_ADMIN, autocommit=True) as c:
        c.execute(f'CREATE DATABASE "{database}"')


async def _drop_stale_streams() -> int:
    nc = await nats.connect(NATS_URL, connect_timeout=3)
    try:
        js = nc.jetstream()
        names = await all_streams(js)
        now = datetime.datetime.now(datetime.UTC)
        gone = 0
        for info in names:
            name = info.config.name or ""
            age = (now - info.created).total_seconds() if info.created else STALE_S
            if name.startswith(("ISTHMUS_", "KV_ISTHMUS_")) and age >= STALE_S:
                await js.delete_stream(name)
                gone += 1
        return gone
    finally:
        await nc.close()


def prepare(database: str = "isthmus_test") -> str | None:
    """None when ready, else why the scale-out pass cannot run."""
    missing = [
        n for n, port in (("PostgreSQL", 5432), ("NATS", 4222)) if not reachable("127.0.0.1", port)
    ]
    if missing:
        return f"{' and '.join(missing)} not reachable on 127.0.0.1"
    fresh_database(database)
    asyncio.run(_drop_stale_streams())
    return None


if __name__ == "__main__":
    print(prepare() or "ready")
