"""The refund aggregate on SQL (SQLite and PostgreSQL): the refund register (ports.py).

Decisions on one account token are serialized: `lock_refunds` takes the dialect's
transaction-scoped lock (PostgreSQL: an advisory lock, since READ COMMITTED alone would
let two processes check the same credit at once; SQLite: nothing, BEGIN IMMEDIATE already
serializes every writer). A decision moves a refund out of "pending" once: the second
decider finds it decided and changes nothing.
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal
from typing import Any, Final

from isthmus.store.ports_refunds import RefundRecord
from isthmus.store.sql_dialect import StoreBase, TxBase

_COLS: Final = (
    "id, idempotency_key, account_number, account_token, company, amount, "
    "currency, reason, status, requested_by, requested_at, decided_by, decided_at, "
    "note, entry_key"
)
SQL: Final = {
    "refund_add": f"INSERT INTO refunds ({_COLS}) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?) "
    "ON CONFLICT (id) DO NOTHING",
    "refund_get": f"SELECT {_COLS} FROM refunds WHERE id = ?",
    "refunds_pending": f"SELECT {_COLS} FROM refunds WHERE account_token = ? AND "
    "status = 'pending' ORDER BY {seq}",
    "refund_decide": "UPDATE refunds SET status = ?, decided_by = ?, decided_at = ?, "
    "note = ?, entry_key = ? WHERE id = ? AND status = 'pending'",
    # keyset on the register's order: rows recorded after refund `after` (none if unknown)
    "refunds_after": f"SELECT {_COLS} FROM refunds WHERE {{seq}} > coalesce((SELECT {{seq}} "
    "FROM refunds WHERE id = ?), ?)",
}


def _refund(r: Sequence[Any]) -> RefundRecord:
    return RefundRecord(
        r[0],
        r[1],
        r[2],
        r[3],
        r[4],
        Decimal(r[5]),
        r[6],
        r[7],
        r[8],
        r[9],
        float(r[10]),
        r[11],
        float(r[12]),
        r[13],
        r[14],
    )


class SqlRefundsTx(TxBase):
    """The refund writes of a transaction on SQL (mixin of SqlTx)."""

    def lock_refunds(self, account_token: str) -> None:
        self._lock(f"refund:{account_token}")

    def add_refund(self, refund: RefundRecord) -> bool:
        r = refund
        return bool(
            self._c.execute(
                self._q["refund_add"],
                (
                    r.id,
                    r.idempotency_key,
                    r.account_number,
                    r.account_token,
                    r.company,
                    str(r.amount),
                    r.currency,
                    r.reason,
                    r.status,
                    r.requested_by,
                    r.requested_at,
                    r.decided_by,
                    r.decided_at,
                    r.note,
                    r.entry_key,
                ),
            ).rowcount
            == 1
        )

    def get_refund(self, refund_id: str) -> RefundRecord | None:
        r = self._c.execute(self._q["refund_get"], (refund_id,)).fetchone()
        return _refund(r) if r else None

    def pending_refunds(self, account_token: str) -> list[RefundRecord]:
        return [
            _refund(r)
            for r in self._c.execute(self._q["refunds_pending"], (account_token,)).fetchall()
        ]

    def decide_refund(
        self,
        refund_id: str,
        *,
        status: str,
        decided_by: str,
        decided_at: float,
        note: str,
        entry_key: str = "",
    ) -> bool:
        return bool(
            self._c.execute(
                self._q["refund_decide"],
                (status, decided_by, decided_at, note, entry_key, refund_id),
            ).rowcount
            == 1
        )


class SqlRefunds(StoreBase):
    """The refund register's reads on SQL (mixin of SqlStore)."""

    def refunds(
        self, status: str | None = None, limit: int = 1000, after: str | None = None
    ) -> list[RefundRecord]:
        m = self._d.mark
        q = self._q["refunds_after"] + (f" AND status = {m}" if status else "")
        args = (
            after or "",
            -1 if after is None else 1 << 62,
            *((status,) if status else ()),
            limit,
        )
        return [_refund(r) for r in self._rows(f"{q} ORDER BY {self._d.seq} LIMIT {m}", args)]

    def refund(self, refund_id: str) -> RefundRecord | None:
        r = self._one(self._q["refund_get"], (refund_id,))
        return _refund(r) if r else None
