"""The peer for the ingest benchmark: python-hl7's asyncio MLLP server, parse + ACK, no storage.

Run as `python bench/peer_hl7_server.py PORT`; it serves until killed.
"""

from __future__ import annotations

import asyncio
import sys

import hl7
from hl7.mllp import start_hl7_server


async def _client(reader, writer) -> None:  # type: ignore[no-untyped-def]
    try:
        while not writer.is_closing():
            msg = await reader.readmessage()
            writer.writemessage(msg.create_ack())
            await writer.drain()
    except (asyncio.IncompleteReadError, ConnectionError, hl7.exceptions.ParseException):
        pass
    finally:
        writer.close()


async def main(port: int) -> None:
    async with await start_hl7_server(_client, "127.0.0.1", port) as server:
        await server.serve_forever()


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1])))
