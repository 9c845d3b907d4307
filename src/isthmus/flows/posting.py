"""The two ends every posting flow shares: a work item holding the event, and the posting.

The remittance, settlement and FT1 flows (`flows.remittance`, `flows.settlement`,
`flows.transactions`) each ended a posting the same way, in three copies: insert the entry
(idempotent on its entry key), close the event's own work items (it went through after a
fix), and, when the event was released from behind a missing mapping
(`flows.mapping_holds`), record what it posted there (`Tx.held_posted`), so the mapping's
work item shows it. A problem that is the event's own (a closed period, an amount the ledger
refuses, a denial) is a work item of its own with the event inside it, to be resubmitted;
a missing mapping is not: it goes behind the one item of that mapping
(`mapping_holds.hold`).
"""

from __future__ import annotations

from isthmus.ledger.journal import JournalEntry
from isthmus.model.envelope import Envelope, encode_envelope
from isthmus.store.ports import Tx

HELD = "held"


def hold(tx: Tx, env: Envelope, *, kind: str, queue: str, detail: str, now: float) -> str:
    """A work item of the event's own, holding it for a resubmit; outcome "held"."""
    tx.add_work_item(
        kind=kind,
        queue=queue,
        key=env.key,
        event_id=env.event_id,
        correlation_id=env.correlation_id,
        detail=detail,
        envelope=encode_envelope(env),
        now=now,
    )
    return HELD


def post(tx: Tx, env: Envelope, entry: JournalEntry | None, now: float) -> str:
    """Write the entry of `env` (None: nothing to post) and close what held the event;
    "posted", "duplicate" (the entry key was posted already) or "applied"."""
    if entry is None:
        tx.close_work_items(env.event_id, "nothing to post", now)
        return "applied"
    posted = tx.insert_entry(entry)
    tx.close_work_items(env.event_id, "posted after the fix", now)
    tx.held_posted(env.event_id, entry.entry_key)
    return "posted" if posted else "duplicate"
