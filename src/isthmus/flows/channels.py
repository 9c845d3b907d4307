"""Named inbound channels (issue 18): which there are, their counters, pause and resume.

A channel is a named feed (`[channels.<name>]`, config.ChannelSettings) with a transport:
an MLLP listener, the FHIR API (the channel "fhir"), a watched drop folder or a remote
folder polled over SFTP (connectors/sftp_pickup.py). The hub always
has "mllp" (the listener on [hub] mllp_port), "fhir" and "drop" (the folder
`<data_dir>/drop`, which takes X12, HL7, FHIR and CSV files onto their own channels: x12,
settlement, ...); a channel that only names a policy for files (x12, settlement) has no
listener of its own, and cannot be paused apart from the folder it arrives through.

Pause and resume are a person's decision, kept in the store (`Store.set_channel_state`,
the `meta` table), so every process of a site, embedded or scaled out, follows it:
listeners poll the states about once a second (`follow`) and close or re-open their port
or skip their folder; the FHIR API reads them through a one-second cache (`StateCache`)
and answers 503 while its channel is paused. Pausing loses nothing: a refused connection
keeps its messages at the sender, a folder keeps its files, and what was in flight is
stored and ACKed first.

The counters are one grouped query over the inbox (`Store.channel_counts`) plus the
dead-letter queue of the bus:
- received: every message kept for the channel, whatever its answer;
- ignored: taken, AA, by the channel's messages table, with no events;
- refused: rejected (AE/AR, a sender not accepted, a conflict), kept for inspection;
- queued: accepted but not yet relayed to the bus, or held for a person's release;
- delivered: accepted and handed to the flows (relayed to the bus);
- errored: events of the channel in the dead-letter queue (their processing failed);
- last message: when the newest one was received.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Protocol

from isthmus.bus.ports import Bus
from isthmus.config import ChannelSettings, Settings
from isthmus.errors import ConflictError, NotFoundError
from isthmus.observe.instant import instant
from isthmus.store.ports import HELD, ChannelState, Store

log = logging.getLogger(__name__)
RUNNING, PAUSED = "running", "paused"
DROP = "drop"  # the hub's own drop folder, <data_dir>/drop
FHIR = "fhir"
MLLP = "mllp"
SFTP = "sftp"  # a remote folder polled over SFTP (connectors/sftp_pickup.py)
_DEAD_LIMIT = 100_000


class ChannelRefused(ConflictError, ValueError):
    """A pause or resume that cannot be done: no such channel (exit code 2, HTTP 404), or
    one with no listener of its own (exit code 2, HTTP 409)."""

    http_status, exit_code = 409, 2

    def __init__(self, message: str) -> None:
        super().__init__(message)


class UnknownChannel(NotFoundError, ChannelRefused):
    """The channel named is not one the hub has (HTTP 404)."""

    http_status, exit_code = 404, 2


@dataclass(frozen=True)
class Counters:
    """One channel's message counts by outcome, and the time of its last message."""

    received: int = 0
    ignored: int = 0
    refused: int = 0
    queued: int = 0
    delivered: int = 0
    errored: int = 0
    last_message_at: float = 0.0


def settings_of(settings: Settings) -> dict[str, ChannelSettings]:
    """Every channel of the hub by name: the configured ones and the three it always has."""
    out = {name: settings.channel(name) for name in (MLLP, FHIR, DROP)}
    out.update(settings.channels)
    return out


def address(ch: ChannelSettings, settings: Settings, bound: Mapping[str, int] | None = None) -> str:
    """Where the channel takes its messages: host:port, the FHIR base, or the folder."""
    if ch.transport == MLLP:
        port = (bound or {}).get(ch.name)
        if port is None:
            port = settings.mllp_port if ch.port is None else ch.port
        return f"{ch.host or settings.host}:{port}"
    if ch.transport == FHIR:
        return f"{settings.host}:{settings.http_port}/fhir"
    if ch.transport == SFTP:
        return f"sftp://{ch.user}@{ch.host}:{ch.port or 22}/{ch.path.lstrip('/')}"
    return str(folder_of(ch, settings) or f"{settings.data_dir / DROP} (via {DROP})")


def folder_of(ch: ChannelSettings, settings: Settings) -> Path | None:
    """The folder a folder channel watches itself; None when its files come through the
    hub's drop folder (a policy-only channel such as x12)."""
    if ch.transport != "folder":
        return None
    if ch.folder is not None:
        return ch.folder
    return settings.data_dir / DROP if ch.name == DROP else None


def pausable(settings: Settings) -> list[str]:
    """The channels with a listener of their own: what pause and resume may name."""
    return sorted(
        name
        for name, ch in settings_of(settings).items()
        if ch.transport in (MLLP, FHIR, SFTP) or folder_of(ch, settings) is not None
    )


def counters(store: Store, bus: Bus | None = None) -> dict[str, Counters]:
    """Per channel: one grouped inbox query, and the dead letters by channel."""
    acc: dict[str, dict[str, Any]] = {}
    for row in store.channel_counts():
        c = acc.setdefault(
            row.channel,
            dict.fromkeys(("received", "ignored", "refused", "queued", "delivered", "errored"), 0)
            | {"last_message_at": 0.0},
        )
        c["received"] += row.count
        c["last_message_at"] = max(c["last_message_at"], row.last_received_at)
        if row.status == "ignored":
            c["ignored"] += row.count
        elif row.status == "rejected":
            c["refused"] += row.count
        elif row.status == HELD or (row.status == "accepted" and not row.published):
            c["queued"] += row.count
        elif row.status == "accepted":
            c["delivered"] += row.count
    if bus is not None:
        for dead in bus.dead_letters(limit=_DEAD_LIMIT):
            name = dead.msg_id.partition("/")[0]  # event ids are <channel>/<control id>/<n>
            if name in acc:
                acc[name]["errored"] += 1
    return {name: Counters(**c) for name, c in acc.items()}


def table(
    settings: Settings,
    store: Store,
    bus: Bus | None = None,
    *,
    bound: Mapping[str, int] | None = None,
) -> list[dict[str, Any]]:
    """The channel list: every channel the hub has or has received on, with its transport,
    address, state and counters, by name."""
    chans = settings_of(settings)
    counts = counters(store, bus)
    states = store.channel_states()
    own = set(pausable(settings))
    rows = []
    for name in sorted(set(chans) | set(counts)):
        ch = chans.get(name) or settings.channel(name)
        st = states.get(name)
        c = counts.get(name, Counters())
        rows.append(
            {
                "name": name,
                "transport": ch.transport,
                "address": address(ch, settings, bound),
                "state": st.state if st is not None and name in own else RUNNING,
                "pausable": name in own,
                "changed_by": st.by if st else "",
                "reason": st.reason if st else "",
                "changed_at": instant(st.at) if st and st.at else None,
                **{k: v for k, v in asdict(c).items() if k != "last_message_at"},
                "last_message_at": instant(c.last_message_at) if c.last_message_at else None,
            }
        )
    return rows


def set_state(
    settings: Settings,
    store: Store,
    name: str,
    state: str,
    *,
    by: str,
    reason: str = "",
    now: float,
) -> ChannelState:
    """Pause or resume one channel, for every process of the site. Raises UnknownChannel
    (naming the known ones) or ChannelRefused (no listener of its own)."""
    own = pausable(settings)
    if name not in own:
        chans = settings_of(settings)
        if name in chans or name in {r.channel for r in store.channel_counts()}:
            raise ChannelRefused(
                f"channel {name!r} has no listener of its own: its files come in through "
                f"the {DROP!r} folder; pause {DROP!r}, or give it a folder "
                f"(channels.{name}.folder)"
            )
        raise UnknownChannel(
            f"no channel {name!r}; the channels that can be paused are: {', '.join(own)}"
        )
    return store.set_channel_state(name, state, by, reason[:500], now)


def is_paused(states: Mapping[str, ChannelState], name: str) -> bool:
    """Whether the stored states say channel `name` is paused (no state: running)."""
    st = states.get(name)
    return st is not None and st.state == PAUSED


class Pausable(Protocol):
    """A listener that can stop and start taking messages (MllpServer, Switch)."""

    paused: bool

    async def pause(self) -> None: ...

    async def resume(self) -> None: ...


class Switch:
    """The pause state of a listener that polls (a drop folder): it skips its passes while
    paused."""

    def __init__(self) -> None:
        self.paused = False

    async def pause(self) -> None:
        self.paused = True

    async def resume(self) -> None:
        self.paused = False


async def apply_states(store: Store, targets: Mapping[str, Pausable]) -> None:
    """Bring each listener to the state the store holds for its channel, now."""
    states = await asyncio.to_thread(store.channel_states)
    for name, target in targets.items():
        want = is_paused(states, name)
        if want and not target.paused:
            log.info("channel %s paused (%s)", name, states[name].by)
            await target.pause()
        elif not want and target.paused:
            log.info("channel %s resumed", name)
            await target.resume()


async def follow(store: Store, targets: Mapping[str, Pausable], every_s: float = 1.0) -> None:
    """Follow the channel states of the store for as long as it runs: a pause or resume
    given in any process takes effect here within about `every_s`."""
    while True:
        await asyncio.sleep(every_s)
        try:
            await apply_states(store, targets)
        except Exception as exc:  # noqa: BLE001 - read again next round
            log.error("channel states could not be read: %s", exc)


class StateCache:
    """Channel states read at most once per `ttl_s` (the FHIR API asks on every write)."""

    def __init__(self, store: Store, ttl_s: float = 1.0) -> None:
        self._store, self._ttl = store, ttl_s
        self._states: dict[str, ChannelState] = {}
        self._read_at = float("-inf")

    def paused(self, name: str, now: float | None = None) -> ChannelState | None:
        now = time.monotonic() if now is None else now
        if now - self._read_at >= self._ttl:
            self._states = self._store.channel_states()
            self._read_at = now
        st = self._states.get(name)
        return st if st is not None and st.state == PAUSED else None


__all__ = [
    "DROP",
    "PAUSED",
    "RUNNING",
    "SFTP",
    "ChannelRefused",
    "Counters",
    "Pausable",
    "StateCache",
    "Switch",
    "UnknownChannel",
    "address",
    "apply_states",
    "counters",
    "folder_of",
    "follow",
    "is_paused",
    "pausable",
    "set_state",
    "settings_of",
    "table",
]
