"""Running a hub: bring up the parts of a role (listeners, worker and its loops, the HTTP
shell), then serve until SIGINT or SIGTERM and stop them in order.

The composition root (`app.py`) builds the hub and chooses its adapters; this module only
starts and stops what it built: the group-commit writer and the inbound channels
(`runtime.listeners`), the worker and the background loops (`runtime.loops`), and the HTTP
shell the CLI passes in (so neither this module nor the root imports a shell).
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import logging
import signal
from collections.abc import Callable, Coroutine
from typing import Any

from isthmus.app import Hub
from isthmus.config import ConfigError
from isthmus.flows import retention
from isthmus.runtime.listeners import start_channels
from isthmus.runtime.loops import (
    alert_loop,
    analytics_loop,
    delivery_loop,
    export_loop,
    master_data_loop,
    retention_loop,
)
from isthmus.runtime.running import ROLES, Running

log = logging.getLogger(__name__)


HttpShell = Callable[[Hub, dict[str, Running], str, int], Coroutine[Any, Any, None]]


async def start(
    hub: Hub,
    *,
    role: str = "all",
    mllp_port: int | None = None,
    http_port: int | None = None,
    export_every_s: float = 30.0,
    http: HttpShell | None = None,
) -> Running:
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
            run.writer = hub.inbox_writer()
            run.writer.start()
            await start_channels(hub, run, mllp_port)
        if http is not None and role in ("all", "api"):
            http_coro = http(hub, live, s.host, s.http_port if http_port is None else http_port)
    except BaseException:
        await run.stop()
        raise
    if role in ("all", "worker"):
        run.worker = hub.worker()
        if s.reliability.workers > 0:
            run.worker.start()
        run.dispatcher = hub.erp_dispatcher()
        run.tasks.append(
            asyncio.create_task(export_loop(hub, run.dispatcher, export_every_s, run.worker.owner))
        )
        if s.erp.kind != "file" and s.erp.master_data_every_s > 0:
            run.tasks.append(
                asyncio.create_task(
                    master_data_loop(hub, s.erp.master_data_every_s, run.worker.owner)
                )
            )
        if s.alerts.webhook_url:
            run.tasks.append(asyncio.create_task(alert_loop(hub, run.worker.owner)))
        for name in s.destinations:  # issue 18
            run.tasks.append(asyncio.create_task(delivery_loop(hub, name, run.worker.owner)))
        if retention.enabled(s.retention):
            run.tasks.append(asyncio.create_task(retention_loop(hub, run.worker.owner)))
        if all(importlib.util.find_spec(m) for m in ("duckdb", "pyarrow")):  # issue 21
            run.tasks.append(asyncio.create_task(analytics_loop(hub, run.worker.owner)))
    if http_coro is not None:
        run.tasks.append(asyncio.create_task(http_coro))
    return run


async def serve_forever(
    hub: Hub,
    *,
    role: str = "all",
    mllp_port: int | None = None,
    http_port: int | None = None,
    http: HttpShell | None = None,
    on_ready: Callable[[], None] | None = None,
) -> None:
    """Start the parts of `role` and serve until SIGINT or SIGTERM, then stop them;
    `on_ready` runs once everything is up."""
    run = await start(hub, role=role, mllp_port=mllp_port, http_port=http_port, http=http)
    if on_ready is not None:
        on_ready()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)
    log.info(
        "serving role %s%s, data in %s",
        role,
        "".join(f", MLLP {name} {m.host}:{m.port}" for name, m in run.mllps.items()),
        hub.settings.data_dir,
    )
    await stop.wait()
    await run.stop()
