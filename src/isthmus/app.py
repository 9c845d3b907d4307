"""Composition root: the one place where adapters are chosen and wired together.

`Hub.open` builds the store and the bus for the configured mode and the flows on top of
them; `Hub.serve` adds the listeners and the background loops (worker, exporter). CLI
commands that only read open the same data directory while `serve` runs (SQLite WAL).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import hashlib
import importlib.util
import logging
import os
import secrets
import signal
import socket
import sqlite3
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from isthmus.bus.ports import Bus
from isthmus.bus.sqlite import SqliteBus
from isthmus.config import ChannelSettings, ConfigError, Settings
from isthmus.connectors.destinations import open_destination
from isthmus.connectors.erp_allowlist import guarded
from isthmus.connectors.erp_file import ErpFileSink
from isthmus.connectors.erp_ports import ErpBatchSink, ErpPort
from isthmus.connectors.folder import DropFolder
from isthmus.connectors.mllp import MllpServer, tls_context
from isthmus.flows import channels, retention
from isthmus.flows.claim_remit import ClaimPolicy
from isthmus.flows.delivery import DeliveryEngine
from isthmus.flows.export import BatchSink, CircuitBreaker, Dispatcher, seal_batches
from isthmus.flows.file_intake import FileIntake
from isthmus.flows.inbox import MLLP_CHANNEL, GroupCommitWriter, Inbox
from isthmus.flows.labor import budget_usage, pay_period_accruals
from isthmus.flows.outbound import Outbound
from isthmus.flows.processor import Processor
from isthmus.flows.refunds import RefundPolicy, Refunds
from isthmus.flows.retry import RetryPolicy
from isthmus.flows.routes import compile_routes
from isthmus.flows.status_events import Derivation
from isthmus.flows.supply import SupplyFlow
from isthmus.flows.supply_state import SupplyConfigError, policy_from_table
from isthmus.flows.worker import Worker
from isthmus.governance import allowlist, audit
from isthmus.governance.ports import GovernanceStore
from isthmus.ledger.periods import FiscalCalendar
from isthmus.observe.alerts import Alerter
from isthmus.recon.drift import DriftReport, find_drift, record_drift
from isthmus.store.ports import Store
from isthmus.store.private_files import private_database, private_dir, write_private
from isthmus.store.sqlite import SqliteStore

if TYPE_CHECKING:  # paramiko is the `sftp` extra: imported where an sftp channel starts
    from isthmus.connectors.sftp_pickup import SftpPickup

log = logging.getLogger(__name__)


def site_secret(data_dir: Path) -> str:
    """The per-site key for account tokens: made once, random, readable by the owner only."""
    path = data_dir / "token.key"
    if not path.exists():
        with contextlib.suppress(FileExistsError):  # another process made it meanwhile
            private_dir(data_dir)
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as fh:
                fh.write(secrets.token_hex(32))
    return path.read_text().strip()


def backup_embedded(data_dir: Path, target: Path) -> list[Path]:
    """Online backup (sqlite3 backup API) of store.db, bus.db and governance.db while `serve`
    runs, plus the token key; restore by copying the files back into an empty data
    directory. Every file written is 0600 and a folder made for them 0700, whatever the
    umask (store.private_files): a backup holds the same patient data as the hub."""
    private_dir(target)
    written = []
    for name in ("store.db", "bus.db", "governance.db"):
        src = data_dir / name
        if not src.exists():
            continue
        private_database(target / name)
        with contextlib.closing(sqlite3.connect(src)) as s, \
                contextlib.closing(sqlite3.connect(target / name)) as d:
            s.backup(d)
        written.append(target / name)
    key = data_dir / "token.key"
    if key.exists():
        write_private(target / "token.key", key.read_bytes())
        written.append(target / "token.key")
    return written


def site_name(settings: Settings) -> str:
    """A stable identifier of this hub's data directory, for the schema and stream names."""
    digest = hashlib.sha256(str(settings.data_dir.resolve()).encode()).hexdigest()[:10]
    return f"isthmus_{digest}"


def open_store(settings: Settings) -> Store:
    if settings.store == "postgresql":
        from isthmus.store.postgres import PostgresStore  # noqa: PLC0415 - scale-out only

        schema = settings.scaleout.pg_schema or site_name(settings)
        return PostgresStore(settings.scaleout.pg_dsn, schema=schema)
    return SqliteStore(settings.data_dir / "store.db",
                       synchronous=settings.reliability.sqlite_synchronous)


def open_governance(settings: Settings) -> GovernanceStore:
    """Principals, token digests and the audit trail, beside the store of the same mode."""
    if settings.store == "postgresql":
        from isthmus.store.postgres_governance import PostgresGovernance  # noqa: PLC0415

        return PostgresGovernance(settings.scaleout.pg_dsn,
                                  schema=settings.scaleout.pg_schema or site_name(settings))
    from isthmus.store.sqlite_governance import SqliteGovernance  # noqa: PLC0415

    return SqliteGovernance(settings.data_dir / "governance.db")


def open_bus(settings: Settings) -> Bus:
    partitions = max(1, settings.reliability.partitions)
    if settings.bus == "nats":
        from isthmus.bus.nats import NatsBus  # noqa: PLC0415 - scale-out only

        stream = settings.scaleout.nats_stream or site_name(settings).upper()
        return NatsBus(settings.scaleout.nats_servers, stream=stream, partitions=partitions,
                       subject_prefix=stream.lower(),
                       max_deliver=settings.reliability.max_attempts,
                       # Redelivery must come before a dead worker's partition lease
                       # expires (15 s, renewed every 3 s), so its unacked messages are
                       # back in the partition before a survivor pulls later ones.
                       ack_wait_s=10.0)
    return SqliteBus(settings.data_dir / "bus.db", partitions=partitions,
                     synchronous=settings.reliability.sqlite_synchronous)


def open_erp(settings: Settings) -> ErpPort:
    """The ERP adapter named by [erp]: `tryton` (JSON-RPC) or `rest` (generic REST)."""
    erp = settings.erp
    if erp.kind == "rest":
        from isthmus.connectors.erp_rest import RestErp  # noqa: PLC0415 - REST sites only

        return RestErp.from_settings(erp)
    if erp.kind != "tryton":
        raise ConfigError("the ERP is a file drop ([erp] kind = \"file\"): nothing to query")
    from isthmus.connectors.erp_rpc import TrytonRpc  # noqa: PLC0415 - Tryton sites only
    from isthmus.connectors.erp_tryton import TrytonErp  # noqa: PLC0415

    try:
        password = erp.password_file.read_text().strip() if erp.password_file else ""
    except OSError as exc:
        raise ConfigError(f"erp.password_file {erp.password_file}: {exc.strerror}") from exc
    rpc = TrytonRpc(erp.url, erp.database, erp.user, password, timeout_s=erp.timeout_s)
    return TrytonErp(rpc, journal=erp.journal, account_map=erp.account_map)


def erp_sink(settings: Settings, export_dir: Path) -> BatchSink:
    """The outbox sink for the configured ERP: a file drop, or posting through its API."""
    withheld = allowlist.withheld(settings.allowlist, settings.erp.kind)
    if settings.erp.kind in ("tryton", "rest"):
        return guarded(ErpBatchSink(open_erp(settings)), withheld)
    return guarded(ErpFileSink(export_dir), withheld)


def close_sink(sink: BatchSink) -> None:
    """Release an API sink's connections (a file sink holds none)."""
    if isinstance(sink, ErpBatchSink):
        sink.erp.close()


def erp_dispatcher(settings: Settings, store: Store, sink: BatchSink,
                   policy: RetryPolicy) -> Dispatcher:
    """The outbox dispatcher with the [erp] outage settings (backoff cap, breaker)."""
    return Dispatcher(store, sink, policy,
                      CircuitBreaker(cooldown_s=settings.erp.breaker_cooldown_s),
                      unavailable_max_s=settings.erp.retry_max_s)


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
        rel = settings.reliability
        data = settings.data_dir
        store = open_store(settings)
        try:
            bus = open_bus(settings)
        except BaseException:
            store.close()
            raise
        calendar = FiscalCalendar(closed=frozenset(settings.posting.closed_periods),
                                  policy=settings.posting.closed_period_policy)
        try:
            supply_policy, _ = policy_from_table(settings.supply)
        except SupplyConfigError as exc:
            bus.close()
            store.close()
            raise ConfigError(str(exc)) from exc
        try:  # issue 20: fee schedule paths are relative to the data directory
            claim_policy = ClaimPolicy.load(settings.claims, data)
        except (OSError, ValueError) as exc:
            bus.close()
            store.close()
            raise ConfigError(f"[claims] fee_schedules: {exc}") from exc
        processor = Processor(
            secret=settings.token_secret or site_secret(data),
            mappings=settings.mappings, ar_account=settings.posting.ar_account,
            calendar=calendar, settlement=settings.settlement, labor=settings.labor,
            labor_accruals=functools.partial(pay_period_accruals, store),
            supply=SupplyFlow(store, supply_policy, settings.mappings, calendar),
            claims=claim_policy,
        )
        policy = RetryPolicy(rel.max_attempts, rel.backoff_base_s, rel.backoff_max_s)
        hub = cls(settings, store, bus, processor, policy, data / "exports" / "erp")
        if hub.outbound is not None and processor.supply is not None:  # InvoiceMatched
            processor.supply.on_status = hub.outbound.publish
        return hub

    @functools.cached_property
    def governance(self) -> GovernanceStore:
        """Opened on first use: most commands never need it."""
        return open_governance(self.settings)

    @functools.cached_property
    def outbound(self) -> Outbound | None:
        """The routes' hook (issue 18, flows/outbound.py); None without [[routes]], so the
        worker and the refunds service skip it at no cost."""
        s = self.settings
        if not s.routes:
            return None
        return Outbound(compile_routes(s.routes, s.destinations),
                        Derivation(self.processor.secret, s.posting.ar_account,
                                   dict(s.mappings.transaction_types)),
                        message_of=self.store.message_by_control_id)

    def delivery_engine(self, name: str) -> DeliveryEngine:
        """The delivery engine of destination `name` (flows/delivery.py), its adapter open."""
        d = self.settings.destinations[name]
        return DeliveryEngine(self.store, open_destination(d, self.settings.scaleout
                                                           .nats_servers), d)

    def deliver(self, now: float | None = None) -> int:
        """One delivery round for every destination (tests, CLI); how many were sent."""
        sent = 0
        for name in self.settings.destinations:
            engine = self.delivery_engine(name)
            try:
                sent += engine.run_once(now).sent
            finally:
                engine.close()
        return sent

    def refunds(self) -> Refunds:
        """The refund service (flows/refunds.py) over this hub's store and audit trail."""
        s = self.settings
        service = self._refunds(s)
        if self.outbound is not None:
            service.on_status = self.outbound.publish
        return service

    def _refunds(self, s: Settings) -> Refunds:
        return Refunds(self.store, self.governance, RefundPolicy(
            approval_threshold=s.refunds.approval_threshold,
            approval_window_days=s.refunds.approval_window_days, ar_account=s.posting.ar_account,
            refunds_payable_account=s.posting.refunds_payable_account,
            calendar=self.processor.calendar, mappings=s.mappings,
            secret=self.processor.secret))

    def worker(self) -> Worker:
        w = Worker(self.bus, self.store, self.processor, self.policy,
                   partitions=range(self.bus.partitions))
        if self.outbound is not None:
            w.on_applied = self.outbound.on_applied
        return w

    def export(self) -> tuple[int, int]:
        """Seal pending journal batches and deliver what is due; (batches, files sent)."""
        made = seal_batches(self.store, policy_of=lambda ch: self.settings.channel(ch)
                            .summarization)
        sink = erp_sink(self.settings, self.export_dir)
        try:
            sent = erp_dispatcher(self.settings, self.store, sink, self.policy).run_once()
        finally:
            close_sink(sink)
        return len(made), sent

    def pull_master_data(self, now: float | None = None) -> DriftReport:
        """Read the ERP's master data; open an `erp-mapping` work item per new drift and
        close those that cleared (recon/drift.py)."""
        erp = open_erp(self.settings)
        try:
            md = erp.master_data()
        finally:
            erp.close()
        return record_drift(self.store, find_drift(self.settings, md),
                            time.time() if now is None else now)

    def close(self) -> None:
        for t in self.loops:
            t.cancel()
        self.bus.close()
        self.store.close()


ROLES = ("all", "listener", "worker", "api")


@dataclass
class Running:
    """The parts of a hub this process runs, by role; what `serve` and `demo` share.

    listener: MLLP + durable inbox (and its relay to the bus). worker: the flows and the ERP
    export loop. api: the HTTP shell. all: every part in one process (embedded mode).
    A listener runs one MllpServer and Inbox per MLLP channel (`mllps`, `inboxes`, by
    channel name; `mllp` and `inbox` are the channel "mllp"'s) and one drop folder per
    folder channel, each paused and resumed as the store says (flows/channels.py).
    """

    hub: Hub
    role: str
    writer: GroupCommitWriter | None = None
    inbox: Inbox | None = None
    mllp: MllpServer | None = None
    mllps: dict[str, MllpServer] = field(default_factory=dict)
    inboxes: dict[str, Inbox] = field(default_factory=dict)
    switches: dict[str, channels.Switch] = field(default_factory=dict)  # folder channels
    pickups: dict[str, SftpPickup] = field(default_factory=dict)  # sftp channels
    worker: Worker | None = None
    dispatcher: Dispatcher | None = None
    tasks: list[asyncio.Task[None]] = field(default_factory=list)

    async def stop(self) -> None:
        if self.mllps:
            await asyncio.gather(*(m.close() for m in self.mllps.values()))
        if self.writer is not None:
            self.writer.stop()
        if self.worker is not None:
            self.worker.stop()
        for t in self.tasks:
            t.cancel()
        for t in self.tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await t
        if self.dispatcher is not None:
            await asyncio.to_thread(self.hub.export)
            close_sink(self.dispatcher.sink)


EXPORTER_LEASE = "exporter"


async def _export_loop(hub: Hub, dispatcher: Dispatcher, every_s: float, owner: str) -> None:
    """Seal and deliver ERP batches; one exporter per site (a lease on the bus), so two
    workers never deliver the same outbox row at once."""
    while True:
        await asyncio.sleep(every_s)
        try:
            ttl = max(3 * every_s, 15.0)
            if not await asyncio.to_thread(hub.bus.claim, EXPORTER_LEASE, owner, ttl,
                                           time.time()):
                continue
            await asyncio.to_thread(
                seal_batches, hub.store,
                policy_of=lambda ch: hub.settings.channel(ch).summarization)
            await asyncio.to_thread(dispatcher.run_once)
        except Exception as exc:  # noqa: BLE001 - retried next round
            log.error("export round failed: %s", exc)


DESTINATION_LEASE = "destination:"  # + the destination's name


async def _delivery_loop(hub: Hub, name: str, owner: str, idle_s: float = 0.25) -> None:
    """Deliver destination `name`'s outbox (flows/delivery.py); one engine per destination
    and site at a time (a lease on the bus), so order per key holds across processes."""
    engine: DeliveryEngine | None = None
    # the lease outlives a round: one send (timeout_s) after the round's 5 s, twice over
    ttl = max(15.0, 2 * (hub.settings.destinations[name].timeout_s + 5.0))
    renewed, held = 0.0, False
    try:
        while True:
            pause = idle_s
            try:
                now = time.time()
                if now - renewed >= ttl / 5:  # the lease is a bus write: renew, not spin
                    held = await asyncio.to_thread(hub.bus.claim, DESTINATION_LEASE + name,
                                                   owner, ttl, now)
                    renewed = now
                if held:
                    if engine is None:
                        engine = await asyncio.to_thread(hub.delivery_engine, name)
                    if (await asyncio.to_thread(engine.run_once)).sent:
                        pause = 0
            except Exception as exc:  # noqa: BLE001 - retried after a pause, never spinning
                log.error("delivery round of %s failed: %s", name, exc)
                pause = 5.0
            await asyncio.sleep(pause)
    finally:
        if engine is not None:
            engine.close()


ALERTS_LEASE = "alerts"


async def _alert_loop(hub: Hub, owner: str) -> None:
    """Evaluate the alert rules every [alerts] interval_s and send the transitions to the
    webhook (observe/alerts.py); one evaluator per site (a lease on the bus). The breaker
    is read from the outbox, as `isthmus status` does, whichever process exports."""
    conf = hub.settings.alerts
    s = hub.settings
    alerter = Alerter(hub.store, hub.bus, conf, s.sla, labor=lambda now: budget_usage(
        hub.store, s.labor, s.mappings, now))
    while True:
        await asyncio.sleep(conf.interval_s)
        try:
            if await asyncio.to_thread(hub.bus.claim, ALERTS_LEASE, owner,
                                       max(3 * conf.interval_s, 15.0), time.time()):
                await asyncio.to_thread(alerter.run_once, time.time())
        except Exception as exc:  # noqa: BLE001 - retried next round
            log.error("alert round failed: %s", exc)


MASTER_DATA_LEASE = "erp-master-data"


async def _master_data_loop(hub: Hub, every_s: float, owner: str) -> None:
    """Pull the ERP's master data every `every_s` seconds (one puller per site, a lease):
    mapping drift becomes `erp-mapping` work items, closed when it clears."""
    while True:
        try:
            if await asyncio.to_thread(hub.bus.claim, MASTER_DATA_LEASE, owner,
                                       max(2 * every_s, 15.0), time.time()):
                report = await asyncio.to_thread(hub.pull_master_data)
                if report.opened or report.closed:
                    log.warning("ERP mapping drift: %d new, %d cleared, %d open",
                                len(report.opened), len(report.closed), len(report.drift))
        except Exception as exc:  # noqa: BLE001 - retried next round
            log.error("ERP master-data pull failed: %s", exc)
        await asyncio.sleep(every_s)


ANALYTICS_LEASE = "analytics-export"
ANALYTICS_EVERY_S = 300.0


async def _analytics_loop(hub: Hub, owner: str, every_s: float = ANALYTICS_EVERY_S) -> None:
    """The analytics feed (issue 21, docs/analytics.md): one incremental export every
    `every_s` seconds by the process holding the lease; scheduled only with the extra."""
    from isthmus.analytics import export  # noqa: PLC0415 - the optional `analytics` extra
    from isthmus.analytics.warehouse import WAREHOUSE  # noqa: PLC0415

    data = hub.settings.data_dir
    while True:
        await asyncio.sleep(every_s)
        try:
            if await asyncio.to_thread(hub.bus.claim, ANALYTICS_LEASE, owner, 2 * every_s,
                                       time.time()):
                await asyncio.to_thread(
                    export.run, hub.store, warehouse=data / WAREHOUSE,
                    parquet=data / export.PARQUET, secret=hub.processor.secret,
                    roles=export.roles_from(hub.settings))
        except Exception as exc:  # noqa: BLE001 - retried next round
            log.error("analytics export failed: %s", exc)


RETENTION_LEASE = "retention"


def retention_round(hub: Hub, owner: str, now: float) -> retention.PurgeReport | None:
    """One daily purge of bodies past [retention] (flows/retention.py), by the process that
    holds the lease; a purge that blanked anything goes into the audit trail. None when
    another process holds the lease."""
    if not hub.bus.claim(RETENTION_LEASE, owner, 3600.0, now):
        return None
    report = retention.purge(hub.store, hub.settings.retention, now)
    if report.purged:
        audit.record(hub.governance, "system:retention", "retention purge", "inbox", "ok",
                     **report.as_dict())
        log.info("retention: purged %d message bodies", report.purged)
    return report


async def _retention_loop(hub: Hub, owner: str, first_s: float = 60.0,
                          every_s: float = 86_400.0) -> None:
    """The daily retention job: a minute after start, then every day."""
    await asyncio.sleep(first_s)
    while True:
        try:
            await asyncio.to_thread(retention_round, hub, owner, time.time())
        except Exception as exc:  # noqa: BLE001 - retried next round
            log.error("retention purge failed: %s", exc)
        await asyncio.sleep(every_s)


async def _drop_loop(drop: DropFolder, every_s: float = 2.0,
                     switch: channels.Switch | None = None) -> None:
    """The watched drop folder (X12 and HL7 files), one pass every `every_s` seconds; no
    pass while its channel is paused (the files wait in inbound/)."""
    while True:
        await asyncio.sleep(every_s)
        if switch is not None and switch.paused:
            continue
        try:
            await asyncio.to_thread(drop.run_once)
        except Exception as exc:  # noqa: BLE001 - retried next pass
            log.error("drop folder pass failed: %s", exc)


SFTP_LEASE = "sftp-pickup:"  # + the channel's name


async def _sftp_loop(hub: Hub, pickup: SftpPickup, switch: channels.Switch, owner: str,
                     every_s: float) -> None:
    """An sftp channel's remote folder, one pass every `every_s` seconds by the one process
    of the site holding its lease; no pass while the channel is paused (the files wait on
    the server)."""
    ttl = max(3 * every_s, 60.0)  # a pass may download large files: outlive it
    try:
        while True:
            await asyncio.sleep(every_s)
            if switch.paused:
                pickup.skipped += 1
                continue
            try:
                if await asyncio.to_thread(hub.bus.claim, SFTP_LEASE + pickup.name, owner,
                                           ttl, time.time()):
                    await asyncio.to_thread(pickup.run_once)
                else:
                    pickup.waiting += 1
            except Exception as exc:  # noqa: BLE001 - retried next pass
                log.error("sftp pickup %s pass failed: %s", pickup.name, exc)
    finally:
        pickup.close()


def _mllp_server(hub: Hub, ch: ChannelSettings, writer: GroupCommitWriter,
                 port: int) -> tuple[Inbox, MllpServer]:
    """One MLLP channel's inbox (stamped with its name: message identity is channel +
    MSH-3 + MSH-4 + MSH-10) and listener, with its own TLS keys or the hub's."""
    s = hub.settings
    inbox = Inbox(writer, channel=ch.name, tenant=s.tenant, currency=ch.currency,
                  owners=s.ownership, messages=ch.messages, senders=ch.senders,
                  ack_application=ch.ack_application, ack_facility=ch.ack_facility)
    cert, key = (ch.tls_cert, ch.tls_key) if ch.tls_cert else (s.tls_cert, s.tls_key)
    ssl_ctx = (tls_context(cert, key, client_ca=ch.tls_client_ca or s.tls_client_ca)
               if cert and key else None)
    server = MllpServer(
        inbox, ch.host or s.host, port, max_message_bytes=s.reliability.max_message_bytes,
        idle_timeout_s=s.reliability.idle_timeout_s, ssl_context=ssl_ctx,
        max_connections=s.reliability.mllp_max_connections,
        max_connections_per_peer=s.reliability.mllp_max_connections_per_peer)
    return inbox, server


async def _start_channels(hub: Hub, run: Running, mllp_port: int | None) -> None:
    """Every inbound channel of the listener role: an MLLP server per MLLP channel (a
    taken port stops start-up, naming the channel), a drop folder per folder channel,
    each brought to the state the store holds, then following it (flows/channels.py)."""
    s = hub.settings
    assert run.writer is not None
    for name, ch in channels.settings_of(s).items():
        if ch.transport == "mllp":
            port = ch.port if ch.port is not None else s.mllp_port
            if name == MLLP_CHANNEL and mllp_port is not None:
                port = mllp_port
            inbox, server = _mllp_server(hub, ch, run.writer, port)
            run.inboxes[name], run.mllps[name] = inbox, server
            try:
                await server.start()
            except OSError as exc:
                raise OSError(exc.errno, f"MLLP channel {name!r} port {server.host}:{port}: "
                              f"{exc.strerror}") from exc
        elif (folder := channels.folder_of(ch, s)) is not None:
            switch = run.switches[name] = channels.Switch()
            drop = DropFolder(folder, FileIntake(hub.store, hub.bus, s), s)
            run.tasks.append(asyncio.create_task(_drop_loop(drop, switch=switch)))
        elif ch.transport == channels.SFTP:
            from isthmus.connectors.sftp_pickup import open_pickup  # noqa: PLC0415 - extra

            switch = run.switches[name] = channels.Switch()
            pickup = run.pickups[name] = open_pickup(ch, s, FileIntake(hub.store, hub.bus, s))
            run.tasks.append(asyncio.create_task(_sftp_loop(
                hub, pickup, switch, f"{socket.gethostname()}-{os.getpid()}-{id(run):x}",
                ch.poll_s)))
    run.inbox, run.mllp = run.inboxes.get(MLLP_CHANNEL), run.mllps.get(MLLP_CHANNEL)
    targets: dict[str, channels.Pausable] = {**run.mllps, **run.switches}
    await channels.apply_states(hub.store, targets)
    run.tasks.append(asyncio.create_task(channels.follow(hub.store, targets)))


HttpShell = Callable[[Hub, dict[str, "Running"], str, int], Coroutine[Any, Any, None]]


async def start(hub: Hub, *, role: str = "all", mllp_port: int | None = None,
                http_port: int | None = None, export_every_s: float = 30.0,
                http: HttpShell | None = None) -> Running:
    """Bring up the parts of `role`; `http` is the HTTP shell to run beside them (the CLI
    passes it in, so the composition root never imports a shell). Ports are bound first,
    so a taken port stops start-up with OSError before anything runs."""
    if role not in ROLES:
        raise ConfigError(f"role must be one of {', '.join(ROLES)}, got {role!r}")
    s = hub.settings
    run = Running(hub, role)
    live: dict[str, Running] = {"run": run}  # what the HTTP shell reads
    http_coro = None
    try:
        if role in ("all", "listener"):
            run.writer = GroupCommitWriter(
                hub.store, hub.bus,
                reuse_window_s=s.reliability.control_id_reuse_window_hours * 3600)
            run.writer.start()
            await _start_channels(hub, run, mllp_port)
        if http is not None and role in ("all", "api"):
            http_coro = http(hub, live, s.host, s.http_port if http_port is None else http_port)
    except BaseException:
        await run.stop()
        raise
    if role in ("all", "worker"):
        run.worker = hub.worker()
        if s.reliability.workers > 0:
            run.worker.start()
        run.dispatcher = erp_dispatcher(s, hub.store, erp_sink(s, hub.export_dir), hub.policy)
        run.tasks.append(asyncio.create_task(_export_loop(hub, run.dispatcher,
                                                          export_every_s, run.worker.owner)))
        if s.erp.kind != "file" and s.erp.master_data_every_s > 0:
            run.tasks.append(asyncio.create_task(_master_data_loop(
                hub, s.erp.master_data_every_s, run.worker.owner)))
        if s.alerts.webhook_url:
            run.tasks.append(asyncio.create_task(_alert_loop(hub, run.worker.owner)))
        for name in s.destinations:  # issue 18
            run.tasks.append(asyncio.create_task(_delivery_loop(hub, name, run.worker.owner)))
        if retention.enabled(s.retention):
            run.tasks.append(asyncio.create_task(_retention_loop(hub, run.worker.owner)))
        if all(importlib.util.find_spec(m) for m in ("duckdb", "pyarrow")):  # issue 21
            run.tasks.append(asyncio.create_task(_analytics_loop(hub, run.worker.owner)))
    if http_coro is not None:
        run.tasks.append(asyncio.create_task(http_coro))
    return run


async def serve_forever(hub: Hub, *, role: str = "all", mllp_port: int | None = None,
                        http_port: int | None = None, http: HttpShell | None = None,
                        on_ready: Callable[[], None] | None = None) -> None:
    run = await start(hub, role=role, mllp_port=mllp_port, http_port=http_port, http=http)
    if on_ready is not None:
        on_ready()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)
    log.info("serving role %s%s, data in %s", role, "".join(
        f", MLLP {name} {m.host}:{m.port}" for name, m in run.mllps.items()),
        hub.settings.data_dir)
    await stop.wait()
    await run.stop()
