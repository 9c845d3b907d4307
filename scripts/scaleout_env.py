"""Prepare a clean scale-out test environment: a fresh PostgreSQL database and no leftover
Isthmus streams on the NATS server. Used by scripts/check.py before the scale-out pass.

Only names this project's tests create are touched: the database `isthmus_test` and
streams named ISTHMUS_* or KV_ISTHMUS_* (one per test data directory).
"""

from __future__ import annotations

import asyncio
import socket

import nats
import psycopg

PG_ADMIN = "postgresql://postgres@127.0.0.1:5432/postgres"
PG_TEST = "postgresql://postgres@127.0.0.1:5432/isthmus_test"
NATS_URL = "nats://127.0.0.1:4222"


def reachable(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=2):
            return True
    except OSError:
        return False


def fresh_database() -> None:
    with psycopg.connect(PG_ADMIN, autocommit=True) as c:
        c.execute("DROP DATABASE IF EXISTS isthmus_test WITH (FORCE)")
        c.execute("CREATE DATABASE isthmus_test")


async def _drop_streams() -> int:
    nc = await nats.connect(NATS_URL, connect_timeout=3)
    try:
        js = nc.jetstream()
        names = await js.streams_info()
        gone = 0
        for info in names:
            name = info.config.name or ""
            if name.startswith(("ISTHMUS_", "KV_ISTHMUS_")):
                await js.delete_stream(name)
                gone += 1
        return gone
    finally:
        await nc.close()


def prepare() -> str | None:
    """None when ready, else why the scale-out pass cannot run."""
    missing = [n for n, port in (("PostgreSQL", 5432), ("NATS", 4222))
               if not reachable("127.0.0.1", port)]
    if missing:
        return f"{' and '.join(missing)} not reachable on 127.0.0.1"
    fresh_database()
    asyncio.run(_drop_streams())
    return None


if __name__ == "__main__":
    print(prepare() or "ready")
