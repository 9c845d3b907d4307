"""Generic REST adapter of the ERP port, for ERPs with a JSON-over-HTTP API (DESIGN.md:
connectors/outbound "generic REST").

Configured, not coded, per ERP ([erp] kind = "rest"):
- `url`: the API's base URL; `token_file`: the API token (never in the config), sent as
  `<auth_header>: <auth_scheme> <token>`;
- `[erp.endpoints]`: "METHOD /path?query" per operation, with `{reference}`, `{prefix}`,
  `{batch_id}`, `{period}` placeholders (URL-encoded): `post` (one move), `lookup` (the
  references posted under a prefix), `balances` (per account and cost center), and
  `master_data` (accounts, cost centers, parties);
- `[erp.templates] move`: a Jinja2 template (sandboxed) rendering the JSON body of one move
  from `move` (reference, date, period, company, currency, debit, credit) and `lines`
  (line_no, account, cost_center, service_line, account_token, debit, credit, amount). Only
  these fields exist: there is no PHI to render.

Behaviour, as the port's contract says (tests/connectors/erp/contract.py runs against a stub ERP):
- idempotent: every move carries its source reference as the idempotency key header, and
  before posting, `lookup` lists what the ERP already holds for the batch (a retry after a
  timeout posts nothing twice); a 409 answer counts as "already there";
- 5xx, 429, timeouts and connection errors are `ErpUnavailable` (retry later); other 4xx are
  `ErpRejected` carrying the ERP's own message (`message`, `error` or `detail` of a JSON
  answer, else its text).
A REST ERP is atomic per move, not per batch: after a rejection the moves posted before it
stay, and resubmitting the batch posts the rest.

Answers read: `lookup` -> a list of references (strings, or objects with `reference`),
bare or under `references`/`items`; `balances` -> a list of {account, cost_center, balance
| debit+credit}, bare or under `balances`; `master_data` -> {accounts, cost_centers,
parties}, each {code: name} or a list of {code, name}.
"""

from __future__ import annotations

import json
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import jinja2
from jinja2.sandbox import SandboxedEnvironment

from isthmus.config.erp import ErpSettings
from isthmus.config.values import ConfigError
from isthmus.ledger.batch import JournalBatch
from isthmus.ports.erp import (
    BalanceKey,
    ErpRejected,
    ErpUnavailable,
    MasterData,
    MoveSpec,
    PostResult,
    move_specs,
)

DEFAULT_ENDPOINTS = {
    "post": "POST /moves",
    "lookup": "GET /moves?prefix={prefix}",
    "balances": "GET /balances?period={period}",
    "master_data": "GET /master-data",
}
DEFAULT_MOVE_TEMPLATE = """{
  "reference": {{ move.reference | tojson }},
  "date": {{ move.date | tojson }},
  "company": {{ move.company | tojson }},
  "currency": {{ move.currency | tojson }},
  "lines": [{% for x in lines %}
    {"account": {{ x.account | tojson }}, "cost_center": {{ x.cost_center | tojson }},
     "debit": {{ x.debit | tojson }}, "credit": {{ x.credit | tojson }},
     "memo": {{ x.description | tojson }}}{{ "," if not loop.last }}{% endfor %}
  ]
}"""


def move_context(spec: MoveSpec) -> dict[str, Any]:
    """What a move template may use: amounts as strings (exact decimals), no PHI."""
    lines = [
        {
            "line_no": x.line_no,
            "account": x.account,
            "cost_center": x.dims.cost_center,
            "company": x.dims.company,
            "service_line": x.dims.service_line,
            "account_token": x.dims.account_token,
            "debit": str(x.debit),
            "credit": str(x.credit),
            "amount": str(x.debit - x.credit),
            "description": " ".join(
                p for p in (f"#{x.line_no}", x.dims.service_line, x.dims.account_token) if p
            ),
        }
        for x in spec.lines
    ]
    move = {
        "reference": spec.reference,
        "date": spec.posted_on.isoformat(),
        "period": spec.period,
        "company": spec.company,
        "currency": spec.currency,
        "debit": str(spec.debit),
        "credit": str(spec.credit),
    }
    return {"move": move, "lines": lines}


class RestErp:
    """The ERP port over a configured JSON-over-HTTP API: endpoints, auth header and move
    template from the [erp] table."""

    def __init__(
        self,
        base_url: str,
        token: str,
        *,
        endpoints: dict[str, str] | None = None,
        move_template: str = DEFAULT_MOVE_TEMPLATE,
        auth_header: str = "Authorization",
        auth_scheme: str = "Bearer",
        idempotency_header: str = "Idempotency-Key",
        timeout_s: float = 30.0,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.base = base_url.rstrip("/")
        self.endpoints = {**DEFAULT_ENDPOINTS, **(endpoints or {})}
        for name, spec in self.endpoints.items():
            if len(spec.split(" ", 1)) != 2 or not spec.split(" ", 1)[1].startswith("/"):
                raise ConfigError(f"erp.endpoints.{name} must be 'METHOD /path', got {spec!r}")
        try:
            self._template = SandboxedEnvironment(
                undefined=jinja2.StrictUndefined, autoescape=False
            ).from_string(move_template)
        except jinja2.TemplateSyntaxError as exc:
            raise ConfigError(f"erp.templates.move: {exc.message} (line {exc.lineno})") from exc
        headers = {"Accept": "application/json"}
        if token:
            headers[auth_header] = f"{auth_scheme} {token}".strip()
        self.idempotency_header = idempotency_header
        self._http = httpx.Client(timeout=timeout_s, transport=transport, headers=headers)
        self.calls = 0

    @classmethod
    def from_settings(cls, erp: ErpSettings) -> RestErp:
        token = _read_secret(erp.token_file) if erp.token_file else ""
        template = erp.templates.get("move", DEFAULT_MOVE_TEMPLATE)
        if template.startswith("@"):  # "@/path/to/move.json.j2": the template in a file
            template = _read_secret(Path(template[1:]))
        return cls(
            erp.url,
            token,
            endpoints=erp.endpoints,
            move_template=template,
            auth_header=erp.auth_header,
            auth_scheme=erp.auth_scheme,
            idempotency_header=erp.idempotency_header,
            timeout_s=erp.timeout_s,
        )

    def close(self) -> None:
        self._http.close()

    # --- the port ----------------------------------------------------------------------
    def post_batch(self, batch: JournalBatch) -> PostResult:
        specs = move_specs(batch)
        already = self.find_posted(batch.batch_id)  # check before (re)trying
        posted: list[str] = []
        existing = [s.reference for s in specs if s.reference in already]
        for spec in specs:
            if spec.reference in already:
                continue
            body = self.render(spec)
            status, _data = self._call(
                "post",
                {"reference": spec.reference, "batch_id": batch.batch_id},
                body=body,
                key=spec.reference,
                ok_conflict=True,
            )
            (existing if status == 409 else posted).append(spec.reference)
        lines = sum(len(s.lines) for s in specs if s.reference in posted)
        return PostResult(batch.batch_id, tuple(posted), tuple(existing), lines)

    def render(self, spec: MoveSpec) -> bytes:
        try:
            text = self._template.render(**move_context(spec))
            json.loads(text)
        except jinja2.TemplateError as exc:
            raise ErpRejected(f"{spec.reference}: erp.templates.move fails: {exc}") from exc
        except ValueError as exc:
            raise ErpRejected(
                f"{spec.reference}: erp.templates.move renders invalid JSON: {exc}"
            ) from exc
        return text.encode()

    def find_posted(self, batch_id: str = "") -> set[str]:
        prefix = f"isthmus:{batch_id}:" if batch_id else "isthmus:"
        _status, data = self._call("lookup", {"prefix": prefix, "batch_id": batch_id})
        if isinstance(data, dict):
            data = data.get("references", data.get("items", []))
        refs = {str(r.get("reference", "")) if isinstance(r, dict) else str(r) for r in data or []}
        return {r for r in refs if r.startswith(prefix)}

    def balances(self, period: str | None = None) -> dict[BalanceKey, Decimal]:
        _status, data = self._call("balances", {"period": period or ""})
        rows = data.get("balances", []) if isinstance(data, dict) else data or []
        out: dict[BalanceKey, Decimal] = {}
        for r in rows:
            try:
                amount = (
                    Decimal(str(r["balance"]))
                    if "balance" in r
                    else Decimal(str(r.get("debit", 0))) - Decimal(str(r.get("credit", 0)))
                )
                key = (str(r["account"]), str(r.get("cost_center") or ""))
            except (KeyError, TypeError, InvalidOperation) as exc:
                raise ErpUnavailable(f"ERP balances answer unreadable at {r!r}") from exc
            if amount:
                out[key] = out.get(key, Decimal(0)) + amount
        return out

    def master_data(self) -> MasterData:
        _status, data = self._call("master_data", {})
        if not isinstance(data, dict):
            raise ErpUnavailable("ERP master data answer is not a JSON object")
        return MasterData(
            _codes(data.get("accounts")),
            _codes(data.get("cost_centers")),
            _codes(data.get("parties")),
        )

    # --- HTTP --------------------------------------------------------------------------
    def _call(
        self,
        name: str,
        values: dict[str, str],
        *,
        body: bytes | None = None,
        key: str = "",
        ok_conflict: bool = False,
    ) -> tuple[int, Any]:
        method, path = self.endpoints[name].split(" ", 1)
        try:
            url = self.base + path.format(**{k: quote(v, safe="") for k, v in values.items()})
        except (KeyError, IndexError) as exc:
            raise ConfigError(f"erp.endpoints.{name}: unknown placeholder {exc}") from exc
        headers = {"Content-Type": "application/json"} if body is not None else {}
        if key:
            headers[self.idempotency_header] = key
        self.calls += 1
        try:
            resp = self._http.request(method.upper(), url, content=body, headers=headers)
        except httpx.TimeoutException as exc:
            raise ErpUnavailable(f"ERP did not answer {name} in time: {exc}") from exc
        except httpx.TransportError as exc:
            raise ErpUnavailable(f"ERP unreachable at {url}: {exc}") from exc
        if resp.status_code == 409 and ok_conflict:
            return 409, None
        if resp.status_code == 429 or resp.status_code >= 500:
            raise ErpUnavailable(
                f"ERP answered HTTP {resp.status_code} to {name}", retry_after=_retry_after(resp)
            )
        if resp.status_code >= 400:
            raise ErpRejected(
                f"ERP refused {name} (HTTP {resp.status_code}): "
                f"{_message(resp)}" + (f" [{key}]" if key else "")
            )
        if not resp.content:
            return resp.status_code, None
        try:
            return resp.status_code, resp.json()
        except ValueError as exc:
            raise ErpUnavailable(f"ERP sent malformed JSON for {name}") from exc


def _retry_after(resp: httpx.Response) -> float | None:
    """The seconds of a Retry-After header (RFC 9110 section 10.2.3), when it gives them;
    an HTTP date or nothing leaves the backoff to decide."""
    text = resp.headers.get("retry-after", "").strip()
    return float(text) if text.isascii() and text.isdigit() else None


def _message(resp: httpx.Response) -> str:
    try:
        data = resp.json()
    except ValueError:
        return resp.text[:300].strip() or resp.reason_phrase
    if isinstance(data, dict):
        for field in ("message", "error", "detail"):
            value = data.get(field)
            if isinstance(value, str) and value:
                return value
            if isinstance(value, dict | list) and value:
                return json.dumps(value)[:300]
    return json.dumps(data)[:300]


def _codes(value: Any) -> dict[str, str]:
    if isinstance(value, dict):
        return {str(k): str(v) for k, v in value.items()}
    if isinstance(value, list):
        return {
            str(x["code"]): str(x.get("name", ""))
            for x in value
            if isinstance(x, dict) and x.get("code")
        }
    return {}


def _read_secret(path: Path) -> str:
    try:
        return path.read_text().strip()
    except OSError as exc:
        raise ConfigError(f"{path}: {exc.strerror}") from exc
