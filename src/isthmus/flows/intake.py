"""The one place where an inbound message's events are put into envelopes.

Every channel (MLLP, files, FHIR, settlement and bank files, the workforce webhook, supply
usage) decodes its bytes into `KeyedEvent`s (id, partition key, business key, event) and
hands them here with the message's identity: channel and control id. The lineage ids are
the same for all of them: the correlation id is `<channel>/<control id>`, and every event
of the message is caused by it. See `flows.identity` for what a business key is and how the
worker keeps each business fact once.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Sequence
from dataclasses import replace
from datetime import UTC, datetime

import msgspec

from isthmus.model.envelope import Envelope, KeyedEvent, Source
from isthmus.store.ports import Accepted, Inbound, Store, StoredMessage

log = logging.getLogger(__name__)

_enc = msgspec.json.Encoder(decimal_format="string")
_envs_dec = msgspec.json.Decoder(list[Envelope])
REUSE_WINDOW_S = 24 * 3600.0  # [reliability] control_id_reuse_window_hours, default 24


def correlation_of(channel: str, control_id: str) -> str:
    """The lineage id of one inbound message: `<channel>/<control id>`."""
    return f"{channel}/{control_id}"


def envelopes(
    keyed: Iterable[KeyedEvent],
    *,
    channel: str,
    control_id: str,
    occurred: datetime,
    recorded: datetime,
    tenant: str,
) -> list[Envelope]:
    """The envelopes of one message's events, in order."""
    corr = correlation_of(channel, control_id)
    source = Source(channel=channel, control_id=control_id, message_id=corr)
    return [
        Envelope(
            event_id=k.event_id,
            type=type(k.event).__name__,
            occurred_at=occurred,
            recorded_at=recorded,
            source=source,
            correlation_id=corr,
            causation_id=corr,
            tenant=tenant,
            key=k.key,
            payload=k.event,
            business_key=k.business_key,
        )
        for k in keyed
    ]


def encoded(envs: list[Envelope]) -> bytes:
    """The stored form of a message's envelopes (a JSON array); empty when there are none."""
    return _enc.encode(envs) if envs else b""


# -- a control identity reused with other content ------------------------------------------
#
# The store takes a message once per (channel, control id): the same identity with the same
# digest is a duplicate and gets the first answer. With another digest it is a reuse, and
# this is the one place that decides what it becomes, for every path that stores messages
# (the MLLP group commit, HL7 files): inside the window after the holder arrived, a
# conflict (the channel's refusal, kept under `<id>#<digest>` for inspection); after it,
# a sender whose counter restarted: a new message under `<id>~<digest>`, accepted, with a
# note saying which message held the identity.

Refuse = Callable[[Inbound], Inbound]
Renew = Callable[[Inbound, StoredMessage], Inbound]


def restarted(newcomer: Inbound, held: StoredMessage | None, window_s: float) -> bool:
    """True when `newcomer` reuses `held`'s identity after the window: taken as new."""
    return held is not None and newcomer.received_at - held.received_at > window_s


def rekeyed(m: Inbound, control_id: str, *, error: str = "") -> Inbound:
    """`m` under another control id: its events get the ids and lineage of that id (the
    event ids of the identity it leaves belong to the message that holds it)."""
    if not m.events:
        return replace(m, control_id=control_id, error=error or m.error)
    old = correlation_of(m.channel, m.control_id) + "/"
    new = correlation_of(m.channel, control_id) + "/"
    first = _envs_dec.decode(m.events)
    keyed = [
        KeyedEvent(new + e.event_id.removeprefix(old), e.key, e.payload, e.business_key)
        for e in first
    ]
    envs = envelopes(
        keyed,
        channel=m.channel,
        control_id=control_id,
        occurred=first[0].occurred_at,
        recorded=first[0].recorded_at,
        tenant=first[0].tenant,
    )
    return replace(m, control_id=control_id, events=encoded(envs), error=error or m.error)


def renewal_note(m: Inbound, held: StoredMessage) -> str:
    """What a renewed message says about the identity it reused (no PHI: ids and times)."""
    hours = (m.received_at - held.received_at) / 3600
    since = datetime.fromtimestamp(held.received_at, UTC).isoformat(timespec="seconds")
    return (
        f"control id {m.control_id!r} reused {hours:.1f} h after message #{held.id} "
        f"({since}) took it: taken as a new message (sender counter restart)"
    )


def settle_reuse(
    store: Store,
    batch: Sequence[Inbound],
    stored: Sequence[Accepted],
    *,
    window_s: float,
    refuse: Refuse,
    renew: Renew,
) -> list[tuple[Inbound, Accepted | Exception]]:
    """Each message of a committed batch with what the store made of it; a reused identity
    (`Accepted.conflict`) is replaced by its conflict copy or its renewal, stored now.
    Reads the store only when there is a reuse (rare): the ACK path stays one commit."""
    out: list[tuple[Inbound, Accepted | Exception]] = list(zip(batch, stored, strict=True))
    reused = [i for i, r in enumerate(stored) if r.conflict]
    if not reused:
        return out
    try:
        copies = []
        for i in reused:
            held = store.message(stored[i].message_id)
            if held is not None and restarted(batch[i], held, window_s):
                copies.append(renew(batch[i], held))
                log.warning(
                    "%s/%s reused %.1f h after message #%d: taken as a new message "
                    "(sender counter restart)",
                    batch[i].channel,
                    batch[i].control_id,
                    (batch[i].received_at - held.received_at) / 3600,
                    held.id,
                )
            else:
                copies.append(refuse(batch[i]))
        results: list[Accepted | Exception] = list(store.accept(copies))
    except Exception as exc:  # noqa: BLE001 - those callers get their NAK
        log.error("storing %d messages that reuse a control id failed: %s", len(reused), exc)
        copies, results = [batch[i] for i in reused], [exc] * len(reused)
    for i, copy, res in zip(reused, copies, results, strict=True):
        out[i] = (copy, res)
    return out
