"""Reading a request body within limits, and JSON strictly: what every JSON route calls.

A hostile or broken client must get a specific 4xx naming the rule, never a 500 and never
a quiet reinterpretation (issue 16, strict inputs):

- size: a body over `[limits] max_body_bytes` is answered 413 before it is read in full
  (the Content-Length is checked first, then the bytes as they stream in);
- depth: JSON nested deeper than `[limits] max_json_depth` arrays/objects is answered 400
  before it is parsed (Python's and msgspec's decoders recurse, and raise RecursionError,
  a 500, on a few thousand levels);
- duplicate keys: RFC 8259 section 4 leaves `{"amount": "1", "amount": "900"}` to the
  reader, and readers differ (first wins, last wins): such an object is refused, 400
  naming the key, so no two components can read two different requests out of it;
- `NaN`, `Infinity`, `-Infinity` are not JSON (RFC 8259 section 6) and are refused; JSON
  numbers with a fraction are read as Decimal, never float;
- card numbers: a string or integer anywhere in the body that holds one (`formats.cards`,
  the hub's one detector) is refused, 400 `card_number` naming the JSON path, never the
  value; nothing is stored, so no copy of it is kept (refund and workforce bodies).

Refusals are `BodyRefused` (an `InvalidInput` of isthmus/errors.py), answered as RFC 9457
problem+json by api/problems.py (`error` the rule, `field` "body") plus `limit` (the
setting) and `max` (its value).
"""

from __future__ import annotations

import json
import re
from decimal import Decimal
from typing import Any, Final

from starlette.requests import Request
from starlette.responses import Response

from isthmus.api import problems
from isthmus.config import LimitSettings as BodyLimits
from isthmus.errors import PROBLEM_BASE, InvalidInput
from isthmus.formats.cards import has_card

# A JSON string (so brackets inside it are not counted), or one bracket.
_TOKENS: Final = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"|[\[\]{}]')
_OPEN: Final = frozenset(b"[{")

__all__ = [
    "BodyLimits",
    "BodyRefused",
    "card_path",
    "check_depth",
    "depth_of",
    "loads",
    "read_body",
    "read_json",
]


class BodyRefused(InvalidInput):
    """The body breaks a limit or is not strict JSON; nothing was stored. `status` is the
    HTTP status (400, or 413 over the size limit), `error` the rule's short name."""

    field = "body"

    def __init__(
        self,
        status: int,
        error: str,
        reason: str,
        *,
        limit: str = "",
        maximum: int | None = None,
        key: str = "",
    ) -> None:
        super().__init__(reason)
        self.http_status, self.error, self.reason = status, error, reason
        self.limit, self.maximum, self.key = limit, maximum, key
        if status == 413:
            self.problem_type = PROBLEM_BASE + "body-too-large"
            self.title = "the request body is too large"

    @property
    def status(self) -> int:
        return self.http_status

    def response(self, path: str) -> Response:
        """The problem+json answer (an OperationOutcome under /fhir), api/problems.py."""
        extra: dict[str, Any] = {}
        if self.limit:
            extra |= {"limit": self.limit, "max": self.maximum}
        if self.key:
            extra["key"] = self.key
        return problems.from_error(path, self, error=self.error, extra=extra)


def _too_large(limits: BodyLimits) -> BodyRefused:
    return BodyRefused(
        413,
        "body_too_large",
        f"the request body is larger than {limits.max_body_bytes} bytes ([limits] max_body_bytes)",
        limit="max_body_bytes",
        maximum=limits.max_body_bytes,
    )


async def read_body(req: Request, limits: BodyLimits) -> bytes:
    """The body, refused (413) as soon as it is known to exceed `max_body_bytes`."""
    declared = req.headers.get("content-length", "")
    if declared.isascii() and declared.isdigit() and int(declared) > limits.max_body_bytes:
        raise _too_large(limits)
    chunks, size = [], 0
    async for chunk in req.stream():
        size += len(chunk)
        if size > limits.max_body_bytes:
            raise _too_large(limits)
        chunks.append(chunk)
    return b"".join(chunks)


def depth_of(raw: bytes) -> int:
    """How deep arrays and objects nest in a JSON text (brackets in strings not counted)."""
    depth = deepest = 0
    for m in _TOKENS.finditer(raw):
        c = m.group()
        if len(c) != 1:
            continue  # a string
        if c[0] in _OPEN:
            depth += 1
            deepest = max(deepest, depth)
        else:
            depth -= 1
    return deepest


def _unique(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in pairs:
        if k in out:
            shown = k if len(k) <= 64 else k[:64] + "..."
            raise BodyRefused(
                400,
                "duplicate_key",
                f"the JSON body has the key {shown!r} twice in one object",
                key=shown,
            )
        out[k] = v
    return out


def _constant(name: str) -> Any:
    raise BodyRefused(
        400,
        "invalid_json",
        f"the body is not JSON: {name} is not a JSON value (RFC 8259 section 6)",
    )


def check_depth(raw: bytes, limits: BodyLimits) -> None:
    """Refuse (400) JSON nested deeper than `max_json_depth`, before any decoder sees it."""
    if depth_of(raw) > limits.max_json_depth:
        raise BodyRefused(
            400,
            "json_too_deep",
            f"the JSON body nests deeper than "
            f"{limits.max_json_depth} levels ([limits] max_json_depth)",
            limit="max_json_depth",
            maximum=limits.max_json_depth,
        )


def card_path(doc: Any, path: str = "$") -> str | None:
    """The JSON path of the first string or integer (or key) holding a card number."""
    if isinstance(doc, dict):
        for k, v in doc.items():
            where = f"{path}.{k}" if k.isidentifier() else f"{path}[{json.dumps(k)}]"
            if has_card(k):
                return f"{path} (a key)"
            if (found := card_path(v, where)) is not None:
                return found
    elif isinstance(doc, list):
        for i, v in enumerate(doc):
            if (found := card_path(v, f"{path}[{i}]")) is not None:
                return found
    elif (
        isinstance(doc, str) or (isinstance(doc, int) and not isinstance(doc, bool))
    ) and has_card(str(doc)):
        return path
    return None


def loads(raw: bytes, limits: BodyLimits) -> Any:
    """Strict JSON: within the depth limit, no duplicate keys, no NaN/Infinity, decimals
    as Decimal, no card number. Raises BodyRefused (400) naming the rule."""
    check_depth(raw, limits)
    try:
        doc = json.loads(
            raw, parse_float=Decimal, parse_constant=_constant, object_pairs_hook=_unique
        )
    except RecursionError as exc:  # only if max_json_depth is set very high
        raise BodyRefused(
            400,
            "json_too_deep",
            "the JSON body nests too deep to read",
            limit="max_json_depth",
            maximum=limits.max_json_depth,
        ) from exc
    except ValueError as exc:  # JSONDecodeError, UnicodeDecodeError
        raise BodyRefused(400, "invalid_json", f"the body is not JSON: {exc}") from exc
    found = card_path(doc)
    if found is not None:
        raise BodyRefused(
            400,
            "card_number",
            f"{found} holds a card number; send account and transaction numbers, never card data",
            key=found,
        )
    return doc


async def read_json(req: Request, limits: BodyLimits) -> Any:
    """Read the body within the size limit and decode it strictly (see `loads`)."""
    return loads(await read_body(req, limits), limits)
