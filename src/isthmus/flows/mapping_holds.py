"""One work item per missing mapping, holding every event that waits for it.

A feed that names a facility, department, charge code or payee the chart does not map
sends it many times: one work item per message buried the one fix under hundreds of copies
(issue 15). Here the work item belongs to the missing key, `mapping:<table>/<code>` (its
event id, so the store's (kind, event id) uniqueness keeps it single), and each event it
holds is kept beside it (`Tx.hold_event`) with its amount, so the item shows how many
events and how much money wait, and since when. Resolving the item stores the mapping and
puts every held event back on the bus at once (`release`): the worker applies them as it
applies any event, through the business-key gate (flows/identity.py) and the flows, and
records what each one posted (`Tx.held_posted`).

Nothing here names a patient: the ref carries a code of the chart, never a patient field.
"""

from __future__ import annotations

from decimal import Decimal

from isthmus.bus.ports import Bus, Publish
from isthmus.flows.inbox import TOPIC
from isthmus.model.envelope import Envelope, encode_envelope
from isthmus.store.ports import HeldEvent, Store, Tx

PREFIX = "mapping:"
# the mapping tables whose rows an operator may add (flows/workitems.py FIELDS)
TABLES = ("facility_company", "department_cost_center", "charge_codes", "payee_company")


def ref_of(table: str, code: str) -> str:
    """The event id of the one work item of a missing mapping row."""
    return f"{PREFIX}{table}/{code}"


def parse_ref(ref: str) -> tuple[str, str] | None:
    """(table, code) of a mapping work item's event id; None for any other item."""
    if not ref.startswith(PREFIX):
        return None
    table, sep, code = ref[len(PREFIX):].partition("/")
    return (table, code) if sep and table in TABLES else None


def hold(tx: Tx, env: Envelope, *, kind: str, queue: str, table: str, code: str,
         detail: str, amount: Decimal, currency: str, now: float) -> str:
    """Hold `env` behind the work item of the missing (table, code), opening it (or opening
    it again, when it was resubmitted and its events came back) as needed; returns its ref."""
    ref = ref_of(table, code)
    tx.hold_event(HeldEvent(ref=ref, event_id=env.event_id, key=env.key,
                            envelope=encode_envelope(env), amount=amount,
                            currency=currency, held_at=now))
    tx.add_work_item(kind=kind, queue=queue, key=code, event_id=ref, correlation_id=ref,
                     detail=detail, envelope=b"", now=now)
    return ref


def release(store: Store, bus: Bus, ref: str, now: float) -> tuple[int, dict[str, Decimal]]:
    """Put every event still held behind `ref` back on the bus; (count, amount per
    currency). Published before it is marked released: a crash in between re-sends them
    on the next release, and the business-key gate keeps each fact once."""
    held = [h for h in store.held_events(ref, limit=1 << 30) if not h.released_at]
    if held:
        bus.replay([Publish(h.event_id, TOPIC, h.key, h.envelope) for h in held])
        store.release_held(ref, [h.event_id for h in held], now)
    sums: dict[str, Decimal] = {}
    for h in held:
        sums[h.currency] = sums.get(h.currency, Decimal(0)) + h.amount
    return len(held), sums


def outcome(store: Store, ref: str) -> dict[str, object]:
    """What the item's events did: still held, released (applied elsewhere or waiting for
    the worker) and posted, with the journal entries they posted."""
    rows = store.held_events(ref, limit=1 << 30)
    posted = [h for h in rows if h.entry_key]
    return {"held": sum(not h.released_at for h in rows),
            "released": sum(bool(h.released_at) and not h.entry_key for h in rows),
            "posted": len(posted),
            "entries": [h.entry_key for h in posted][:100]}
