"""[erp]: where sealed batches go (a file drop, Tryton JSON-RPC or a REST API) and how the
hub waits for an ERP that is down."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from isthmus.config.values import ConfigError, str_map, subtable


@dataclass(frozen=True)
class ErpSettings:
    """Where sealed batches go: `file` (CSV/JSONL drop folder) or `tryton` (JSON-RPC).

    [erp] kind = "tryton", url, database, user, password_file (the password is never in the
    config itself), company (label only: the Tryton user's current company is used),
    journal (code), account_map (hub code -> Tryton code, when the charts differ).
    kind = "rest" (connectors/erp_rest.py): url (base), token_file, auth_header,
    auth_scheme, idempotency_header, [erp.endpoints] ("METHOD /path{placeholders}" for
    post, lookup, balances, master_data) and [erp.templates] move (Jinja2 JSON body).
    While the ERP is down, retries back off up to retry_max_s and the breaker waits
    breaker_cooldown_s; `serve` pulls master data every master_data_every_s (0: never).
    """

    kind: Literal["file", "tryton", "rest"] = "file"
    url: str = "http://127.0.0.1:8000"
    database: str = ""
    user: str = "admin"
    password_file: Path | None = None
    company: str = ""
    journal: str = "HUB"
    account_map: dict[str, str] = field(default_factory=dict)
    timeout_s: float = 60.0
    retry_max_s: float = 60.0
    breaker_cooldown_s: float = 30.0
    master_data_every_s: float = 3600.0
    token_file: Path | None = None
    auth_header: str = "Authorization"
    auth_scheme: str = "Bearer"
    idempotency_header: str = "Idempotency-Key"
    endpoints: dict[str, str] = field(default_factory=dict)
    templates: dict[str, str] = field(default_factory=dict)


def erp_from_table(raw: dict[str, Any]) -> ErpSettings:
    """The [erp] table, checked."""
    kind = raw.get("kind", "file")
    if kind not in ("file", "tryton", "rest"):
        raise ConfigError(f"erp.kind must be file, tryton or rest, got {kind!r}")
    if kind == "tryton" and not raw.get("database"):
        raise ConfigError("erp.database is required when erp.kind is tryton")
    if kind == "rest" and not raw.get("url"):
        raise ConfigError("erp.url is required when erp.kind is rest")
    for name in ("timeout_s", "retry_max_s", "breaker_cooldown_s", "master_data_every_s"):
        value = raw.get(name, 0)
        if not isinstance(value, int | float) or value < 0:
            raise ConfigError(f"erp.{name} must be a number >= 0, got {value!r}")
    pw = raw.get("password_file")
    token = raw.get("token_file")
    return ErpSettings(
        kind=kind,
        url=str(raw.get("url", ErpSettings.url)),
        database=str(raw.get("database", "")),
        user=str(raw.get("user", "admin")),
        password_file=Path(pw) if pw else None,
        company=str(raw.get("company", "")),
        journal=str(raw.get("journal", "HUB")),
        account_map=str_map(subtable(raw, "account_map"), "erp.account_map"),
        timeout_s=float(raw.get("timeout_s", 60.0)),
        retry_max_s=float(raw.get("retry_max_s", 60.0)),
        breaker_cooldown_s=float(raw.get("breaker_cooldown_s", 30.0)),
        master_data_every_s=float(raw.get("master_data_every_s", 3600.0)),
        token_file=Path(token) if token else None,
        auth_header=str(raw.get("auth_header", "Authorization")),
        auth_scheme=str(raw.get("auth_scheme", "Bearer")),
        idempotency_header=str(raw.get("idempotency_header", "Idempotency-Key")),
        endpoints=str_map(subtable(raw, "endpoints"), "erp.endpoints"),
        templates=str_map(subtable(raw, "templates"), "erp.templates"),
    )
