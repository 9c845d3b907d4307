"""The HTTP access log and request ids: one record per answered request, no PHI.

Every answer carries an `X-Request-Id`: the caller's own when it is a sane token (1 to 128
of letters, digits and `._:-`, as load balancers and gateways make them), else a new one;
the id is bound for the logs of the request (observe/logs.py `request_id`) so any record
written while it is answered can be found from the answer's header.

The access record (logger `isthmus.access`, INFO) holds the method, the path, the status,
the duration, the request id, the W3C trace id when the caller sent one, and the client
address. Query strings are cut to their parameter names: a FHIR search or a message
filter can carry an identifier, a name or a birth date in its values (`?identifier=MRN-77`
becomes `?identifier`), and a bearer token or cookie is never logged.
"""

from __future__ import annotations

import logging
import re
import uuid
from typing import Final
from urllib.parse import parse_qsl

log = logging.getLogger("isthmus.access")
HEADER: Final = "X-Request-Id"
_SANE: Final = re.compile(r"[A-Za-z0-9._:-]{1,128}")


def request_id(incoming: str | None) -> str:
    """The caller's X-Request-Id when it is a sane token, else a new random one."""
    if incoming is not None and _SANE.fullmatch(incoming.strip()):
        return incoming.strip()
    return uuid.uuid4().hex


def loggable_path(path: str, query: bytes | str) -> str:
    """The path with the query string reduced to its parameter names (values may be PHI)."""
    text = query.decode("latin-1") if isinstance(query, bytes) else query
    names = list(dict.fromkeys(k for k, _ in parse_qsl(text, keep_blank_values=True)))
    safe = "&".join(re.sub(r"[^A-Za-z0-9._:-]", "?", n)[:40] for n in names[:20])
    return path[:300] + (f"?{safe}" if safe else "")


def record(
    *,
    method: str,
    path: str,
    status: int,
    seconds: float,
    request: str,
    client: str,
    trace: str = "",
) -> None:
    """Write one access record (the request id and trace id are the bound ones too)."""
    if not log.isEnabledFor(logging.INFO):
        return
    ms = round(seconds * 1000, 1)
    fields: dict[str, str | int | float] = {
        "method": method,
        "path": path,
        "status": status,
        "duration_ms": ms,
        "client": client,
    }
    log.info(
        "%s %s %d %.1f ms client=%s request_id=%s%s",
        method,
        path,
        status,
        ms,
        client or "-",
        request,
        f" trace_id={trace}" if trace else "",
        extra={"fields": fields},
    )


__all__ = ["HEADER", "loggable_path", "record", "request_id"]
