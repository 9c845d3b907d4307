"""The port every outbound destination adapter implements (issue 18), and what it answers.

A destination (`[destinations.<name>]`: mllp, webhook, nats, fhir, sftp, file) is told to
send a run of deliveries the delivery engine (`flows/delivery.py`) took from that
destination's durable outbox, in outbox order, at most `batch` of them. It sends them and
returns the destination's answer, or raises:

- `DestinationUnavailable`: nothing was taken and a retry may succeed (connection refused, a
  timeout, HTTP 5xx or 429, an MLLP peer that closed before its ACK). The engine backs off,
  counts the failure against the destination's circuit breaker, keeps the order per key, and
  never turns an outage into a dead letter.
- `DestinationRejected`: the destination answered and refused on the content (MLLP AE/AR
  with its ERR, HTTP 4xx, an OperationOutcome). Retrying as is cannot help: the delivery
  becomes a dead letter with a work item carrying the answer, until a person resends it.

The guarantee the engine documents is at least once, in order per key: a destination may
see the same delivery twice (after a crash between its answer and the engine's commit), so
each carries an `idempotency_key` stable across retries and resends, and adapters pass it
on (the MLLP MSH-10, the webhook's Idempotency-Key header, the NATS Nats-Msg-Id header, the
file name). An answer's `detail` never holds patient data: codes and reasons only.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from isthmus.errors import PermanentError, TransientError


@dataclass(frozen=True, slots=True)
class Outgoing:
    """One delivery, rendered: what the engine hands a destination adapter."""

    delivery_id: int
    destination: str
    key: str  # the ordering key: deliveries with one key arrive in outbox order
    idempotency_key: str  # stable across retries and resends of this delivery
    event_type: str  # the status event or source message type, e.g. "PaymentPosted"
    content_type: str  # "x-application/hl7-v2+er7", "application/json", ...
    body: bytes  # already transformed by the route and cut to the destination's allow-list
    attempt: int  # 1 on the first try


@dataclass(frozen=True, slots=True)
class Answer:
    """What the destination said; kept on the delivery as its lineage (no PHI)."""

    code: str  # "AA", "200", "published", "uploaded", ...
    detail: str = ""  # e.g. the stream sequence, the file name, the ERR code and text


class DestinationUnavailable(TransientError):
    """The destination could not take the deliveries now; retry later (nothing was taken)."""


class DestinationRejected(PermanentError):
    """The destination answered and refused the content; a person must act."""

    def __init__(self, answer: Answer) -> None:
        super().__init__(f"{answer.code}: {answer.detail}" if answer.detail else answer.code)
        self.answer = answer


class Destination(Protocol):
    """An outbound adapter. `send` takes 1..`batch` deliveries, all or nothing: one answer
    for the run (a file holds many deliveries; an MLLP, webhook, FHIR or NATS destination
    has `batch == 1`)."""

    name: str
    batch: int

    def send(self, items: Sequence[Outgoing]) -> Answer: ...

    def close(self) -> None: ...
