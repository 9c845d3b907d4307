"""Every HTTP error answer of the API, in one place: RFC 9457 problem details outside
`/fhir`, a FHIR OperationOutcome inside it.

Outside `/fhir` an error is `application/problem+json` (RFC 9457 section 3): `type` (a URI
naming the kind of problem: the error tree's `problem_type`, isthmus/errors.py), `title`,
`status`, `detail` (this occurrence, no PHI), `instance` (the request path), and the
extension member `errors`: one `{"detail", "field"}` per input at fault, with a JSON
`pointer` (RFC 6901) when the field is in a JSON body (RFC 9457 section 3 example). The
v1 members `error` (a short kind: "not found", "forbidden", "insufficient_credit"...),
`reason` (= detail) and `field` are kept beside them, so v1 clients keep working
(RFC 9457 section 3.2 allows extension members).

Under `/fhir` the same error is an `application/fhir+json` OperationOutcome (FHIR R4
3.1.0.4.1) whose issue code is the FHIR IssueType for the status (401 `login`, 403
`forbidden`, 404 `not-found`, 429 `throttled`, 503 `transient`, ...).

`from_error` maps any `IsthmusError` (its `http_status`, `problem_type`, `title`, `field`,
and `retry_after` as Retry-After); `answer` builds one from parts for the refusals that
are not exceptions (the bearer-token check, the router's 404/405). `handler` is the
Starlette exception handler that turns an `IsthmusError` a route lets out into its answer.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from typing import Any, Final

from starlette.requests import Request
from starlette.responses import Response

from isthmus.errors import PROBLEM_BASE, IsthmusError, TransientError
from isthmus.formats.fhir import FhirError, operation_outcome

PROBLEM: Final = "application/problem+json"
FHIR: Final = "application/fhir+json"

# FHIR R4 IssueType (http://hl7.org/fhir/R4/valueset-issue-type.html) for an HTTP status
_ISSUE: Final[Mapping[int, str]] = {
    400: "invalid",
    401: "login",
    403: "forbidden",
    404: "not-found",
    405: "not-supported",
    409: "conflict",
    412: "conflict",
    413: "too-long",
    415: "not-supported",
    422: "processing",
    429: "throttled",
    500: "exception",
    503: "transient",
}
# the v1 `error` member when the caller names none
_KIND: Final[Mapping[int, str]] = {
    400: "invalid",
    401: "unauthorized",
    403: "forbidden",
    404: "not found",
    405: "method not allowed",
    409: "conflict",
    413: "body_too_large",
    415: "unsupported media type",
    422: "unprocessable",
    429: "too many requests",
    500: "internal_error",
    503: "unavailable",
}
_TITLE: Final[Mapping[int, str]] = {
    400: "the request is invalid",
    401: "authentication is required",
    403: "the request is refused",
    404: "not found",
    405: "method not allowed",
    409: "the request conflicts with the current state",
    413: "the body is too large",
    415: "unsupported media type",
    422: "the content cannot be processed",
    429: "too many requests",
    500: "the request could not be processed",
    503: "unavailable; try again later",
}


def is_fhir(path: str) -> bool:
    """Whether `path` is under /fhir, where errors are FHIR OperationOutcomes, not RFC 9457
    problem details."""
    return path == "/fhir" or path.startswith("/fhir/")


def kind_of(exc: BaseException) -> str:
    """A class name as a v1 `error` kind: `InsufficientCredit` -> `insufficient_credit`."""
    return re.sub(r"(?<!^)(?=[A-Z])", "_", type(exc).__name__).lower()


def body(
    status: int,
    detail: str,
    *,
    instance: str = "",
    title: str = "",
    type_: str = "",
    field: str = "",
    pointer: str = "",
    error: str = "",
    extra: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """An RFC 9457 problem object, with the v1 members `error`, `reason`, `field`."""
    where: dict[str, str] = {"detail": detail}
    if field:
        where["field"] = field
    if pointer:
        where["pointer"] = pointer
    out: dict[str, Any] = {
        "type": type_ or f"{PROBLEM_BASE}http-{status}",
        "title": title or _TITLE.get(status, "the request could not be processed"),
        "status": status,
        "detail": detail,
    }
    if instance:
        out["instance"] = instance[:200]
    out["errors"] = [where]
    out["error"] = error or _KIND.get(status, "error")
    out["reason"] = detail
    if field:
        out["field"] = field
    return out | dict(extra or {})


def answer(
    path: str,
    status: int,
    detail: str,
    *,
    title: str = "",
    type_: str = "",
    field: str = "",
    pointer: str = "",
    error: str = "",
    extra: Mapping[str, Any] | None = None,
    headers: Mapping[str, str] | None = None,
    issue: str = "",
    instance: bool = True,
) -> Response:
    """The error answer for a request to `path`: problem+json, or an OperationOutcome
    under /fhir (`issue` overrides the IssueType of the status). `instance=False` leaves
    the path out (the answers to unauthenticated callers echo nothing they sent)."""
    if is_fhir(path):
        code = issue or _ISSUE.get(status, "processing" if status < 500 else "exception")
        doc: Any = operation_outcome([FhirError(code, detail, [field] if field else [])])
        media = FHIR
    else:
        doc = body(
            status,
            detail,
            instance=path if instance else "",
            title=title,
            type_=type_,
            field=field,
            pointer=pointer,
            error=error,
            extra=extra,
        )
        media = PROBLEM
    return Response(
        json.dumps(doc, default=str), status, headers=dict(headers or {}), media_type=media
    )


def from_error(
    path: str,
    exc: IsthmusError,
    *,
    error: str = "",
    field: str = "",
    pointer: str = "",
    extra: Mapping[str, Any] | None = None,
    headers: Mapping[str, str] | None = None,
) -> Response:
    """The answer an error of the tree names: its status, type, title, field; a
    TransientError's `retry_after` as Retry-After (RFC 9110 section 10.2.3)."""
    more = dict(headers or {})
    if isinstance(exc, TransientError) and exc.retry_after is not None:
        more.setdefault("Retry-After", str(math.ceil(exc.retry_after)))
    status = exc.http_status
    return answer(
        path,
        status,
        str(exc),
        title=exc.title,
        type_=exc.problem_type,
        field=field or exc.field,
        pointer=pointer,
        error=error or ("not found" if status == 404 else kind_of(exc)),
        extra=extra,
        headers=more,
    )


async def handler(req: Request, exc: Exception) -> Response:
    """Starlette exception handler: an IsthmusError a route lets out, answered."""
    assert isinstance(exc, IsthmusError)
    return from_error(req.url.path, exc)


__all__ = ["FHIR", "PROBLEM", "answer", "body", "from_error", "handler", "is_fhir", "kind_of"]
