"""FHIR R4 SupplyDelivery and SupplyRequest: the few elements supply finance needs.

* SupplyDelivery (R4 4.0.1, `supplydelivery.html`), status `completed`: an item handed
  over for use. `suppliedItem.itemCodeableConcept.coding[0].code` is the item number,
  `suppliedItem.quantity.value` the units, `occurrenceDateTime` (or `occurrencePeriod.end`)
  the day, `destination` the stock location (Location reference id or identifier value).
  Lot and serial are read from extensions named by `LOT_URL` / `SERIAL_URL` where a sender
  gives them; `partOf` (a Procedure) is kept as the charge link. `patient` is never read.
  It becomes a `SupplyConsumed` with usage id `SupplyDelivery/<id>`.
* SupplyRequest (`supplyrequest.html`): a request for stock, `itemCodeableConcept`,
  `quantity.value`, `deliverTo` and `authoredOn`; decoded into a `SupplyRequestLine` (a
  demand that procurement sees, no posting).

What the hub does with them (`supply_events`, used by `flows.fhir_intake` for `/fhir`):

* The status decides whether there is anything to apply. A SupplyDelivery `completed`
  is a consumption; `entered-in-error` voids it (`SupplyUsageVoided`: the supply flow puts
  the stock back and reverses its cost); `in-progress` and `abandoned` are kept with no
  event (an update to `completed` later carries it). A SupplyRequest `active` becomes a
  `SupplyRequested` (request id `SupplyRequest/<id>`, `authoredOn` else the day received,
  `deliverTo` required: the location the requisition is for); `draft`, `suspended`,
  `cancelled`, `completed`, `entered-in-error` and `unknown` are kept with no event. A
  status outside the R4 value sets (`supplydelivery-status`, `supplyrequest-status`) is a
  problem.
* Department: R4 has no cost-center element on either resource. The department is the
  `valueString` (or `valueReference` / `valueCodeableConcept.coding[0].code`) of the
  extension `DEPARTMENT_URL`, else the stock location's id (`destination`, `deliverTo`),
  as for an FT1 line, whose FT1-13 department is its location. The supply flow maps it to
  a cost center (`[mappings.department_cost_center]`); one it cannot map holds the usage.
* Partition key `supply/<item>|<location>`, the same as the usage CSV's, so all usage of
  one item at one location stays in order whatever path it came by.

Pure: a parsed JSON object (or the stored bytes, `supply_of`) in, events or a list of
`(element path, problem)` out; `supply_errors` turns the problems into OperationOutcome
issues.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import Decimal, InvalidOperation
from typing import Any, Final

import msgspec

from isthmus.formats.fhir import FhirError
from isthmus.model.events import Event, SupplyConsumed, SupplyRequested, SupplyUsageVoided

SUPPLY_TYPES: Final = frozenset({"SupplyDelivery", "SupplyRequest"})
DEPARTMENT_URL: Final = "http://isthmus.example/fhir/StructureDefinition/department"
LOT_URL: Final = "http://isthmus.example/fhir/StructureDefinition/lot-number"
SERIAL_URL: Final = "http://isthmus.example/fhir/StructureDefinition/serial-number"

Problem = tuple[str, str]
# R4 value sets http://hl7.org/fhir/ValueSet/supplydelivery-status and supplyrequest-status
DELIVERY_STATUSES: Final = frozenset({"in-progress", "completed", "abandoned", "entered-in-error"})
REQUEST_STATUSES: Final = frozenset(
    {"draft", "active", "suspended", "cancelled", "completed", "entered-in-error", "unknown"}
)


@dataclass(frozen=True)
class SupplyRequestLine:
    """What a SupplyRequest asks for: item, quantity, the location to deliver to (deliverTo),
    its status and authoredOn."""

    request_id: str
    item: str
    quantity: Decimal
    location: str
    status: str
    authored_on: date | None


def _obj(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _code(concept: Any) -> str:
    codings = _obj(concept).get("coding")
    if isinstance(codings, list) and codings:
        return str(_obj(codings[0]).get("code") or "").strip()
    return ""


def _ref_id(ref: Any) -> str:
    ref = _obj(ref)
    text = str(ref.get("reference") or "")
    if "/" in text:
        return text.rsplit("/", 1)[-1]
    return str(_obj(ref.get("identifier")).get("value") or text).strip()


def _quantity(value: Any, path: str, problems: list[Problem]) -> Decimal:
    raw = _obj(value).get("value")
    try:
        qty = (
            Decimal(str(raw))
            if isinstance(raw, int | float | str) and not isinstance(raw, bool)
            else Decimal("NaN")
        )
    except InvalidOperation:
        qty = Decimal("NaN")
    if not qty.is_finite() or qty <= 0:
        problems.append((path, f"must be a number > 0, not {raw!r}"))
        return Decimal(0)
    return qty


def _day(text: Any, path: str, problems: list[Problem]) -> date | None:
    try:
        return date.fromisoformat(str(text)[:10])
    except ValueError:
        problems.append((path, f"is not a date: {text!r}"))
        return None


def _extension(resource: dict[str, Any], url: str) -> str:
    for ext in resource.get("extension") or []:
        if _obj(ext).get("url") == url:
            return str(_obj(ext).get("valueString") or "")
    return ""


def supply_delivery(resource: dict[str, Any]) -> SupplyConsumed | list[Problem]:
    """A completed SupplyDelivery as a `SupplyConsumed`, or the problems that stop it."""
    problems: list[Problem] = []
    if resource.get("resourceType") != "SupplyDelivery":
        return [("resourceType", "must be SupplyDelivery")]
    rid = str(resource.get("id") or "").strip()
    if not rid:
        problems.append(("id", "is required"))
    if resource.get("status") != "completed":
        problems.append(("status", f"must be completed, not {resource.get('status')!r}"))
    supplied = _obj(resource.get("suppliedItem"))
    item = _code(supplied.get("itemCodeableConcept"))
    if not item:
        problems.append(("suppliedItem.itemCodeableConcept.coding[0].code", "is required"))
    qty = _quantity(supplied.get("quantity"), "suppliedItem.quantity.value", problems)
    when_text = resource.get("occurrenceDateTime") or _obj(resource.get("occurrencePeriod")).get(
        "end"
    )
    when = _day(when_text, "occurrenceDateTime", problems)
    location = _ref_id(resource.get("destination"))
    if not location:
        problems.append(("destination", "is required (the stock location)"))
    if problems or when is None:
        return problems
    part_of = resource.get("partOf")
    charge = _ref_id(part_of[0]) if isinstance(part_of, list) and part_of else ""
    return SupplyConsumed(
        usage_id=f"SupplyDelivery/{rid}",
        item=item,
        location=location,
        quantity=qty,
        used_on=when,
        lot=_extension(resource, LOT_URL),
        serial=_extension(resource, SERIAL_URL),
        charge_id=charge,
    )


def supply_request(resource: dict[str, Any]) -> SupplyRequestLine | list[Problem]:
    """A SupplyRequest as a `SupplyRequestLine`, or the problems that stop it."""
    problems: list[Problem] = []
    if resource.get("resourceType") != "SupplyRequest":
        return [("resourceType", "must be SupplyRequest")]
    rid = str(resource.get("id") or "").strip()
    if not rid:
        problems.append(("id", "is required"))
    item = _code(resource.get("itemCodeableConcept"))
    if not item:
        problems.append(("itemCodeableConcept.coding[0].code", "is required"))
    qty = _quantity(resource.get("quantity"), "quantity.value", problems)
    authored = resource.get("authoredOn")
    when = _day(authored, "authoredOn", problems) if authored else None
    if problems:
        return problems
    return SupplyRequestLine(
        request_id=rid,
        item=item,
        quantity=qty,
        location=_ref_id(resource.get("deliverTo")),
        status=str(resource.get("status") or ""),
        authored_on=when,
    )


@dataclass(frozen=True)
class SupplyEvents:
    """What one SupplyDelivery or SupplyRequest means to the hub: (partition key, event)
    pairs (none for a status with nothing to apply), or the problems that refuse it."""

    events: tuple[tuple[str, Event], ...] = ()
    problems: tuple[Problem, ...] = ()


def _department(resource: dict[str, Any], location: str) -> str:
    for each in resource.get("extension") or []:
        ext = _obj(each)
        if ext.get("url") != DEPARTMENT_URL:
            continue
        text = (
            str(ext.get("valueString") or "").strip()
            or _ref_id(ext.get("valueReference"))
            or _code(ext.get("valueCodeableConcept"))
        )
        if text:
            return text
    return location


def _status(resource: dict[str, Any], allowed: frozenset[str]) -> Problem | None:
    status = resource.get("status")
    if isinstance(status, str) and status in allowed:
        return None
    if status is None:
        return ("status", "is required")
    return ("status", f"must be one of {', '.join(sorted(allowed))}, not {status!r}")


_json_dec = msgspec.json.Decoder(float_hook=Decimal)


def _key(item: str, location: str) -> str:
    return f"supply/{item}|{location}"


def supply_events(resource: dict[str, Any], received: date) -> SupplyEvents:
    """The events of one SupplyDelivery or SupplyRequest received on ``received``."""
    rtype = resource.get("resourceType")
    if rtype == "SupplyDelivery":
        bad = _status(resource, DELIVERY_STATUSES)
        if bad is not None:
            return SupplyEvents(problems=(bad,))
        if resource.get("status") == "entered-in-error":
            return _voided(resource, received)
        if resource.get("status") != "completed":
            return SupplyEvents()
        used = supply_delivery(resource)
        if isinstance(used, list):
            return SupplyEvents(problems=tuple(used))
        used = msgspec.structs.replace(used, department=_department(resource, used.location))
        return SupplyEvents(events=((_key(used.item, used.location), used),))
    if rtype == "SupplyRequest":
        return _requested(resource, received)
    return SupplyEvents(problems=(("resourceType", "must be SupplyDelivery or SupplyRequest"),))


def _voided(resource: dict[str, Any], received: date) -> SupplyEvents:
    """A delivery recorded in error: its usage (if applied) is reversed. Keyed like the
    usage when the resource still names its item and location, so the two stay in order."""
    rid = str(resource.get("id") or "").strip()
    if not rid:
        return SupplyEvents(problems=(("id", "is required"),))
    item = _code(_obj(resource.get("suppliedItem")).get("itemCodeableConcept"))
    location = _ref_id(resource.get("destination"))
    key = _key(item, location) if item and location else f"supply/SupplyDelivery/{rid}"
    return SupplyEvents(
        events=((key, SupplyUsageVoided(usage_id=f"SupplyDelivery/{rid}", voided_on=received)),)
    )


def _requested(resource: dict[str, Any], received: date) -> SupplyEvents:
    bad = _status(resource, REQUEST_STATUSES)
    line = supply_request(resource)
    problems = ([bad] if bad is not None else []) + (line if isinstance(line, list) else [])
    if (
        isinstance(line, SupplyRequestLine)
        and bad is None
        and line.status == "active"
        and not line.location
    ):
        problems.append(
            ("deliverTo", "is required for an active request (the stock location to replenish)")
        )
    if problems or not isinstance(line, SupplyRequestLine):
        return SupplyEvents(problems=tuple(problems))
    if line.status != "active":
        return SupplyEvents()
    ev = SupplyRequested(
        request_id=f"SupplyRequest/{line.request_id}",
        item=line.item,
        location=line.location,
        quantity=line.quantity,
        requested_on=line.authored_on or received,
        department=_department(resource, line.location),
    )
    return SupplyEvents(events=((_key(ev.item, ev.location), ev),))


def supply_of(raw: bytes, received: date) -> SupplyEvents:
    """The supply events of a stored SupplyDelivery or SupplyRequest (JSON not an object:
    one problem at the root)."""
    try:
        doc = _json_dec.decode(raw)
    except msgspec.MsgspecError as exc:
        return SupplyEvents(problems=(("", f"is not JSON: {exc}"),))
    if not isinstance(doc, dict):
        return SupplyEvents(problems=(("", "must be a JSON object"),))
    return supply_events(doc, received)


def supply_errors(rtype: str, found: SupplyEvents) -> list[FhirError]:
    """The problems of a supply resource as OperationOutcome issues, each naming its element
    (FHIRPath ``<type>.<path>``)."""
    return [
        FhirError(
            "required" if text == "is required" else "invalid",
            f"{path or rtype} {text}",
            [f"{rtype}.{path}" if path else rtype],
        )
        for path, text in found.problems
    ]
