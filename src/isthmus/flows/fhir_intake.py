"""FHIR R4 resources and Bundles into the inbox: the one path of `/fhir` and `isthmus ingest`.

Every accepted resource is stored on channel ``fhir``: control id ``<type>/<id>``, digest
the SHA-256 of the stored JSON, so an identical resend is a duplicate (no second effect)
and the same id with other content is a conflict (the caller decides: 409 for a create, an
update for a PUT or a transaction entry, kept under ``<type>/<id>/_history/<digest16>``;
only Patient, Encounter and Account updates carry events). A resource that fails the
finance checks is kept as rejected (``<type>/<id>#<digest16>``).

Each posting event carries the business key of its resource version
(``fhir|<type>/<id>|<meta.versionId or content digest>``, `formats.fhir.identity`), so the
worker's gate keeps it once whichever path brought it; registration events (Patient,
Encounter, Account) are upserts and carry none. A reference to a Patient that is neither in
the Bundle nor stored gives the `pending` patient: the worker holds the posting until the
Patient arrives (`flows.references`), never posting it to an account token of its own.
A ChargeItem's ``account`` (``Account/<id>``) resolves the same way to that Account's
business number (`formats.fhir.events.account_number`, what its BillingAccountOpened
registers): from the Bundle, else its current stored version, else `pending_account`, held
by the worker until the Account arrives.

Transactions follow FHIR R4 3.1.0.11 (`formats.fhir.bundle`): ids come from the
resources' own ids (else a content hash: `flows.fhir_ids`), ``urn:uuid`` references are
rewritten to ``Type/id`` in the stored JSON, and all entries are stored in one ``accept``
(all or nothing). References to Patients and Claims resolve against the Bundle first, then
the store (`flows.fhir_resources`, which the FHIR API reads and searches through too), so
an ExplanationOfBenefit finds its patient and its claim's patient control number
(`formats.fhir.remittance`). Events are published when a bus is given, else left for
`relay_unpublished`. A file (`take_file`) is taken whole, as one transaction
(`flows.fhir_files`).

Where charges come from (`[channels.fhir] charges_from`, issue 15): ChargeItems by default,
each Claim registering only; "claim" for a site whose feed has Claims but no ChargeItems
(Synthea): each Claim item is a charge too (`formats.fhir.claim_charges`), keyed
``fhir|Claim/<id>|item/<sequence>`` and partitioned with its claim (``remit|<number>``), so
the claim's EOB comes after its charges, and a ChargeItem carries no charge. One source
charges per channel, so a ChargeItem and a Claim item for the same service never both post.

SupplyDelivery and SupplyRequest (issue 8) are read as plain JSON by
`formats.supply.fhir.supply_events`, not by the finance decoders: a problem refuses them
(422, kept as rejected, the element named as ``SupplyDelivery.<path>``); a completed
delivery carries a `SupplyConsumed`, an active request a `SupplyRequested`. Their updates
carry events too (an in-progress delivery completed later), and the supply flow applies
each usage id and request id once, so a resend or a replay takes no more stock.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Final

from isthmus.bus.ports import Bus
from isthmus.flows.clock import Clock
from isthmus.flows.fhir_files import as_transaction
from isthmus.flows.fhir_ids import digest, entry_id, with_id
from isthmus.flows.fhir_resources import FhirResources, Local
from isthmus.flows.intake import correlation_of, encoded, envelopes
from isthmus.flows.relay import publications
from isthmus.formats.fhir import (
    FINANCE_TYPES,
    Account,
    Bundle,
    ChargeItem,
    Claim,
    FhirError,
    FinanceResource,
    Patient,
    check_resource,
    decode_bundle,
    decode_resource,
    plan_transaction,
    resolve_raw,
)
from isthmus.formats.fhir.claim_charges import CHARGE_ITEM, CLAIM, claim_charges, item_key
from isthmus.formats.fhir.events import CHANNEL, account_number, events_of, patient_ref
from isthmus.formats.fhir.identity import business_key, version_of
from isthmus.formats.fhir.strict import strict_errors
from isthmus.formats.supply.fhir import SUPPLY_TYPES, supply_errors, supply_of
from isthmus.model.envelope import KeyedEvent
from isthmus.model.events import BillingAccountOpened, EncounterStarted, PatientRegistered
from isthmus.observe import tracing
from isthmus.store.ports import Accepted, Inbound, Store

_UPDATE_EVENTS: Final = frozenset({"Patient", "Encounter", "Account", *SUPPLY_TYPES})
# The check errors of these types refuse them. The payer-side ones (EOB, ClaimResponse,
# PaymentReconciliation) post through `formats.fhir.remittance`, which rounds amounts to
# the minor unit, so their check errors (e.g. Synthea's float artifacts,
# 28.104000000000003 USD) are kept as warnings on the stored row; so are Coverage's,
# Invoice's and PaymentNotice's, which post nothing.
_POSTING: Final = frozenset({"Patient", "Encounter", "Account", "ChargeItem", "Claim"})
# Registration state (upserts, idempotent): no business key, so a later version that only
# resolves a reference is never taken for other content of the same fact.
_STATE_EVENTS: Final = (PatientRegistered, EncounterStarted, BillingAccountOpened)


def blocking(rtype: str, errors: Sequence[FhirError]) -> list[FhirError]:
    """The errors that refuse a resource: its error-level ones if its type posts, else none."""
    return [e for e in errors if e.is_error] if rtype in _POSTING else []


@dataclass
class Item:
    """One resource on its way into the inbox."""

    rtype: str
    rid: str
    raw: bytes
    resource: FinanceResource | None
    update: bool = False
    cid: str = ""
    events: list[tuple[str, Any]] = field(default_factory=list)


@dataclass(frozen=True)
class TransactionResult:
    """A transaction's answer: 200 and one response per entry, or the error status."""

    status: int
    errors: tuple[FhirError, ...] = ()
    entries: tuple[dict[str, Any], ...] = ()
    stored: tuple[Accepted, ...] = ()


class FhirIntake(FhirResources):
    """Takes FHIR R4 resources and Bundles into the inbox on channel ``fhir`` (module
    docstring); reads back what it stored (`FhirResources`) to resolve references."""

    def __init__(
        self,
        store: Store,
        bus: Bus | None,
        tenant: str,
        *,
        clock: Clock,
        charges_from: str = CHARGE_ITEM,
    ) -> None:
        super().__init__(store)
        self.bus, self.tenant = bus, tenant
        self.clock = clock  # the receipt time each resource is stored with
        self.charges_from = charges_from  # [channels.fhir] charges_from (_charge_source)

    # --- storing ------------------------------------------------------------------------

    def _inbound(self, item: Item, now: float, peer: str, local: Local) -> Inbound:
        dig = digest(item.raw)
        base = f"{item.rtype}/{item.rid}"
        item.cid = f"{base}/_history/{dig[:16]}" if item.update else base
        evs: list[tuple[str, Any]] = []
        at = datetime.fromtimestamp(now, UTC)
        keys: dict[int, str] = {}  # event index -> its business key, when not the version's
        if not item.update or item.rtype in _UPDATE_EVENTS:
            if item.resource is not None:
                evs = events_of(
                    item.resource,
                    lambda ref: self.patient_of(ref, local),
                    lambda ref: self.claim_of(ref, local),
                    lambda ref: self.account_of(ref, local),
                )
                evs = self._charge_source(item.resource, item.rid, evs, keys, local)
            elif item.rtype in SUPPLY_TYPES:
                evs = list(supply_of(item.raw, at.date()).events)
        item.events = evs
        corr = correlation_of(CHANNEL, item.cid)
        version = version_of(item.raw) if evs else ""
        keyed = [
            KeyedEvent(
                f"{corr}/{i}",
                key,
                ev,
                ""
                if isinstance(ev, _STATE_EVENTS)
                else keys.get(i) or business_key(item.rtype, item.rid, version, i),
            )
            for i, (key, ev) in enumerate(evs)
        ]
        envs = envelopes(
            keyed,
            channel=CHANNEL,
            control_id=item.cid,
            occurred=at,
            recorded=at,
            tenant=self.tenant,
        )
        return Inbound(
            CHANNEL,
            item.cid,
            item.raw,
            now,
            peer,
            item.rtype,
            "accepted",
            "AA",
            "",
            encoded(envs),
            dig,
        )

    def _charge_source(
        self,
        resource: FinanceResource,
        rid: str,
        evs: list[tuple[str, Any]],
        keys: dict[int, str],
        local: Local,
    ) -> list[tuple[str, Any]]:
        """Where this channel's charges come from (`[channels.fhir] charges_from`): the
        ChargeItems (the default), or the Claim items (`formats.fhir.claim_charges`).
        Only one source charges: under "claim" a ChargeItem is kept with no charge, under
        "chargeitem" a Claim only registers. A Claim item's charge is keyed by the claim and
        the item (`claim_charges.item_key`, into `keys`) and partitioned with the claim
        (``remit|<patient control number>``), so its EOB comes after it."""
        if self.charges_from != CLAIM:
            return evs
        if isinstance(resource, ChargeItem):
            return []
        if not isinstance(resource, Claim):
            return evs
        part = evs[0][0] if evs else f"remit|{rid}"
        out = list(evs)
        for seq, charge in claim_charges(resource, lambda ref: self.patient_of(ref, local)):
            keys[len(out)] = item_key(rid, seq)
            out.append((part, charge))
        return out

    def reject(
        self, rtype: str, rid: str, raw: bytes, errors: Sequence[FhirError], peer: str
    ) -> Accepted:
        dig = digest(raw)
        text = "; ".join(str(e) for e in errors)[:2000]
        [done] = self.store.accept(
            [
                Inbound(
                    CHANNEL,
                    f"{rtype}/{rid}#{dig[:16]}",
                    raw,
                    self.clock.now(),
                    peer,
                    rtype,
                    "rejected",
                    "AE",
                    text,
                    b"",
                    dig,
                )
            ]
        )
        return done

    def put(self, items: list[Item], peer: str, local: Local) -> list[Accepted]:
        """Store all items in one commit, then relay their events; the Accepted list."""
        now = self.clock.now()
        inbound = [self._inbound(it, now, peer, local) for it in items]
        spans = tracing.ingest_started(inbound)
        done = self.store.accept(inbound)
        tracing.ingest_done(spans, done)
        fresh = [
            (a.message_id, i.events)
            for a, i in zip(done, inbound, strict=True)
            if not a.duplicate and not a.conflict and i.events
        ]
        if fresh and self.bus is not None:
            self.bus.publish([p for _, ev in fresh for p in publications(ev)])
            self.store.mark_published([mid for mid, _ in fresh])
        return list(done)

    def prepare(
        self, rtype: str, rid: str, raw: bytes, *, update: bool, peer: str
    ) -> tuple[Item | None, int, list[FhirError]]:
        """Decode and check one resource: (item, 0, []) or (None, status, errors)."""
        if rtype in FINANCE_TYPES:
            try:
                _, resource = decode_resource(raw)
            except FhirError as err:
                return None, 400, [err]
            errors = blocking(rtype, check_resource(resource))
            if errors:
                self.reject(rtype, rid, raw, errors, peer)
                return None, 422, errors
            return Item(rtype, rid, raw, resource, update), 0, []
        if rtype in SUPPLY_TYPES:
            today = datetime.fromtimestamp(self.clock.now(), UTC).date()
            errors = supply_errors(rtype, supply_of(raw, today))
            if errors:
                self.reject(rtype, rid, raw, errors, peer)
                return None, 422, errors
        return Item(rtype, rid, raw, None, update), 0, []

    # --- transactions -------------------------------------------------------------------

    def transaction(self, bundle: Bundle, peer: str) -> TransactionResult:  # noqa: C901 - one check per entry rule of a transaction Bundle
        """A transaction Bundle, all or nothing (FHIR R4 3.1.0.11)."""
        if bundle.errors:
            return TransactionResult(400, tuple(bundle.errors))
        plan = plan_transaction(bundle, new_id=entry_id)
        if plan.errors:
            return TransactionResult(400, tuple(plan.errors))
        refs: dict[str, str | None] = dict(plan.references)
        items: list[tuple[int, Item]] = []
        responses: dict[int, dict[str, Any]] = {}
        errors: list[FhirError] = []
        local = Local()
        for step in plan.steps:
            e = step.entry
            if step.method in ("GET", "HEAD"):
                responses[e.index] = self.get_entry(step.target)
                continue
            if step.method not in ("POST", "PUT") or step.target is None:
                errors.append(
                    FhirError(
                        "not-supported",
                        f"{step.method} is not supported in a transaction",
                        [f"Bundle.entry[{e.index}].request"],
                    )
                )
                continue
            if step.noop:
                responses[e.index] = {"response": {"status": "200 OK", "location": step.target}}
                continue
            rtype, _, rid = step.target.partition("/")
            assert e.raw is not None
            raw = with_id(resolve_raw(e.raw, refs), rid)
            try:
                resource = decode_resource(raw)[1] if rtype in FINANCE_TYPES else None
            except FhirError as err:
                errors.append(err.within(e.expression))
                continue
            if rtype in SUPPLY_TYPES:
                errors += [
                    x.within(e.expression)
                    for x in supply_errors(
                        rtype, supply_of(raw, datetime.fromtimestamp(self.clock.now(), UTC).date())
                    )
                ]
            if resource is not None:
                errors += [
                    x.within(e.expression) for x in blocking(rtype, check_resource(resource))
                ]
                if isinstance(resource, Patient) and (ref := patient_ref(resource)):
                    local.patients[step.target] = ref
                elif isinstance(resource, Claim):
                    local.claims[step.target] = resource
                elif isinstance(resource, Account):
                    local.accounts[step.target] = account_number(resource)
            items.append((e.index, Item(rtype, rid, raw, resource)))
        if errors:
            return TransactionResult(422, tuple(errors))
        done = self.put([i for _, i in items], peer, local)
        for (index, item), acc in zip(items, done, strict=True):
            if acc.conflict:  # a newer version of a known resource: an update
                item.update = True
                self.put([item], peer, local)
                status = "200 OK"
            else:
                status = "200 OK" if acc.duplicate else "201 Created"
            responses[index] = {
                "response": {"status": status, "location": f"{item.rtype}/{item.rid}"}
            }
        return TransactionResult(
            200,
            entries=tuple(
                responses.get(e.index, {"response": {"status": "200 OK"}}) for e in bundle.entry
            ),
            stored=tuple(done),
        )

    def take_file(self, raw: bytes, peer: str) -> TransactionResult:
        """A FHIR JSON file (`isthmus ingest`, the drop folder): a Bundle of type
        transaction, batch or collection, or one finance resource, taken as one transaction
        (a file is taken whole or not at all). A file refused is kept as a rejected inbox
        row (``Bundle/<digest16>#<digest16>``) with its OperationOutcome issues; so is a
        file that is not strict FHIR JSON (`formats.fhir.strict`: dates, repeated members)."""
        strict = strict_errors(raw)
        try:
            if strict:  # 422 for dates that are not dates, 400 for JSON that is not strict
                bad = any(e.code != "value" for e in strict)
                result = TransactionResult(400 if bad else 422, tuple(strict))
            else:
                result = self.transaction(decode_bundle(as_transaction(raw)), peer)
        except FhirError as err:
            result = TransactionResult(400, (err,))
        if result.status != 200:
            dig = digest(raw)
            self.reject("Bundle", dig[:16], raw, result.errors, peer)
        return result


__all__ = [
    "FhirIntake",
    "Item",
    "TransactionResult",
    "blocking",
]
