"""An HL7 v2 message as the inbox record it becomes: the pure half of the MLLP inbox.

`classify` parses the bytes, names the message (channel, sender and MSH-10:
`formats.hl7v2.identity`), applies the gates that decide its answer (a sender the channel
does not take, a card number in an account field, a message type refused or ignored by the
channel's message table, a domain its sender does not own under `[ownership]`), maps it to
events with their business keys, and returns the `Inbound` to store with the ACK code and
error it will be answered with. Nothing here touches the store, so the same decision is
made for a message from the listener, a file, or a replay.

The error column keeps an HL7 parse error as `code|segment|sequence|field|component|text`
(ERR-3 code, ERR-2 location; `encode_error`/`decode_error`), so the answer can be built
again from the record alone.
"""

from __future__ import annotations

import hashlib
from collections.abc import Collection, Mapping
from datetime import UTC, datetime

from isthmus.flows.intake import (
    correlation_of,
    encoded,
    envelopes,
)
from isthmus.formats.hl7v2 import (
    ErrorLocation,
    HL7ParseError,
    Message,
    charge_keys,
    identity_of,
    parse_message,
    recover_identity,
)
from isthmus.formats.hl7v2.cards import card_error, masked
from isthmus.formats.hl7v2.errors import APPLICATION_INTERNAL_ERROR, UNSUPPORTED_EVENT_CODE
from isthmus.formats.hl7v2.events import event_key, events_of, parse_ts
from isthmus.formats.hl7v2.triggers import decide as decide_type
from isthmus.governance import ownership
from isthmus.model import Charge
from isthmus.model.envelope import KeyedEvent
from isthmus.store.ports import Inbound


def encode_error(err: HL7ParseError) -> str:
    """An HL7 parse error as the inbox's error column: code|segment|sequence|field|component|text
    (HL7 v2.5.1 ERR-3 code, ERR-2 location)."""
    loc = err.location
    parts = [str(err.code)]
    parts += (
        [loc.segment, str(loc.sequence), str(loc.field), str(loc.component)]
        if loc
        else ["", "0", "0", "0"]
    )
    return "|".join([*parts, err.text])


def decode_error(text: str) -> HL7ParseError | None:
    """The HL7 parse error an error column holds (`encode_error`); None when it is empty."""
    if not text:
        return None
    code, seg, seq, field, comp, msg = text.split("|", 5)
    loc = ErrorLocation(seg, int(seq), int(field), int(comp)) if seg else None
    return HL7ParseError(int(code), msg, loc)


def content_digest(raw: bytes) -> str:
    """Digest of a message's content, blind to segment-terminator style and trailing CRs, so
    a resend framed differently is still the same message."""
    norm = raw.replace(b"\r\n", b"\r").replace(b"\n", b"\r") if b"\n" in raw else raw
    norm = norm.rstrip(b"\r \t")
    return hashlib.sha256(norm).hexdigest()


def sender_refusal(msg: Message, senders: Collection[str]) -> HL7ParseError | None:
    """With `senders` ([channels.<name>] senders, `MSH-3.1^MSH-4.1` each), a message from
    any other sending identity is refused: AR, ERR-3 HL7 table 0357 code 207, ERR-2 at
    MSH-3, the text naming the MSH-3/MSH-4 it came with (a sender identity, not PHI)."""
    if not senders:
        return None
    app, facility = msg.sending_application.strip(), msg.sending_facility.strip()
    if f"{app}^{facility}" in senders:
        return None
    return HL7ParseError(
        APPLICATION_INTERNAL_ERROR,
        f"sender MSH-3 {app[:40]!r} MSH-4 {facility[:40]!r} is not one this channel accepts",
        ErrorLocation("MSH", 1, 3),
    )


def classify(
    raw: bytes,
    *,
    channel: str,
    peer: str,
    now: float,
    tenant: str,
    currency: str,
    owners: ownership.Owners | None = None,
    messages: Mapping[str, str] | None = None,
    senders: Collection[str] = (),
) -> tuple[Inbound, Message | None]:
    """Parse and map one message; the decision is pure, the answer travels with it.
    With `senders`, a message from another sending identity is refused (`sender_refusal`)
    and kept for inspection; it never posts.
    With `owners` ([ownership]), a message writing a domain its sender (MSH-3 or MSH-4)
    does not own is refused, AR, with an ERR naming the domain and its owners.
    `messages` ([channels.<name>] messages, `formats.hl7v2.triggers`) says which types are
    taken, ignored or refused: an ignored message is stored `ignored`, AA, with its reason
    (MSA-3), and no events."""
    msg: Message | None = None
    try:
        msg = parse_message(raw)
        if not msg.control_id.strip():
            raise HL7ParseError(
                101, "MSH-10 message control id is required", ErrorLocation("MSH", 1, 10)
            )
        control_id = identity_of(msg)
        foreign = sender_refusal(msg, senders)
        if foreign is not None:
            raise foreign
        carded = card_error(msg)  # a card number in PID-18 or FT1: refused, kept masked
        if carded is not None:
            raise carded
        mtype, trigger = msg.message_type.strip().upper(), msg.trigger_event.strip().upper()
        if not mtype:
            raise HL7ParseError(
                101, "MSH-9 message type is required", ErrorLocation("MSH", 1, 9, 1)
            )
        decision = decide_type(mtype, trigger, messages, channel=channel)
        if decision.disposition == "refuse":
            raise HL7ParseError(UNSUPPORTED_EVENT_CODE, decision.reason, ErrorLocation("MSH", 1, 9))
        if decision.disposition == "ignore":
            note = HL7ParseError(0, decision.reason, ErrorLocation("MSH", 1, 9))
            return Inbound(
                channel,
                control_id,
                raw,
                now,
                peer,
                f"{mtype}^{trigger}",
                "ignored",
                "AA",
                encode_error(note),
                b"",
                content_digest(raw),
            ), msg
        events = events_of(msg, currency=currency)
        refused = (
            ownership.decide(
                owners,
                ownership.event_domains(type(ev).__name__ for ev in events),
                (msg.sending_application, msg.sending_facility),
            )
            if owners
            else None
        )
        if refused is not None:
            raise HL7ParseError(
                APPLICATION_INTERNAL_ERROR, refused.text, ErrorLocation("MSH", 1, 3)
            )
    except HL7ParseError as err:
        if msg is not None:
            cid = identity_of(msg) if msg.control_id.strip() else ""
        else:
            cid = recover_identity(raw)
        cid = cid or "sha256:" + hashlib.sha256(raw).hexdigest()
        code = err.ack_code  # AR for the header or a message not taken, else AE
        mtype = f"{msg.message_type}^{msg.trigger_event}" if msg is not None else ""
        return Inbound(
            channel,
            cid,
            masked(raw, msg),
            now,
            peer,
            mtype,
            "rejected",
            code,
            encode_error(err),
            b"",
            content_digest(raw),
        ), msg
    recorded = datetime.fromtimestamp(now, UTC)
    occurred = parse_ts(msg.timestamp) or recorded
    corr = correlation_of(channel, control_id)
    # a charge posts once per sending system and FT1-2 (its business key), not per message
    bkeys = iter(charge_keys(msg) if any(isinstance(ev, Charge) for ev in events) else ())
    keyed = [
        KeyedEvent(
            f"{corr}/{i}", event_key(ev), ev, next(bkeys, "") if isinstance(ev, Charge) else ""
        )
        for i, ev in enumerate(events)
    ]
    envs = envelopes(
        keyed,
        channel=channel,
        control_id=control_id,
        occurred=occurred,
        recorded=recorded,
        tenant=tenant,
    )
    return Inbound(
        channel,
        control_id,
        raw,
        now,
        peer,
        f"{msg.message_type}^{msg.trigger_event}",
        "accepted",
        "AA",
        "",
        encoded(envs),
        content_digest(raw),
    ), msg


__all__ = ["classify", "content_digest", "decode_error", "encode_error", "sender_refusal"]
