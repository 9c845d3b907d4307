"""The per-destination field allow-list, applied to whatever an ERP sink is about to send.

Wraps the configured sink (file drop, Tryton JSON-RPC, REST): the fields its destination
may not receive are left empty in the typed batch the dispatcher decoded
(`ledger.batch.restrict`, fields from governance/allowlist.py), and the sink renders the
restricted batch. No text is read back or rewritten here. Without an [allowlist] entry for
the destination nothing is withheld and the sink is used as it is (`guarded`).
"""

from __future__ import annotations

from collections.abc import Collection

import msgspec

from isthmus.ledger.batch import restrict
from isthmus.ledger.batch_codec import QueuedBatch
from isthmus.ports.erp import BatchSink


class AllowListSink:
    """An ERP sink that empties the fields its destination may not receive before the wrapped
    sink renders the batch."""

    def __init__(self, inner: BatchSink, withheld: Collection[str]) -> None:
        self.inner = inner
        self.withheld = frozenset(withheld)

    def deliver(self, queued: QueuedBatch) -> None:
        self.inner.deliver(
            msgspec.structs.replace(queued, batch=restrict(queued.batch, self.withheld))
        )

    def __getattr__(self, name: str) -> object:  # the wrapped sink's state (erp, last...)
        return getattr(self.inner, name)


def guarded(inner: BatchSink, withheld: Collection[str]) -> BatchSink:
    """`inner`, behind the allow-list when it withholds anything."""
    return AllowListSink(inner, withheld) if withheld else inner


__all__ = ["AllowListSink", "guarded"]
