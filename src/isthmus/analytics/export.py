"""One incremental analytics export: what the store committed since the last watermark.

Two watermarks, kept in the warehouse's `watermark` table and committed with the rows
(analytics/warehouse.py): the journal position (`Store.journal_after`) and the inbox
message id (`Store.inbox_after`). Each page: fact rows (analytics/facts.py), their Parquet
files (named by the range), then one DuckDB transaction with the rows and the new
watermarks. The dimensions are rebuilt from the facts and the hub's settings at the end.

Reads go through the store port only; an export never writes to the store.
"""

from __future__ import annotations

import contextlib
import gc
import hashlib
import hmac
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from isthmus.analytics import facts
from isthmus.analytics.schema import DIMENSIONS, FACTS, TABLES
from isthmus.analytics.warehouse import (
    Warehouse,
    dimension_file,
    drop_uncommitted,
    fact_files,
    to_arrow,
)
from isthmus.config import Settings
from isthmus.flows.accounts import live_token
from isthmus.flows.supply_state import SupplyConfigError, policy_from_table
from isthmus.ledger.remit import RemitAccounts
from isthmus.store.ports import Store, Tx

PAGE = 20_000  # entries and messages a commit: fewer files and commits, bounded memory
PARQUET = Path("analytics") / "parquet"


@dataclass(frozen=True, slots=True)
class Roles:
    """What each chart account is for, from the hub's settings: `dim_account.role`."""

    accounts: tuple[tuple[str, str], ...]  # (account, role)
    facility_company: tuple[tuple[str, str], ...] = ()
    department_cost_center: tuple[tuple[str, str], ...] = ()


def roles_from(settings: Settings) -> Roles:
    """Map each chart account named in the settings to its `dim_account.role` (the first role
    found wins), with the facility->company and department->cost-center mappings."""
    remit = RemitAccounts()
    found: dict[str, str] = {}

    def put(account: str, role: str) -> None:
        if account:
            found.setdefault(account, role)

    for m in settings.mappings.charge_codes.values():
        put(m.revenue_account, "revenue")
    put(remit.contractual, "contractual")
    put(remit.other_adjustments, "write_off")
    put(remit.provider_adjustments, "provider_adjustment")
    put(settings.posting.ar_account, "ar")
    put(remit.patient_ar, "patient_ar")
    put(remit.cash_clearing, "cash_clearing")
    s = settings.settlement
    put(s.card_clearing_account, "card_clearing")
    put(s.bank_account, "bank")
    put(s.fees_account, "fees")
    with contextlib.suppress(SupplyConfigError):  # the hub refused that table already
        put(policy_from_table(settings.supply)[0].accounts.supply_expense, "supply_expense")
    for p in settings.labor.pay_codes.values():
        put(p.account, "labor_expense")
    put(settings.labor.accrued_account, "labor_accrued")
    put(settings.posting.refunds_payable_account, "refunds_payable")
    return Roles(
        tuple(sorted(found.items())),
        tuple(sorted(settings.mappings.facility_company.items())),
        tuple(sorted(settings.mappings.department_cost_center.items())),
    )


@dataclass(slots=True)
class Report:
    """What one export did: rows per table, files written, watermarks after."""

    rows: dict[str, int] = field(default_factory=dict)
    files: int = 0
    removed: int = 0
    pages: int = 0
    marks: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0

    @property
    def total(self) -> int:
        return sum(self.rows.values())

    def as_dict(self) -> dict[str, Any]:
        return {
            "rows": dict(sorted(self.rows.items())),
            "total": self.total,
            "files": self.files,
            "removed_uncommitted": self.removed,
            "pages": self.pages,
            "watermarks": dict(sorted(self.marks.items())),
            "seconds": round(self.seconds, 3),
        }


def claim_key(secret: str, account_number: str) -> str:
    """A claim's key across 837 and 835 (CLM01 = CLP01), never the account number."""
    digest = hmac.new(secret.encode(), b"claim:" + account_number.encode(), hashlib.sha256)
    return "CK-" + digest.hexdigest()[:16]


def _resolver(secret: str, store: Store, stack: ExitStack) -> facts.Resolve:
    """Billing account number -> (claim key, account token), cached; the store's read
    transaction opens on the first claim of the page (a page of charges opens none)."""
    cache: dict[str, tuple[str, str]] = {}
    opened: list[Tx] = []

    def resolve(number: str) -> tuple[str, str]:
        if number not in cache:
            acct = None
            if number:
                if not opened:
                    opened.append(stack.enter_context(store.transaction()))
                acct = opened[0].get_billing_account(number)
            token = live_token(opened[0], secret, acct.patient_key) if acct else ""
            cache[number] = (claim_key(secret, number), token)
        return cache[number]

    return resolve


def pages(
    store: Store, marks: dict[str, int], secret: str, size: int
) -> Iterator[tuple[facts.Rows, dict[str, int], dict[str, int]]]:
    """(rows, watermark before, watermark after) per page, until nothing is left."""
    while True:
        with _bulk():
            jpage = store.journal_after(marks.get("journal", 0), size)
            ipage = store.inbox_after(marks.get("inbox", 0), size)
            if not jpage and not ipage:
                return
            rows = facts.Rows()
            facts.journal_rows(jpage, rows)
            with ExitStack() as stack:
                facts.inbox_rows(ipage, _resolver(secret, store, stack), rows)
        after = dict(marks)
        if jpage:
            after["journal"] = jpage[-1][0]
        if ipage:
            after["inbox"] = ipage[-1][0]
        yield rows, marks, after
        marks = after


def _dedupe_hints(rows: list[tuple[object, ...]]) -> list[tuple[object, ...]]:
    merged: dict[object, tuple[object, ...]] = {}
    for r in rows:
        old = merged.get(r[0])
        merged[r[0]] = (r[0], r[1] or (old[1] if old else ""), r[2] or (old[2] if old else ""))
    return list(merged.values())


@contextlib.contextmanager
def _bulk() -> Iterator[None]:
    """The cyclic garbage collector paused while a page is read and becomes rows and
    columns (CPU only: never across file writes or the DuckDB commit): a page allocates
    tens of thousands of objects with no cycles among them, freed by reference counting,
    and each allocation burst would otherwise trigger collections that walk the whole
    heap (at 20,000 messages the store read and the Arrow conversion ran about 30%
    faster without them). Process-wide, as the
    interpreter's switch is (serve runs the export in a thread), for that span only, and
    restored as found on any exit."""
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was:
            gc.enable()


def run(
    store: Store,
    *,
    warehouse: Path,
    parquet: Path | None,
    secret: str,
    roles: Roles,
    page: int = PAGE,
    clock: Callable[[], float] = time.time,
    after_files: Callable[[], None] | None = None,
) -> Report:
    """Export what changed since the warehouse's watermarks; see the module docstring.
    `after_files` runs between a page's files and its commit (the kill tests' hook)."""
    started = time.perf_counter()
    wh = Warehouse(warehouse)
    report = Report()
    try:
        marks = wh.watermarks()
        if parquet is not None:
            report.removed = drop_uncommitted(parquet, marks)
        for rows, before, after in pages(store, marks, secret, page):
            tables = {}
            with _bulk():
                for t in FACTS:
                    got = rows.tables.get(t.name, [])
                    if t.name == "payer_hint":
                        got = _dedupe_hints(got)
                    tables[t.name] = to_arrow(wh.pa, t, got)
                    if got:
                        report.rows[t.name] = report.rows.get(t.name, 0) + len(got)
            if parquet is not None:
                for t in FACTS:
                    data = tables[t.name]
                    if t.source and t.name != "payer_hint" and data.num_rows:
                        report.files += len(
                            fact_files(
                                parquet,
                                t.name,
                                t.source,
                                before.get(t.source, 0) + 1,
                                after[t.source],
                                data,
                            )
                        )
            if after_files is not None:
                after_files()
            wh.commit(tables, after, clock())
            report.pages += 1
            marks = after
        wh.rebuild(dimension_sql(roles))
        if parquet is not None:
            for d in DIMENSIONS:
                dimension_file(parquet, d.name, wh.arrow(f"SELECT * FROM {d.name} ORDER BY ALL"))
                report.files += 1
        report.marks = wh.watermarks()
    finally:
        wh.close()
    report.seconds = time.perf_counter() - started
    return report


def _values(pairs: tuple[tuple[str, str], ...]) -> str:
    if not pairs:
        return "SELECT NULL::VARCHAR AS a, NULL::VARCHAR AS b WHERE false"
    body = ", ".join(f"('{_q(a)}', '{_q(b)}')" for a, b in pairs)
    return f"SELECT * FROM (VALUES {body}) v(a, b)"


def _q(text: str) -> str:
    return text.replace("'", "''")


PAYER_CLASS = """CASE
  WHEN lower(coalesce(h.plan_class, '') || ' ' || coalesce(p.payer_name, '')) LIKE '%medicare%'
    THEN 'medicare'
  WHEN lower(coalesce(h.plan_class, '') || ' ' || coalesce(p.payer_name, '')) LIKE '%medicaid%'
    THEN 'medicaid'
  WHEN regexp_matches(lower(coalesce(h.plan_class, '') || ' ' || coalesce(p.payer_name, '')),
                      'tricare|champva|veteran') THEN 'government'
  WHEN regexp_matches(lower(coalesce(h.plan_class, '') || ' ' || coalesce(p.payer_name, '')),
                      'self|uninsured') THEN 'self_pay'
  WHEN regexp_matches(lower(coalesce(h.plan_class, '') || ' ' || coalesce(p.payer_name, '')),
                      'worker') THEN 'workers_comp'
  ELSE 'commercial' END"""


def dimension_sql(roles: Roles) -> list[str]:
    """The statements that rebuild every dimension from the facts and the settings."""
    periods = (
        "SELECT period FROM fact_journal_line UNION SELECT period FROM fact_charge "
        "UNION SELECT period FROM fact_claim UNION SELECT period FROM fact_remit"
    )
    names = [d.name for d in DIMENSIONS]
    assert set(names) <= set(TABLES)
    return [
        *(f"DELETE FROM {n}" for n in names),
        f"INSERT INTO dim_period SELECT period, CAST(left(period, 4) AS INTEGER), "
        f"CAST(right(period, 2) AS INTEGER), CAST(period || '-01' AS DATE), "
        f"last_day(CAST(period || '-01' AS DATE)) FROM ({periods}) "
        f"WHERE period IS NOT NULL AND period <> ''",
        f"INSERT INTO dim_company SELECT DISTINCT company, facility FROM ("
        f"SELECT b AS company, a AS facility FROM ({_values(roles.facility_company)}) "
        f"UNION SELECT company, '' FROM fact_journal_line)",
        f"INSERT INTO dim_cost_center SELECT DISTINCT cost_center, department FROM ("
        f"SELECT b AS cost_center, a AS department FROM "
        f"({_values(roles.department_cost_center)}) UNION "
        f"SELECT cost_center, '' FROM fact_journal_line WHERE cost_center <> '')",
        "INSERT INTO dim_service_line SELECT DISTINCT service_line FROM fact_journal_line "
        "WHERE service_line <> '' AND account IN (SELECT a FROM ("
        f"{_values(roles.accounts)}) WHERE b IN ('revenue', 'supply_expense', "
        "'labor_expense'))",
        "INSERT INTO dim_payer SELECT p.payer_id, coalesce(max(h.payer_name), ''), "
        f"min({PAYER_CLASS}) FROM (SELECT payer_id, '' AS payer_name FROM fact_claim "
        "UNION SELECT payer_id, '' FROM fact_remit UNION SELECT payer_id, payer_name "
        "FROM payer_hint) p LEFT JOIN payer_hint h USING (payer_id) GROUP BY p.payer_id",
        "INSERT INTO dim_provider SELECT DISTINCT npi, role FROM ("
        "SELECT provider_npi AS npi, 'performing' AS role FROM fact_charge UNION "
        "SELECT billing_npi, 'billing' FROM fact_claim UNION "
        "SELECT payee_npi, 'payee' FROM fact_remit) WHERE npi <> ''",
        "INSERT INTO dim_location SELECT DISTINCT facility, department FROM fact_charge",
        f"INSERT INTO dim_account SELECT account, coalesce(max(r.b), 'other'), CASE "
        f"left(account, 1) WHEN '1' THEN 'asset' WHEN '2' THEN 'liability' WHEN '3' THEN "
        f"'equity' WHEN '4' THEN 'revenue' ELSE 'expense' END FROM (SELECT a AS account "
        f"FROM ({_values(roles.accounts)}) UNION SELECT account FROM fact_journal_line) "
        f"LEFT JOIN ({_values(roles.accounts)}) r ON r.a = account GROUP BY account",
        "INSERT INTO dim_account_token SELECT account_token, min(period) FROM "
        "fact_journal_line WHERE account_token <> '' GROUP BY account_token",
    ]
