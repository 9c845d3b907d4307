"""[[routes]] (issue 18): which status events or source messages go to which destinations.

Each route is checked here for its shape and for destinations that exist; its template or
function compiles when the settings load (flows/routes.py, `compile_routes`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from isthmus.config.destinations import DestinationSettings
from isthmus.config.values import ConfigError


@dataclass(frozen=True)
class RouteSettings:
    """[[routes]] (issue 18): which status events or source messages go to which
    destinations, and how they are written (flows/routes.py, checked there at load).

    `events` names status events (model/status.py), canonical event types ("Charge") or
    source message types ("ADT^A01", "ADT": every ADT); `channels` and `where` filter (a
    field equal to a value, or in a list of values); `template` is Jinja2 (sandboxed),
    inline or a file path, `function` a "module:function" for what a template cannot say;
    neither: the destination's default (JSON, or HL7 v2 for an mllp destination)."""

    name: str
    events: tuple[str, ...]
    destinations: tuple[str, ...]
    channels: tuple[str, ...] = ()
    where: dict[str, tuple[str, ...]] = field(default_factory=dict)
    template: str = ""
    function: str = ""
    content_type: str = ""


ROUTE_KEYS = (
    "name",
    "events",
    "destinations",
    "channels",
    "where",
    "template",
    "function",
    "content_type",
)


def _names(value: Any, where: str, *, required: bool) -> tuple[str, ...]:
    if isinstance(value, str):
        value = [value]
    if (
        not isinstance(value, list)
        or not all(isinstance(v, str) and v for v in value)
        or (required and not value)
    ):
        raise ConfigError(
            f"{where} must be a list of names" + (", at least one" if required else "")
        )
    return tuple(value)


def routes_from_table(
    raw: Any, destinations: dict[str, DestinationSettings]
) -> tuple[RouteSettings, ...]:
    """The [[routes]] array, checked against the destinations it names."""
    if not isinstance(raw, list):
        raise ConfigError("routes must be an array of tables: [[routes]]")
    out: list[RouteSettings] = []
    for i, spec in enumerate(raw):
        where = f"routes[{i}]"
        if not isinstance(spec, dict):
            raise ConfigError(f"{where} must be a table")
        for key in spec:
            if key not in ROUTE_KEYS:
                raise ConfigError(
                    f"unknown key {where}.{key}: a route takes {', '.join(ROUTE_KEYS)}"
                )
        name = str(spec.get("name") or f"route{i + 1}")
        dests = _names(spec.get("destinations"), f"{where}.destinations", required=True)
        for d in dests:
            if d not in destinations:
                raise ConfigError(
                    f"{where}.destinations: unknown destination {d!r} (known: "
                    f"{', '.join(sorted(destinations)) or 'none'})"
                )
        filters = spec.get("where", {})
        if not isinstance(filters, dict):
            raise ConfigError(f"{where}.where must be a table of field = value or [values]")
        for key in ("template", "function", "content_type"):
            if not isinstance(spec.get(key, ""), str):
                raise ConfigError(f"{where}.{key} must be a string")
        if spec.get("template") and spec.get("function"):
            raise ConfigError(f"{where}: a route takes a template or a function, not both")
        out.append(
            RouteSettings(
                name=name,
                events=_names(spec.get("events"), f"{where}.events", required=True),
                destinations=dests,
                channels=_names(spec.get("channels", []), f"{where}.channels", required=False),
                where={
                    str(k): tuple(str(x) for x in (v if isinstance(v, list) else [v]))
                    for k, v in filters.items()
                },
                template=str(spec.get("template", "")),
                function=str(spec.get("function", "")),
                content_type=str(spec.get("content_type", "")),
            )
        )
    if len({r.name for r in out}) != len(out):
        raise ConfigError("routes: each route needs a name of its own")
    return tuple(out)
