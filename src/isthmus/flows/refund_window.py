"""The approval window of refunds: the threshold applies to an account's refunds together.

Segregation of duties (DESIGN.md "Governance and security") asks a second person to
approve a refund above `[refunds] approval_threshold`. Judged one request at a time, three
refunds of 500.00 against a 1,500.00 credit would each pass a 500.00 threshold without an
approver: splitting a refund would defeat the rule (issue 16, item 4). So the threshold is
held against the sum of the account token's refunds in one currency, posted or still
pending, over the last `[refunds] approval_window_days` (a posted refund counts from when
it posted), plus the new request. Rejected refunds do not count. A window of 0 days judges
each request alone.

Which refunds an account has is kept as a small index per account token in the flow state
(`Tx.load_state`, name `refunds.window/<token>`: the refund ids, nothing else; the register
stays the record of amounts and statuses), written in the same transaction as the refund
(`index`: a `flows.decision.SaveState` in the request's decision) and under the account's
refund lock (`Tx.lock_refunds`), so two requests at once see each other. An account with
refunds from before the index existed is indexed once from the register (`seed`). Entries
that can no longer count (rejected, or decided before the window) are dropped when the
index is written.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from decimal import Decimal
from typing import Final

from isthmus.flows.decision import SaveState
from isthmus.store.ports import RefundRecord, Tx

STATE_PREFIX: Final = "refunds.window/"
COUNTED: Final = frozenset({"pending", "posted"})
DAY: Final = 86_400.0


class Unindexed(Exception):  # a signal to the caller, not a failure
    """The account has no index yet: read its history from the register and try again."""

    def __init__(self, token: str) -> None:
        super().__init__(token)
        self.token = token


def since(now: float, window_days: int) -> float:
    """When the approval window of `window_days` days ending at `now` starts."""
    return now - window_days * DAY


def counts(r: RefundRecord, currency: str, start: float) -> bool:
    """Whether a refund counts toward the window starting at `start` (pure)."""
    return (
        r.status in COUNTED and r.currency == currency and max(r.requested_at, r.decided_at) > start
    )


def window_total(records: Iterable[RefundRecord], currency: str, start: float) -> Decimal:
    """The sum of the refunds that count in the window (pure)."""
    return sum((r.amount for r in records if counts(r, currency, start)), Decimal(0))


def needs_approval(amount: Decimal, earlier: Decimal, threshold: Decimal) -> bool:
    """Above the threshold together with the account's earlier refunds (pure)."""
    return amount + earlier > threshold


def recent(tx: Tx, token: str, seed: Sequence[str] | None) -> list[RefundRecord]:
    """The account's indexed refunds as the register has them now; raises Unindexed when
    there is no index and no `seed` (the ids the register holds for the token)."""
    raw = tx.load_state(STATE_PREFIX + token)
    if raw is not None:
        ids: Sequence[str] = json.loads(raw)
    elif seed is not None:
        ids = seed
    else:
        raise Unindexed(token)
    return [r for rid in dict.fromkeys(ids) if (r := tx.get_refund(rid)) is not None]


def index(token: str, records: Iterable[RefundRecord], start: float) -> SaveState:
    """The index to write (pure): the ids that may still count (any currency), oldest first."""
    keep = [
        r.id
        for r in records
        if r.status == "pending"
        or (r.status in COUNTED and max(r.requested_at, r.decided_at) > start)
    ]
    return SaveState(STATE_PREFIX + token, json.dumps(keep).encode())
