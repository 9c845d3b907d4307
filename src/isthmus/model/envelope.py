"""The canonical envelope every event travels in.

Lineage lives here: `correlation_id` names the source message (the inbox id) that started a
chain, `causation_id` the record that directly caused this one. Event ids are derived from
the source control id, so a replayed or duplicated message yields the same ids and every
effect keyed on them stays effectively-once.
"""

from __future__ import annotations

from datetime import datetime

import msgspec

from isthmus.model.events import Event


class Source(msgspec.Struct, frozen=True):
    """Where an event came from: channel, the message's own control id (MSH-10), inbox id."""

    channel: str
    control_id: str
    message_id: str


class Envelope(msgspec.Struct, frozen=True, kw_only=True):
    """One event as it travels. `business_key` names the business fact the event posts
    (an 835 claim payment by payer + TRN02 + CLP01/CLP07, an HL7 charge by sender + FT1-2,
    a card payment by processor + transaction id, ...): two envelopes with the same business
    key are one fact, whatever message, file or channel brought them (`flows.identity`).
    Empty: the event id is the identity."""

    event_id: str
    type: str
    schema_version: int = 1
    occurred_at: datetime
    recorded_at: datetime
    source: Source
    correlation_id: str
    causation_id: str
    tenant: str = "default"
    key: str
    payload: Event
    business_key: str = ""


class KeyedEvent(msgspec.Struct, frozen=True):
    """An event as a decoder returns it: its id, its partition key, and the business key
    that makes its posting unique ("" when the event id is the identity)."""

    event_id: str
    key: str
    event: Event
    business_key: str = ""


_encoder = msgspec.json.Encoder(decimal_format="string")
_decoder = msgspec.json.Decoder(Envelope)


def encode_envelope(env: Envelope) -> bytes:
    """Encode an envelope as JSON bytes, decimals as strings (what the store keeps)."""
    return _encoder.encode(env)


def decode_envelope(data: bytes) -> Envelope:
    """Decode and validate JSON bytes written by `encode_envelope` into an `Envelope`."""
    return _decoder.decode(data)
