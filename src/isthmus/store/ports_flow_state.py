"""The flow-state aggregate's port: a flow's named state (the supply book), held for one
transaction at a time, and the keys a flow has applied (a replay changes nothing).
"""

from __future__ import annotations

from typing import Protocol


class FlowStateTx(Protocol):
    """A flow's named state and its applied keys, inside a store transaction."""

    def load_state(self, name: str) -> bytes | None:
        """A flow's named state (the supply book), held for this transaction alone until it
        ends: a second writer waits. None when it was never saved."""
        ...

    def save_state(self, name: str, body: bytes) -> None:
        """Write a flow's named state back; it commits with the rest of the transaction."""
        ...

    def applied(self, key: str) -> bytes | None:
        """What a flow recorded when it applied `key` (a usage, receipt or invoice id),
        None when it never did: a replay finds it and changes nothing."""
        ...

    def mark_applied(self, key: str, body: bytes) -> bool:
        """Record that `key` is applied (idempotent), with what the flow keeps about it;
        True when this call recorded it, False when it was already (or, under concurrency,
        another transaction's insert of it won)."""
        ...
