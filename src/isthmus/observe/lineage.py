"""Lineage: the chain from one source message to the ERP batch lines it fed, and to the
deliveries its events sent out (issue 18: each with its destination's answer).

message (inbox) -> events (bus envelopes, by correlation id) -> journal entries and work
items -> batch lines whose `source_entries` name those entries. Every hop is found by the
correlation id or entry key the records carry, not by guesswork, so an auditor can walk
any ERP number back to the bytes that caused it. PHI stays out: the trace shows tokens,
ids and amounts, and the raw message only on explicit request.
"""

from __future__ import annotations

from typing import Any

import msgspec

from isthmus.flows.inbox import MLLP_CHANNEL, correlation_of, message_by_msh10
from isthmus.flows.relay import publications
from isthmus.ledger.batch import JournalBatch
from isthmus.model.envelope import decode_envelope
from isthmus.observe.instant import instant
from isthmus.store.ports import DeliveryQuery, Store, StoredMessage

_batch_dec = msgspec.json.Decoder(JournalBatch)


def find_message(store: Store, ref: str) -> StoredMessage | None:
    """By inbox id ("42") or by correlation id ("mllp/EHR^NORTH:MSG00001"); an HL7 one also
    by its bare MSH-10 ("mllp/MSG00001") when a single sender used it."""
    if ref.isdigit():
        return store.message(int(ref))
    channel, _, control = ref.partition("/")
    found = store.message_by_control_id(channel, control)
    if found is None and channel == MLLP_CHANNEL:
        return message_by_msh10(store, channel, control)
    return found


def trace(store: Store, ref: str, *, include_raw: bool = False) -> dict[str, Any] | None:
    """The lineage of one source message (by inbox id or correlation id): its events,
    journal entries, work items, the batch lines they fed and their deliveries; None when no
    such message is stored. The raw message only with `include_raw`."""
    msg = find_message(store, ref)
    if msg is None:
        return None
    corr = correlation_of(msg.channel, msg.control_id)
    events = []
    for p in publications(msg.events) if msg.events else []:
        env = decode_envelope(p.body)
        events.append(
            {"event_id": env.event_id, "type": env.type, "causation_id": env.causation_id}
        )
    entries = store.entries(correlation_id=corr)
    batch_of = store.entry_batches([e.entry_key for e in entries])
    batches: dict[str, JournalBatch] = {}
    out_entries = []
    for e in entries:
        bid = batch_of.get(e.entry_key)
        refs: list[dict[str, Any]] = []
        if bid:
            if bid not in batches:
                body = store.batch_body(bid)
                if body:
                    batches[bid] = _batch_dec.decode(body)
            if bid in batches:
                refs = [
                    {
                        "batch_id": bid,
                        "line_no": bl.line_no,
                        "account": bl.account,
                        "debit": str(bl.debit),
                        "credit": str(bl.credit),
                        "currency": bl.currency,
                    }
                    for bl in batches[bid].lines
                    if e.entry_key in bl.source_entries
                ]
        out_entries.append(
            {
                "entry_key": e.entry_key,
                "causation_id": e.causation_id,
                "period": e.period,
                "posted_on": e.posted_on.isoformat(),
                "reverses": e.reverses,
                "lines": [
                    {
                        "account": ln.account,
                        "debit": str(ln.debit),
                        "credit": str(ln.credit),
                        "currency": ln.currency,
                        "company": ln.dims.company,
                        "cost_center": ln.dims.cost_center,
                        "service_line": ln.dims.service_line,
                        "account_token": ln.dims.account_token,
                    }
                    for ln in e.lines
                ],
                "batch_id": bid,
                "batch_lines": refs,
            }
        )
    # its own work items, and the one item of each missing mapping an event waits behind
    # (its correlation id is the hold's ref: flows/mapping_holds.py)
    holding = sorted({h.ref for h in store.holds_of([e["event_id"] for e in events])})
    work = [
        {
            "id": w.id,
            "kind": w.kind,
            "queue": w.queue,
            "status": w.status,
            "event_id": w.event_id,
            "detail": w.detail,
        }
        for c in (corr, *holding)
        for w in store.work_items_for(c)
    ]
    # issue 18: what went out because of it, each delivery with its destination's answer
    found = (
        store.deliveries(
            DeliveryQuery(event_ids=tuple(e["event_id"] for e in events), limit=10_000)
        )
        if events
        else []
    )
    deliveries: list[dict[str, Any]] = [
        {
            "id": d.id,
            "destination": d.destination,
            "route": d.route,
            "event_type": d.event_type,
            "event_id": d.event_id,
            "status": d.status,
            "attempts": d.attempts,
            "answer": d.answer_code,
            "detail": d.answer_detail,
            "sent_at": instant(d.sent_at) if d.sent_at else None,
            "last_error": d.last_error,
        }
        for d in found
    ]
    work += [
        {
            "id": w.id,
            "kind": w.kind,
            "queue": w.queue,
            "status": w.status,
            "event_id": w.event_id,
            "detail": w.detail,
        }
        for d in deliveries
        if d["status"] == "dead" or d["attempts"] > 1
        for w in store.work_items_for(f"delivery:{d['id']}")
    ]
    out: dict[str, Any] = {
        "message": {
            "id": msg.id,
            "correlation_id": corr,
            "channel": msg.channel,
            "control_id": msg.control_id,
            "type": msg.message_type,
            "status": msg.status,
            "ack": msg.ack_code,
            "error": msg.error,
            "received_at": instant(msg.received_at),
            "peer": msg.peer,
            "bytes": len(msg.raw),
            # retention blanked the body then (flows/retention.py); None: kept
            "purged_at": instant(msg.purged_at) if msg.purged_at else None,
        },
        "events": events,
        "journal_entries": out_entries,
        "work_items": work,
        "deliveries": deliveries,
    }
    if include_raw:
        out["raw"] = msg.raw.decode("utf-8", "replace")
    return out
