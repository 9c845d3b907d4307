"""FHIR R4 search on the /fhir endpoint (3.1.0.8): Account and ExplanationOfBenefit by
`identifier` and `patient`, answered as a searchset Bundle (api/fhir_routes.py routes
GET /fhir/{type} here; the resources are read as api/fhir.py reads them).

Paging (hl7.org/fhir/R4/search.html#count, http.html#paging): `_count` matches a page and a
`next` link holds an opaque keyset `_cursor` (observe/cursor.py). Parameters the hub does
not support are ignored (handling=lenient) unless `Prefer: handling=strict`.
"""

from __future__ import annotations

import bisect
from collections.abc import Sequence
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Final
from urllib.parse import quote

import msgspec
from starlette.responses import Response

from isthmus.api.fhir import fhir_response, outcome, version_id, with_meta
from isthmus.flows.fhir_resources import SCAN_LIMIT, SEARCHABLE
from isthmus.formats.fhir import FhirError
from isthmus.governance import phi_access
from isthmus.observe import cursor

if TYPE_CHECKING:
    from isthmus.api.fhir import FhirApi

CURSOR: Final = "_cursor"  # the opaque page cursor of a searchset's `next` link
_SEARCH_PARAMS: Final = ("identifier", "patient", "_count", "_total", CURSOR)
_TOTALS: Final = ("none", "estimate", "accurate")
_json_dec = msgspec.json.Decoder(float_hook=Decimal)


def search(
    api: FhirApi,
    rtype: str,
    params: Sequence[tuple[str, str]],
    roles: Sequence[str] = (phi_access.LOCAL,),
    *,
    base: str = "",
    strict: bool = False,
) -> Response:
    """GET /fhir/{type}?identifier=&patient=&_count=&_total=&_cursor= (FHIR R4 3.1.0.8
    search, for Account and ExplanationOfBenefit): a searchset Bundle, Accounts with
    their balance, `total` the number of matches (unless `_total=none`; `_count=0` asks
    for the total alone, as fhirpy's `.count()` does). Parameters the hub does not
    support are ignored and left out of the `self` link (3.1.1.5.4 handling=lenient,
    the default); with `Prefer: handling=strict` they are a 400 OperationOutcome.

    Paging (hl7.org/fhir/R4/search.html#count, http.html#paging): `_count` matches a
    page (default 50; above 500 a page holds 500, as a server may return fewer than
    asked), and when more remain the Bundle has a `next` link, the same search with
    `_cursor` set to an opaque keyset cursor (observe/cursor.py: the inbox id of the
    last resource shown, matches being in inbox order), so a resource created meanwhile
    is neither shown twice nor skipped over. A cursor the hub did not give out for this
    type is a 400."""
    if rtype not in SEARCHABLE:
        return outcome(
            404,
            [
                FhirError(
                    "not-supported",
                    f"search on {rtype!r} is not supported; only {', '.join(sorted(SEARCHABLE))}",
                    [rtype],
                )
            ],
        )
    args: dict[str, str] = {}
    for name, value in params:
        if name not in _SEARCH_PARAMS and not strict:
            continue  # lenient: an unknown parameter is ignored (and not in `self`)
        if name not in _SEARCH_PARAMS or name in args:
            why = "is not supported" if name not in _SEARCH_PARAMS else "is repeated"
            return outcome(
                400,
                [
                    FhirError(
                        "not-supported",
                        f"search parameter {name!r} {why}; use {', '.join(_SEARCH_PARAMS)}",
                        [name],
                    )
                ],
            )
        args[name] = value
    count = args.get("_count", str(cursor.DEFAULT_LIMIT)).strip()
    if not (count.isascii() and count.isdigit()):
        return outcome(
            400,
            [
                FhirError(
                    "value",
                    "_count must be a whole number (0 for "
                    f"the total alone; at most {cursor.MAX_LIMIT} a "
                    "page)",
                    ["_count"],
                )
            ],
        )
    want = min(int(count), cursor.MAX_LIMIT)
    if "_count" in args:
        args["_count"] = str(want)  # the `self` link says what was applied
    total = args.get("_total", "accurate")
    if total not in _TOTALS:
        return outcome(
            400, [FhirError("value", f"_total must be one of {', '.join(_TOTALS)}", ["_total"])]
        )
    tag = _page_tag(rtype)
    after = None
    if args.get(CURSOR, "").strip():
        try:
            after = cursor.decode_int(tag, args[CURSOR].strip())
        except cursor.BadCursor:
            return outcome(
                400,
                [
                    FhirError(
                        "value",
                        f"{CURSOR} is not one this hub gave "
                        f"out for a {rtype} search: follow the "
                        "Bundle's `next` link",
                        [CURSOR],
                    )
                ],
            )
    scan = want + 1 if total == "none" and after is None else SCAN_LIMIT
    found = api.intake.search(
        rtype, identifier=args.get("identifier"), patient=args.get("patient"), count=scan
    )
    # matches are in inbox order: the page starts after the cursor's inbox id
    start = (
        0
        if after is None
        else bisect.bisect_right(found, after, key=lambda raw: _inbox_id(api, rtype, raw))
    )
    shown = found[start : start + want]
    entries = []
    for raw in shown:
        res_id = _resource_id(raw)
        m = api.current(rtype, res_id)
        latest = m.raw if m is not None else raw
        doc = with_meta(
            api.with_balance(latest) if rtype == "Account" else _json_dec.decode(latest),
            version_id(latest),
            m,
        )
        entries.append(
            {
                "fullUrl": f"{base}/{rtype}/{res_id}",
                "resource": phi_access.fhir_view(doc, roles),
                "search": {"mode": "match"},
            }
        )
    links = [{"relation": "self", "url": _search_url(base, rtype, args)}]
    if shown and len(found) > start + want:
        nxt = cursor.encode(tag, _inbox_id(api, rtype, shown[-1]))
        links.append(
            {
                "relation": "next",
                "url": _search_url(base, rtype, {**args, "_count": str(want), CURSOR: nxt}),
            }
        )
    bundle: dict[str, Any] = {
        "resourceType": "Bundle",
        "type": "searchset",
        "link": links,
        "entry": entries,
    }
    if total != "none":
        bundle["total"] = len(found)
    return fhir_response(bundle)


def _inbox_id(api: FhirApi, rtype: str, raw: bytes) -> int:
    """The inbox id of a match (its `<type>/<id>` row: one index lookup), its key in
    the search order."""
    m = api.intake.stored(rtype, _resource_id(raw))
    return m.id if m is not None else 0


def _page_tag(rtype: str) -> str:
    """The cursor tag of a type's search (observe/cursor.py): one type's cursor is refused
    by another's search."""
    return f"fhir-{rtype}.1"


def _resource_id(raw: bytes) -> str:
    return str(_json_dec.decode(raw).get("id", ""))


def _search_url(base: str, rtype: str, args: dict[str, str]) -> str:
    query = "&".join(f"{k}={quote(v, safe='|/:')}" for k, v in args.items())
    return f"{base}/{rtype}" + (f"?{query}" if query else "")


__all__ = ["CURSOR", "search"]
