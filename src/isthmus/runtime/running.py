"""What one `serve` (or `demo`) process runs of a hub, by role, and how it stops.

The parts are started by `runtime.serve.start`; this module only holds them, so the
listener start-up (`runtime.listeners`) and the HTTP shells can name them.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from isthmus.app import Hub, close_sink
from isthmus.connectors.mllp import MllpServer
from isthmus.flows import channels
from isthmus.flows.export import Dispatcher
from isthmus.flows.group_commit import GroupCommitWriter
from isthmus.flows.inbox import Inbox
from isthmus.flows.worker import Worker

if TYPE_CHECKING:  # paramiko is the `sftp` extra: imported where an sftp channel starts
    from isthmus.connectors.sftp_pickup import SftpPickup

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
