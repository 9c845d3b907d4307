"""The durable inbox: classify an inbound HL7 message (`flows.hl7_inbound`), store it with
group commit (`flows.group_commit`), answer.

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
`flows.relay.relay_unpublished`.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from collections import deque
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import replace
from datetime import UTC, datetime
from typing import Protocol

from isthmus.flows.clock import Clock
from isthmus.flows.hl7_inbound import classify, decode_error, encode_error
from isthmus.flows.intake import (
    correlation_of,
    rekeyed,
    renewal_note,
    settle_reuse,
)
from isthmus.formats.hl7v2 import (
    FRAMING_PREFIX,
    ErrorLocation,
    HL7ParseError,
    build_ack,
    control_id_of,
    is_identity,
)
from isthmus.formats.hl7v2.batch_reply import batch_blocks, batch_reply, is_batch
from isthmus.formats.hl7v2.errors import APPLICATION_INTERNAL_ERROR
from isthmus.governance import ownership
from isthmus.observe import logs, tracing
from isthmus.store.ports import Accepted, Inbound, MessageQuery, Store, StoredMessage

log = logging.getLogger(__name__)
MLLP_CHANNEL = "mllp"  # HL7 v2 from the listener, and HL7 files (the same control ids)


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


class Writer(Protocol):
    """What stores a message and calls back with its result: `flows.group_commit`."""

    def submit(self, item: Inbound, done: Callable[[Accepted | Exception], None]) -> None:
        """Queue `item`; `done` gets its stored result (or the error) from another thread."""


class Inbox:
    """The MLLP handler: classify, store durably, then answer with the ACK.

    Completions come back from the writer thread in batches; they are handed to the event
    loop with one wake-up per batch rather than one per message (a wake-up is a syscall).
    """

    def __init__(
        self,
        writer: Writer,
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
    "Inbox",
    "Writer",
    "conflict_copy",
    "correlation_of",
    "is_conflict_copy",
    "message_by_msh10",
    "renewed",
    "settle",
]
