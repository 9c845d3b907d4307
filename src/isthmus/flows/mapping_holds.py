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

The remittance, settlement and FT1 flows hold payments the same way: behind the one item
of their facility (or, for a PLB, their payee). A FHIR payment whose Claim's charges
(`[channels.fhir] charges_from = "claim"`) wait behind a mapping waits behind that same item
(`claim_hold`), so it posts after them instead of becoming unapplied cash.

Issue 17: a flow decides on what it read here (`company`, `claim_hold`, `claim_charged`)
without the store and holds by returning a `MappingHold` among its decision's writes;
`hold` and the `hold_*` helpers write one (the flows not converted yet call them).

Nothing here names a patient: the ref carries a code of the chart, never a patient field.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from isthmus.bus.ports import Bus, Publish
from isthmus.config import Mappings
from isthmus.flows.relay import TOPIC
from isthmus.formats.hl7v2 import code_display
from isthmus.model.envelope import Envelope, encode_envelope
from isthmus.store.ports import HeldEvent, Store, Tx

PREFIX = "mapping:"
QUEUE = "finance-master-data"  # who owns facility and payee rows (the ERP's master data)
# the mapping tables whose rows an operator may add (flows/workitems.py FIELDS)
TABLES = ("facility_company", "department_cost_center", "charge_codes", "payee_company")
KINDS = {
    "facility_company": "unmapped_facility",
    "department_cost_center": "unmapped_department",
    "charge_codes": "unmapped_charge_code",
    "payee_company": "unmapped_payee",
}  # the work item kind of each table's rows
QUEUES = {"unmapped_charge_code": "revenue-integrity"}  # else QUEUE (flows/charges.py)
DETAILS = {
    "facility_company": "facility {code!r} has no ERP company",  # as flows/charges.py
    "department_cost_center": "department {code!r} has no cost center",
    "charge_codes": "charge code {code!r} has no revenue account",
    "payee_company": "payee {code!r} has no ERP company; resolve with --set company=...",
}
# flow state, not a mapping: FHIR claim key -> the ref its charges wait behind
CLAIM_HOLDS = "claim_charges_held"
CLAIM_CHARGED = "claim-charged:"  # applied record: a charge of this FHIR claim key posted


def ref_of(table: str, code: str) -> str:
    """The event id of the one work item of a missing mapping row."""
    return f"{PREFIX}{table}/{code}"


def parse_ref(ref: str) -> tuple[str, str] | None:
    """(table, code) of a mapping work item's event id; None for any other item."""
    if not ref.startswith(PREFIX):
        return None
    table, sep, code = ref[len(PREFIX) :].partition("/")
    return (table, code) if sep and table in TABLES else None


def hold(
    tx: Tx,
    env: Envelope,
    *,
    kind: str,
    queue: str,
    table: str,
    code: str,
    detail: str,
    amount: Decimal,
    currency: str,
    now: float,
) -> str:
    """Hold `env` behind the work item of the missing (table, code), opening it (or opening
    it again, when it was resubmitted and its events came back) as needed; returns its ref.
    A code that does not look like one (a name typed into FT1-7 or FT1-13) is shown by its
    digest in the key, the ref and the detail (formats/hl7v2/code_display.py)."""
    code, detail = code_display.masked(table, code, detail)
    ref = ref_of(table, code)
    tx.hold_event(
        HeldEvent(
            ref=ref,
            event_id=env.event_id,
            key=env.key,
            envelope=encode_envelope(env),
            amount=amount,
            currency=currency,
            held_at=now,
        )
    )
    tx.add_work_item(
        kind=kind,
        queue=queue,
        key=code,
        event_id=ref,
        correlation_id=ref,
        detail=detail,
        envelope=b"",
        now=now,
    )
    return ref


def still_missing(tx: Tx, maps: Mappings, table: str, code: str) -> bool:
    """Whether the mapping row (table, code) is still missing: no override (a resolved
    item stores one) and no row of the chart."""
    if tx.mapping_override(table, code):
        return False
    if table == "facility_company":
        return code not in maps.facility_company
    if table == "department_cost_center":
        return code not in maps.department_cost_center
    return table != "charge_codes" or code not in maps.charge_codes


def note_claim_hold(tx: Tx, claim_key: str, ref: str) -> None:
    """Keep which mapping item a FHIR Claim's charges wait behind (`claim_key`: the
    claim's partition key, ``remit|<patient control number>``, its EOB's too)."""
    tx.set_mapping_override(CLAIM_HOLDS, claim_key, ref)


def note_claim_charged(tx: Tx, claim_key: str) -> None:
    """Keep that a charge of the FHIR Claim of `claim_key` posted: its payment applies."""
    tx.mark_applied(CLAIM_CHARGED + claim_key, b"")


def claim_charged(tx: Tx, claim_key: str) -> bool:
    """Whether a charge of this FHIR claim has posted."""
    return tx.applied(CLAIM_CHARGED + claim_key) is not None


def claim_hold(tx: Tx, maps: Mappings, claim_key: str) -> tuple[str, str] | None:
    """The missing mapping row (table, code) a FHIR Claim's charges wait behind, when they
    wait for one that is still missing and has a code to hold behind (not a digest); None
    else. A payment of that claim waits behind the same item (`MappingHold`), so resolving
    it releases the charges and then the payment, in that order (one partition)."""
    found = parse_ref(tx.mapping_override(CLAIM_HOLDS, claim_key) or "")
    if (
        found is None
        or not still_missing(tx, maps, *found)
        or not code_display.looks_like_code(*found)
    ):
        return None
    return found


def company(tx: Tx, maps: Mappings, facility: str) -> str | None:
    """The ERP company of a facility: an operator's override (a resolved item), else the
    chart's `[mappings.facility_company]`."""
    return tx.mapping_override("facility_company", facility) or maps.facility_company.get(facility)


@dataclass(frozen=True, slots=True)
class MappingHold:
    """Hold `env` behind the one item of the missing mapping row (table, code), with its
    amount: a `flows.decision` write (the decision is made without the store, this writes
    it: `hold`)."""

    env: Envelope
    table: str
    code: str
    amount: Decimal
    currency: str

    def write(self, tx: Tx, now: float) -> bool:
        kind = KINDS[self.table]
        hold(
            tx,
            self.env,
            kind=kind,
            queue=QUEUES.get(kind, QUEUE),
            table=self.table,
            code=self.code,
            detail=DETAILS[self.table].format(code=self.code),
            amount=self.amount,
            currency=self.currency,
            now=now,
        )
        return True


def hold_facility(
    tx: Tx, env: Envelope, facility: str, *, amount: Decimal, currency: str, now: float
) -> str:
    """Hold a posting whose facility has no ERP company behind that facility's one item;
    outcome "held"."""
    MappingHold(env, "facility_company", facility, amount, currency).write(tx, now)
    return "held"


def hold_payee(
    tx: Tx, env: Envelope, payee: str, *, amount: Decimal, currency: str, now: float
) -> str:
    """Hold a payee-level posting (835 PLB, a FHIR payment adjustment) whose payee (NPI,
    TIN or provider id) has no ERP company behind that payee's one item."""
    MappingHold(env, "payee_company", payee, amount, currency).write(tx, now)
    return "held"


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
    return {
        "held": sum(not h.released_at for h in rows),
        "released": sum(bool(h.released_at) and not h.entry_key for h in rows),
        "posted": len(posted),
        "entries": [h.entry_key for h in posted][:100],
    }
