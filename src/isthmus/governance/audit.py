"""The audit trail: append-only and hash-chained, so an edit or a deletion shows.

Each row stores `hash = sha256(prev_hash + canonical JSON of the event)`, where the event
includes its own sequence number, and the first row chains from GENESIS. Changing any stored
field breaks that row's hash; deleting a row breaks the next row's `prev_hash` (and leaves a
gap in the sequence); deleting rows at the end is caught against the head (last sequence and
hash) that the store keeps beside the rows, updated in the same transaction. Someone able to
rewrite the whole table and the head consistently can still forge history: `audit verify`
prints the head so it can be recorded outside the hub (a ticket, a log shipper, a WORM copy).

Everything here is pure: the store adapters call `seal` inside their write transaction, and
`verify` walks the rows they return.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

GENESIS = "0" * 64
OUTCOMES = ("ok", "denied", "failed")


@dataclass(frozen=True)
class AuditEvent:
    """Who did what to which thing, with what outcome. `detail` is canonical JSON text."""

    at: str
    actor: str
    action: str
    target: str
    outcome: str
    detail: str = "{}"


@dataclass(frozen=True)
class AuditRow:
    seq: int
    event: AuditEvent
    prev_hash: str
    hash: str


@dataclass(frozen=True)
class ChainFault:
    """The first row that does not verify, and why."""

    seq: int
    reason: str


class AuditLog(Protocol):
    """The one store method `record` needs (governance.ports.GovernanceStore has it)."""

    def append_audit(self, event: AuditEvent) -> AuditRow: ...


def canonical_json(data: Any) -> str:
    return json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False,
                      default=str)


def event(actor: str, action: str, target: str = "", outcome: str = "ok", *,
          at: datetime | None = None, **detail: Any) -> AuditEvent:
    if outcome not in OUTCOMES:
        raise ValueError(f"outcome must be one of {OUTCOMES}, got {outcome!r}")
    when = (at or datetime.now(UTC)).astimezone(UTC).isoformat(timespec="microseconds")
    return AuditEvent(when, actor, action, target, outcome, canonical_json(detail))


def chain_hash(prev_hash: str, seq: int, ev: AuditEvent) -> str:
    body = canonical_json({"seq": seq, "at": ev.at, "actor": ev.actor, "action": ev.action,
                           "target": ev.target, "outcome": ev.outcome, "detail": ev.detail})
    return hashlib.sha256((prev_hash + body).encode()).hexdigest()


def seal(head: tuple[int, str] | None, ev: AuditEvent) -> AuditRow:
    """The row that follows `head` (last sequence number and hash; None for the first)."""
    seq, prev = (head[0] + 1, head[1]) if head else (1, GENESIS)
    return AuditRow(seq, ev, prev, chain_hash(prev, seq, ev))


def verify(rows: Iterable[AuditRow], head: tuple[int, str] | None) -> ChainFault | None:
    """Walk the chain from its first row; the first fault found, or None if it holds."""
    expected_seq, prev = 1, GENESIS
    for row in rows:
        if row.seq != expected_seq:
            return ChainFault(expected_seq, f"row {expected_seq} is missing (next row is "
                                            f"{row.seq}): deleted")
        if row.prev_hash != prev:
            return ChainFault(row.seq, "prev_hash does not match the row before: a row "
                                       "before it was changed or deleted")
        if chain_hash(prev, row.seq, row.event) != row.hash:
            return ChainFault(row.seq, "hash does not match the row's content: edited")
        expected_seq, prev = row.seq + 1, row.hash
    last = expected_seq - 1
    if head is None:
        return None if last == 0 else ChainFault(1, "rows exist but the head is missing")
    if head[0] > last:
        return ChainFault(last + 1, f"the head names row {head[0]} but the chain ends at "
                                    f"row {last}: rows at the end were deleted")
    if head != (last, prev):
        return ChainFault(head[0], "the head does not match the last row")
    return None


def record(log: AuditLog, actor: str, action: str, target: str = "", outcome: str = "ok",
           **detail: Any) -> AuditRow:
    """Append one event; what the shells call (`audit(...)` in the CLI and HTTP auth)."""
    return log.append_audit(event(actor, action, target, outcome, **detail))
