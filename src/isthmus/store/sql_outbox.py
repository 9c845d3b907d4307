"""The outbox aggregate on SQL (SQLite and PostgreSQL): the sealed batches' files waiting
for their destination (ports.py: `outbox_due`, `outbox_settle`, `outbox_items`).

The due query keeps order per destination: a row waits while an earlier row of its
destination waits for its retry (`visible_at` later than now), so files leave in sequence.
`record_batch` (sql_journal.py) queues the rows with the batch that seals them. A row
queued as `BATCH_BODY` (an empty payload) is the batch itself: it reads back with the
body its batch keeps (`batches.body`), so the batch is stored once.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Final

from isthmus.store.ports_outbox import OutboxItem
from isthmus.store.sql_dialect import StoreBase

_COLS: Final = (
    "o.id, o.destination, o.batch_id, o.fmt, CASE WHEN length(o.payload) = 0 AND b.body IS "
    "NOT NULL THEN b.body ELSE o.payload END, o.status, o.attempts, o.visible_at, o.last_error"
)
_FROM: Final = "outbox o LEFT JOIN batches b ON b.batch_id = o.batch_id"
MAX_ERROR: Final = 2000  # what an outbox row keeps of the last error
SQL: Final = {
    "outbox_due": f"SELECT {_COLS} FROM {_FROM} WHERE o.destination = ? AND o.status = 'pending' "
    "AND o.visible_at <= ? AND o.id < coalesce((SELECT min(id) FROM outbox WHERE "
    "destination = ? AND status = 'pending' AND visible_at > ?), "
    "4611686018427387904) ORDER BY o.id LIMIT ?",
    "outbox_settle": "UPDATE outbox SET status = ?, last_error = ?, visible_at = ?, "
    "attempts = attempts + 1, sent_at = ? WHERE id = ?",
    "outbox_items": f"SELECT {_COLS} FROM {_FROM}",
}


def _item(r: Sequence[Any]) -> OutboxItem:
    return OutboxItem(int(r[0]), r[1], r[2], r[3], bytes(r[4]), r[5], int(r[6]), float(r[7]), r[8])


class SqlOutbox(StoreBase):
    """The outbox port on SQL (mixin of SqlStore)."""

    def outbox_due(self, destination: str, now: float, limit: int) -> list[OutboxItem]:
        return [
            _item(r)
            for r in self._rows(self._q["outbox_due"], (destination, now, destination, now, limit))
        ]

    def outbox_settle(
        self, item_id: int, *, status: str, error: str = "", visible_at: float = 0.0
    ) -> None:
        sent_at = visible_at if status == "sent" else None
        self._run(
            lambda c: c.execute(
                self._q["outbox_settle"], (status, error[:MAX_ERROR], visible_at, sent_at, item_id)
            )
        )

    def outbox_items(self, status: str | None = None) -> list[OutboxItem]:
        q = self._q["outbox_items"] + (f" WHERE o.status = {self._d.mark}" if status else "")
        return [_item(r) for r in self._rows(q + " ORDER BY o.id", (status,) if status else ())]
