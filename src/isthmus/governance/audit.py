"""The audit trail: append-only and hash-chained, so an edit or a deletion shows.

Each row stores `hash = sha256(prev_hash + canonical JSON of the event)`, where the event
includes its own sequence number, and the first row chains from GENESIS. Changing any stored
field breaks that row's hash; deleting a row breaks the next row's `prev_hash` (and leaves a
gap in the sequence); deleting rows at the end is caught against the head (last sequence and
hash) that the store keeps beside the rows, updated in the same transaction. Someone able to
rewrite the whole table and the head consistently can still forge history: `audit verify`
prints the head so it can be recorded outside the hub (a ticket, a log shipper, a WORM copy).

Everything here is pure: the store adapters call `seal` inside their write transaction, and
`verify` walks the rows they return. A row or a head that is not even well formed (a field
missing or of the wrong type, a detail that is not a JSON object, a hash that is not 64 hex
digits) is a fault like any other: `verify` names its row and never raises, so `audit
verify` answers exit 4 with the row, not a crash (issue 16).
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable
from dataclasses import dataclass, fields
from datetime import UTC, datetime
from typing import Any, Protocol

GENESIS = "0" * 64
OUTCOMES = ("ok", "denied", "failed")
_HASH = re.compile(r"[0-9a-f]{64}")


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
    """A stored audit event with its sequence number and its place in the hash chain."""

    seq: int
    event: AuditEvent
    prev_hash: str
    hash: str


@dataclass(frozen=True)
class ChainFault:
    """The first row that does not verify, and why; `row` is what was stored there (each
    field as text, cut to 200 characters), {} when no row could be read."""

    seq: int
    reason: str
    row: dict[str, str] | None = None


class AuditLog(Protocol):
    """The one store method `record` needs (governance.ports.GovernanceStore has it)."""

    def append_audit(self, event: AuditEvent) -> AuditRow: ...


def canonical_json(data: Any) -> str:
    """The one JSON text of `data` that is hashed: sorted keys, no blanks, non-JSON values
    as their str()."""
    return json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)


def event(
    actor: str,
    action: str,
    target: str = "",
    outcome: str = "ok",
    *,
    at: datetime | None = None,
    **detail: Any,
) -> AuditEvent:
    """Build an audit event at `at` (default now, UTC, microseconds), its extra keyword
    arguments as canonical JSON detail; the outcome must be one of `OUTCOMES`."""
    if outcome not in OUTCOMES:
        raise ValueError(f"outcome must be one of {OUTCOMES}, got {outcome!r}")
    when = (at or datetime.now(UTC)).astimezone(UTC).isoformat(timespec="microseconds")
    return AuditEvent(when, actor, action, target, outcome, canonical_json(detail))


def chain_hash(prev_hash: str, seq: int, ev: AuditEvent) -> str:
    """The hash of a row: SHA-256 of the previous row's hash followed by the canonical JSON
    of the event and its sequence number."""
    body = canonical_json(
        {
            "seq": seq,
            "at": ev.at,
            "actor": ev.actor,
            "action": ev.action,
            "target": ev.target,
            "outcome": ev.outcome,
            "detail": ev.detail,
        }
    )
    return hashlib.sha256((prev_hash + body).encode()).hexdigest()


def seal(head: tuple[int, str] | None, ev: AuditEvent) -> AuditRow:
    """The row that follows `head` (last sequence number and hash; None for the first)."""
    seq, prev = (head[0] + 1, head[1]) if head else (1, GENESIS)
    return AuditRow(seq, ev, prev, chain_hash(prev, seq, ev))


def malformed(row: object) -> str | None:
    """Why a row read from the store is not a well-formed audit row (the types of its
    fields), or None if it is; `unsound` checks the content of a row whose hash holds."""
    if not isinstance(row, AuditRow):
        return f"not an audit row ({type(row).__name__})"
    if isinstance(row.seq, bool) or not isinstance(row.seq, int) or row.seq < 1:
        return f"seq {row.seq!r:.40} is not a positive integer"
    ev = row.event
    if not isinstance(ev, AuditEvent):
        return f"the event is missing ({type(ev).__name__})"
    for f in fields(AuditEvent):
        value = getattr(ev, f.name)
        if not isinstance(value, str):
            return f"{f.name} is {'missing' if value is None else type(value).__name__}, not text"
    for name in ("prev_hash", "hash"):
        value = getattr(row, name)
        if not isinstance(value, str) or not _HASH.fullmatch(value):
            return f"{name} is not 64 lowercase hex digits"
    return None


def unsound(ev: AuditEvent) -> str | None:
    """Why a well-typed event's content is not what `event` writes, or None."""
    if ev.outcome not in OUTCOMES:
        return f"outcome {ev.outcome!r:.40} is not one of {', '.join(OUTCOMES)}"
    try:
        datetime.fromisoformat(ev.at)
    except ValueError:
        return f"at {ev.at!r:.60} is not an ISO 8601 time"
    try:
        detail = json.loads(ev.detail)
    except ValueError as exc:
        return f"detail is not JSON ({exc})"
    if not isinstance(detail, dict):
        return "detail is not a JSON object"
    return None


def shown(row: object) -> dict[str, str]:
    """A row's stored fields as text for a fault report, whatever their types."""
    if not isinstance(row, AuditRow):
        return {"row": repr(row)[:200]}
    ev = row.event
    out = {"seq": row.seq, "prev_hash": row.prev_hash, "hash": row.hash}
    if isinstance(ev, AuditEvent):
        out |= {f.name: getattr(ev, f.name) for f in fields(AuditEvent)}
    else:
        out["event"] = ev
    return {k: (v if isinstance(v, str) else repr(v))[:200] for k, v in out.items()}


def head_fault(head: object, last: int) -> ChainFault | None:
    """Why the stored head (last sequence number, hash) is malformed, or None."""
    if head is None:
        return None
    if (
        not isinstance(head, tuple)
        or len(head) != 2
        or isinstance(head[0], bool)
        or not isinstance(head[0], int)
        or not isinstance(head[1], str)
        or not _HASH.fullmatch(head[1])
    ):
        return ChainFault(
            last,
            f"the head record is malformed: {head!r:.120} is not (row number, 64 hex digits)",
            {"head": repr(head)[:200]},
        )
    return None


def verify(rows: Iterable[AuditRow], head: tuple[int, str] | None) -> ChainFault | None:
    """Walk the chain from its first row; the first fault found, or None if it holds.
    Never raises: a malformed row or head is a fault naming its row."""
    expected_seq, prev = 1, GENESIS
    for row in rows:
        why = malformed(row)
        if why is not None:
            seq = (
                row.seq if isinstance(row, AuditRow) and isinstance(row.seq, int) else expected_seq
            )
            return ChainFault(seq, f"malformed row: {why}", shown(row))
        if row.seq != expected_seq:
            return ChainFault(
                expected_seq, f"row {expected_seq} is missing (next row is {row.seq}): deleted", {}
            )
        if row.prev_hash != prev:
            return ChainFault(
                row.seq,
                "prev_hash does not match the row before: a row before it was changed or deleted",
                shown(row),
            )
        if chain_hash(prev, row.seq, row.event) != row.hash:
            return ChainFault(row.seq, "hash does not match the row's content: edited", shown(row))
        why = unsound(row.event)
        if why is not None:
            return ChainFault(row.seq, f"malformed row: {why}", shown(row))
        expected_seq, prev = row.seq + 1, row.hash
    last = expected_seq - 1
    bad_head = head_fault(head, last)
    if bad_head is not None:
        return bad_head
    if head is None:
        return None if last == 0 else ChainFault(1, "rows exist but the head is missing")
    if head[0] > last:
        return ChainFault(
            last + 1,
            f"the head names row {head[0]} but the chain ends at "
            f"row {last}: rows at the end were deleted",
        )
    if head != (last, prev):
        return ChainFault(
            head[0], "the head does not match the last row", {"head": f"{head[0]}:{head[1]}"}
        )
    return None


def record(
    log: AuditLog, actor: str, action: str, target: str = "", outcome: str = "ok", **detail: Any
) -> AuditRow:
    """Append one event; what the shells call (`audit(...)` in the CLI and HTTP auth)."""
    return log.append_audit(event(actor, action, target, outcome, **detail))
