"""Plain-data views of hub state shared by the CLI and the HTTP API (so both say the same)."""

from __future__ import annotations

from typing import Any

from isthmus.ledger.balance import trial_balance
from isthmus.store.ports import Store


def trial_balance_view(store: Store) -> dict[str, Any]:
    """The trial balance as plain data (amounts as strings): per account and currency, and
    the totals per currency."""
    tb = trial_balance(store.journal_lines())
    return {
        "balanced": tb.balanced,
        "rows": [
            {
                "account": r.account,
                "currency": r.currency,
                "debit": str(r.debit),
                "credit": str(r.credit),
                "balance": str(r.balance),
            }
            for r in tb.rows
        ],
        "totals": [
            {
                "currency": t.currency,
                "debit": str(t.debit),
                "credit": str(t.credit),
                "balanced": t.balanced,
            }
            for t in tb.totals
        ],
    }
