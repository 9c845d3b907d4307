"""Event contracts: JSON Schemas generated from the model, and what counts as a break.

`current()` builds one JSON Schema (msgspec.json.schema) per tagged event Struct of
`isthmus.model.events`, keyed by its tag, plus one for the Envelope. The committed baseline
(`contracts/events.v1.json`) is the same document from an earlier model; `changes(old,
new)` compares them and says for each difference whether it breaks stored or in-flight
events (they are replayed from the bus and the inbox for years) or a consumer of them:

- breaking: an event type removed, a field removed, a field's type changed (narrowed or
  widened, including `T` -> `T | None`), a new required field, an optional field made
  required, an enum value removed, a changed format or constraint;
- additive: a new event type (also a new member of a tagged union, such as the
  Envelope's payload), a new optional field, an added enum value, new documentation.

The baseline ships inside the package (`isthmus/governance/events.v1.json`, package data;
`contracts/events.v1.json` in the repository points at it), so `isthmus contracts check`
works from an installed wheel too: `packaged_baseline()` reads it through
importlib.resources. Otherwise pure: reading and writing a baseline file named on the
command line (`--baseline PATH`) is the shell's job (`isthmus contracts`).
"""

from __future__ import annotations

import inspect
import json
from dataclasses import dataclass
from importlib import resources
from typing import Any

import msgspec

from isthmus.model import envelope as envelope_module
from isthmus.model import events as events_module

FORMAT = "isthmus-event-contracts"
VERSION = 1
_NOTES = frozenset(
    {"title", "description", "default", "examples", "$comment", "discriminator"}
)  # discriminator: follows anyOf, compared there

Schema = dict[str, Any]
BASELINE_NAME = f"events.v{VERSION}.json"  # beside this module, in the wheel too


def packaged_baseline() -> Schema:
    """The baseline this release was built against (package data of isthmus.governance)."""
    text = (
        resources.files(__package__ or "isthmus.governance")
        .joinpath(BASELINE_NAME)
        .read_text(encoding="utf-8")
    )
    doc: Schema = json.loads(text)
    return doc


@dataclass(frozen=True)
class Change:
    """One difference between two contract documents, at a schema path, and whether it
    breaks stored or in-flight events or their consumers."""

    path: str
    what: str
    breaking: bool

    def __str__(self) -> str:
        return f"{'BREAKING' if self.breaking else 'additive'} {self.path}: {self.what}"


def event_types() -> dict[str, type[msgspec.Struct]]:
    """Every tagged Struct of isthmus.model.events (defined there or in its events_* modules,
    which it re-exports), by tag."""
    found: dict[str, type[msgspec.Struct]] = {}
    for _, cls in inspect.getmembers(events_module, inspect.isclass):
        if issubclass(cls, msgspec.Struct) and cls.__module__.startswith(events_module.__name__):
            tag = cls.__struct_config__.tag
            if tag is not None:
                found[str(tag)] = cls
    return dict(sorted(found.items()))


def current() -> Schema:
    """The contract document of the running model: a JSON Schema for the Envelope and one
    per tagged event type."""
    return {
        "format": FORMAT,
        "version": VERSION,
        "envelope": msgspec.json.schema(envelope_module.Envelope),
        "events": {tag: msgspec.json.schema(t) for tag, t in event_types().items()},
    }


def dumps(doc: Schema) -> str:
    """The contract document as the baseline file stores it: sorted, indented JSON."""
    return json.dumps(doc, indent=2, sort_keys=True) + "\n"


def changes(old: Schema, new: Schema) -> list[Change]:
    """Every difference from the old contract document to the new one, breaking or additive
    (the rules are in the module docstring)."""
    out: list[Change] = []
    if old.get("format") != FORMAT:
        return [Change("$", "the baseline is not an isthmus event-contracts document", True)]
    _doc("envelope", old["envelope"], new["envelope"], out)
    for tag in sorted(set(old["events"]) | set(new["events"])):
        if tag not in new["events"]:
            out.append(Change(tag, "event type removed", True))
        elif tag not in old["events"]:
            out.append(Change(tag, "event type added", False))
        else:
            _doc(tag, old["events"][tag], new["events"][tag], out)
    return out


def breaking(old: Schema, new: Schema) -> list[Change]:
    """The differences from `old` to `new` that break stored events or their consumers."""
    return [c for c in changes(old, new) if c.breaking]


# --- schema walking -----------------------------------------------------------------------


@dataclass
class _Walk:
    odefs: Schema
    ndefs: Schema
    out: list[Change]
    seen: set[tuple[str, str]]


def _doc(path: str, old: Schema, new: Schema, out: list[Change]) -> None:
    w = _Walk(old.get("$defs", {}), new.get("$defs", {}), out, set())
    _node(path, old, new, w)


def _deref(node: Schema, defs: Schema) -> tuple[Schema, str]:
    ref = node.get("$ref")
    if isinstance(ref, str) and ref.startswith("#/$defs/"):
        name = ref.removeprefix("#/$defs/")
        return defs.get(name, {}), name
    return node, ""


def _tag(node: Schema, defs: Schema) -> str | None:
    """The tag of a tagged-struct object schema (its `type` property is a one-value enum)."""
    node, _ = _deref(node, defs)
    t = node.get("properties", {}).get("type", {})
    enum = t.get("enum") if isinstance(t, dict) else None
    return str(enum[0]) if node.get("type") == "object" and enum and len(enum) == 1 else None


def _signature(node: Schema, defs: Schema) -> str:
    tag = _tag(node, defs)
    if tag is not None:
        return f"tag:{tag}"
    target, name = _deref(node, defs)
    if name:
        return f"ref:{name}"
    return json.dumps(
        {k: v for k, v in target.items() if k in ("type", "format", "enum", "const")},
        sort_keys=True,
    )


def _node(path: str, old: Schema, new: Schema, w: _Walk) -> None:
    old, oname = _deref(old, w.odefs)
    new, nname = _deref(new, w.ndefs)
    if oname or nname:
        if (oname, nname) in w.seen:
            return
        w.seen.add((oname, nname))
    if "anyOf" in old or "anyOf" in new:
        _union(path, old, new, w)
        return
    o = {k: v for k, v in old.items() if k not in _NOTES}
    n = {k: v for k, v in new.items() if k not in _NOTES}
    if o.get("type") != n.get("type"):
        w.out.append(Change(path, f"type changed from {o.get('type')} to {n.get('type')}", True))
        return
    if "enum" in o or "enum" in n:
        gone = [v for v in o.get("enum", []) if v not in n.get("enum", [])]
        added = [v for v in n.get("enum", []) if v not in o.get("enum", [])]
        if gone:
            w.out.append(Change(path, f"enum value(s) removed: {gone}", True))
        if added:
            w.out.append(Change(path, f"enum value(s) added: {added}", False))
    if o.get("type") == "object":
        _object(path, o, n, w)
    if o.get("type") == "array":
        _node(f"{path}[]", o.get("items", {}), n.get("items", {}), w)
    for key in sorted(set(o) | set(n)):
        if key in ("type", "enum", "properties", "required", "items", "$ref"):
            continue
        if o.get(key) != n.get(key):
            w.out.append(Change(path, f"{key} changed from {o.get(key)!r} to {n.get(key)!r}", True))


def _object(path: str, o: Schema, n: Schema, w: _Walk) -> None:
    oprops, nprops = o.get("properties", {}), n.get("properties", {})
    oreq, nreq = set(o.get("required", [])), set(n.get("required", []))
    for name in sorted(set(oprops) | set(nprops)):
        where = f"{path}.{name}"
        if name not in nprops:
            w.out.append(Change(where, "field removed", True))
        elif name not in oprops:
            required = name in nreq
            w.out.append(
                Change(
                    where, "new required field" if required else "optional field added", required
                )
            )
        else:
            if name in nreq and name not in oreq:
                w.out.append(Change(where, "optional field became required", True))
            _node(where, oprops[name], nprops[name], w)


def _union(path: str, old: Schema, new: Schema, w: _Walk) -> None:
    omembers = old.get("anyOf", [old])
    nmembers = new.get("anyOf", [new])
    osig = {_signature(m, w.odefs): m for m in omembers}
    nsig = {_signature(m, w.ndefs): m for m in nmembers}
    tagged = all(s.startswith("tag:") for s in (*osig, *nsig))
    for sig in sorted(set(osig) - set(nsig)):
        w.out.append(Change(path, f"union member {sig} removed", True))
    for sig in sorted(set(nsig) - set(osig)):
        w.out.append(
            Change(
                path,
                f"union member {sig} added" if tagged else f"type widened with {sig}",
                not tagged,
            )
        )
    for sig in sorted(set(osig) & set(nsig)):
        _node(f"{path}<{sig.removeprefix('tag:')}>" if tagged else path, osig[sig], nsig[sig], w)
