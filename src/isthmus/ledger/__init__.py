"""The ledger: double-entry journal, posting rules, fiscal periods, balances, ERP batches.

Pure: no I/O, no clock, no configuration. It imports only `isthmus.model`; callers pass the
plain values (accounts, dimensions, closed periods, summarization policy) they looked up.
"""

from isthmus.ledger.balance import (
    CurrencyTotal,
    TrialBalance,
    TrialBalanceRow,
    account_balances,
    token_balances,
    trial_balance,
)
from isthmus.ledger.batch import BatchLine, ControlTotal, JournalBatch, build_batch, validate_batch
from isthmus.ledger.batch_file import batch_from_csv, batch_from_jsonl, batch_to_csv, batch_to_jsonl
from isthmus.ledger.errors import (
    ClosedPeriod,
    InvalidAmount,
    InvalidBatch,
    InvalidEntry,
    InvalidPeriod,
    LedgerError,
    LedgerRefusal,
    UnbalancedBatch,
    UnbalancedEntry,
    UnsupportedTransaction,
    ZeroAmount,
)
from isthmus.ledger.journal import (
    Dimensions,
    JournalEntry,
    JournalLine,
    cr,
    dr,
    require_valid,
    reverse,
    validate_entry,
)
from isthmus.ledger.periods import FiscalCalendar, PeriodAssignment, period_of
from isthmus.ledger.rules import charge_entry, merge_reclass_entry

__all__ = [
    "BatchLine",
    "ClosedPeriod",
    "ControlTotal",
    "CurrencyTotal",
    "Dimensions",
    "FiscalCalendar",
    "InvalidAmount",
    "InvalidBatch",
    "InvalidEntry",
    "InvalidPeriod",
    "JournalBatch",
    "JournalEntry",
    "JournalLine",
    "LedgerError",
    "LedgerRefusal",
    "PeriodAssignment",
    "TrialBalance",
    "TrialBalanceRow",
    "UnbalancedBatch",
    "UnbalancedEntry",
    "UnsupportedTransaction",
    "ZeroAmount",
    "account_balances",
    "batch_from_csv",
    "batch_from_jsonl",
    "batch_to_csv",
    "batch_to_jsonl",
    "build_batch",
    "charge_entry",
    "cr",
    "dr",
    "merge_reclass_entry",
    "period_of",
    "require_valid",
    "reverse",
    "token_balances",
    "trial_balance",
    "validate_batch",
    "validate_entry",
]
