"""Committed messages' events to the bus: right after a commit, and again at start.

The inbox stores a message's events as one JSON list beside the message. Publishing them
reads only each envelope's routing fields (event id, key) and sends the stored bytes as
they are, so an event is encoded once, when it is classified. A message whose commit is
not followed by its publish (a crash in between) stays unpublished in the store until
`relay_unpublished` sends it; the bus drops an event id it already holds, so a second
publish changes nothing.
"""

from __future__ import annotations

import msgspec

from isthmus.bus.ports import Bus, Publish
from isthmus.store.ports import Accepted, Inbound, Store

TOPIC = "finance"
_list_dec = msgspec.json.Decoder(list[msgspec.Raw])


class _Head(msgspec.Struct):
    """Only the routing fields of an envelope; the body travels as the stored bytes."""

    event_id: str
    key: str


_heads_dec = msgspec.json.Decoder(list[_Head])


def publications(events: bytes) -> list[Publish]:
    """The bus messages for a stored event list, without re-encoding any envelope."""
    bodies = _list_dec.decode(events)
    heads = _heads_dec.decode(events)
    return [Publish(h.event_id, TOPIC, h.key, bytes(b)) for h, b in zip(heads, bodies, strict=True)]


def publish_stored(store: Store, bus: Bus, item: Inbound, res: Accepted) -> None:
    """Right after one message is stored (a webhook's answer): its events to the bus. A
    duplicate or an event-less record has nothing to send; a crash in between leaves the
    record unpublished for `relay_unpublished`, and the bus drops an id it already has."""
    if item.events and not res.duplicate:
        bus.publish(publications(item.events))
        store.mark_published([res.message_id])


def relay_unpublished(store: Store, bus: Bus, batch: int = 500) -> int:
    """Publish events of committed messages that never reached the bus (crash recovery)."""
    total = 0
    while rows := store.unpublished(batch):
        pubs = [p for r in rows for p in publications(r.events)]
        bus.publish(pubs)
        store.mark_published([r.id for r in rows])
        total += len(rows)
    return total


__all__ = ["TOPIC", "publications", "publish_stored", "relay_unpublished"]
