"""Tryton adapter of the ERP port: journal batches become posted `account.move` records.

One batch costs three JSON-RPC calls, whatever its size, because each call
carries 150-250 ms of server overhead:
1. `account.move.search_read` on the source references (`description` holds
   `isthmus:<batch_id>:<date>:<company>`): moves already posted are skipped (a retry after a
   lost answer), drafts left by an interrupted earlier try are deleted and made again (if
   the delete is refused because that try's `post`, still queued at Tryton, posted them
   meanwhile, they count as posted);
2. `account.move.create` of every missing move with its lines (one transaction, all or
   nothing), accounts looked up by code, the move's period by date;
   with the cost center of each line as a nested analytic line (`analytic_account.line`)
   carrying the line's amount;
3. `account.move.post` of all of them.
An earlier trial reported analytic amounts overwritten at creation; nested in the move
line's create they are kept (bench_tryton checks all 10,000 of them), and `balances` reads
the cost-center split from the analytic amounts, so the contract tests would see it.
Tryton's `UserError`/`UserWarning` (closed period, failed domain) arrive as `ErpRejected`
carrying Tryton's message; an unreachable server or a timeout as `ErpUnavailable` (see
`erp_rpc`). A move is balanced on our side first (`ports.erp.move_specs`): Tryton on SQLite
would accept an unbalanced move.

Amounts are in the Tryton company's currency; a batch line in another currency is refused.
One Tryton company takes the hub's companies (C100, C200...): the hub company is part of
each move's source reference. Balances are read from posted move lines only.
"""

from __future__ import annotations

import calendar
from datetime import date
from decimal import Decimal
from typing import Any

from isthmus.connectors.erp_rpc import TrytonRpc
from isthmus.ledger.batch import JournalBatch
from isthmus.ports.erp import (
    BalanceKey,
    ErpRejected,
    MasterData,
    MoveSpec,
    PostResult,
    move_specs,
)

Record = dict[str, Any]


def period_bounds(period: str) -> tuple[date, date]:
    """The first and last day of an accounting period "YYYY-MM"."""
    year, month = (int(x) for x in period.split("-"))
    return date(year, month, 1), date(year, month, calendar.monthrange(year, month)[1])


class TrytonErp:
    """The ERP port on Tryton over JSON-RPC: batches posted as `account.move` records, with
    their analytic lines per cost center."""

    def __init__(
        self, rpc: TrytonRpc, *, journal: str = "MISC", account_map: dict[str, str] | None = None
    ) -> None:
        self.rpc = rpc
        self.journal_code = journal
        self.account_map = dict(account_map or {})  # hub account code -> Tryton code
        self._company = 0
        self._currency = ""
        self._journal = 0
        self._accounts: dict[str, int] = {}
        self._cost_centers: dict[str, int] = {}
        self._periods: list[Record] = []

    def close(self) -> None:
        self.rpc.close()

    # --- reference data, looked up once per adapter ------------------------------------
    def _load(self) -> None:
        if self._company:
            return
        if not self.rpc.context:
            self.rpc.login()
        company = self.rpc.context.get("company")
        if not company:
            raise ErpRejected("the Tryton user has no current company")
        self._company = int(company)
        [rec] = self.rpc.model("company.company", "read", [self._company], ["currency.code"])
        self._currency = str((rec.get("currency.") or {}).get("code", ""))
        accounts = self.rpc.model(
            "account.account",
            "search_read",
            [("company", "=", self._company), ("type", "!=", None)],
            0,
            None,
            None,
            ["code"],
        )
        self._accounts = {a["code"]: a["id"] for a in accounts if a.get("code")}
        centers = self.rpc.model(
            "analytic_account.account",
            "search_read",
            [("type", "=", "normal")],
            0,
            None,
            None,
            ["code"],
        )
        self._cost_centers = {a["code"]: a["id"] for a in centers if a.get("code")}
        journals = self.rpc.model(
            "account.journal", "search_read", [("code", "=", self.journal_code)], 0, 1, None, ["id"]
        )
        if not journals:
            raise ErpRejected(f"Tryton has no journal with code {self.journal_code!r}")
        self._journal = journals[0]["id"]
        self._load_periods()

    def _load_periods(self) -> None:
        self._periods = self.rpc.model(
            "account.period",
            "search_read",
            [("company", "=", self._company), ("type", "=", "standard")],
            0,
            None,
            None,
            ["start_date", "end_date", "state"],
        )

    def _period_id(self, day: date, ref: str) -> int:
        for attempt in (0, 1):
            for p in self._periods:
                if p["start_date"] <= day <= p["end_date"]:
                    return int(p["id"])
            if attempt == 0:
                self._load_periods()  # a fiscal year may have been added since
        raise ErpRejected(f"{ref}: Tryton has no accounting period for {day.isoformat()}")

    def _account_id(self, code: str, ref: str) -> int:
        tryton_code = self.account_map.get(code, code)
        if tryton_code not in self._accounts:
            raise ErpRejected(
                f"{ref}: account {tryton_code} is not in Tryton's chart of "
                "accounts (or has no type)"
            )
        return self._accounts[tryton_code]

    def _cost_center_id(self, code: str, ref: str) -> int:
        if code not in self._cost_centers:
            raise ErpRejected(f"{ref}: cost center {code} is not a Tryton analytic account")
        return self._cost_centers[code]

    # --- the port ----------------------------------------------------------------------
    def post_batch(self, batch: JournalBatch) -> PostResult:
        self._load()
        specs = move_specs(batch)
        refs = [s.reference for s in specs]
        found = self._moves(refs)
        posted = {m["description"] for m in found if m["state"] == "posted"}
        drafts = [m["id"] for m in found if m["state"] != "posted"]
        if drafts:  # an earlier try was cut between create and post: make them again
            try:
                self.rpc.model("account.move", "delete", drafts)
            except ErpRejected:
                # The earlier try's `post` may have been queued at Tryton when it timed
                # out, and posted them since the look-up: then they are done, not refused.
                again = self._moves(refs)
                if any(m["state"] != "posted" for m in again if m["id"] in drafts):
                    raise
                posted = {m["description"] for m in again if m["state"] == "posted"}
        todo = [s for s in specs if s.reference not in posted]
        existing = tuple(s.reference for s in specs if s.reference in posted)
        if not todo:
            return PostResult(batch.batch_id, (), existing, 0)
        values = [self._move_values(s) for s in todo]
        move_ids: list[int] = self.rpc.model("account.move", "create", values)
        self.rpc.model("account.move", "post", move_ids)
        return PostResult(
            batch.batch_id,
            tuple(s.reference for s in todo),
            existing,
            sum(len(s.lines) for s in todo),
        )

    def _moves(self, refs: list[str]) -> list[Record]:
        if not refs:
            return []
        return list(
            self.rpc.model(
                "account.move",
                "search_read",
                [("description", "in", refs), ("company", "=", self._company)],
                0,
                None,
                None,
                ["description", "state"],
            )
        )

    def _move_values(self, spec: MoveSpec) -> Record:
        if spec.currency != self._currency:
            raise ErpRejected(
                f"{spec.reference}: {spec.currency} lines, but the Tryton "
                f"company keeps its books in {self._currency}"
            )
        lines = []
        for x in spec.lines:
            line: Record = {
                "account": self._account_id(x.account, spec.reference),
                "debit": x.debit,
                "credit": x.credit,
                "description": _line_description(
                    x.line_no, x.dims.service_line, x.dims.account_token
                ),
            }
            if x.dims.cost_center:
                line["analytic_lines"] = [
                    (
                        "create",
                        [
                            {
                                "account": self._cost_center_id(x.dims.cost_center, spec.reference),
                                "date": spec.posted_on,
                                "debit": x.debit,
                                "credit": x.credit,
                            }
                        ],
                    )
                ]
            lines.append(line)
        return {
            "company": self._company,
            "journal": self._journal,
            "date": spec.posted_on,
            "period": self._period_id(spec.posted_on, spec.reference),
            "description": spec.reference,
            "lines": [("create", lines)],
        }

    def find_posted(self, batch_id: str = "") -> set[str]:
        self._load()
        pattern = f"isthmus:{batch_id}:%" if batch_id else "isthmus:%"
        rows = self.rpc.model(
            "account.move",
            "search_read",
            [
                ("description", "like", pattern),
                ("state", "=", "posted"),
                ("company", "=", self._company),
            ],
            0,
            None,
            None,
            ["description"],
        )
        return {r["description"] for r in rows if r["description"].startswith(pattern[:-1])}

    def balances(self, period: str | None = None) -> dict[BalanceKey, Decimal]:
        """Posted amounts per (account code, cost center code), debit positive."""
        self._load()
        domain: list[Any] = [("move.state", "=", "posted"), ("move.company", "=", self._company)]
        if period is not None:
            first, last = period_bounds(period)
            domain += [("move.date", ">=", first), ("move.date", "<=", last)]
        lines = self.rpc.model(
            "account.move.line",
            "search_read",
            domain,
            0,
            None,
            None,
            ["account.code", "debit", "credit"],
            context={"posted": True},
        )
        analytic = self.rpc.model(
            "analytic_account.line",
            "search_read",
            [("move_line", "in", [x["id"] for x in lines])] if lines else [("id", "=", -1)],
            0,
            None,
            None,
            ["move_line", "account.code", "debit", "credit"],
        )
        split: dict[int, list[Record]] = {}
        for a in analytic:
            split.setdefault(a["move_line"], []).append(a)
        reverse = {v: k for k, v in self.account_map.items()}
        out: dict[BalanceKey, Decimal] = {}
        for x in lines:
            code = str((x.get("account.") or {}).get("code", ""))
            code = reverse.get(code, code)
            rest = x["debit"] - x["credit"]
            for a in split.get(x["id"], []):  # the cost-center share, as Tryton holds it
                key = (code, str((a.get("account.") or {}).get("code", "")))
                out[key] = out.get(key, Decimal(0)) + a["debit"] - a["credit"]
                rest -= a["debit"] - a["credit"]
            if rest or not split.get(x["id"]):
                out[(code, "")] = out.get((code, ""), Decimal(0)) + rest
        return out

    def account_totals(self, period: str) -> dict[str, Decimal]:
        """Tryton's own account debit minus credit over a period, context posted=True: the
        control figure that the line-level `balances` must agree with."""
        self._load()
        first, last = period_bounds(period)
        rows = self.rpc.model(
            "account.account",
            "search_read",
            [("company", "=", self._company), ("type", "!=", None)],
            0,
            None,
            None,
            ["code", "debit", "credit"],
            context={"posted": True, "from_date": first, "to_date": last},
        )
        reverse = {v: k for k, v in self.account_map.items()}
        return {
            reverse.get(r["code"], r["code"]): r["debit"] - r["credit"]
            for r in rows
            if r["debit"] or r["credit"]
        }

    def master_data(self) -> MasterData:
        self._load()
        accounts = self.rpc.model(
            "account.account",
            "search_read",
            [("company", "=", self._company), ("code", "!=", None)],
            0,
            None,
            None,
            ["code", "name"],
        )
        centers = self.rpc.model(
            "analytic_account.account",
            "search_read",
            [("type", "=", "normal")],
            0,
            None,
            None,
            ["code", "name"],
        )
        parties = self.rpc.model("party.party", "search_read", [], 0, None, None, ["code", "name"])
        return MasterData(
            {a["code"]: a["name"] for a in accounts if a["code"]},
            {a["code"]: a["name"] for a in centers if a["code"]},
            {p["code"]: p["name"] for p in parties if p["code"]},
        )


def _line_description(line_no: int, service_line: str, token: str) -> str:
    return " ".join(x for x in (f"#{line_no}", service_line, token) if x)


def _line_no(description: str | None) -> int:
    head = (description or "").split(" ", 1)[0]
    return int(head[1:]) if head.startswith("#") and head[1:].isdigit() else -1
