"""The inbox aggregate on SQL (SQLite and PostgreSQL): the statements, written once, and the
store's inbox reads and writes on them (ports_inbox.py).

`accept`, the group commit, stays in each adapter (SQLite steps through the batch on one
connection, PostgreSQL pipelines it), but with the statements and the hold rule here.
Channel states live in the `meta` table (channel_meta.py) and are read here too.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Final

from isthmus.errors import StorageUnavailable
from isthmus.store import channel_meta
from isthmus.store.message_filter import where
from isthmus.store.ports_inbox import (
    Accepted,
    ChannelCount,
    ChannelState,
    Inbound,
    MessageQuery,
    PurgeRule,
    StoredMessage,
    held_ref,
)
from isthmus.store.purge_filter import purge_where
from isthmus.store.sql_dialect import StoreBase

_COLS: Final = (
    "id, channel, control_id, received_at, peer, message_type, status, ack_code, "
    "error, raw, events, published, digest, purged_at"
)
_COUNTS: Final = (
    ("messages", "SELECT count(*) FROM inbox"),
    ("rejected", "SELECT count(*) FROM inbox WHERE status = 'rejected'"),
    ("unpublished", "SELECT count(*) FROM inbox WHERE {unpublished} AND status <> 'held'"),
    ("held", "SELECT count(*) FROM inbox WHERE status = 'held'"),
    ("patients", "SELECT count(*) FROM patients"),
    ("charges", "SELECT count(*) FROM charges"),
    ("journal_entries", "SELECT count(*) FROM journal_entries"),
    ("journal_lines", "SELECT count(*) FROM journal_lines"),
    ("open_work_items", "SELECT count(*) FROM work_items WHERE status = 'open'"),
    ("batches", "SELECT count(*) FROM batches"),
    ("outbox_pending", "SELECT count(*) FROM outbox WHERE status = 'pending'"),
)
SQL: Final = {
    "inbox_insert": "INSERT INTO inbox (channel, control_id, received_at, peer, message_type, "
    "status, ack_code, error, raw, events, published, digest) "
    "VALUES (?,?,?,?,?,?,?,?,?,?,?,?) "
    "ON CONFLICT (channel, control_id) DO NOTHING",
    "inbox_first": "SELECT id, ack_code, status, error, digest FROM inbox "
    "WHERE channel = ? AND control_id = ?",
    "inbox_unpublished": f"SELECT {_COLS} FROM inbox WHERE {{unpublished}} AND "
    "status <> 'held' ORDER BY id LIMIT ?",
    "inbox_release": "UPDATE inbox SET status = 'accepted' WHERE channel = ? AND "
    f"control_id = ? AND status = 'held' RETURNING {_COLS}",
    "inbox_by_id": f"SELECT {_COLS} FROM inbox WHERE id = ?",
    "inbox_by_control": f"SELECT {_COLS} FROM inbox WHERE channel = ? AND control_id = ?",
    "inbox_all": f"SELECT {_COLS} FROM inbox",
    "inbox_purge": "UPDATE inbox SET raw = {blob0}, purged_at = ? WHERE id{any} AND purged_at = 0",
    "inbox_counts": "SELECT channel, status, ack_code, count(*) FROM inbox",
    "inbox_events": "SELECT received_at, events FROM inbox WHERE status = 'accepted'",
    "inbox_channels": "SELECT channel, status, published, count(*), max(received_at) "
    "FROM inbox GROUP BY channel, status, published",
    "meta_like": "SELECT name, value FROM meta WHERE name LIKE ?",
    "meta_put": "INSERT INTO meta (name, value) VALUES (?,?) ON CONFLICT (name) DO UPDATE "
    "SET value = excluded.value",
    "counts": "SELECT " + ", ".join(f"({q})" for _, q in _COUNTS),
}


def message(r: Sequence[Any]) -> StoredMessage:
    """A StoredMessage from an `inbox` row."""
    return StoredMessage(
        int(r[0]),
        r[1],
        r[2],
        r[3],
        r[4],
        r[5],
        r[6],
        r[7],
        r[8],
        bytes(r[9]),
        bytes(r[10]),
        bool(r[11]),
        r[12],
        float(r[13]),
    )


def duplicate(m: Inbound, first: Sequence[Any] | None, text: Any) -> Accepted:
    """The answer to `m` when its (channel, control id) is taken by the row `first`."""
    if first is None:  # cannot happen: the conflicting row is committed or ours
        raise StorageUnavailable(f"inbox row {m.channel}/{m.control_id} vanished")
    return Accepted(
        int(first[0]),
        True,
        first[1],
        first[2],
        first[3],
        conflict=bool(m.digest and first[4] and text(m.digest) != first[4]),
    )


def open_hold(tx: Any, m: Inbound, text: Any) -> None:
    """The work item a newly held message opens with, in its transaction (ports contract)."""
    if m.hold is not None:
        ref = text(held_ref(m.channel, m.control_id))
        tx.add_work_item(
            kind=m.hold.kind,
            queue=m.hold.queue,
            key=text(m.control_id),
            event_id=ref,
            correlation_id=ref,
            detail=text(m.hold.detail),
            envelope=b"",
            now=m.received_at,
        )


class SqlInbox(StoreBase):
    """The inbox port on SQL (mixin of SqlStore)."""

    def unpublished(self, limit: int) -> list[StoredMessage]:
        return [message(r) for r in self._rows(self._q["inbox_unpublished"], (limit,))]

    def release(
        self, channel: str, control_id: str, *, resolution: str, now: float
    ) -> StoredMessage | None:
        t = self._d.text

        def work(c: Any) -> StoredMessage | None:
            rows = c.execute(self._q["inbox_release"], (t(channel), t(control_id))).fetchall()
            if not rows:
                return None
            self._tx(c).close_work_items(t(held_ref(channel, control_id)), resolution, now)
            return message(rows[0])

        return self._run(work)

    def message(self, message_id: int) -> StoredMessage | None:
        r = self._one(self._q["inbox_by_id"], (message_id,))
        return message(r) if r else None

    def message_by_control_id(self, channel: str, control_id: str) -> StoredMessage | None:
        t = self._d.text
        r = self._one(self._q["inbox_by_control"], (t(channel), t(control_id)))
        return message(r) if r else None

    def messages(
        self,
        *,
        since: float | None = None,
        until: float | None = None,
        status: str | None = None,
        limit: int = 1000,
    ) -> list[StoredMessage]:
        m = self._d.mark
        conds, args = ["1 = 1"], []
        for cond, val in (
            (f"received_at >= {m}", since),
            (f"received_at < {m}", until),
            (f"status = {m}", status),
        ):
            if val is not None:
                conds.append(cond)
                args.append(val)
        return [
            message(r)
            for r in self._rows(
                f"{self._q['inbox_all']} WHERE {' AND '.join(conds)} ORDER BY id LIMIT {m}",
                (*args, limit),
            )
        ]

    def purge_candidates(
        self, rule: PurgeRule, *, after: int = 0, limit: int = 500
    ) -> list[StoredMessage]:
        q, args = purge_where(rule, after, self._d.mark, self._d.published)
        return [
            message(r)
            for r in self._rows(
                f"{self._q['inbox_all']} WHERE {q} ORDER BY id LIMIT {self._d.mark}", (*args, limit)
            )
        ]

    def purge_bodies(self, ids: Sequence[int], now: float) -> int:
        d = self._d
        return self._run(
            lambda c: sum(
                int(
                    c.execute(
                        d.expand(self._q["inbox_purge"], len(chunk)), (now, *d.values(chunk))
                    ).rowcount
                )
                for chunk in d.chunks(ids)
            )
        )

    def message_page(
        self, query: MessageQuery, *, before: int | None = None, limit: int = 50
    ) -> list[StoredMessage]:
        cond, args = where(query, before, self._d)
        return [
            message(r)
            for r in self._rows(
                f"{self._q['inbox_all']}{cond} ORDER BY id DESC LIMIT {self._d.mark}",
                (*args, limit),
            )
        ]

    def message_counts(self, since: float | None = None) -> dict[tuple[str, str, str], int]:
        q, args = self._q["inbox_counts"], tuple[float, ...]()
        if since is not None:
            q, args = q + f" WHERE received_at >= {self._d.mark}", (since,)
        return {
            (ch, st, ack): int(n)
            for ch, st, ack, n in self._rows(q + " GROUP BY channel, status, ack_code", args)
        }

    def accepted_events(self, since: float | None = None) -> list[tuple[float, bytes]]:
        q, args = self._q["inbox_events"], tuple[float, ...]()
        if since is not None:
            q, args = q + f" AND received_at >= {self._d.mark}", (since,)
        return [(float(t), bytes(ev)) for t, ev in self._rows(q + " ORDER BY id", args)]

    def channel_states(self) -> dict[str, ChannelState]:
        return channel_meta.states(self._rows(self._q["meta_like"], (channel_meta.PREFIX + "%",)))

    def set_channel_state(
        self, name: str, state: str, by: str, reason: str, now: float
    ) -> ChannelState:
        out = ChannelState(state, by, reason, now)
        value = channel_meta.encode(out)
        self._run(lambda c: c.execute(self._q["meta_put"], (channel_meta.key(name), value)))
        return out

    def channel_counts(self) -> list[ChannelCount]:
        return [
            ChannelCount(ch, st, bool(pub), int(n), float(last))
            for ch, st, pub, n, last in self._rows(self._q["inbox_channels"])
        ]

    def counts(self) -> dict[str, int]:
        [r] = self._rows(self._q["counts"])
        return {name: int(v) for (name, _), v in zip(_COUNTS, r, strict=True)}
