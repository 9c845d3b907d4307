"""Composition root: the one place where adapters are chosen and wired together.

`Hub.open` builds the store and the bus for the configured mode and the flows on top of
them; `Hub.serve` adds the listeners and the background loops (worker, exporter). CLI
commands that only read open the same data directory while `serve` runs (SQLite WAL).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
import shutil
import signal
import sqlite3
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from isthmus.bus.ports import Bus
from isthmus.bus.sqlite import SqliteBus
from isthmus.config import ConfigError, Settings
from isthmus.connectors.erp_file import ErpFileSink
from isthmus.connectors.mllp import MllpServer, tls_context
from isthmus.flows.export import Dispatcher, seal_batches
from isthmus.flows.inbox import GroupCommitWriter, Inbox
from isthmus.flows.processor import Processor
from isthmus.flows.retry import RetryPolicy
from isthmus.flows.worker import Worker
from isthmus.ledger.periods import FiscalCalendar
from isthmus.store.ports import Store
from isthmus.store.sqlite import SqliteStore

log = logging.getLogger(__name__)
CHANNEL = "mllp"


def site_secret(data_dir: Path) -> str:
    """The per-site key for account tokens: made once, random, readable by the owner only."""
    path = data_dir / "token.key"
    if not path.exists():
        data_dir.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(secrets.token_hex(32))
    return path.read_text().strip()


def backup_embedded(data_dir: Path, target: Path) -> list[Path]:
    """Online backup (sqlite3 backup API) of store.db and bus.db while `serve` runs, plus the
    token key; restore by copying the files back into an empty data directory."""
    target.mkdir(parents=True, exist_ok=True)
    written = []
    for name in ("store.db", "bus.db"):
        src = data_dir / name
        if not src.exists():
            continue
        with contextlib.closing(sqlite3.connect(src)) as s, \
                contextlib.closing(sqlite3.connect(target / name)) as d:
            s.backup(d)
        written.append(target / name)
    key = data_dir / "token.key"
    if key.exists():
        shutil.copy2(key, target / "token.key")
        written.append(target / "token.key")
    return written


@dataclass
class Hub:
    settings: Settings
    store: Store
    bus: Bus
    processor: Processor
    policy: RetryPolicy
    export_dir: Path
    loops: list[asyncio.Task[None]] = field(default_factory=list)

    @classmethod
    def open(cls, settings: Settings) -> Hub:
        if settings.store != "sqlite" or settings.bus != "sqlite":
            raise ConfigError("scale-out mode (postgresql/nats) is not available in this build;"
                              " use store = sqlite and bus = sqlite")
        rel = settings.reliability
        data = settings.data_dir
        store = SqliteStore(data / "store.db", synchronous=rel.sqlite_synchronous)
        bus = SqliteBus(data / "bus.db", partitions=max(1, rel.workers),
                        synchronous=rel.sqlite_synchronous)
        processor = Processor(
            secret=settings.token_secret or site_secret(data), mappings=settings.mappings,
            ar_account=settings.posting.ar_account,
            calendar=FiscalCalendar(closed=frozenset(settings.posting.closed_periods),
                                    policy=settings.posting.closed_period_policy),
        )
        policy = RetryPolicy(rel.max_attempts, rel.backoff_base_s, rel.backoff_max_s)
        return cls(settings, store, bus, processor, policy, data / "exports" / "erp")

    def worker(self) -> Worker:
        return Worker(self.bus, self.store, self.processor, self.policy,
                      partitions=range(self.bus.partitions))

    def export(self) -> tuple[int, int]:
        """Seal pending journal batches and deliver what is due; (batches, files sent)."""
        made = seal_batches(self.store, policy_of=lambda ch: self.settings.channel(ch)
                            .summarization)
        sent = Dispatcher(self.store, ErpFileSink(self.export_dir), self.policy).run_once()
        return len(made), sent

    def close(self) -> None:
        for t in self.loops:
            t.cancel()
        self.bus.close()
        self.store.close()


@dataclass
class Running:
    """A hub with its listeners up; what `serve` and `demo` share."""

    hub: Hub
    writer: GroupCommitWriter
    inbox: Inbox
    worker: Worker
    mllp: MllpServer
    dispatcher: Dispatcher
    http: object | None = None
    tasks: list[asyncio.Task[None]] = field(default_factory=list)

    async def stop(self) -> None:
        await self.mllp.close()
        self.writer.stop()
        self.worker.stop()
        for t in self.tasks:
            t.cancel()
        for t in self.tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await t
        await asyncio.to_thread(self.hub.export)


async def _export_loop(hub: Hub, dispatcher: Dispatcher, every_s: float) -> None:
    while True:
        await asyncio.sleep(every_s)
        try:
            await asyncio.to_thread(
                seal_batches, hub.store,
                policy_of=lambda ch: hub.settings.channel(ch).summarization)
            await asyncio.to_thread(dispatcher.run_once)
        except Exception as exc:  # noqa: BLE001 - retried next round
            log.error("export round failed: %s", exc)


HttpShell = Callable[[Hub, dict[str, "Running"], str, int], Coroutine[Any, Any, None]]


async def start(hub: Hub, *, mllp_port: int | None = None, http_port: int | None = None,
                export_every_s: float = 30.0, http: HttpShell | None = None) -> Running:
    """Bring the hub up; `http` is the HTTP shell to run beside it (the CLI passes it in,
    so the composition root never imports a shell)."""
    s = hub.settings
    live: dict[str, Running] = {}  # the HTTP shell reads the running parts through this
    writer = GroupCommitWriter(hub.store, hub.bus)
    writer.start()
    inbox = Inbox(writer, channel=CHANNEL, tenant=s.tenant,
                  currency=s.channel(CHANNEL).currency)
    ssl_ctx = tls_context(s.tls_cert, s.tls_key) if s.tls_cert and s.tls_key else None
    mllp = MllpServer(inbox, s.host, s.mllp_port if mllp_port is None else mllp_port,
                      max_message_bytes=s.reliability.max_message_bytes,
                      idle_timeout_s=s.reliability.idle_timeout_s, ssl_context=ssl_ctx)
    http_coro = None
    try:
        await mllp.start()
        if http is not None:  # binds now: a taken port stops start-up with OSError
            http_coro = http(hub, live, s.host, s.http_port if http_port is None else http_port)
    except BaseException:
        await mllp.close()
        writer.stop()
        raise
    worker = hub.worker()
    if s.reliability.workers > 0:
        worker.start()
    dispatcher = Dispatcher(hub.store, ErpFileSink(hub.export_dir), hub.policy)
    run = Running(hub, writer, inbox, worker, mllp, dispatcher)
    live["run"] = run
    run.tasks.append(asyncio.create_task(_export_loop(hub, dispatcher, export_every_s)))
    if http_coro is not None:
        run.tasks.append(asyncio.create_task(http_coro))
    return run


async def serve_forever(hub: Hub, *, mllp_port: int | None = None,
                        http_port: int | None = None, http: HttpShell | None = None,
                        on_ready: Callable[[], None] | None = None) -> None:
    run = await start(hub, mllp_port=mllp_port, http_port=http_port, http=http)
    if on_ready is not None:
        on_ready()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)
    log.info("serving: MLLP %s:%d, data in %s", hub.settings.host, run.mllp.port,
             hub.settings.data_dir)
    await stop.wait()
    await run.stop()
