"""Typed settings, loaded once at start from one TOML file plus environment overrides.

The hub runs with no file at all: the embedded defaults below listen on 127.0.0.1 only and
carry an EMPTY chart of mapping tables, so every charge waits behind a mapping work item
until the site maps it (never posting to demonstration accounts). The demonstration chart
(demo/chart.py) is `isthmus demo`'s, or a file's that asks for it: `[mappings] include =
"demo"`, its tables then merged under the file's own rows. A file replaces any other table
it names; an unknown table or key is refused with its path and a guess (config_keys.py,
known_keys).
Environment overrides: ISTHMUS_DATA_DIR, ISTHMUS_MLLP_PORT, ISTHMUS_HTTP_PORT,
ISTHMUS_HOST, ISTHMUS_STORE, ISTHMUS_BUS, ISTHMUS_TOKEN_SECRET, ISTHMUS_WORKERS
(0: this process only listens; run the flows elsewhere), ISTHMUS_SQLITE_SYNCHRONOUS,
ISTHMUS_PG_DSN, ISTHMUS_PG_SCHEMA, ISTHMUS_NATS_URL, ISTHMUS_NATS_STREAM,
ISTHMUS_LOG_FORMAT, ISTHMUS_LOG_LEVEL, ISTHMUS_TRACING_EXPORTER.
"""

from __future__ import annotations

import importlib.util
import ipaddress
import os
import tomllib
from dataclasses import dataclass, field, fields, replace
from datetime import date
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any, Literal

from isthmus.config_keys import LEAF, OPEN, Entries, Schema, keys_of, unknown
from isthmus.errors import ConfigurationError
from isthmus.flows import supply_state
from isthmus.formats.hl7v2.triggers import policy_table
from isthmus.governance import allowlist, oidc, ownership
from isthmus.governance.oidc import OidcSettings
from isthmus.ledger.supply import SupplyAccounts

Summarization = Literal["detailed", "summary"]
ClosedPeriodPolicy = Literal["reject", "next_open"]


class ConfigError(ConfigurationError, ValueError):
    """The configuration is invalid; the operator must fix the file or variable named."""


@dataclass(frozen=True)
class RevenueMapping:
    """Where revenue of one charge code (FT1-7) posts: its revenue account and service line."""

    revenue_account: str
    service_line: str


TRANSACTION_KINDS = ("charge", "credit", "payment", "adjustment")
TRANSACTION_TYPES = {"CG": "charge", "CD": "credit", "PY": "payment", "AJ": "adjustment"}


CHANNEL_TRANSPORTS = ("mllp", "fhir", "folder", "sftp")
SFTP_KEYS = ("user", "key_file", "known_hosts", "path", "poll_s")  # sftp channels only


@dataclass(frozen=True)
class ChannelSettings:
    """[channels.<name>] (issue 18): one named inbound feed.

    `transport` says how messages come in: "mllp" (a listener on `host`:`port`; the
    channel named "mllp" listens on [hub] mllp_port), "fhir" (the FHIR API, the channel
    named "fhir") or "folder" (a watched drop folder at `folder`; empty: the hub's own
    `<data_dir>/drop`). Left out, it is inferred: "mllp" for a channel named "mllp" or one
    with a `port`, "fhir" for the one named "fhir", else "folder" (the file channels,
    x12, settlement, ...). `senders` are the sending identities an MLLP channel takes,
    `MSH-3^MSH-4` (first components; empty: any); `ack_application`/`ack_facility` are
    the ACK's own MSH-3/MSH-4. TLS keys left out take [hub] tls_cert/tls_key and [tls]
    client_ca."""

    name: str
    summarization: Summarization = "summary"
    currency: str = "USD"
    # HL7 v2: message type or TYPE^TRIGGER -> accept | ignore | refuse (formats.hl7v2.triggers)
    messages: dict[str, str] = field(default_factory=dict)
    # FHIR: where charges come from, "chargeitem" or "claim" (formats.fhir.claim_charges)
    charges_from: str = "chargeitem"
    transport: str = ""  # "" until parsed: channel_transport() infers it
    host: str = ""  # mllp: empty means [hub] host
    port: int | None = None  # mllp: None means [hub] mllp_port (the "mllp" channel only)
    tls_cert: Path | None = None
    tls_key: Path | None = None
    tls_client_ca: Path | None = None
    senders: tuple[str, ...] = ()
    ack_application: str = "ISTHMUS"
    ack_facility: str = "ISTHMUS"
    folder: Path | None = None
    # sftp pickup (connectors/sftp_pickup.py): `host`:`port` (22), `user`, `key_file`,
    # `known_hosts` and the remote folder `path` (its inbound/, done/, failed/), polled
    # every `poll_s` seconds
    user: str = ""
    key_file: Path | None = None
    known_hosts: Path | None = None
    path: str = ""
    poll_s: float = 30.0


def channel_transport(name: str, spec: dict[str, Any]) -> str:
    """The transport a `[channels.<name>]` table names, or the one inferred (see
    ChannelSettings), so files written before channels had transports keep working."""
    if "transport" in spec:
        return str(spec["transport"])
    if name == "fhir":
        return "fhir"
    if name == "mllp" or "port" in spec:
        return "mllp"
    return "folder"


def _channel(name: str, spec: dict[str, Any]) -> ChannelSettings:  # noqa: C901 - one branch per channel key, each refused with its path
    """One `[channels.<name>]` table, checked; every error names its dotted key."""
    where = f"channels.{name}"
    if not isinstance(spec, dict):
        raise ConfigError(f"[{where}] must be a table")
    summ = spec.get("summarization", "summary")
    if summ not in ("detailed", "summary"):
        raise ConfigError(f"{where}.summarization must be detailed or summary")
    try:
        table = policy_table(spec.get("messages", {}), f"{where}.messages")
    except ValueError as exc:
        raise ConfigError(str(exc)) from exc
    charges_from = spec.get("charges_from", "chargeitem")
    if charges_from not in ("chargeitem", "claim"):
        raise ConfigError(f"{where}.charges_from must be chargeitem or claim")
    transport = channel_transport(name, spec)
    if transport not in CHANNEL_TRANSPORTS:
        raise ConfigError(
            f"{where}.transport must be one of {', '.join(CHANNEL_TRANSPORTS)}, got {transport!r}"
        )
    if transport == "fhir" and name != "fhir":
        raise ConfigError(
            f"{where}.transport: the FHIR API is the one channel named "
            '"fhir"; name this channel fhir or choose mllp or folder'
        )
    port = spec.get("port")
    if port is not None and (
        isinstance(port, bool) or not isinstance(port, int) or not 0 <= port <= 65535
    ):
        raise ConfigError(f"{where}.port must be a TCP port from 0 to 65535, got {port!r}")
    if transport == "sftp" and port == 0:
        raise ConfigError(f"{where}.port must be the SFTP server's port (1 to 65535)")
    if transport == "mllp" and name != "mllp" and port is None:
        raise ConfigError(
            f'{where}.port is required: an MLLP channel other than "mllp" '
            "listens on a port of its own"
        )
    if transport == "sftp":
        _sftp_channel(where, spec)
    else:
        for key in SFTP_KEYS:
            if key in spec:
                raise ConfigError(
                    f"{where}.{key} is for sftp channels; this one's transport is {transport}"
                )
    if transport != "mllp":
        for key in (
            "port",
            "host",
            "senders",
            "ack_application",
            "ack_facility",
            "tls_cert",
            "tls_key",
            "tls_client_ca",
        ):
            if key in spec and not (transport == "sftp" and key in ("port", "host")):
                raise ConfigError(
                    f"{where}.{key} is for MLLP channels; this one's transport is {transport}"
                )
    if "folder" in spec and transport != "folder":
        raise ConfigError(
            f"{where}.folder is for folder channels; this one's transport is {transport}"
        )
    senders = spec.get("senders", [])
    if not isinstance(senders, list) or not all(
        isinstance(x, str) and x.count("^") == 1 and x.strip("^") for x in senders
    ):
        raise ConfigError(
            f'{where}.senders must be a list of "MSH-3^MSH-4" identities, e.g. ["EPIC^MAIN"]'
        )
    texts: dict[str, str] = {}
    for key in ("host", "ack_application", "ack_facility"):
        value = spec.get(key, getattr(ChannelSettings, key))
        if not isinstance(value, str) or any(c in value for c in "|^~\\&\r\n"):
            raise ConfigError(f"{where}.{key} must be text without HL7 delimiters")
        texts[key] = value
    paths = {
        k: Path(str(spec[k])) if spec.get(k) else None
        for k in ("tls_cert", "tls_key", "tls_client_ca", "folder", "key_file", "known_hosts")
    }
    if (paths["tls_cert"] is None) != (paths["tls_key"] is None):
        raise ConfigError(f"{where}.tls_cert and {where}.tls_key go together")
    return ChannelSettings(
        name=name,
        summarization=summ,
        currency=str(spec.get("currency", "USD")),
        messages=dict(table),
        charges_from=charges_from,
        transport=transport,
        port=port,
        senders=tuple(x.strip() for x in senders),
        host=texts["host"],
        ack_application=texts["ack_application"],
        ack_facility=texts["ack_facility"],
        tls_cert=paths["tls_cert"],
        tls_key=paths["tls_key"],
        tls_client_ca=paths["tls_client_ca"],
        folder=paths["folder"],
        user=str(spec.get("user", "")),
        key_file=paths["key_file"],
        known_hosts=paths["known_hosts"],
        path=str(spec.get("path", "")),
        poll_s=float(spec.get("poll_s", ChannelSettings.poll_s)),
    )


def _sftp_channel(where: str, spec: dict[str, Any]) -> None:
    """The keys an sftp pickup needs (host keys are always checked: known_hosts)."""
    for key in ("host", "user", "key_file", "known_hosts", "path"):
        if not isinstance(spec.get(key), str) or not spec[key].strip():
            raise ConfigError(f"{where}.{key} is required when transport is sftp (text)")
    poll = spec.get("poll_s", ChannelSettings.poll_s)
    if isinstance(poll, bool) or not isinstance(poll, int | float) or not 0 < poll < 86_400:
        raise ConfigError(f"{where}.poll_s must be seconds above 0, got {poll!r}")


def _check_channel_ports(
    channels: dict[str, ChannelSettings], hub_port: int, hub_tls: bool
) -> None:
    """Two MLLP channels may not share a port (0, a free one, excepted); a channel's own
    client CA needs a certificate, its own or the hub's."""
    seen: dict[int, str] = {hub_port: "mllp"} if "mllp" not in channels else {}
    for ch in channels.values():
        if ch.transport != "mllp":
            continue
        port = hub_port if ch.port is None else ch.port
        if port and port in seen and seen[port] != ch.name:
            raise ConfigError(
                f"channels.{ch.name}.port {port} is already the port of channel {seen[port]}"
            )
        seen[port] = ch.name
        if ch.tls_client_ca is not None and ch.tls_cert is None and not hub_tls:
            raise ConfigError(
                f"channels.{ch.name}.tls_client_ca needs a certificate: "
                f"channels.{ch.name}.tls_cert and tls_key, or [hub] tls_cert"
            )


@dataclass(frozen=True)
class Mappings:
    """Enrichment: department -> cost center, facility -> ERP company, code -> revenue.

    Empty by default (a safe default: nothing posts unmapped); `include` names a chart the
    tables start from ("demo", demo/chart.py), "" for none."""

    department_cost_center: dict[str, str] = field(default_factory=dict)
    facility_company: dict[str, str] = field(default_factory=dict)
    charge_codes: dict[str, RevenueMapping] = field(default_factory=dict)
    include: str = ""
    # FT1-6 transaction type (HL7 table 0017) -> charge | credit | payment | adjustment
    transaction_types: dict[str, str] = field(default_factory=lambda: dict(TRANSACTION_TYPES))


@dataclass(frozen=True)
class PostingPolicy:
    """[posting]: the A/R account, the closed periods and what happens to a late posting
    into one (`reject` or `next_open`, ledger/periods.py), and the refunds-payable account."""

    ar_account: str = "1200"
    closed_periods: tuple[str, ...] = ()
    closed_period_policy: ClosedPeriodPolicy = "next_open"
    refunds_payable_account: str = "2100"


@dataclass(frozen=True)
class RefundSettings:
    """[refunds]: above `approval_threshold` (a decimal string, in the refund's currency) a
    refund waits for a second person's approval (segregation of duties). The threshold
    holds for the sum of an account's posted and pending refunds over the last
    `approval_window_days` days (0: each request alone), so split refunds add up."""

    approval_threshold: Decimal = Decimal("500.00")
    approval_window_days: int = 30


def _refunds(raw: dict[str, Any]) -> RefundSettings:
    threshold = _decimal(raw.get("approval_threshold", "500.00"), "refunds.approval_threshold")
    days = raw.get("approval_window_days", RefundSettings.approval_window_days)
    if isinstance(days, bool) or not isinstance(days, int) or not 0 <= days <= 3660:
        raise ConfigError(
            "refunds.approval_window_days must be a whole number of days "
            f"from 0 to 3660, got {days!r}"
        )
    return RefundSettings(approval_threshold=threshold, approval_window_days=days)


@dataclass(frozen=True)
class ClaimSettings:
    """[claims] (issue 20): the 837/270/276 envelope ids (ISA06/GS02 `sender_id`, ISA08/GS03
    `receiver_id`, ISA15 `usage` P or T), where outbound X12 files go (`destination`: a
    file or sftp `[destinations.<name>]`; else the folder `outbound_dir`, "" = <data
    dir>/outbound/claims), a payer's expected turnaround before a 276 asks
    (`status_after_days`, per payer in `turnaround_days`), its appeal deadline (`appeal_days`,
    per payer in `appeal_deadline_days`), the write-off amount above which a second person
    approves (`write_off_threshold`), the underpayment tolerance per claim
    (`underpayment_tolerance`) and fee schedule CSVs per "payer/plan" (`fee_schedules`)."""

    sender_id: str = "ISTHMUS"
    receiver_id: str = "CLEARINGHOUSE"
    usage: str = "P"
    currency: str = "USD"
    outbound_dir: str = ""
    destination: str = ""  # a [destinations.<name>] of kind file or sftp, over outbound_dir
    status_after_days: int = 30
    appeal_days: int = 180
    write_off_threshold: Decimal = Decimal("100.00")
    underpayment_tolerance: Decimal = Decimal("1.00")
    turnaround_days: dict[str, int] = field(default_factory=dict)
    appeal_deadline_days: dict[str, int] = field(default_factory=dict)
    fee_schedules: dict[str, str] = field(default_factory=dict)


def _claim_days(v: Any, where: str) -> int:
    if isinstance(v, bool) or not isinstance(v, int) or not 0 <= v <= 3660:
        raise ConfigError(f"{where} must be a whole number of days from 0 to 3660, got {v!r}")
    return v


def _claims(raw: dict[str, Any]) -> ClaimSettings:
    d = ClaimSettings()
    usage = str(raw.get("usage", d.usage))
    if usage not in ("P", "T"):
        raise ConfigError(f"claims.usage must be P or T, got {usage!r}")
    return ClaimSettings(
        sender_id=str(raw.get("sender_id", d.sender_id)),
        receiver_id=str(raw.get("receiver_id", d.receiver_id)),
        usage=usage,
        currency=str(raw.get("currency", d.currency)),
        outbound_dir=str(raw.get("outbound_dir", "")),
        destination=str(raw.get("destination", "")),
        status_after_days=_claim_days(
            raw.get("status_after_days", d.status_after_days), "claims.status_after_days"
        ),
        appeal_days=_claim_days(raw.get("appeal_days", d.appeal_days), "claims.appeal_days"),
        write_off_threshold=_decimal(
            raw.get("write_off_threshold", "100.00"), "claims.write_off_threshold"
        ),
        underpayment_tolerance=_decimal(
            raw.get("underpayment_tolerance", "1.00"), "claims.underpayment_tolerance"
        ),
        turnaround_days={
            str(k): _claim_days(v, f"claims.turnaround_days.{k}")
            for k, v in _table(raw, "turnaround_days").items()
        },
        appeal_deadline_days={
            str(k): _claim_days(v, f"claims.appeal_deadline_days.{k}")
            for k, v in _table(raw, "appeal_deadline_days").items()
        },
        fee_schedules={str(k): str(v) for k, v in _table(raw, "fee_schedules").items()},
    )


@dataclass(frozen=True)
class LimitSettings:
    """[limits]: the largest HTTP request body (413 above it) and the deepest JSON nesting
    (400 above it) the API routes take (api/json_body.py)."""

    max_body_bytes: int = 8 * 1024 * 1024
    max_json_depth: int = 32


def _limits(raw: dict[str, Any]) -> LimitSettings:
    d = LimitSettings()
    out = LimitSettings(
        **{k: raw.get(k, getattr(d, k)) for k in ("max_body_bytes", "max_json_depth")}
    )
    for name, low, high in (("max_body_bytes", 1024, 1 << 30), ("max_json_depth", 2, 512)):
        value = getattr(out, name)
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            raise ConfigError(f"limits.{name} must be a whole number from {low} to {high}")
    return out


@dataclass(frozen=True)
class RetentionRule:
    """[retention.channels.<name>]: one channel's limits; a key left out takes [retention]'s."""

    raw_days: int | None = None
    ignored_days: int | None = None


@dataclass(frozen=True)
class RetentionSettings:
    """[retention]: how long stored message bodies (patient data) are kept, in days.

    After `raw_days` a message's body is blanked (`isthmus purge`, and daily in `serve`);
    an ignored message's after `ignored_days` (0: as `raw_days`). 0 keeps bodies forever
    (the default). The message row, its lineage, the journal and the audit trail stay.
    The `fhir` channel (resources the FHIR API serves) follows only its own rule."""

    raw_days: int = 0
    ignored_days: int = 0
    channels: dict[str, RetentionRule] = field(default_factory=dict)


def _days(value: object, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 36_500:
        raise ConfigError(
            f"{name} must be a whole number of days from 0 to 36500 "
            f"(0 keeps forever), got {value!r}"
        )
    return value


def _retention(raw: dict[str, Any]) -> RetentionSettings:
    channels: dict[str, RetentionRule] = {}
    for name, spec in _table(raw, "channels").items():
        if not isinstance(spec, dict):
            raise ConfigError(f"[retention.channels.{name}] must be a table")
        channels[str(name)] = RetentionRule(
            **{
                k: _days(spec[k], f"retention.channels.{name}.{k}")
                for k in ("raw_days", "ignored_days")
                if k in spec
            }
        )
    return RetentionSettings(
        raw_days=_days(raw.get("raw_days", 0), "retention.raw_days"),
        ignored_days=_days(raw.get("ignored_days", 0), "retention.ignored_days"),
        channels=channels,
    )


@dataclass(frozen=True)
class PayCode:
    """One pay code of [labor.pay_codes]: hourly rate and the wages expense account."""

    rate: Decimal
    account: str


PAY_CODES = ("regular", "overtime", "differential", "on_call")
# [labor.service_lines]: department -> the service line its labor cost counts against
SERVICE_LINES: dict[str, str] = {
    "RAD": "Imaging",
    "RAD-1": "Imaging",
    "LAB": "Laboratory",
    "ED": "Emergency",
    "PHARM": "Pharmacy",
    "SURG": "Surgery",
    "CARD": "Cardiology",
}


def _default_pay_codes() -> dict[str, PayCode]:
    return {
        "regular": PayCode(Decimal("45.00"), "5100"),
        "overtime": PayCode(Decimal("67.50"), "5110"),
        "differential": PayCode(Decimal("4.00"), "5120"),
        "on_call": PayCode(Decimal("8.00"), "5130"),
    }


@dataclass(frozen=True)
class LaborSettings:
    """[labor]: workforce accruals (flows/labor.py). `employees` (employee id -> home
    department) is a copy of the ERP's master, read-only here; `budgets` are monthly labor
    budgets per department; a department at `budget_alert` (a fraction) of its budget is
    flagged. Pay periods are `pay_period_days` long, counted from `pay_period_anchor`."""

    company: str = "C100"
    accrued_account: str = "2300"
    pay_codes: dict[str, PayCode] = field(default_factory=_default_pay_codes)
    pay_period_days: int = 14
    pay_period_anchor: date = date(2026, 1, 4)
    employees: dict[str, str] = field(default_factory=dict)
    budgets: dict[str, Decimal] = field(default_factory=dict)
    budget_alert: Decimal = Decimal("0.90")
    service_lines: dict[str, str] = field(default_factory=lambda: dict(SERVICE_LINES))


def _decimal(value: object, name: str) -> Decimal:
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise ConfigError(f'{name} must be a decimal string such as "45.00"')
    try:
        out = Decimal(str(value))
    except InvalidOperation as exc:
        raise ConfigError(f"{name} {value!r} is not a decimal") from exc
    if not out.is_finite() or out < 0:
        raise ConfigError(f"{name} {value!r} must be 0 or more")
    return out


def _labor(raw: dict[str, Any]) -> LaborSettings:
    base = LaborSettings()
    codes = dict(base.pay_codes)
    for code, spec in _table(raw, "pay_codes").items():
        if code not in PAY_CODES or not isinstance(spec, dict):
            raise ConfigError(
                f"labor.pay_codes.{code}: one of {', '.join(PAY_CODES)}, "
                "a table with rate and account"
            )
        codes[code] = PayCode(
            _decimal(spec.get("rate", codes[code].rate), f"labor.pay_codes.{code}.rate"),
            str(spec.get("account", codes[code].account)),
        )
    anchor = raw.get("pay_period_anchor", base.pay_period_anchor)
    if isinstance(anchor, str):
        anchor = date.fromisoformat(anchor)
    if not isinstance(anchor, date):
        raise ConfigError("labor.pay_period_anchor must be a date (YYYY-MM-DD)")
    days = int(raw.get("pay_period_days", base.pay_period_days))
    if days < 1:
        raise ConfigError("labor.pay_period_days must be 1 or more")
    return LaborSettings(
        company=str(raw.get("company", base.company)),
        accrued_account=str(raw.get("accrued_account", base.accrued_account)),
        pay_codes=codes,
        pay_period_days=days,
        pay_period_anchor=anchor,
        employees=_str_map(_table(raw, "employees"), "labor.employees"),
        budgets={
            str(k): _decimal(v, f"labor.budgets.{k}") for k, v in _table(raw, "budgets").items()
        },
        budget_alert=_decimal(raw.get("budget_alert", "0.90"), "labor.budget_alert"),
        service_lines=_str_map(_table(raw, "service_lines"), "labor.service_lines")
        or dict(SERVICE_LINES),
    )


@dataclass(frozen=True)
class SettlementPolicy:
    """[settlement]: where card settlements and bank deposits post (`ledger.settlement`),
    the ERP company of the bank side, and how many days an 835 payment or a deposit may
    stay unmatched before `isthmus recon deposits` exits 4."""

    bank_account: str = "1050"
    card_clearing_account: str = "1020"
    cash_clearing_account: str = "1010"  # where 835 claim payments are debited
    fees_account: str = "6100"
    company: str = "C100"
    match_limit_days: int = 30


def _settlement(raw: dict[str, Any]) -> SettlementPolicy:
    d = SettlementPolicy()
    policy = SettlementPolicy(
        bank_account=str(raw.get("bank_account", d.bank_account)),
        card_clearing_account=str(raw.get("card_clearing_account", d.card_clearing_account)),
        cash_clearing_account=str(raw.get("cash_clearing_account", d.cash_clearing_account)),
        fees_account=str(raw.get("fees_account", d.fees_account)),
        company=str(raw.get("company", d.company)),
        match_limit_days=int(raw.get("match_limit_days", d.match_limit_days)),
    )
    if policy.match_limit_days < 0:
        raise ConfigError("settlement.match_limit_days must be 0 or more")
    return policy


@dataclass(frozen=True)
class ReliabilitySettings:
    """[reliability]: retries and their backoff, workers and bus partitions, message size
    and MLLP connection limits, SQLite durability, the HL7 control-id reuse window, and the
    drop folder's quiet period."""

    max_attempts: int = 8
    backoff_base_s: float = 0.5
    backoff_max_s: float = 300.0
    workers: int = 2  # 0: this process only listens; above 0: it runs one worker loop
    partitions: int = 4  # bus partitions, site-wide: every process must agree
    max_message_bytes: int = 1_048_576
    # MLLP: an idle connection closes after idle_timeout_s; over either connection limit
    # the oldest idle connection (the address's own, or any) makes room for a new one
    idle_timeout_s: float = 60.0
    mllp_max_connections: int = 256
    mllp_max_connections_per_peer: int = 64
    sqlite_synchronous: Literal["FULL", "NORMAL"] = "FULL"
    # an HL7 identity (sender + MSH-10) reused with other content: AR 205 inside this many
    # hours after the first, a new message (counter restart, noted) after it
    control_id_reuse_window_hours: float = 24.0
    # the drop folder takes a file written in place once unchanged this long (and not open
    # for writing); a file renamed into inbound/ from an in-flight name is taken at once
    drop_quiet_period_s: float = 5.0


@dataclass(frozen=True)
class ScaleOutSettings:
    """Scale-out adapters. Empty schema/stream: derived from the data directory, so one
    PostgreSQL database and one NATS server can hold several independent hubs (and tests)."""

    pg_dsn: str = "postgresql://postgres@127.0.0.1:5432/isthmus"
    pg_schema: str = ""
    nats_servers: str = "nats://127.0.0.1:4222"
    nats_stream: str = ""


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


def _erp(raw: dict[str, Any]) -> ErpSettings:
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
        account_map=_str_map(_table(raw, "account_map"), "erp.account_map"),
        timeout_s=float(raw.get("timeout_s", 60.0)),
        retry_max_s=float(raw.get("retry_max_s", 60.0)),
        breaker_cooldown_s=float(raw.get("breaker_cooldown_s", 30.0)),
        master_data_every_s=float(raw.get("master_data_every_s", 3600.0)),
        token_file=Path(token) if token else None,
        auth_header=str(raw.get("auth_header", "Authorization")),
        auth_scheme=str(raw.get("auth_scheme", "Bearer")),
        idempotency_header=str(raw.get("idempotency_header", "Idempotency-Key")),
        endpoints=_str_map(_table(raw, "endpoints"), "erp.endpoints"),
        templates=_str_map(_table(raw, "templates"), "erp.templates"),
    )


DESTINATION_KINDS = ("mllp", "webhook", "nats", "fhir", "sftp", "file")


@dataclass(frozen=True)
class DestinationSettings:
    """[destinations.<name>] (issue 18): one outbound system and how to reach it.

    `kind` picks the adapter (ports/destination.py); the keys a kind does not
    use are ignored by it. `allow` is the destination's field allow-list (its PHI policy:
    only these fields of a status event leave; empty sends the event's non-PHI defaults).
    Delivery is at least once, in order per key, with persisted retries (`max_attempts`,
    backoff from `backoff_base_s` up to `backoff_max_s`; an outage is retried without end,
    never dead-lettered) and a circuit breaker (`breaker_cooldown_s`)."""

    name: str
    kind: str = "file"
    host: str = "127.0.0.1"
    port: int = 0
    url: str = ""  # webhook and FHIR base URL
    subject: str = ""  # nats: the external subject (its stream must exist or is created)
    servers: str = ""  # nats: empty means [nats] servers
    path: str = ""  # file: the folder; sftp: the remote folder
    user: str = ""  # sftp
    key_file: Path | None = None  # sftp: private key
    known_hosts: Path | None = None  # sftp: the server's host key must be in it
    secret_file: Path | None = None  # webhook: the HMAC-SHA256 key
    token_file: Path | None = None  # webhook/fhir: a bearer token
    tls_ca: Path | None = None  # mllp/webhook/fhir: the CA that signs the peer's certificate
    tls_cert: Path | None = None  # mllp/webhook/fhir: our client certificate (mutual TLS)
    tls_key: Path | None = None
    sending_application: str = "ISTHMUS"  # mllp: MSH-3/MSH-4 of what we send
    sending_facility: str = ""
    receiving_application: str = ""  # mllp: MSH-5/MSH-6
    receiving_facility: str = ""
    allow: tuple[str, ...] = ()
    batch: int = 1  # deliveries per send; file and sftp write them into one file
    timeout_s: float = 10.0
    max_attempts: int = 8
    backoff_base_s: float = 0.5
    backoff_max_s: float = 60.0
    breaker_cooldown_s: float = 30.0


def _destinations(raw: dict[str, Any]) -> dict[str, DestinationSettings]:  # noqa: C901 - one branch per destination key, each refused with its path
    out: dict[str, DestinationSettings] = {}
    paths = (
        "key_file",
        "known_hosts",
        "secret_file",
        "token_file",
        "tls_ca",
        "tls_cert",
        "tls_key",
    )
    for name, spec in raw.items():
        where = f"destinations.{name}"
        if name == "erp":  # the [erp] destination's name in `isthmus destinations`
            raise ConfigError(f"[{where}]: the name erp is the [erp] table's; choose another")
        if not isinstance(spec, dict):
            raise ConfigError(f"[{where}] must be a table")
        kind = spec.get("kind", "file")
        if kind not in DESTINATION_KINDS:
            raise ConfigError(
                f"{where}.kind must be one of {', '.join(DESTINATION_KINDS)}, got {kind!r}"
            )
        values: dict[str, Any] = dict(spec)
        for key in paths:
            if key in values:
                values[key] = Path(str(values[key])) if values[key] else None
        if "allow" in values:
            allow = values["allow"]
            if not isinstance(allow, list) or not all(isinstance(a, str) for a in allow):
                raise ConfigError(f"{where}.allow must be a list of field names")
            values["allow"] = tuple(allow)
        for key in ("batch", "max_attempts"):
            if key in values and (not isinstance(values[key], int) or values[key] < 1):
                raise ConfigError(f"{where}.{key} must be a whole number, 1 or more")
        for key in ("timeout_s", "backoff_base_s", "backoff_max_s", "breaker_cooldown_s"):
            value = values.get(key, 0)
            if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
                raise ConfigError(f"{where}.{key} must be a number >= 0, got {value!r}")
        if kind in ("webhook", "fhir") and not values.get("url"):
            raise ConfigError(f"{where}.url is required when kind is {kind}")
        if kind == "mllp" and not values.get("port"):
            raise ConfigError(f"{where}.port is required when kind is mllp")
        if kind == "nats" and not values.get("subject"):
            raise ConfigError(f"{where}.subject is required when kind is nats")
        if kind in ("file", "sftp") and not values.get("path"):
            raise ConfigError(f"{where}.path is required when kind is {kind}")
        out[str(name)] = DestinationSettings(name=str(name), **values)
    return out


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


def _routes(raw: Any, destinations: dict[str, DestinationSettings]) -> tuple[RouteSettings, ...]:
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


@dataclass(frozen=True)
class SlaSettings:
    """[sla]: how long a charge may take from receipt to the ERP, and a work item may stay
    open (per queue overrides in `queue_age_hours`), before it counts as a breach."""

    charge_post_minutes: float = 60.0
    workitem_age_hours: float = 24.0
    queue_age_hours: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class LogSettings:
    """[logging] format = "text" | "json" (one JSON object a line), level; or
    ISTHMUS_LOG_FORMAT / ISTHMUS_LOG_LEVEL."""

    format: Literal["text", "json"] = "text"
    level: str = ""  # empty: the command decides (WARNING, INFO for serve)


@dataclass(frozen=True)
class TracingSettings:
    """[tracing] exporter = "none" | "console" | "otlp" (the `otlp` extra installs it);
    endpoint for otlp; or ISTHMUS_TRACING_EXPORTER."""

    exporter: Literal["none", "console", "otlp"] = "none"
    endpoint: str = ""
    service_name: str = "isthmus"


@dataclass(frozen=True)
class AlertSettings:
    """[alerts]: rules evaluated every `interval_s`, transitions POSTed to `webhook_url`
    (empty: alerts are off). A rule fires once when its condition starts and resolves once
    when it clears."""

    webhook_url: str = ""
    interval_s: float = 30.0
    queue_age_minutes: float = 240.0  # oldest open work item of a queue
    error_rate: float = 0.05  # rejected messages + dead letters over messages, per window
    error_window_minutes: float = 15.0
    error_min_count: int = 1  # fewer errors than this in the window never fire
    sla_breach: bool = True
    circuit_open: bool = True
    timeout_s: float = 5.0
    retry_max_s: float = 300.0


def _observe_tables(
    raw: dict[str, Any], env: dict[str, str]
) -> tuple[SlaSettings, LogSettings, TracingSettings, AlertSettings]:
    sla_raw = dict(_table(raw, "sla"))
    per_queue = sla_raw.pop("queue_age_hours", {})
    if not isinstance(per_queue, dict):
        raise ConfigError("[sla] queue_age_hours must be a table of queue = hours")
    try:
        sla = replace(
            SlaSettings(),
            **sla_raw,
            queue_age_hours={str(k): float(v) for k, v in per_queue.items()},
        )
        logs = replace(LogSettings(), **_table(raw, "logging"))
        tracing = replace(TracingSettings(), **_table(raw, "tracing"))
        alerts = replace(AlertSettings(), **_table(raw, "alerts"))
    except TypeError as exc:
        raise ConfigError(
            f"invalid setting in [sla], [logging], [tracing] or [alerts]: {exc}"
        ) from exc
    for table, got in (("sla", sla), ("logging", logs), ("tracing", tracing), ("alerts", alerts)):
        for f in fields(got):
            want, value = getattr(type(got)(), f.name), getattr(got, f.name)
            kinds: tuple[type, ...] = (
                (int, float)
                if isinstance(want, (int, float)) and not isinstance(want, bool)
                else (type(want),)
            )
            if not isinstance(value, kinds) or isinstance(value, bool) != isinstance(want, bool):
                raise ConfigError(f"{table}.{f.name} must be {type(want).__name__}, got {value!r}")
    if env.get("ISTHMUS_LOG_FORMAT"):
        logs = replace(logs, format=env["ISTHMUS_LOG_FORMAT"])  # type: ignore[arg-type]
    if env.get("ISTHMUS_LOG_LEVEL"):
        logs = replace(logs, level=env["ISTHMUS_LOG_LEVEL"].upper())
    if env.get("ISTHMUS_TRACING_EXPORTER"):
        tracing = replace(tracing, exporter=env["ISTHMUS_TRACING_EXPORTER"])  # type: ignore[arg-type]
    if logs.level.upper() not in ("", "DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"):
        raise ConfigError(
            f"logging.level must be DEBUG, INFO, WARNING, ERROR or CRITICAL, got {logs.level!r}"
        )
    if logs.format not in ("text", "json"):
        raise ConfigError(f"logging.format must be text or json, got {logs.format!r}")
    if tracing.exporter not in ("none", "console", "otlp"):
        raise ConfigError(
            f"tracing.exporter must be none, console or otlp, got {tracing.exporter!r}"
        )
    if alerts.interval_s <= 0 or alerts.error_window_minutes <= 0:
        raise ConfigError("alerts.interval_s and alerts.error_window_minutes must be > 0")
    return sla, logs, tracing, alerts


@dataclass(frozen=True)
class Settings:
    """Every setting of a site, typed: one TOML file plus environment overrides, read once at
    start."""

    data_dir: Path
    host: str = "127.0.0.1"
    mllp_port: int = 2575
    http_port: int = 8470
    store: Literal["sqlite", "postgresql"] = "sqlite"
    bus: Literal["sqlite", "nats"] = "sqlite"
    tenant: str = "default"
    token_secret: str = ""  # empty: a random per-site key kept in the data directory
    tls_cert: Path | None = None
    tls_key: Path | None = None
    tls_client_ca: Path | None = None  # [tls] client_ca: MLLP clients need a certificate
    ownership: dict[str, frozenset[str]] = field(default_factory=dict)  # [ownership]
    allowlist: dict[str, frozenset[str]] = field(default_factory=dict)  # [allowlist]
    oidc: OidcSettings | None = None  # [oidc]: RS256 JWT bearer tokens too
    # [api] trusted_proxies: peers whose X-Forwarded-For names the client (api/clients.py)
    trusted_proxies: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...] = ()
    channels: dict[str, ChannelSettings] = field(default_factory=dict)
    destinations: dict[str, DestinationSettings] = field(default_factory=dict)
    routes: tuple[RouteSettings, ...] = ()  # [[routes]]
    mappings: Mappings = field(default_factory=Mappings)  # empty: see the module docstring
    posting: PostingPolicy = field(default_factory=PostingPolicy)
    settlement: SettlementPolicy = field(default_factory=SettlementPolicy)
    reliability: ReliabilitySettings = field(default_factory=ReliabilitySettings)
    scaleout: ScaleOutSettings = field(default_factory=ScaleOutSettings)
    erp: ErpSettings = field(default_factory=ErpSettings)
    sla: SlaSettings = field(default_factory=SlaSettings)
    logging: LogSettings = field(default_factory=LogSettings)
    tracing: TracingSettings = field(default_factory=TracingSettings)
    alerts: AlertSettings = field(default_factory=AlertSettings)
    refunds: RefundSettings = field(default_factory=RefundSettings)
    claims: ClaimSettings = field(default_factory=ClaimSettings)  # [claims], issue 20
    limits: LimitSettings = field(default_factory=LimitSettings)  # [limits]
    retention: RetentionSettings = field(default_factory=RetentionSettings)  # [retention]
    labor: LaborSettings = field(default_factory=LaborSettings)
    # [supply] as written: parsed and checked by flows.supply_state.policy_from_table when
    # the hub is wired (app.py), so that config stays free of flow types
    supply: dict[str, Any] = field(default_factory=dict)

    def channel(self, name: str) -> ChannelSettings:
        return self.channels.get(name) or ChannelSettings(
            name=name, transport=channel_transport(name, {})
        )


CHARTS = ("demo",)  # what `[mappings] include` may name


def mappings_from_table(maps: dict[str, Any]) -> Mappings:
    """The mapping tables of a `[mappings]` table: the included chart's rows (if any), then
    the table's own rows over them."""
    include = maps.get("include", "")
    base: dict[str, Any] = {}
    if include:
        if include not in CHARTS:
            raise ConfigError(
                f"mappings.include must be one of {', '.join(CHARTS)} "
                f"(or left out for an empty chart), got {include!r}"
            )
        from isthmus.demo.chart import TABLE  # noqa: PLC0415 - demo/chart.py imports us

        base = TABLE
    codes: dict[str, RevenueMapping] = {}
    for source in (base, maps):
        for code, spec in _table(source, "charge_codes").items():
            if not isinstance(spec, dict) or "revenue_account" not in spec:
                raise ConfigError(f"mappings.charge_codes.{code} needs revenue_account")
            codes[str(code)] = RevenueMapping(
                str(spec["revenue_account"]), str(spec.get("service_line", "General"))
            )
    tables = {
        name: {
            **_str_map(_table(base, name), f"mappings.{name}"),
            **_str_map(_table(maps, name), f"mappings.{name}"),
        }
        for name in ("department_cost_center", "facility_company")
    }
    return Mappings(
        department_cost_center=tables["department_cost_center"],
        facility_company=tables["facility_company"],
        charge_codes=codes,
        include=str(include),
        transaction_types=_transaction_types(_table(maps, "transaction_types")),
    )


def _table(raw: dict[str, Any], name: str) -> dict[str, Any]:
    value = raw.get(name, {})
    if not isinstance(value, dict):
        raise ConfigError(f"[{name}] must be a table")
    return value


def _str_map(raw: dict[str, Any], name: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for k, v in raw.items():
        if not isinstance(v, str):
            raise ConfigError(f"{name}.{k} must be a string, got {type(v).__name__}")
        out[str(k)] = v
    return out


def _trusted_proxies(
    api: dict[str, Any],
) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
    entries = api.get("trusted_proxies", [])
    if not isinstance(entries, list):
        raise ConfigError("api.trusted_proxies must be a list of addresses or networks")
    out = []
    for e in entries:
        try:
            out.append(ipaddress.ip_network(str(e).strip(), strict=False))
        except ValueError as exc:
            raise ConfigError(
                f"api.trusted_proxies: {str(e)[:60]!r} is not an IP address or network"
            ) from exc
    return tuple(out)


def known_keys() -> Schema:
    """Every table and key a config file may hold, from the settings dataclasses above.

    Top-level scalar settings live in [hub]; the scale-out ones in [postgresql] (pg_*) and
    [nats] (nats_*); [ownership], [allowlist], [oidc] and [supply] are parsed by their own
    modules: [oidc] and [supply] are described here by the names those modules take."""
    moved = (
        "tls_client_ca",
        "oidc",
        "trusted_proxies",
        "scaleout",
        "channels",
        "destinations",
        "routes",
    )
    top = keys_of(Settings, skip=moved)
    scale = keys_of(ScaleOutSettings)
    return {
        **{k: node for k, node in top.items() if node is not LEAF},
        "hub": {k: LEAF for k, node in top.items() if node is LEAF},
        "tls": {"client_ca": LEAF},
        "api": {"trusted_proxies": LEAF},
        "postgresql": {k.removeprefix("pg_"): LEAF for k in scale if k.startswith("pg_")},
        "nats": {k.removeprefix("nats_"): LEAF for k in scale if k.startswith("nats_")},
        "channels": Entries(keys_of(ChannelSettings, skip=("name",))),
        "destinations": Entries(keys_of(DestinationSettings, skip=("name",))),
        "routes": LEAF,  # an array of tables: _routes names its unknown keys
        # keys are data domains / ERP destinations: their parsers name the path and list
        # the valid ones, which says more than a guess
        "ownership": OPEN,
        "allowlist": OPEN,
        "oidc": dict.fromkeys(
            (
                "issuer",
                "audience",
                "jwks_file",
                "jwks_url",
                "roles_claim",
                "leeway_s",
                "jwks_max_age_s",
                "jwks_min_refresh_s",
            ),
            LEAF,
        ),
        "supply": {
            **dict.fromkeys(supply_state.KNOWN, OPEN),
            **dict.fromkeys(
                (
                    "company",
                    "currency",
                    "price_tolerance",
                    "ap_owner",
                    "price_tolerance_per_unit",
                    "quantity_tolerance",
                    "unmatched_limit_days",
                ),
                LEAF,
            ),
            "accounts": keys_of(SupplyAccounts),
            "par_levels": Entries(keys_of(supply_state.ParLevel)),
        },
    }


def _transaction_types(raw: dict[str, Any]) -> dict[str, str]:
    """[mappings.transaction_types]: FT1-6 code -> posting kind, over the table 0017 defaults."""
    out = dict(TRANSACTION_TYPES)
    for code, kind in raw.items():
        if kind not in TRANSACTION_KINDS:
            raise ConfigError(
                f"mappings.transaction_types.{code} must be one of "
                f"{', '.join(TRANSACTION_KINDS)}, not {kind!r}"
            )
        out[str(code).strip().upper()] = kind
    return out


def load_settings(  # noqa: C901 - one step per configuration table, in precedence order
    path: Path | None = None, *, data_dir: Path | None = None, env: dict[str, str] | None = None
) -> Settings:
    """Build Settings from defaults, then the TOML file, then the environment, then flags."""
    env = dict(os.environ) if env is None else env
    path = path or (Path(env["ISTHMUS_CONFIG"]) if env.get("ISTHMUS_CONFIG") else None)
    raw: dict[str, Any] = {}
    if path is not None:
        try:
            raw = tomllib.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError as exc:
            raise ConfigError(f"config file {path} does not exist") from exc
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"config file {path} is not valid TOML: {exc}") from exc
    refused = unknown(raw, known_keys())
    if refused:
        raise ConfigError(f"config file {path}: " + "; ".join(refused))
    hub = _table(raw, "hub")
    dd = data_dir or Path(env.get("ISTHMUS_DATA_DIR") or hub.get("data_dir") or "./data")
    s = Settings(data_dir=dd)
    mappings = mappings_from_table(_table(raw, "mappings"))
    channels = {
        str(name): _channel(str(name), spec) for name, spec in _table(raw, "channels").items()
    }
    post = _table(raw, "posting")
    policy = post.get("closed_period_policy", "next_open")
    if policy not in ("reject", "next_open"):
        raise ConfigError("posting.closed_period_policy must be reject or next_open")
    pg, nats = _table(raw, "postgresql"), _table(raw, "nats")
    scaleout = ScaleOutSettings(
        pg_dsn=str(env.get("ISTHMUS_PG_DSN") or pg.get("dsn", ScaleOutSettings.pg_dsn)),
        pg_schema=str(env.get("ISTHMUS_PG_SCHEMA") or pg.get("schema", "")),
        nats_servers=str(
            env.get("ISTHMUS_NATS_URL") or nats.get("servers", ScaleOutSettings.nats_servers)
        ),
        nats_stream=str(env.get("ISTHMUS_NATS_STREAM") or nats.get("stream", "")),
    )
    rel = _table(raw, "reliability")
    try:
        reliability = replace(ReliabilitySettings(), **rel)
        if reliability.control_id_reuse_window_hours < 0:
            raise ConfigError("reliability.control_id_reuse_window_hours must be 0 or more")
        if (
            min(reliability.mllp_max_connections, reliability.mllp_max_connections_per_peer) < 1
            or not reliability.idle_timeout_s > 0
        ):
            raise ConfigError(
                "reliability.mllp_max_connections, mllp_max_connections_per_peer "
                "and idle_timeout_s must be above 0"
            )
        quiet = reliability.drop_quiet_period_s
        if isinstance(quiet, bool) or not isinstance(quiet, int | float) or not 0 <= quiet < 1e6:
            raise ConfigError("reliability.drop_quiet_period_s must be seconds, 0 or more")
        if env.get("ISTHMUS_PARTITIONS"):
            reliability = replace(reliability, partitions=int(env["ISTHMUS_PARTITIONS"]))
        if env.get("ISTHMUS_WORKERS"):
            reliability = replace(reliability, workers=int(env["ISTHMUS_WORKERS"]))
        sync = env.get("ISTHMUS_SQLITE_SYNCHRONOUS", "").upper()
        if sync in ("FULL", "NORMAL"):
            reliability = replace(reliability, sqlite_synchronous=sync)  # type: ignore[arg-type]
        elif sync:
            raise ConfigError("ISTHMUS_SQLITE_SYNCHRONOUS must be FULL or NORMAL")
        s = replace(
            s,
            host=str(env.get("ISTHMUS_HOST") or hub.get("host", s.host)),
            mllp_port=int(env.get("ISTHMUS_MLLP_PORT") or hub.get("mllp_port", s.mllp_port)),
            http_port=int(env.get("ISTHMUS_HTTP_PORT") or hub.get("http_port", s.http_port)),
            store=env.get("ISTHMUS_STORE") or hub.get("store", s.store),  # type: ignore[arg-type]
            bus=env.get("ISTHMUS_BUS") or hub.get("bus", s.bus),  # type: ignore[arg-type]
            tenant=str(hub.get("tenant", s.tenant)),
            token_secret=str(
                env.get("ISTHMUS_TOKEN_SECRET") or hub.get("token_secret", s.token_secret)
            ),
            tls_cert=Path(hub["tls_cert"]) if hub.get("tls_cert") else None,
            tls_key=Path(hub["tls_key"]) if hub.get("tls_key") else None,
            tls_client_ca=(
                Path(_table(raw, "tls")["client_ca"])
                if _table(raw, "tls").get("client_ca")
                else None
            ),
            ownership=ownership.parse(_table(raw, "ownership")),
            allowlist=allowlist.parse(_table(raw, "allowlist")),
            oidc=oidc.parse(_table(raw, "oidc")),
            trusted_proxies=_trusted_proxies(_table(raw, "api")),
            channels=channels,
            mappings=mappings,
            posting=PostingPolicy(
                ar_account=str(post.get("ar_account", "1200")),
                closed_periods=tuple(str(p) for p in post.get("closed_periods", ())),
                closed_period_policy=policy,
                refunds_payable_account=str(post.get("refunds_payable_account", "2100")),
            ),
            reliability=reliability,
            scaleout=scaleout,
            erp=_erp(_table(raw, "erp")),
            settlement=_settlement(_table(raw, "settlement")),
        )
        sla, logs, tracing, alerts = _observe_tables(raw, env)
        s = replace(s, sla=sla, logging=logs, tracing=tracing, alerts=alerts)
        s = replace(s, refunds=_refunds(_table(raw, "refunds")))
        s = replace(s, claims=_claims(_table(raw, "claims")))
        s = replace(s, limits=_limits(_table(raw, "limits")))
        s = replace(s, retention=_retention(_table(raw, "retention")))
        s = replace(s, labor=_labor(_table(raw, "labor")))
        s = replace(s, supply=_table(raw, "supply"))
        s = replace(s, destinations=_destinations(_table(raw, "destinations")))
        if s.claims.destination and s.claims.destination not in s.destinations:
            raise ConfigError(
                f"claims.destination {s.claims.destination!r} names no [destinations] entry"
            )
        s = replace(s, routes=_routes(raw.get("routes", []), s.destinations))
        if s.routes:  # templates and functions compile now: a bad one is a ConfigError
            from isthmus.flows.routes import compile_routes  # noqa: PLC0415 - imports us

            compile_routes(s.routes, s.destinations)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"invalid setting: {exc}") from exc
    if s.tls_client_ca is not None and not (s.tls_cert and s.tls_key):
        raise ConfigError("[tls] client_ca needs [hub] tls_cert and tls_key (mutual TLS)")
    _check_channel_ports(s.channels, s.mllp_port, bool(s.tls_cert and s.tls_key))
    if s.store not in ("sqlite", "postgresql"):
        raise ConfigError(f"store must be sqlite or postgresql, got {s.store!r}")
    if s.bus not in ("sqlite", "nats"):
        raise ConfigError(f"bus must be sqlite or nats, got {s.bus!r}")
    _scaleout_drivers(s)
    return s


def _scaleout_drivers(s: Settings) -> None:
    """The PostgreSQL and NATS drivers are the `scaleout` extra: name it when one is missing."""
    for chosen, setting, module in (
        (s.store == "postgresql", 'store = "postgresql"', "psycopg"),
        (s.bus == "nats", 'bus = "nats"', "nats"),
    ):
        if chosen and importlib.util.find_spec(module) is None:
            raise ConfigError(
                f"{setting} needs the {module} driver, which is not installed: "
                "pip install 'isthmus[scaleout]' (with the lock as constraints)"
            )
    sftp = [f"destinations.{d.name}" for d in s.destinations.values() if d.kind == "sftp"] + [
        f"channels.{c.name}" for c in s.channels.values() if c.transport == "sftp"
    ]
    if sftp and importlib.util.find_spec("paramiko") is None:
        raise ConfigError(
            f"{sftp[0]} uses SFTP, whose client (paramiko) is not installed: "
            "pip install 'isthmus[sftp]'"
        )
