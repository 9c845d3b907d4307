"""The analytics star schema: its version, its tables and columns (docs/analytics.md).

Versioned like the event contracts (governance/events.v1.json): `SCHEMA_VERSION` is written
to the `schema_version` table of every warehouse; a column added is a minor change, a
column renamed, retyped or removed a new version (a warehouse of another version is
refused, and rebuilt by exporting into a new directory).

Facts carry money as DECIMAL(20,4) with their ISO 4217 currency, dates as DATE, and the
accounting period (YYYY-MM) they are partitioned by. Keys are business keys, so a row
written twice is the same row: (entry_key, line_no) for journal lines, the event id (plus
a line number for adjustments) for the others. No column ever holds PHI: patients appear
only as the opaque account token (PA-...), claims as an HMAC claim key.
"""

from __future__ import annotations

from dataclasses import dataclass

SCHEMA_VERSION = 1
MONEY = "DECIMAL(20,4)"


@dataclass(frozen=True, slots=True)
class Table:
    """One warehouse table: its columns with DuckDB types, its business key, and the
    watermark (journal, inbox, or none for a dimension) it is exported with."""

    name: str
    columns: tuple[tuple[str, str], ...]  # (name, DuckDB type)
    key: tuple[str, ...]
    source: str  # the watermark it advances with: "journal" | "inbox" | "" (a dimension)

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(c for c, _t in self.columns)


FACTS: tuple[Table, ...] = (
    Table(
        "fact_journal_line",
        (
            ("position", "BIGINT"),
            ("entry_key", "VARCHAR"),
            ("line_no", "INTEGER"),
            ("posted_on", "DATE"),
            ("period", "VARCHAR"),
            ("channel", "VARCHAR"),
            ("account", "VARCHAR"),
            ("debit", MONEY),
            ("credit", MONEY),
            ("amount", MONEY),
            ("currency", "VARCHAR"),
            ("company", "VARCHAR"),
            ("cost_center", "VARCHAR"),
            ("service_line", "VARCHAR"),
            ("account_token", "VARCHAR"),
            ("causation_id", "VARCHAR"),
            ("reverses", "VARCHAR"),
            ("moved_from", "VARCHAR"),
            ("is_labor_accrual", "BOOLEAN"),
        ),
        ("entry_key", "line_no"),
        "journal",
    ),
    Table(
        "fact_charge",
        (
            ("inbox_id", "BIGINT"),
            ("event_id", "VARCHAR"),
            ("received_at", "TIMESTAMPTZ"),
            ("service_date", "DATE"),
            ("period", "VARCHAR"),
            ("transaction_type", "VARCHAR"),
            ("charge_code", "VARCHAR"),
            ("quantity", "INTEGER"),
            ("amount", MONEY),
            ("currency", "VARCHAR"),
            ("department", "VARCHAR"),
            ("facility", "VARCHAR"),
            ("provider_npi", "VARCHAR"),
            ("negative", "BOOLEAN"),
        ),
        ("event_id",),
        "inbox",
    ),
    Table(
        "fact_claim",
        (
            ("inbox_id", "BIGINT"),
            ("event_id", "VARCHAR"),
            ("received_at", "TIMESTAMPTZ"),
            ("period", "VARCHAR"),
            ("claim_key", "VARCHAR"),
            ("account_token", "VARCHAR"),
            ("payer_id", "VARCHAR"),
            ("billing_npi", "VARCHAR"),
            ("total_charge", MONEY),
            ("currency", "VARCHAR"),
            ("kind", "VARCHAR"),
            ("frequency", "VARCHAR"),
        ),
        ("event_id",),
        "inbox",
    ),
    Table(
        "fact_remit",
        (
            ("inbox_id", "BIGINT"),
            ("event_id", "VARCHAR"),
            ("received_at", "TIMESTAMPTZ"),
            ("payment_date", "DATE"),
            ("period", "VARCHAR"),
            ("claim_key", "VARCHAR"),
            ("account_token", "VARCHAR"),
            ("payer_id", "VARCHAR"),
            ("payee_npi", "VARCHAR"),
            ("trace_number", "VARCHAR"),
            ("payment_method", "VARCHAR"),
            ("claim_status", "VARCHAR"),
            ("charge", MONEY),
            ("paid", MONEY),
            ("patient_responsibility", MONEY),
            ("contractual", MONEY),
            ("denied", "BOOLEAN"),
            ("reversal", "BOOLEAN"),
            ("currency", "VARCHAR"),
            ("facility", "VARCHAR"),
        ),
        ("event_id",),
        "inbox",
    ),
    Table(
        "fact_adjustment",
        (
            ("inbox_id", "BIGINT"),
            ("event_id", "VARCHAR"),
            ("line_no", "INTEGER"),
            ("period", "VARCHAR"),
            ("payer_id", "VARCHAR"),
            ("account_token", "VARCHAR"),
            ("group_code", "VARCHAR"),
            ("carc", "VARCHAR"),
            ("category", "VARCHAR"),
            ("amount", MONEY),
            ("currency", "VARCHAR"),
        ),
        ("event_id", "line_no"),
        "inbox",
    ),
    Table(
        "payer_hint",
        (("payer_id", "VARCHAR"), ("payer_name", "VARCHAR"), ("plan_class", "VARCHAR")),
        ("payer_id",),
        "inbox",
    ),
)

# Dimensions: rebuilt from the facts (and the hub's settings) at each export, small.
DIMENSIONS: tuple[Table, ...] = (
    Table(
        "dim_period",
        (
            ("period", "VARCHAR"),
            ("year", "INTEGER"),
            ("month", "INTEGER"),
            ("first_day", "DATE"),
            ("last_day", "DATE"),
        ),
        ("period",),
        "",
    ),
    Table(
        "dim_company",
        (("company", "VARCHAR"), ("facility", "VARCHAR")),
        ("company", "facility"),
        "",
    ),
    Table(
        "dim_cost_center",
        (("cost_center", "VARCHAR"), ("department", "VARCHAR")),
        ("cost_center", "department"),
        "",
    ),
    Table("dim_service_line", (("service_line", "VARCHAR"),), ("service_line",), ""),
    Table(
        "dim_payer",
        (("payer_id", "VARCHAR"), ("payer_name", "VARCHAR"), ("payer_class", "VARCHAR")),
        ("payer_id",),
        "",
    ),
    Table("dim_provider", (("npi", "VARCHAR"), ("role", "VARCHAR")), ("npi", "role"), ""),
    Table(
        "dim_location",
        (("facility", "VARCHAR"), ("department", "VARCHAR")),
        ("facility", "department"),
        "",
    ),
    Table(
        "dim_account",
        (("account", "VARCHAR"), ("role", "VARCHAR"), ("class", "VARCHAR")),
        ("account",),
        "",
    ),
    Table(
        "dim_account_token",
        (("account_token", "VARCHAR"), ("first_period", "VARCHAR")),
        ("account_token",),
        "",
    ),
)

TABLES = {t.name: t for t in FACTS + DIMENSIONS}

# Views over the facts: the facts the seeds name that the journal already holds.
VIEWS = {
    "fact_supply_usage": "SELECT * FROM fact_journal_line WHERE account IN "
    "(SELECT account FROM dim_account WHERE role = 'supply_expense')",
    "fact_labor_accrual": "SELECT * FROM fact_journal_line WHERE is_labor_accrual AND account "
    "IN (SELECT account FROM dim_account WHERE role = 'labor_expense')",
    "claim_state": (
        "SELECT c.claim_key, c.payer_id, c.total_charge, c.currency, c.period, "
        "coalesce(r.status, 'submitted') AS state, r.paid FROM fact_claim c LEFT JOIN ("
        "SELECT claim_key, sum(paid) AS paid, CASE WHEN bool_or(denied) AND sum(paid) = 0 "
        "THEN 'denied' WHEN bool_or(reversal) THEN 'reversed' WHEN sum(paid) > 0 THEN 'paid' "
        "ELSE 'adjudicated' END AS status FROM fact_remit GROUP BY claim_key) r "
        "USING (claim_key)"
    ),
}
