"""The per-destination field allow-list, applied to whatever an ERP sink is about to send.

Wraps the configured sink (file drop, Tryton JSON-RPC, REST): each outbox row's batch is
read back, the fields its destination may not receive are left empty
(`ledger.batch.restrict`, fields from governance/allowlist.py), and the sink gets the
restricted batch, re-encoded in the row's format. Without an [allowlist] entry for the
destination nothing is withheld and the sink is used as it is (`guarded`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Collection

from isthmus.flows.export import BatchSink, ErpRejected
from isthmus.ledger.batch import (
    batch_from_csv,
    batch_from_jsonl,
    batch_to_csv,
    batch_to_jsonl,
    restrict,
)
from isthmus.ledger.errors import InvalidBatch
from isthmus.store.ports import OutboxItem

_FORMATS = {"csv": (batch_from_csv, batch_to_csv), "jsonl": (batch_from_jsonl, batch_to_jsonl)}


class AllowListSink:
    def __init__(self, inner: BatchSink, withheld: Collection[str]) -> None:
        self.inner = inner
        self.withheld = frozenset(withheld)

    def deliver(self, item: OutboxItem) -> None:
        codec = _FORMATS.get(item.fmt)
        if codec is None:
            raise ErpRejected(f"outbox row {item.id}: format {item.fmt!r} has no allow-list "
                              "reader; nothing sent")
        read, write = codec
        try:
            batch = read(item.payload.decode())
        except (InvalidBatch, UnicodeDecodeError) as exc:
            raise ErpRejected(f"outbox row {item.id} holds no readable batch: {exc}") from exc
        payload = write(restrict(batch, self.withheld)).encode()
        self.inner.deliver(dataclasses.replace(item, payload=payload))

    def __getattr__(self, name: str) -> object:  # the wrapped sink's state (erp, last...)
        return getattr(self.inner, name)


def guarded(inner: BatchSink, withheld: Collection[str]) -> BatchSink:
    """`inner`, behind the allow-list when it withholds anything."""
    return AllowListSink(inner, withheld) if withheld else inner


__all__ = ["AllowListSink", "guarded"]
