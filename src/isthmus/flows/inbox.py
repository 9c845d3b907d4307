"""The durable inbox: classify an inbound HL7 message, store it with group commit, answer.

The reliability contract starts here. A message is ACKed only after the transaction that
holds it has committed; many connections' messages share one commit (group commit), which
is what makes a durable ACK cheap. A message is identified by its channel and sender plus
MSH-10 (`formats.hl7v2.identity`: `<MSH-3.1>^<MSH-4.1>:<MSH-10>`). A duplicate (same
identity, same content) stores nothing and gets the answer the original got; the same
identity with other content is settled by `flows.intake.settle_reuse`: AR with HL7 table
0357 code 205 inside the reuse window, a new message (with a note) after it. A message that
can't be taken is stored too, as rejected, and answered AE/AR with an ERR segment; a broken
MLLP block is kept under `frame:<hash>`, never under the MSH-10 it may show. If the store
fails, the source gets AR with code 207 and keeps the message. After the commit, the
message's events are relayed to the bus; a crash in between is healed at start by
`relay_unpublished`.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import queue
import threading
import time
from collections import deque
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import replace
from datetime import UTC, datetime
from functools import partial

import msgspec

from isthmus.bus.ports import Bus, Publish
from isthmus.flows.clock import Clock
from isthmus.flows.intake import (
    REUSE_WINDOW_S,
    correlation_of,
    encoded,
    envelopes,
    rekeyed,
    renewal_note,
    settle_reuse,
)
from isthmus.formats.hl7v2 import (
    FRAMING_PREFIX,
    ErrorLocation,
    HL7ParseError,
    Message,
    build_ack,
    charge_keys,
    control_id_of,
    identity_of,
    is_identity,
    parse_message,
    recover_identity,
)
from isthmus.formats.hl7v2.batch_reply import batch_blocks, batch_reply, is_batch
from isthmus.formats.hl7v2.cards import card_error, masked
from isthmus.formats.hl7v2.errors import APPLICATION_INTERNAL_ERROR, UNSUPPORTED_EVENT_CODE
from isthmus.formats.hl7v2.events import event_key, events_of, parse_ts
from isthmus.formats.hl7v2.triggers import decide as decide_type
from isthmus.governance import ownership
from isthmus.model import Charge
from isthmus.model.envelope import KeyedEvent
from isthmus.observe import logs, tracing
from isthmus.store.ports import Accepted, Inbound, MessageQuery, Store, StoredMessage

log = logging.getLogger(__name__)
TOPIC = "finance"
MLLP_CHANNEL = "mllp"  # HL7 v2 from the listener, and HL7 files (the same control ids)
_list_dec = msgspec.json.Decoder(list[msgspec.Raw])


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


DUPLICATE_KEY = 205  # HL7 table 0357: duplicate key identifier


def conflict_copy(m: Inbound) -> Inbound:
    """A message whose identity (sender + MSH-10) another message with other content holds,
    inside the reuse window: kept under `<id>#<digest>`, refused AR with HL7 table 0357
    code 205 (duplicate key identifier) at MSH-10. It never posts, and is never released."""
    err = HL7ParseError(
        DUPLICATE_KEY,
        f"MSH-10 {m.control_id!r} already identifies a "
        "different message; send it with a new control id",
        ErrorLocation("MSH", 1, 10),
    )
    return replace(
        m,
        control_id=f"{m.control_id}#{m.digest[:16]}",
        status="rejected",
        ack_code="AR",
        error=encode_error(err),
        events=b"",
    )


def is_conflict_copy(m: StoredMessage) -> bool:
    """Whether the stored message is a rejected copy of one whose identity another message
    holds (HL7 table 0357 code 205, duplicate key)."""
    return m.status == "rejected" and m.error.startswith(f"{DUPLICATE_KEY}|")


def renewed(m: Inbound, held: StoredMessage) -> Inbound:
    """A message reusing an identity after the window (its sender's counter restarted):
    a new message under `<id>~<digest>`, accepted, noted (table 0357 code 0) with the
    message that held the identity, which `messages show` displays."""
    note = HL7ParseError(0, renewal_note(m, held), ErrorLocation("MSH", 1, 10))
    return rekeyed(m, f"{m.control_id}~{m.digest[:16]}", error=encode_error(note))


def settle(
    store: Store, batch: Sequence[Inbound], stored: Sequence[Accepted], window_s: float
) -> list[tuple[Inbound, Accepted | Exception]]:
    """HL7 v2 messages as stored, reused identities settled (`flows.intake.settle_reuse`):
    the one conflict mechanism of the MLLP listener and HL7 files."""
    return settle_reuse(
        store, batch, stored, window_s=window_s, refuse=conflict_copy, renew=renewed
    )


def message_by_msh10(store: Store, channel: str, msh10: str) -> StoredMessage | None:
    """The one message whose identity has this bare MSH-10, None when no sender or several
    used it (a lookup aid for people, on the inbox's control-id index; conflict copies and
    renewals, `<id>#…` and `<id>~…`, are not identities and never match)."""
    if is_identity(msh10):
        return None
    page = store.message_page(MessageQuery(channel=channel, control_id=msh10), limit=3)
    found = [m for m in page if control_id_of(m.control_id) == msh10 and is_identity(m.control_id)]
    return found[0] if len(found) == 1 else None


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


class GroupCommitWriter:
    """One thread stores queued messages in batches (one commit, many ACKs); a second thread
    relays the committed events to the bus, so the next group commit never waits for it."""

    def __init__(
        self,
        store: Store,
        bus: Bus,
        *,
        max_batch: int = 512,
        reuse_window_s: float = REUSE_WINDOW_S,
        linger_s: float = 0.05,
    ) -> None:
        self._store, self._bus, self._max = store, bus, max_batch
        self._linger_s = linger_s
        self._settle = partial(settle, store, window_s=reuse_window_s)
        self._q: queue.SimpleQueue[
            tuple[Inbound, Callable[[Accepted | Exception], None]] | None
        ] = queue.SimpleQueue()
        self._relay_q: queue.SimpleQueue[list[tuple[int, bytes]] | None] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name="inbox-writer", daemon=True)
        self._relay = threading.Thread(target=self._run_relay, name="inbox-relay", daemon=True)
        self.commits = 0
        self.stored = 0

    def start(self) -> None:
        relay_unpublished(self._store, self._bus)
        self._thread.start()
        self._relay.start()

    def submit(self, item: Inbound, done: Callable[[Accepted | Exception], None]) -> None:
        self._q.put((item, done))

    def stop(self) -> None:
        self._q.put(None)
        self._thread.join(timeout=30)
        self._relay_q.put(None)
        self._relay.join(timeout=30)

    def _run(self) -> None:
        stopping = False
        while not stopping:
            first = self._q.get()
            if first is None:
                return
            batch = [first]
            while len(batch) < self._max:
                try:
                    nxt = self._q.get_nowait()
                except queue.Empty:
                    break
                if nxt is None:
                    stopping = True
                    break
                batch.append(nxt)
            self._commit(batch)

    def _commit(
        self, batch: Sequence[tuple[Inbound, Callable[[Accepted | Exception], None]]]
    ) -> None:
        try:
            stored = self._store.accept([b[0] for b in batch])
        except Exception as exc:  # noqa: BLE001 - every caller must get its NAK
            log.error("inbox commit failed for %d messages: %s", len(batch), exc)
            for _, done in batch:
                done(exc)
            return
        settled = self._settle([b[0] for b in batch], stored)
        self.commits += 1
        self.stored += len(batch)
        for (_, done), (_, res) in zip(batch, settled, strict=True):
            done(res)
        fresh = [
            (r.message_id, m.events)
            for m, r in settled
            if isinstance(r, Accepted) and not r.duplicate and m.events
        ]
        if fresh:
            self._relay_q.put(fresh)

    def _run_relay(self) -> None:
        while True:
            first = self._relay_q.get()
            if first is None:
                return
            # linger a moment so that one publish and one mark_published (two commits, two
            # fsyncs) carry many group commits: on one connection a message at a time,
            # relaying each commit on its own took as many fsyncs as the ACKs themselves
            time.sleep(self._linger_s)
            items = list(first)
            while len(items) < 4 * self._max:
                try:
                    nxt = self._relay_q.get_nowait()
                except queue.Empty:
                    break
                if nxt is None:
                    self._relay_q.put(None)
                    break
                items += nxt
            self._relay_until_done(items)

    def _relay_until_done(self, items: list[tuple[int, bytes]]) -> None:
        """Publish, then mark published; on failure wait and try again (publish is
        idempotent on the event id), so an ACKed message never waits for a restart."""
        delay = 0.05
        while True:
            try:
                self._bus.publish([p for _, events in items for p in publications(events)])
                self._store.mark_published([mid for mid, _ in items])
                return
            except Exception as exc:  # noqa: BLE001 - retried; also healed at next start
                log.warning("relay to bus failed, retrying in %.2fs: %s", delay, exc)
                time.sleep(delay)
                delay = min(delay * 2, 5.0)


class Inbox:
    """The MLLP handler: classify, store durably, then answer with the ACK.

    Completions come back from the writer thread in batches; they are handed to the event
    loop with one wake-up per batch rather than one per message (a wake-up is a syscall).
    """

    def __init__(
        self,
        writer: GroupCommitWriter,
        *,
        channel: str,
        tenant: str,
        currency: str,
        owners: ownership.Owners | None = None,
        messages: Mapping[str, str] | None = None,
        senders: Collection[str] = (),
        ack_application: str = "ISTHMUS",
        ack_facility: str = "ISTHMUS",
        clock: Clock,
    ) -> None:
        self._writer = writer
        self._clock = clock  # the receipt time each message is stored with
        self.channel, self.tenant, self.currency = channel, tenant, currency
        self.owners = owners or {}
        self.messages = messages or {}
        self.senders = frozenset(senders)
        # the ACK's own MSH-3/MSH-4 ([channels.<name>] ack_application, ack_facility)
        self.ack_application, self.ack_facility = ack_application, ack_facility
        self.acks: dict[str, int] = {"AA": 0, "AE": 0, "AR": 0}
        self._completed: deque[
            tuple[asyncio.Future[Accepted | Exception], Accepted | Exception]
        ] = deque()
        self._wake_pending = False

    def _store(self, inbound: Inbound) -> asyncio.Future[Accepted | Exception]:
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[Accepted | Exception] = loop.create_future()

        def done(res: Accepted | Exception) -> None:  # runs in the writer thread
            self._completed.append((fut, res))
            if not self._wake_pending:
                self._wake_pending = True
                loop.call_soon_threadsafe(self._deliver)

        self._writer.submit(inbound, done)
        return fut

    def _deliver(self) -> None:  # runs in the event loop
        self._wake_pending = False  # reset first: a later append schedules a new wake-up
        while self._completed:
            fut, res = self._completed.popleft()
            if not fut.done():
                fut.set_result(res)

    async def _on_batch(self, payload: bytes, peer: str) -> bytes:
        """A batch or file in one block (HL7 v2.5.1 2.10.3): each message is taken as if
        sent alone, submitted in block order (tasks start in creation order, and each hands
        its message to the writer before it first waits); the answer is the batch of their
        ACKs (`formats.hl7v2.batch_reply`); sent again, each message gets its first answer."""
        block = batch_blocks(payload)
        groups = [
            [asyncio.ensure_future(self.on_message(m, peer)) for m in b.messages]
            for b in block.batches
        ]
        acks = [list(await asyncio.gather(*g)) for g in groups]
        return batch_reply(
            block,
            acks,
            now=datetime.fromtimestamp(self._clock.now(), UTC),
            control_id="B" + hashlib.sha256(payload).hexdigest()[:19],
        )

    async def on_message(self, payload: bytes, peer: str) -> bytes:
        if is_batch(payload):
            return await self._on_batch(payload, peer)
        inbound, msg = classify(
            payload,
            channel=self.channel,
            peer=peer,
            now=self._clock.now(),
            tenant=self.tenant,
            currency=self.currency,
            owners=self.owners,
            messages=self.messages,
            senders=self.senders,
        )
        corr = correlation_of(inbound.channel, inbound.control_id)
        # a span that is not made current, and ids bound only around synchronous code: an
        # eagerly started handler resumes in another context after the await
        sp = tracing.start(
            "isthmus.ingest",
            correlation=corr,
            channel=inbound.channel,
            message_type=inbound.message_type,
            status=inbound.status,
            bytes=len(payload),
        )
        res = await self._store(inbound)
        if sp is not None:
            sp.set_attribute(
                "isthmus.ack_code", "AR" if isinstance(res, Exception) else res.ack_code
            )
            sp.end()
        if isinstance(res, Exception):
            with logs.bound(correlation=corr, control=inbound.control_id):
                log.error("inbox could not store %s: %s", corr, res)
            self.acks["AR"] += 1
            err = HL7ParseError(APPLICATION_INTERNAL_ERROR, "message not stored, resend later")
            return build_ack(
                msg,
                "AR",
                error=err,
                original=payload,
                sending_application=self.ack_application,
                sending_facility=self.ack_facility,
            )
        self.acks[res.ack_code] = self.acks.get(res.ack_code, 0) + 1
        return build_ack(
            msg,
            res.ack_code,  # type: ignore[arg-type]
            error=decode_error(res.error),
            original=payload,
            sending_application=self.ack_application,
            sending_facility=self.ack_facility,
        )

    async def on_framing_error(self, payload_head: bytes, peer: str, reason: str) -> bytes:
        # kept under `frame:<hash>`: the MSH-10 a broken block shows is never claimed, so
        # the whole message, resent, is taken under its own identity
        now = self._clock.now()
        err = HL7ParseError(100, f"framing error: {reason}")
        inbound = Inbound(
            self.channel,
            FRAMING_PREFIX + hashlib.sha256(payload_head + reason.encode()).hexdigest(),
            payload_head,
            now,
            peer,
            "",
            "rejected",
            "AR",
            encode_error(err),
            b"",
        )
        await self._store(inbound)
        self.acks["AR"] += 1
        return build_ack(
            None,
            "AR",
            error=err,
            original=payload_head,
            sending_application=self.ack_application,
            sending_facility=self.ack_facility,
        )


__all__ = [
    "MLLP_CHANNEL",
    "TOPIC",
    "GroupCommitWriter",
    "Inbox",
    "classify",
    "conflict_copy",
    "content_digest",
    "correlation_of",
    "decode_error",
    "encode_error",
    "is_conflict_copy",
    "message_by_msh10",
    "publications",
    "publish_stored",
    "relay_unpublished",
    "renewed",
    "sender_refusal",
    "settle",
]
