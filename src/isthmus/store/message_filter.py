"""The meaning of `MessageQuery` (store/ports.py), once: as SQL for SQLite and PostgreSQL,
and as a predicate for the in-memory fake, so the three adapters find the same messages.

Every filter is written so an index serves it (store/*_schema.py): status, channel and
message type each with the id (`(status, id)`...), so a page newest first reads the index
backwards and stops after `limit` rows; a message type prefix ("ADT" for every "ADT^...")
is a range on `(message_type, id)`; a sender is a range on `control_id` (the identity
`<MSH-3.1>^<MSH-4.1>:<MSH-10>` starts with it, formats/hl7v2/identity.py); a control id is
the whole identity or, through an expression index, the part after its first ":" (MSH-10);
a FHIR resource's versions (`history_of`) are its identity and a range on
`<type>/<id>/_history/`.
"""

from __future__ import annotations

from isthmus.store.ports import MessageQuery, StoredMessage
from isthmus.store.sql_dialect import Dialect


def _type_range(message_type: str) -> tuple[str, str]:
    # "^" (0x5E) is followed by "_" (0x5F): [T^, T_) holds every "T^..." and nothing else
    return message_type + "^", message_type + "_"


def _sender_range(sender: str) -> tuple[str, str]:
    return sender + ":", sender + ";"  # ";" follows ":": every identity of that sender


def _history_range(resource: str) -> tuple[str, str]:
    return resource + "/_history/", resource + "/_history0"  # "0" follows "/"


def where(q: MessageQuery, before: int | None, d: Dialect) -> tuple[str, list[object]]:
    """` WHERE ...` (or "") and its arguments for the inbox table."""
    m = d.mark
    conds: list[str] = []
    args: list[object] = []
    for column, text in (("status", q.status), ("channel", q.channel)):
        if text is not None:
            conds.append(f"{column} = {m}")
            args.append(text)
    if q.message_type is not None:
        t = f"message_type{d.bytewise}"
        conds.append(f"(message_type = {m} OR ({t} >= {m} AND {t} < {m}))")
        args += [q.message_type, *_type_range(q.message_type)]
    if q.sender is not None:
        c = f"control_id{d.bytewise}"
        conds.append(f"{c} >= {m} AND {c} < {m}")
        args += list(_sender_range(q.sender))
    if q.control_id is not None:
        conds.append(f"(control_id = {m} OR {d.tail} = {m})")
        args += [q.control_id, q.control_id]
    if q.history_of is not None:
        c = f"control_id{d.bytewise}"
        conds.append(f"(control_id = {m} OR ({c} >= {m} AND {c} < {m}))")
        args += [q.history_of, *_history_range(q.history_of)]
    for cond, value in (
        (f"received_at >= {m}", q.since),
        (f"received_at < {m}", q.until),
        (f"id < {m}", before),
    ):
        if value is not None:
            conds.append(cond)
            args.append(value)
    return (" WHERE " + " AND ".join(conds) if conds else ""), args


def matches(q: MessageQuery, msg: StoredMessage) -> bool:
    """The same filters over one stored message (the in-memory store)."""
    t = msg.message_type
    lo, hi = _type_range(q.message_type or "")
    slo, shi = _sender_range(q.sender or "")
    return (
        (q.status is None or msg.status == q.status)
        and (q.channel is None or msg.channel == q.channel)
        and (q.message_type is None or t == q.message_type or lo <= t < hi)
        and (q.sender is None or slo <= msg.control_id < shi)
        and (
            q.control_id is None
            or q.control_id in (msg.control_id, msg.control_id[msg.control_id.find(":") + 1 :])
        )
        and (
            q.history_of is None
            or msg.control_id == q.history_of
            or msg.control_id.startswith(q.history_of + "/_history/")
        )
        and (q.since is None or msg.received_at >= q.since)
        and (q.until is None or msg.received_at < q.until)
    )
