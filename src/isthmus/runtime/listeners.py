"""The listener role's inbound channels: an MLLP server and inbox per MLLP channel, a
watched drop folder per folder channel, a remote pickup per sftp channel; each brought to
the state the store holds (running or paused) and following it (flows/channels.py).

`start_channels` is called by `runtime.serve.start`; a taken port stops start-up with an
OSError naming the channel, before anything runs.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import time
from typing import TYPE_CHECKING

from isthmus.app import Hub
from isthmus.config import ChannelSettings
from isthmus.connectors.folder import DropFolder
from isthmus.connectors.mllp import MllpServer, tls_context
from isthmus.flows import channels
from isthmus.flows.group_commit import GroupCommitWriter
from isthmus.flows.inbox import MLLP_CHANNEL, Inbox
from isthmus.runtime.running import Running

if TYPE_CHECKING:  # paramiko is the `sftp` extra: imported where an sftp channel starts
    from isthmus.connectors.sftp_pickup import SftpPickup

log = logging.getLogger(__name__)


async def drop_loop(
    drop: DropFolder, every_s: float = 2.0, switch: channels.Switch | None = None
) -> None:
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


async def sftp_loop(
    hub: Hub, pickup: SftpPickup, switch: channels.Switch, owner: str, every_s: float
) -> None:
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
                if await asyncio.to_thread(
                    hub.bus.claim, SFTP_LEASE + pickup.name, owner, ttl, time.time()
                ):
                    await asyncio.to_thread(pickup.run_once)
                else:
                    pickup.waiting += 1
            except Exception as exc:  # noqa: BLE001 - retried next pass
                log.error("sftp pickup %s pass failed: %s", pickup.name, exc)
    finally:
        pickup.close()


def mllp_server(
    hub: Hub, ch: ChannelSettings, writer: GroupCommitWriter, port: int
) -> tuple[Inbox, MllpServer]:
    """One MLLP channel's inbox (stamped with its name: message identity is channel +
    MSH-3 + MSH-4 + MSH-10) and listener, with its own TLS keys or the hub's."""
    s = hub.settings
    inbox = Inbox(
        writer,
        channel=ch.name,
        tenant=s.tenant,
        currency=ch.currency,
        clock=hub.clock,
        owners=s.ownership,
        messages=ch.messages,
        senders=ch.senders,
        ack_application=ch.ack_application,
        ack_facility=ch.ack_facility,
    )
    cert, key = (ch.tls_cert, ch.tls_key) if ch.tls_cert else (s.tls_cert, s.tls_key)
    ssl_ctx = (
        tls_context(cert, key, client_ca=ch.tls_client_ca or s.tls_client_ca)
        if cert and key
        else None
    )
    server = MllpServer(
        inbox,
        ch.host or s.host,
        port,
        max_message_bytes=s.reliability.max_message_bytes,
        idle_timeout_s=s.reliability.idle_timeout_s,
        ssl_context=ssl_ctx,
        max_connections=s.reliability.mllp_max_connections,
        max_connections_per_peer=s.reliability.mllp_max_connections_per_peer,
    )
    return inbox, server


async def start_channels(hub: Hub, run: Running, mllp_port: int | None) -> None:
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
            inbox, server = mllp_server(hub, ch, run.writer, port)
            run.inboxes[name], run.mllps[name] = inbox, server
            try:
                await server.start()
            except OSError as exc:
                raise OSError(
                    exc.errno, f"MLLP channel {name!r} port {server.host}:{port}: {exc.strerror}"
                ) from exc
        elif (folder := channels.folder_of(ch, s)) is not None:
            switch = run.switches[name] = channels.Switch()
            drop = DropFolder(folder, hub.file_intake(), s)
            run.tasks.append(asyncio.create_task(drop_loop(drop, switch=switch)))
        elif ch.transport == channels.SFTP:
            from isthmus.connectors.sftp_pickup import open_pickup  # noqa: PLC0415 - extra

            switch = run.switches[name] = channels.Switch()
            pickup = run.pickups[name] = open_pickup(ch, s, hub.file_intake())
            run.tasks.append(
                asyncio.create_task(
                    sftp_loop(
                        hub,
                        pickup,
                        switch,
                        f"{socket.gethostname()}-{os.getpid()}-{id(run):x}",
                        ch.poll_s,
                    )
                )
            )
    run.inbox, run.mllp = run.inboxes.get(MLLP_CHANNEL), run.mllps.get(MLLP_CHANNEL)
    targets: dict[str, channels.Pausable] = {**run.mllps, **run.switches}
    await channels.apply_states(hub.store, targets)
    run.tasks.append(asyncio.create_task(channels.follow(hub.store, targets)))
