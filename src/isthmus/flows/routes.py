"""Routes (issue 18): which status events and source messages go to which destinations,
cut to each destination's allow-list, and written by a template, a function or a default
(the renderers: flows/renderers.py).

Pure: matching and rendering only (the worker hook that queues what this renders is
flows/outbound.py). Compiled once at load (`compile_routes`, from `load_settings`), so an
unknown destination, a template Jinja2 cannot parse, a function that does not import, or a
route that would send PHI to a destination that did not ask for it is a ConfigError with
its dotted key, never a surprise at the first event.

A route's `events` entry is one of: a status event (model/status.py: "PaymentPosted"), a
canonical event type ("Charge": its payload, flattened), or a source message type
("ADT^A01"; "ADT" matches every ADT event) to forward the message as it came. Canonical
events and source messages carry PHI, so they go only to a destination whose `allow` list
names what it may receive ("raw" for a forwarded message).

The allow-list cuts the fields before rendering: a template cannot print what it was not
given. Empty `allow`: the status event's non-PHI fields (model.status.PHI_FIELDS out).

The variables a template or function sees (`variables`): `type`, `key`, `event_id`,
`occurred_at` (ISO 8601), `hl7_ts` (YYYYMMDDHHMMSS, UTC) and `hl7_date`, `control_id` (20
characters at most, for MSH-10, stable across retries and resends), `idempotency_key`,
`f` (the fields left after the allow-list), `d` (the destination's name and MSH-3..6),
`raw` (a forwarded message's text).
"""

from __future__ import annotations

import base64
import hashlib
import typing
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Final

from isthmus.config import ConfigError, DestinationSettings, RouteSettings
from isthmus.flows.renderers import (
    BUILT_IN,
    Render,
    compile_template,
    default_json,
    import_function,
)
from isthmus.model.events import Event
from isthmus.model.status import PHI_FIELDS, STATUS_TYPES

JSON: Final = "application/json"
HL7: Final = "x-application/hl7-v2+er7"
RAW: Final = "raw"  # the allow-list name that lets a destination receive source messages
CANONICAL_TYPES: Final = frozenset(t.__name__ for t in typing.get_args(Event))


# --- the variables a template sees ----------------------------------------------------


def control_id(idempotency_key: str) -> str:
    """A short deterministic control id (MSH-10 is ST, 20 characters in v2.5)."""
    digest = hashlib.sha256(idempotency_key.encode()).digest()
    return "IS" + base64.b32encode(digest).decode()[:18]


def cut(fields: Mapping[str, str], allow: Sequence[str]) -> dict[str, str]:
    """The destination's allow-list over an event's fields: only the names it lists, or,
    when it lists none, every field but the PHI ones."""
    if allow:
        return {k: v for k, v in fields.items() if k in allow}
    return {k: v for k, v in fields.items() if k not in PHI_FIELDS}


@dataclass(frozen=True)
class Item:
    """What a route renders: a status event, a canonical event (flattened) or a source
    message (`raw`). `fields` are uncut; `cut` applies the destination's allow-list."""

    type: str
    key: str
    event_id: str
    occurred_at: datetime
    fields: Mapping[str, str] = field(default_factory=dict)
    channel: str = ""
    raw: str | None = None
    idempotency_key: str = ""

    def identity(self) -> str:
        return self.idempotency_key or f"{self.type}:{self.event_id}"


def variables(item: Item, dest: DestinationSettings) -> dict[str, Any]:
    """The template variables for one item sent to a destination: its identity and times, the
    fields (and raw message) the destination allows, and the destination's MSH-3 to MSH-6
    names (HL7 v2.5.1 sending/receiving application and facility)."""
    when = item.occurred_at.astimezone(UTC) if item.occurred_at.tzinfo else item.occurred_at
    key = item.identity()
    return {
        "type": item.type,
        "key": item.key,
        "event_id": item.event_id,
        "occurred_at": when.isoformat(),
        "hl7_ts": when.strftime("%Y%m%d%H%M%S"),
        "hl7_date": when.strftime("%Y%m%d"),
        "control_id": control_id(key),
        "idempotency_key": key,
        "f": cut(item.fields, dest.allow),
        "raw": item.raw if RAW in dest.allow else None,
        "d": {
            "name": dest.name,
            "sending_application": dest.sending_application,
            "sending_facility": dest.sending_facility,
            "receiving_application": dest.receiving_application,
            "receiving_facility": dest.receiving_facility,
        },
    }


# --- compiled routes ------------------------------------------------------------------


@dataclass(frozen=True)
class Route:
    """One compiled [[routes]] entry: its settings, renderer and content type."""

    settings: RouteSettings
    render: Render | None  # None: the destination's default
    content_type: str

    @property
    def name(self) -> str:
        return self.settings.name


@dataclass(frozen=True)
class Rendered:
    """One item rendered by a route for a destination, ready for its outbox."""

    destination: str
    route: str
    key: str
    idempotency_key: str
    event_id: str
    event_type: str
    content_type: str
    body: bytes


@dataclass(frozen=True)
class Routing:
    """The compiled [[routes]] with the destinations they name."""

    routes: tuple[Route, ...]
    destinations: dict[str, DestinationSettings]

    @property
    def status_types(self) -> frozenset[str]:
        return frozenset(e for r in self.routes for e in r.settings.events if e in STATUS_TYPES)

    @property
    def canonical_types(self) -> frozenset[str]:
        return frozenset(e for r in self.routes for e in r.settings.events if e in CANONICAL_TYPES)

    @property
    def source_types(self) -> frozenset[str]:
        return frozenset(
            e for r in self.routes for e in r.settings.events if kind_of(e) == "source"
        )

    def routes_for(self, item: Item, *, source: bool = False) -> list[Route]:
        """The routes that take this item, in config order."""
        return [r for r in self.routes if _matches(r.settings, item, source=source)]

    def render(self, item: Item) -> list[Rendered]:
        """One rendering per (route, destination) the item goes to; a destination named by
        two routes gets it once (the first route's), as the idempotency key says."""
        return self._render(item, source=False)

    def render_source(self, item: Item) -> list[Rendered]:
        return self._render(item, source=True)

    def _render(self, item: Item, *, source: bool) -> list[Rendered]:
        out: list[Rendered] = []
        seen: set[str] = set()
        idem = item.identity()
        for route in self.routes_for(item, source=source):
            for name in route.settings.destinations:
                if name in seen:
                    continue
                seen.add(name)
                dest = self.destinations[name]
                v = variables(item, dest)
                render = route.render or _default(dest, item.type, source=source)
                body = render(v)
                content_type = route.content_type or _content_type(
                    dest, item.type, source=source, custom=route.render
                )
                if content_type == HL7:  # Jinja2 writes "\n"; HL7 v2 segments end in CR
                    body = body.replace(b"\r\n", b"\r").replace(b"\n", b"\r")
                out.append(
                    Rendered(
                        name,
                        route.name,
                        item.key,
                        idem,
                        item.event_id,
                        item.type,
                        content_type,
                        body,
                    )
                )
        return out


def kind_of(name: str) -> str:
    """Whether an event name in a route is a status event, a canonical event or a source type."""
    if name in STATUS_TYPES:
        return "status"
    if name in CANONICAL_TYPES:
        return "canonical"
    return "source"


def _matches(route: RouteSettings, item: Item, *, source: bool) -> bool:
    if route.channels and item.channel not in route.channels:
        return False
    if source:
        if not any(
            kind_of(e) == "source" and (item.type == e or item.type.startswith(e + "^"))
            for e in route.events
        ):
            return False
    elif item.type not in route.events:
        return False
    return all(item.fields.get(k) in values for k, values in route.where.items())


def _default(dest: DestinationSettings, event_type: str, *, source: bool) -> Render:
    if source:
        return _raw
    if dest.kind == "mllp" and event_type in BUILT_IN:
        return BUILT_IN[event_type]
    return default_json


def _raw(v: dict[str, Any]) -> bytes:
    return (v["raw"] or "").encode()


def _content_type(
    dest: DestinationSettings, event_type: str, *, source: bool, custom: Render | None
) -> str:
    if source:
        return HL7 if "^" in event_type or dest.kind == "mllp" else "application/octet-stream"
    if dest.kind == "mllp" and (custom is not None or event_type in BUILT_IN):
        return HL7
    return JSON


def compile_routes(
    routes: Sequence[RouteSettings], destinations: Mapping[str, DestinationSettings]
) -> Routing:
    """Check and compile [[routes]]; ConfigError (with the dotted key) on what cannot run."""
    out: list[Route] = []
    for i, r in enumerate(routes):
        where = f"routes[{i}]"
        render: Render | None = None
        if r.template:
            render = compile_template(r.template, f"{where}.template")
        elif r.function:
            render = import_function(r.function, f"{where}.function")
        for name in r.destinations:
            dest = destinations[name]
            for e in r.events:
                kind = kind_of(e)
                if kind == "source" and RAW not in dest.allow:
                    raise ConfigError(
                        f"{where}.events: {e!r} forwards source messages (PHI) to destination "
                        f"{name!r}, whose allow list does not name {RAW!r}"
                    )
                if kind == "canonical" and not dest.allow:
                    raise ConfigError(
                        f"{where}.events: {e!r} sends canonical events (PHI) to destination "
                        f"{name!r}, whose allow list is empty: name the fields it may receive"
                    )
                if (
                    kind == "status"
                    and dest.kind == "mllp"
                    and render is None
                    and e not in BUILT_IN
                ):
                    raise ConfigError(
                        f"{where}.template: no built-in HL7 v2 message for {e!r} (there is "
                        f"one for {', '.join(sorted(BUILT_IN))}); give the route a template "
                        f"for mllp destination {name!r}"
                    )
        out.append(Route(r, render, r.content_type))
    return Routing(tuple(out), dict(destinations))
