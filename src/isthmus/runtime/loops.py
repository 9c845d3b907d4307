"""The background loops of the worker role: each does one round every so often, in the
one process of the site that holds its lease on the bus, and logs (never raises) a failed
round, which the next round retries.

- ERP export: seal journal batches and deliver the outbox (flows/export.py).
- Delivery: one engine per destination (flows/delivery.py, issue 18).
- Alerts: the alert rules and their webhook (observe/alerts.py).
- ERP master data: mapping drift as work items (recon/drift.py).
- Analytics: the incremental warehouse export (issue 21), only with the extra.
- Retention: the daily purge of message bodies (flows/retention.py).

`runtime.serve.start` schedules them; a lease (`Bus.claim`) makes each a singleton per site
in scale-out, so two workers never deliver the same outbox row at once.
"""

from __future__ import annotations

import asyncio
import logging
import time

from isthmus.app import Hub
from isthmus.flows import retention
from isthmus.flows.delivery import DeliveryEngine
from isthmus.flows.export import Dispatcher, seal_batches
from isthmus.governance import audit

log = logging.getLogger(__name__)

EXPORTER_LEASE = "exporter"


async def export_loop(hub: Hub, dispatcher: Dispatcher, every_s: float, owner: str) -> None:
    """Seal and deliver ERP batches; one exporter per site (a lease on the bus), so two
    workers never deliver the same outbox row at once."""
    while True:
        await asyncio.sleep(every_s)
        try:
            ttl = max(3 * every_s, 15.0)
            if not await asyncio.to_thread(hub.bus.claim, EXPORTER_LEASE, owner, ttl, time.time()):
                continue
            await asyncio.to_thread(
                seal_batches,
                hub.store,
                now=time.time(),
                policy_of=lambda ch: hub.settings.channel(ch).summarization,
            )
            await asyncio.to_thread(dispatcher.run_once, time.time())
        except Exception as exc:  # noqa: BLE001 - retried next round
            log.error("export round failed: %s", exc)


DESTINATION_LEASE = "destination:"  # + the destination's name


async def delivery_loop(hub: Hub, name: str, owner: str, idle_s: float = 0.25) -> None:
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
                    held = await asyncio.to_thread(
                        hub.bus.claim, DESTINATION_LEASE + name, owner, ttl, now
                    )
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


async def alert_loop(hub: Hub, owner: str) -> None:
    """Evaluate the alert rules every [alerts] interval_s and send the transitions to the
    webhook (observe/alerts.py); one evaluator per site (a lease on the bus). The breaker
    is read from the outbox, as `isthmus status` does, whichever process exports."""
    conf = hub.settings.alerts
    alerter = hub.alerter()
    while True:
        await asyncio.sleep(conf.interval_s)
        try:
            if await asyncio.to_thread(
                hub.bus.claim, ALERTS_LEASE, owner, max(3 * conf.interval_s, 15.0), time.time()
            ):
                await asyncio.to_thread(alerter.run_once, time.time())
        except Exception as exc:  # noqa: BLE001 - retried next round
            log.error("alert round failed: %s", exc)


MASTER_DATA_LEASE = "erp-master-data"


async def master_data_loop(hub: Hub, every_s: float, owner: str) -> None:
    """Pull the ERP's master data every `every_s` seconds (one puller per site, a lease):
    mapping drift becomes `erp-mapping` work items, closed when it clears."""
    while True:
        try:
            if await asyncio.to_thread(
                hub.bus.claim, MASTER_DATA_LEASE, owner, max(2 * every_s, 15.0), time.time()
            ):
                report = await asyncio.to_thread(hub.pull_master_data)
                if report.opened or report.closed:
                    log.warning(
                        "ERP mapping drift: %d new, %d cleared, %d open",
                        len(report.opened),
                        len(report.closed),
                        len(report.drift),
                    )
        except Exception as exc:  # noqa: BLE001 - retried next round
            log.error("ERP master-data pull failed: %s", exc)
        await asyncio.sleep(every_s)


ANALYTICS_LEASE = "analytics-export"
ANALYTICS_EVERY_S = 300.0


async def analytics_loop(hub: Hub, owner: str, every_s: float = ANALYTICS_EVERY_S) -> None:
    """The analytics feed (issue 21, docs/analytics.md): one incremental export every
    `every_s` seconds by the process holding the lease; scheduled only with the extra."""
    from isthmus.analytics import export  # noqa: PLC0415 - the optional `analytics` extra
    from isthmus.analytics.warehouse import WAREHOUSE  # noqa: PLC0415

    data = hub.settings.data_dir
    while True:
        await asyncio.sleep(every_s)
        try:
            if await asyncio.to_thread(
                hub.bus.claim, ANALYTICS_LEASE, owner, 2 * every_s, time.time()
            ):
                await asyncio.to_thread(
                    export.run,
                    hub.store,
                    warehouse=data / WAREHOUSE,
                    parquet=data / export.PARQUET,
                    secret=hub.processor.secret,
                    roles=export.roles_from(hub.settings),
                )
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
        audit.record(
            hub.governance, "system:retention", "retention purge", "inbox", "ok", **report.as_dict()
        )
        log.info("retention: purged %d message bodies", report.purged)
    return report


async def retention_loop(
    hub: Hub, owner: str, first_s: float = 60.0, every_s: float = 86_400.0
) -> None:
    """The daily retention job: a minute after start, then every day."""
    await asyncio.sleep(first_s)
    while True:
        try:
            await asyncio.to_thread(retention_round, hub, owner, time.time())
        except Exception as exc:  # noqa: BLE001 - retried next round
            log.error("retention purge failed: %s", exc)
        await asyncio.sleep(every_s)
