"""The work-item aggregate on SQL (SQLite and PostgreSQL): work items, the events held
behind a missing mapping, and the mapping overrides a person's fix writes (ports.py).

Work items are unique on (kind, event id): a second `add_work_item` reopens a resubmitted
item that failed again and adds nothing. A held event is kept once per (ref, event id);
`pending_events` is the one read a worker's batch makes to learn which postings must close
or record something, so it stays one statement for the whole batch.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from decimal import Decimal
from typing import Any, Final

from isthmus.store.ports_work import HeldEvent, HoldTotals, WorkItem
from isthmus.store.sql_dialect import StoreBase, TxBase

_WI: Final = (
    "id, kind, queue, status, key, event_id, correlation_id, detail, created_at, "
    "updated_at, resolution, envelope"
)
_HE: Final = "ref, event_id, key, envelope, amount, currency, held_at, released_at, entry_key"
SQL: Final = {
    "wi_add": "INSERT INTO work_items (kind, queue, status, key, event_id, correlation_id, "
    "detail, created_at, updated_at, envelope) VALUES (?,?,'open',?,?,?,?,?,?,?) "
    "ON CONFLICT (kind, event_id) DO NOTHING RETURNING id",
    "wi_reopen": "UPDATE work_items SET status = 'open', detail = ?, updated_at = ? "
    "WHERE kind = ? AND event_id = ? AND status = 'resubmitted'",
    "wi_close": "UPDATE work_items SET status = 'resolved', resolution = CASE WHEN "
    "resolution = '' THEN ? ELSE resolution END, updated_at = ? WHERE "
    "event_id = ? AND status IN ('open', 'resubmitted')",
    "wi_set": "UPDATE work_items SET status = ?, resolution = ?, updated_at = ? WHERE id = ?",
    "wi_after": f"SELECT {_WI} FROM work_items WHERE id > ?",
    "wi_by_id": f"SELECT {_WI} FROM work_items WHERE id = ?",
    "wi_for": f"SELECT {_WI} FROM work_items WHERE correlation_id = ? ORDER BY id",
    "pending": "SELECT event_id FROM work_items WHERE event_id{any} AND status IN "
    "('open', 'resubmitted') UNION SELECT event_id FROM held_events WHERE "
    "event_id{any} AND released_at <> 0 AND entry_key = ''",
    "he_hold": f"INSERT INTO held_events ({_HE}) VALUES (?,?,?,?,?,?,?,0,'') "
    "ON CONFLICT (ref, event_id) DO UPDATE SET released_at = 0, entry_key = '', "
    "envelope = excluded.envelope WHERE held_events.released_at <> 0",
    "he_posted": "UPDATE held_events SET entry_key = ? WHERE event_id = ? AND "
    "released_at <> 0 AND entry_key = ''",
    "he_of_ref": f"SELECT {_HE} FROM held_events WHERE ref = ? ORDER BY held_at, event_id LIMIT ?",
    "he_of_events": f"SELECT {_HE} FROM held_events WHERE event_id{{any}}",
    "he_totals": "SELECT ref, currency, amount, held_at FROM held_events WHERE "
    "released_at = 0 AND ref{any}",
    "he_release": "UPDATE held_events SET released_at = ? WHERE ref = ? AND event_id{any} "
    "AND released_at = 0",
    "mo_get": "SELECT value FROM mapping_overrides WHERE table_name = ? AND code = ?",
    "mo_put": "INSERT INTO mapping_overrides (table_name, code, value) VALUES (?,?,?) "
    "ON CONFLICT (table_name, code) DO UPDATE SET value = excluded.value",
    "mo_of": "SELECT table_name, code, value FROM mapping_overrides WHERE table_name{any} "
    "ORDER BY table_name{C}, code{C}",
}


def _held(r: Sequence[Any]) -> HeldEvent:
    return HeldEvent(
        r[0], r[1], r[2], bytes(r[3]), Decimal(r[4]), r[5], float(r[6]), float(r[7]), r[8]
    )


def _item(r: Sequence[Any]) -> WorkItem:
    return WorkItem(
        int(r[0]),
        r[1],
        r[2],
        r[3],
        r[4],
        r[5],
        r[6],
        r[7],
        float(r[8]),
        float(r[9]),
        r[10],
        bytes(r[11]),
    )


def hold_totals_of(rows: Sequence[Sequence[Any]]) -> dict[str, HoldTotals]:
    """(ref, currency, amount, held_at) rows -> totals per ref (summed as Decimal here)."""
    acc: dict[str, tuple[int, dict[str, Decimal], float]] = {}
    for ref, cur, amount, at in rows:
        n, sums, oldest = acc.get(ref, (0, {}, float(at)))
        sums[cur] = sums.get(cur, Decimal(0)) + Decimal(amount)
        acc[ref] = (n + 1, sums, min(oldest, float(at)))
    return {
        ref: HoldTotals(n, tuple(sorted(sums.items())), oldest)
        for ref, (n, sums, oldest) in acc.items()
    }


class SqlWorkTx(TxBase):
    """The work-item writes of a transaction on SQL (mixin of SqlTx)."""

    def add_work_item(
        self,
        *,
        kind: str,
        queue: str,
        key: str,
        event_id: str,
        correlation_id: str,
        detail: str,
        envelope: bytes,
        now: float,
    ) -> int | None:
        rows = self._c.execute(
            self._q["wi_add"],
            (kind, queue, key, event_id, correlation_id, detail, now, now, envelope),
        ).fetchall()
        if rows:
            return int(rows[0][0])
        # seen before: reopen it only if it was resubmitted and failed again
        self._c.execute(self._q["wi_reopen"], (detail, now, kind, event_id))
        return None

    def close_work_items(self, event_id: str, resolution: str, now: float) -> int:
        return int(self._c.execute(self._q["wi_close"], (resolution, now, event_id)).rowcount)

    def mapping_override(self, table: str, code: str) -> str | None:
        r = self._c.execute(self._q["mo_get"], (table, code)).fetchone()
        return str(r[0]) if r else None

    def set_mapping_override(self, table: str, code: str, value: str) -> None:
        self._c.execute(self._q["mo_put"], (table, code, value))

    def hold_event(self, held: HeldEvent) -> bool:
        h = held
        return bool(
            self._c.execute(
                self._q["he_hold"],
                (h.ref, h.event_id, h.key, h.envelope, str(h.amount), h.currency, h.held_at),
            ).rowcount
            == 1
        )

    def pending_events(self, event_ids: Collection[str]) -> set[str]:
        ids = list(event_ids)
        if not ids:
            return set()
        args = self._d.values(ids)
        return {
            r[0]
            for r in self._c.execute(self._d.expand(self._q["pending"], len(ids)), (*args, *args))
        }

    def held_posted(self, event_id: str, entry_key: str) -> int:
        return int(self._c.execute(self._q["he_posted"], (entry_key, event_id)).rowcount)


class SqlWork(StoreBase):
    """Work items, mapping overrides and held events on SQL (mixin of SqlStore)."""

    def work_items(
        self, status: str | None = None, limit: int = 1000, after: int | None = None
    ) -> list[WorkItem]:
        m = self._d.mark
        q = self._q["wi_after"] + (f" AND status = {m}" if status else "")
        args = (-1 if after is None else after, *((status,) if status else ()), limit)
        return [_item(r) for r in self._rows(f"{q} ORDER BY id LIMIT {m}", args)]

    def work_item(self, item_id: int) -> WorkItem | None:
        r = self._one(self._q["wi_by_id"], (item_id,))
        return _item(r) if r else None

    def work_items_for(self, correlation_id: str) -> list[WorkItem]:
        return [_item(r) for r in self._rows(self._q["wi_for"], (correlation_id,))]

    def set_work_item_status(self, item_id: int, status: str, resolution: str, now: float) -> None:
        self._run(lambda c: c.execute(self._q["wi_set"], (status, resolution, now, item_id)))

    def held_events(self, ref: str, limit: int = 1000) -> list[HeldEvent]:
        return [_held(r) for r in self._rows(self._q["he_of_ref"], (ref, limit))]

    def holds_of(self, event_ids: Sequence[str]) -> list[HeldEvent]:
        return sorted(
            (_held(r) for r in self._chunked(self._q["he_of_events"], list(event_ids))),
            key=lambda h: (h.ref, h.event_id),
        )

    def hold_totals(self, refs: Sequence[str]) -> dict[str, HoldTotals]:
        return hold_totals_of(self._chunked(self._q["he_totals"], list(refs)))

    def release_held(self, ref: str, event_ids: Sequence[str], now: float) -> int:
        d, q = self._d, self._q["he_release"]
        return self._run(
            lambda c: sum(
                int(c.execute(d.expand(q, len(chunk)), (now, ref, *d.values(chunk))).rowcount)
                for chunk in d.chunks(list(event_ids))
            )
        )

    def mapping_overrides(self, tables: Sequence[str]) -> list[tuple[str, str, str]]:
        return sorted(
            (str(t), str(c), str(v)) for t, c, v in self._chunked(self._q["mo_of"], list(tables))
        )

    def set_mapping_override(self, table: str, code: str, value: str) -> None:
        self._run(lambda c: c.execute(self._q["mo_put"], (table, code, value)))
