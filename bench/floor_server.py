"""The durable floor for the ingest benchmark (DESIGN.md, performance): asyncio MLLP, an MSH
split for MSH-10, one raw SQLite row per message, group commit with synchronous=FULL on a
writer thread, the ACK after the commit. Nothing the hub does beyond that: no parsing of
the body, no events, no relay. What a durable ACK can cost on this machine at the least.

Run as `python bench/floor_server.py PORT DB_PATH`; it serves until killed.
"""

from __future__ import annotations

import asyncio
import queue
import sqlite3
import sys
import threading

SB, EB = b"\x0b", b"\x1c\x0d"
Job = tuple[bytes, bytes, asyncio.Future[None], asyncio.AbstractEventLoop]


def writer(db: str, jobs: queue.SimpleQueue[Job]) -> None:
    c = sqlite3.connect(db, isolation_level=None, check_same_thread=False)
    c.execute("PRAGMA journal_mode=WAL")
    c.execute("PRAGMA synchronous=FULL")
    c.execute(
        "CREATE TABLE IF NOT EXISTS inbox(id INTEGER PRIMARY KEY, control_id TEXT UNIQUE, raw BLOB)"
    )
    while True:
        batch = [jobs.get()]
        while True:
            try:
                batch.append(jobs.get_nowait())
            except queue.Empty:
                break
        c.execute("BEGIN IMMEDIATE")
        c.executemany(
            "INSERT OR IGNORE INTO inbox(control_id, raw) VALUES (?, ?)",
            [(cid, raw) for cid, raw, _, _ in batch],
        )
        c.execute("COMMIT")
        for _, _, fut, loop in batch:
            loop.call_soon_threadsafe(fut.set_result, None)


async def main(port: int, db: str) -> None:
    jobs: queue.SimpleQueue[Job] = queue.SimpleQueue()
    threading.Thread(target=writer, args=(db, jobs), daemon=True).start()
    loop = asyncio.get_running_loop()

    async def client(reader: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        try:
            while True:
                await reader.readuntil(SB)
                raw = (await reader.readuntil(EB))[:-2]
                msh = raw.split(b"\r", 1)[0].split(b"|")
                cid = msh[9] if len(msh) > 9 else b""
                fut: asyncio.Future[None] = loop.create_future()
                jobs.put((cid, raw, fut, loop))
                await fut
                w.write(
                    SB + b"MSH|^~\\&|FLOOR|||||||ACK|" + cid + b"|P|2.5\rMSA|AA|" + cid + b"\r" + EB
                )
                await w.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            w.close()

    server = await asyncio.start_server(client, "127.0.0.1", port)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]), sys.argv[2]))
