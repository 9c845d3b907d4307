"""Composition root: the one place where adapters are chosen and wired together.

`Hub.open` builds the store and the bus for the configured mode ([store], [bus]) and the
flows on top of them; the Hub's methods build the rest on demand (the ERP adapter and its
outbox sink, the destinations' delivery engines, the intakes the shells hand requests and
files to). CLI commands that only read open the same data directory while `serve` runs
(SQLite WAL). Running the hub (listeners, loops, signals) is `isthmus.runtime`; the site's
key file and backups are `isthmus.maintenance`.
"""

from __future__ import annotations

import functools
import hashlib
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path

from isthmus.bus.ports import Bus
from isthmus.bus.sqlite import SqliteBus
from isthmus.config import ConfigError, Settings
from isthmus.connectors.destinations import open_destination
from isthmus.connectors.erp_allowlist import guarded
from isthmus.connectors.erp_file import ErpFileSink
from isthmus.connectors.erp_ports import ErpBatchSink
from isthmus.flows.claim_pricing import ClaimPolicy
from isthmus.flows.clock import Clock
from isthmus.flows.delivery import DeliveryEngine
from isthmus.flows.export import CircuitBreaker, Dispatcher, seal_batches
from isthmus.flows.fhir_intake import FhirIntake
from isthmus.flows.file_intake import FileIntake
from isthmus.flows.group_commit import GroupCommitWriter
from isthmus.flows.labor_budget import budget_usage
from isthmus.flows.labor_payroll import pay_period_accruals
from isthmus.flows.outbound import Outbound
from isthmus.flows.processor import Processor
from isthmus.flows.refund_request import RefundPolicy
from isthmus.flows.refunds import Refunds
from isthmus.flows.retry import RetryPolicy
from isthmus.flows.routes import compile_routes
from isthmus.flows.status_events import Derivation
from isthmus.flows.supply import SupplyFlow
from isthmus.flows.supply_state import SupplyConfigError, policy_from_table
from isthmus.flows.worker import Worker
from isthmus.formats.fhir.events import CHANNEL as FHIR_CHANNEL
from isthmus.governance import allowlist
from isthmus.governance.ports import GovernanceStore
from isthmus.ledger.periods import FiscalCalendar
from isthmus.maintenance import site_secret
from isthmus.observe.alerts import Alerter
from isthmus.ports.erp import BatchSink, ErpPort
from isthmus.recon.drift import DriftReport, find_drift, record_drift
from isthmus.store.ports import Store
from isthmus.store.sqlite import SqliteStore

log = logging.getLogger(__name__)


class SystemClock:
    """The wall clock (flows/clock.py's `Clock`): what every flow reads outside tests."""

    def now(self) -> float:
        return time.time()


def site_name(settings: Settings) -> str:
    """A stable identifier of this hub's data directory, for the schema and stream names."""
    digest = hashlib.sha256(str(settings.data_dir.resolve()).encode()).hexdigest()[:10]
    return f"isthmus_{digest}"


def open_store(settings: Settings) -> Store:
    """The store `settings` choose: PostgreSQL (scale-out, its schema per site) or the
    embedded SQLite file in the data directory."""
    if settings.store == "postgresql":
        from isthmus.store.postgres import PostgresStore  # noqa: PLC0415 - scale-out only

        schema = settings.scaleout.pg_schema or site_name(settings)
        return PostgresStore(settings.scaleout.pg_dsn, schema=schema)
    return SqliteStore(
        settings.data_dir / "store.db", synchronous=settings.reliability.sqlite_synchronous
    )


def open_governance(settings: Settings) -> GovernanceStore:
    """Principals, token digests and the audit trail, beside the store of the same mode."""
    if settings.store == "postgresql":
        from isthmus.store.postgres_governance import PostgresGovernance  # noqa: PLC0415

        return PostgresGovernance(
            settings.scaleout.pg_dsn, schema=settings.scaleout.pg_schema or site_name(settings)
        )
    from isthmus.store.sqlite_governance import SqliteGovernance  # noqa: PLC0415

    return SqliteGovernance(settings.data_dir / "governance.db")


def open_bus(settings: Settings) -> Bus:
    """The event bus `settings` choose: NATS JetStream (scale-out) or the embedded SQLite bus,
    with the site's partitions and [reliability] max_attempts as the redelivery limit."""
    partitions = max(1, settings.reliability.partitions)
    if settings.bus == "nats":
        from isthmus.bus.nats import NatsBus  # noqa: PLC0415 - scale-out only

        stream = settings.scaleout.nats_stream or site_name(settings).upper()
        return NatsBus(
            settings.scaleout.nats_servers,
            stream=stream,
            partitions=partitions,
            subject_prefix=stream.lower(),
            max_deliver=settings.reliability.max_attempts,
            # Redelivery must come before a dead worker's partition lease
            # expires (15 s, renewed every 3 s), so its unacked messages are
            # back in the partition before a survivor pulls later ones.
            ack_wait_s=10.0,
        )
    return SqliteBus(
        settings.data_dir / "bus.db",
        partitions=partitions,
        synchronous=settings.reliability.sqlite_synchronous,
    )


def open_erp(settings: Settings) -> ErpPort:
    """The ERP adapter named by [erp]: `tryton` (JSON-RPC) or `rest` (generic REST)."""
    erp = settings.erp
    if erp.kind == "rest":
        from isthmus.connectors.erp_rest import RestErp  # noqa: PLC0415 - REST sites only

        return RestErp.from_settings(erp)
    if erp.kind != "tryton":
        raise ConfigError('the ERP is a file drop ([erp] kind = "file"): nothing to query')
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


def erp_dispatcher(
    settings: Settings, store: Store, sink: BatchSink, policy: RetryPolicy
) -> Dispatcher:
    """The outbox dispatcher with the [erp] outage settings (backoff cap, breaker)."""
    return Dispatcher(
        store,
        sink,
        policy,
        CircuitBreaker(cooldown_s=settings.erp.breaker_cooldown_s),
        unavailable_max_s=settings.erp.retry_max_s,
    )


@dataclass
class Hub:
    """A running hub's wired parts: settings, store, bus, the event processor, the retry
    policy, the ERP export directory and the clock its flows stamp with."""

    settings: Settings
    store: Store
    bus: Bus
    processor: Processor
    policy: RetryPolicy
    export_dir: Path
    clock: Clock = field(default_factory=SystemClock)  # what the flows stamp outside the worker

    @classmethod
    def open(cls, settings: Settings, *, clock: Clock | None = None) -> Hub:
        """The hub of `settings`, its store and bus open; `clock` is the wall clock its
        flows read (the system's unless a test passes a `flows.clock.FixedClock`)."""
        rel = settings.reliability
        data = settings.data_dir
        clock = clock or SystemClock()
        store = open_store(settings)
        try:
            bus = open_bus(settings)
        except BaseException:
            store.close()
            raise
        calendar = FiscalCalendar(
            closed=frozenset(settings.posting.closed_periods),
            policy=settings.posting.closed_period_policy,
        )
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
            mappings=settings.mappings,
            ar_account=settings.posting.ar_account,
            calendar=calendar,
            settlement=settings.settlement,
            labor=settings.labor,
            labor_accruals=functools.partial(pay_period_accruals, store),
            supply=SupplyFlow(store, supply_policy, settings.mappings, calendar, clock=clock),
            claims=claim_policy,
        )
        policy = RetryPolicy(rel.max_attempts, rel.backoff_base_s, rel.backoff_max_s)
        hub = cls(settings, store, bus, processor, policy, data / "exports" / "erp", clock)
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
        return Outbound(
            compile_routes(s.routes, s.destinations),
            Derivation(
                self.processor.secret, s.posting.ar_account, dict(s.mappings.transaction_types)
            ),
            message_of=self.store.message_by_control_id,
        )

    def delivery_engine(self, name: str) -> DeliveryEngine:
        """The delivery engine of destination `name` (flows/delivery.py), its adapter open."""
        d = self.settings.destinations[name]
        return DeliveryEngine(
            self.store, open_destination(d, self.settings.scaleout.nats_servers), d
        )

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
        return Refunds(
            self.store,
            self.governance,
            RefundPolicy(
                approval_threshold=s.refunds.approval_threshold,
                approval_window_days=s.refunds.approval_window_days,
                ar_account=s.posting.ar_account,
                refunds_payable_account=s.posting.refunds_payable_account,
                calendar=self.processor.calendar,
                mappings=s.mappings,
                secret=self.processor.secret,
            ),
        )

    def open_erp(self) -> ErpPort:
        """The ERP adapter named by [erp] (`open_erp`), open: the caller closes it."""
        return open_erp(self.settings)

    def fhir_intake(self) -> FhirIntake:
        """The FHIR intake (flows/fhir_intake.py) of channel `fhir`: `POST /fhir` hands it
        requests, with this hub's store, bus and the channel's settings."""
        s = self.settings
        return FhirIntake(
            self.store,
            self.bus,
            s.tenant,
            clock=self.clock,
            charges_from=s.channel(FHIR_CHANNEL).charges_from,
        )

    def file_intake(self) -> FileIntake:
        """The intake the drop folders and sftp pickups hand complete files to
        (flows/file_intake.py, the `connectors.folder.Intake` port)."""
        return FileIntake(self.store, self.bus, self.settings)

    def inbox_writer(self) -> GroupCommitWriter:
        """The listener role's group-commit writer (flows/group_commit.py): every inbound channel's
        inbox commits through it, with the [reliability] control-id reuse window."""
        window_s = self.settings.reliability.control_id_reuse_window_hours * 3600
        return GroupCommitWriter(self.store, self.bus, reuse_window_s=window_s)

    def erp_dispatcher(self) -> Dispatcher:
        """The worker role's ERP outbox dispatcher over the configured sink (`erp_sink`);
        `close_sink(dispatcher.sink)` releases it."""
        s = self.settings
        return erp_dispatcher(s, self.store, erp_sink(s, self.export_dir), self.policy)

    def alerter(self) -> Alerter:
        """The alert rules of [alerts] over this hub (observe/alerts.py), with the labor
        budget usage they watch."""
        s = self.settings
        return Alerter(
            self.store,
            self.bus,
            s.alerts,
            s.sla,
            labor=lambda now: budget_usage(self.store, s.labor, s.mappings, now),
        )

    def worker(self) -> Worker:
        w = Worker(
            self.bus,
            self.store,
            self.processor,
            self.policy,
            partitions=range(self.bus.partitions),
            clock=self.clock,
        )
        if self.outbound is not None:
            w.on_applied = self.outbound.on_applied
        return w

    def export(self) -> tuple[int, int]:
        """Seal pending journal batches and deliver what is due; (batches sealed, outbox
        rows delivered: one per batch, two per batch of the previous version)."""
        now = self.clock.now()
        made = seal_batches(
            self.store, now=now, policy_of=lambda ch: self.settings.channel(ch).summarization
        )
        sink = erp_sink(self.settings, self.export_dir)
        try:
            sent = erp_dispatcher(self.settings, self.store, sink, self.policy).run_once(now)
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
        return record_drift(
            self.store, find_drift(self.settings, md), self.clock.now() if now is None else now
        )

    def close(self) -> None:
        self.bus.close()
        self.store.close()
