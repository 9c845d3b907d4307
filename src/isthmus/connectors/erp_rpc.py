"""Tryton JSON-RPC transport: session login, Tryton's JSON value encoding, typed errors.

Tryton serves JSON-RPC at `http://host:port/<database>/rpc/` (trytond `protocols/jsonrpc.py`).
A request is `{"id", "method", "params"}`; `common.db.login(login, {"password": ...}, lang)`
returns `[user_id, session]`, and later calls carry `Authorization: Session
base64(login:user_id:session)`. Values that JSON lacks travel as tagged objects:
`{"__class__": "Decimal", "decimal": "12.34"}`, `{"__class__": "date", "year": ..}` and so on
(trytond `protocols/jsonrpc.py`, `JSONEncoder`/`JSONDecoder`).

Errors are translated here, at the boundary, into what the caller does next:
- the server is unreachable, times out, answers 5xx/503, or reports a concurrent update:
  `ErpUnavailable` (retry later);
- a `UserError` or `UserWarning` (closed period, failed domain, missing record...):
  `ErpRejected` carrying Tryton's own message (a person must act, then resubmit).
An expired session (401/403) is renewed once by logging in again.
"""

from __future__ import annotations

import base64
import datetime as dt
import itertools
import json
from decimal import Decimal
from typing import Any

import httpx

from isthmus.ports.erp import ErpRejected, ErpUnavailable


def encode(value: Any) -> Any:
    """Python value -> JSON-ready value in Tryton's tagged form."""
    if isinstance(value, Decimal):
        return {"__class__": "Decimal", "decimal": str(value)}
    if isinstance(value, dt.datetime):
        return {
            "__class__": "datetime",
            "year": value.year,
            "month": value.month,
            "day": value.day,
            "hour": value.hour,
            "minute": value.minute,
            "second": value.second,
            "microsecond": value.microsecond,
        }
    if isinstance(value, dt.date):
        return {"__class__": "date", "year": value.year, "month": value.month, "day": value.day}
    if isinstance(value, dict):
        return {k: encode(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [encode(v) for v in value]
    return value


def _decode_object(obj: dict[str, Any]) -> Any:
    cls = obj.get("__class__")
    if cls == "Decimal":
        return Decimal(obj["decimal"])
    if cls == "date":
        return dt.date(obj["year"], obj["month"], obj["day"])
    if cls == "datetime":
        return dt.datetime(
            obj["year"],
            obj["month"],
            obj["day"],
            obj.get("hour", 0),
            obj.get("minute", 0),
            obj.get("second", 0),
            obj.get("microsecond", 0),
        )
    if cls == "bytes":
        return base64.b64decode(obj["base64"])
    if cls == "timedelta":
        return dt.timedelta(seconds=obj["seconds"])
    return obj


def decode(text: bytes) -> Any:
    """Decode a Tryton JSON-RPC answer, its tagged objects (Decimal, date, datetime, bytes,
    ...) turned back into Python values."""
    return json.loads(text, object_hook=_decode_object)


def _message(error: Any) -> str:
    """Tryton error payload -> one readable line: [type, [message, description, ...]]."""
    if isinstance(error, list) and len(error) == 2:
        kind, args = error
        if isinstance(args, list):
            # UserError: [message, description, domain]; UserWarning: [name, message, desc]
            parts = args[1:] if kind == "UserWarning" else args
            text = " ".join(str(a) for a in parts[:2] if isinstance(a, str) and a)
            return f"{kind}: {text}".strip()
        return f"{kind}: {args}"
    return str(error)


class TrytonRpc:
    """One authenticated JSON-RPC session against one Tryton database."""

    def __init__(
        self,
        url: str,
        database: str,
        user: str,
        password: str,
        *,
        timeout_s: float = 60.0,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.endpoint = f"{url.rstrip('/')}/{database}/rpc/"
        self._user, self._password = user, password
        self._http = httpx.Client(timeout=timeout_s, transport=transport)
        self._ids = itertools.count(1)
        self._auth = ""
        self.context: dict[str, Any] = {}
        self.user_id = 0
        self.calls = 0

    def close(self) -> None:
        self._http.close()

    def login(self) -> None:
        result = self._post(
            "common.db.login", [self._user, {"password": self._password}, "en"], auth=False
        )
        user_id, session = result[0], result[1]
        self.user_id = int(user_id)
        token = base64.b64encode(f"{self._user}:{user_id}:{session}".encode()).decode()
        self._auth = f"Session {token}"
        self.context = dict(self._post("model.res.user.get_preferences", [True, {}]))

    def model(
        self, model: str, method: str, *args: Any, context: dict[str, Any] | None = None
    ) -> Any:
        """Call `model.<model>.<method>(*args, context)` with the session's context."""
        if not self._auth:
            self.login()
        ctx = {**self.context, **(context or {})}
        params = [*args, ctx]
        try:
            return self._post(f"model.{model}.{method}", params)
        except _SessionExpired:
            self.login()
            return self._post(
                f"model.{model}.{method}", [*args, {**self.context, **(context or {})}]
            )

    def call(self, method: str, params: list[Any]) -> Any:
        """Any other JSON-RPC method of the session (a wizard's `wizard.<name>.create`,
        `execute`, `delete`), its faults translated like `model`'s."""
        if not self._auth:
            self.login()
        return self._post(method, params)

    def _post(self, method: str, params: list[Any], *, auth: bool = True) -> Any:
        body = json.dumps(
            {"id": next(self._ids), "method": method, "params": encode(params)}
        ).encode()
        headers = {"Content-Type": "application/json"}
        if auth and self._auth:
            headers["Authorization"] = self._auth
        self.calls += 1
        try:
            resp = self._http.post(self.endpoint, content=body, headers=headers)
        except httpx.TimeoutException as exc:
            raise ErpUnavailable(f"Tryton did not answer {method} in time: {exc}") from exc
        except httpx.TransportError as exc:
            raise ErpUnavailable(f"Tryton unreachable at {self.endpoint}: {exc}") from exc
        if resp.status_code in (401, 403) and auth:
            raise _SessionExpired(method)
        if resp.status_code == 429 or resp.status_code >= 500:
            raise ErpUnavailable(f"Tryton answered HTTP {resp.status_code} to {method}")
        if resp.status_code != 200:
            raise ErpRejected(
                f"Tryton answered HTTP {resp.status_code} to {method}: {resp.text[:200]}"
            )
        try:
            data = decode(resp.content)
        except ValueError as exc:
            raise ErpUnavailable(f"Tryton sent malformed JSON for {method}") from exc
        error = data.get("error") if isinstance(data, dict) else None
        if error:
            kind = error[0] if isinstance(error, list) and error else ""
            if kind in ("UserError", "UserWarning"):
                raise ErpRejected(_message(error))
            if kind in ("ConcurrencyException", "DatabaseOperationalError", "RateLimitException"):
                raise ErpUnavailable(_message(error))
            if method == "common.db.login" or kind == "LoginException":
                raise ErpRejected(f"Tryton login refused for {self._user!r}: {_message(error)}")
            raise ErpRejected(f"Tryton error on {method}: {_message(error)}")
        return data.get("result") if isinstance(data, dict) else data


class _SessionExpired(Exception):
    """Private: the session is no longer valid; `model` logs in again once."""
