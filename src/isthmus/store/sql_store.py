"""The store port on SQL, composed: one Tx and one Store made of the aggregate mixins
(sql_accounts, sql_journal, sql_work, sql_refunds, sql_flow_state, sql_deliveries,
claim_sql; sql_inbox, sql_outbox), for the SQLite and PostgreSQL adapters to finish with
their connection handling, locking and group commit.

`statements` compiles every aggregate's SQL for one dialect, once, when an adapter class
is made; two aggregates naming one statement alike is a mistake caught here.
"""

from __future__ import annotations

from collections.abc import Mapping

from isthmus.store import (
    claim_sql,
    sql_accounts,
    sql_deliveries,
    sql_flow_state,
    sql_inbox,
    sql_journal,
    sql_outbox,
    sql_refunds,
    sql_work,
)
from isthmus.store.sql_dialect import Dialect


def statements(d: Dialect) -> dict[str, str]:
    """Every aggregate's statements, compiled for dialect `d`; ValueError when two modules
    name a statement alike."""
    out: dict[str, str] = {}
    for module in (
        claim_sql,
        sql_accounts,
        sql_deliveries,
        sql_flow_state,
        sql_inbox,
        sql_journal,
        sql_outbox,
        sql_refunds,
        sql_work,
    ):
        sql: Mapping[str, str] = module.SQL
        if out.keys() & sql.keys():
            raise ValueError(f"statements named twice: {sorted(out.keys() & sql.keys())}")
        out.update(d.compile(sql))
    return out


class SqlTx(
    sql_accounts.SqlAccountsTx,
    sql_journal.SqlJournalTx,
    sql_work.SqlWorkTx,
    sql_refunds.SqlRefundsTx,
    sql_flow_state.SqlFlowStateTx,
    sql_deliveries.SqlDeliveryTx,
    claim_sql.SqlClaimTx,
):
    """Every effect of one unit of work, on the adapter's connection `_c`."""


class SqlStore(
    sql_inbox.SqlInbox,
    sql_journal.SqlJournal,
    sql_outbox.SqlOutbox,
    sql_work.SqlWork,
    sql_accounts.SqlAccounts,
    sql_refunds.SqlRefunds,
    sql_deliveries.SqlDeliveries,
    claim_sql.SqlClaims,
):
    """Every store-level read and write but `accept`, `mark_published`, `inbox_after` and
    `journal_after`, which each adapter does its own way."""
