"""The one place where an inbound message's events are put into envelopes.

Every channel (MLLP, files, FHIR, settlement and bank files, the workforce webhook, supply
usage) decodes its bytes into `KeyedEvent`s (id, partition key, business key, event) and
hands them here with the message's identity: channel and control id. The lineage ids are
the same for all of them: the correlation id is `<channel>/<control id>`, and every event
of the message is caused by it. See `flows.identity` for what a business key is and how the
worker keeps each business fact once.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

import msgspec

from isthmus.model.envelope import Envelope, KeyedEvent, Source

_enc = msgspec.json.Encoder(decimal_format="string")


def correlation_of(channel: str, control_id: str) -> str:
    """The lineage id of one inbound message: `<channel>/<control id>`."""
    return f"{channel}/{control_id}"


def envelopes(keyed: Iterable[KeyedEvent], *, channel: str, control_id: str,
              occurred: datetime, recorded: datetime, tenant: str) -> list[Envelope]:
    """The envelopes of one message's events, in order."""
    corr = correlation_of(channel, control_id)
    source = Source(channel=channel, control_id=control_id, message_id=corr)
    return [Envelope(event_id=k.event_id, type=type(k.event).__name__, occurred_at=occurred,
                     recorded_at=recorded, source=source, correlation_id=corr,
                     causation_id=corr, tenant=tenant, key=k.key, payload=k.event,
                     business_key=k.business_key) for k in keyed]


def encoded(envs: list[Envelope]) -> bytes:
    """The stored form of a message's envelopes (a JSON array); empty when there are none."""
    return _enc.encode(envs) if envs else b""
