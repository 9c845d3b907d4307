"""The journal aggregate on SQL (SQLite and PostgreSQL): entries and their lines, sealed
batches, written once for both (ports.py: `insert_entry`, `ar_balances`, the ledger reads
and `record_batch`).

Money goes in as decimal text and comes back as Decimal (SQLite keeps TEXT, PostgreSQL
NUMERIC); the posting order is the dialect's `{seq}` (SQLite's rowid, PostgreSQL's
identity). A batch seals its entries all or nothing: a sealed count short of the batch's
entries means another batch holds one of them, and the write rolls back. The batch is
stored once, in `batches.body`: an outbox row queued as `BATCH_BODY` holds no copy
(sql_outbox.py reads it back with the body).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from decimal import Decimal
from typing import Any, Final

from isthmus.ledger import batch_codec
from isthmus.ledger.batch import JournalBatch
from isthmus.ledger.journal import Dimensions, JournalEntry, JournalLine
from isthmus.store.sql_dialect import StoreBase, TxBase, day

_LINE: Final = "account, debit, credit, currency, company, cost_center, service_line, account_token"
ENTRY_COLS: Final = (
    "entry_key, posted_on, period, channel, memo, correlation_id, "
    "causation_id, reverses, moved_from"
)
SQL: Final = {
    "entry_insert": f"INSERT INTO journal_entries ({ENTRY_COLS}) VALUES (?,?,?,?,?,?,?,?,?) "
    "ON CONFLICT (entry_key) DO NOTHING",
    "line_insert": f"INSERT INTO journal_lines (entry_key, line_no, {_LINE}) "
    "VALUES (?,?,?,?,?,?,?,?,?,?)",
    "ar_lines": "SELECT company, currency, debit, credit FROM journal_lines "
    "WHERE account = ? AND account_token = ?",
    "lines_all": f"SELECT {_LINE} FROM journal_lines",
    "lines_of": f"SELECT entry_key, {_LINE} FROM journal_lines WHERE entry_key{{any}} "
    "ORDER BY entry_key, line_no",
    "entries": f"SELECT {ENTRY_COLS} FROM journal_entries",
    "entry_batches": "SELECT entry_key, batch_id FROM journal_entries WHERE entry_key{any} "
    "AND batch_id IS NOT NULL",
    "unbatched": "SELECT DISTINCT channel FROM journal_entries WHERE batch_id IS NULL ORDER BY 1",
    "batch_insert": "INSERT INTO batches (batch_id, channel, policy, line_count, created_at, "
    "body) VALUES (?,?,?,?,?,?) ON CONFLICT (batch_id) DO NOTHING",
    "batch_seal": "UPDATE journal_entries SET batch_id = ? WHERE entry_key{any} "
    "AND batch_id IS NULL",
    "batch_outbox": "INSERT INTO outbox (destination, batch_id, fmt, payload, created_at) "
    "VALUES (?,?,?,?,?) ON CONFLICT DO NOTHING",
    "batches": "SELECT batch_id, channel, line_count, created_at FROM batches "
    "ORDER BY created_at, {seq}",
    "batch_body": "SELECT body FROM batches WHERE batch_id = ?",
}


class _AlreadySealed(Exception):
    """Internal: roll the batch back, one of its entries is sealed already."""


def line(r: Sequence[Any]) -> JournalLine:
    """A JournalLine from a line row (account, amounts as text, currency, dimensions)."""
    return JournalLine(
        account=r[0],
        debit=Decimal(r[1]),
        credit=Decimal(r[2]),
        currency=r[3],
        dims=Dimensions(company=r[4], cost_center=r[5], service_line=r[6], account_token=r[7]),
    )


class SqlJournalTx(TxBase):
    """The journal writes of a transaction on SQL (mixin of SqlTx)."""

    def insert_entry(self, entry: JournalEntry) -> bool:
        e = entry
        if (
            self._c.execute(
                self._q["entry_insert"],
                (
                    e.entry_key,
                    e.posted_on.isoformat(),
                    e.period,
                    e.channel,
                    e.memo,
                    e.correlation_id,
                    e.causation_id,
                    e.reverses,
                    e.moved_from,
                ),
            ).rowcount
            != 1
        ):
            return False
        self._d.many(
            self._c,
            self._q["line_insert"],
            [
                (
                    e.entry_key,
                    i,
                    ln.account,
                    str(ln.debit),
                    str(ln.credit),
                    ln.currency,
                    ln.dims.company,
                    ln.dims.cost_center,
                    ln.dims.service_line,
                    ln.dims.account_token,
                )
                for i, ln in enumerate(e.lines, 1)
            ],
        )
        return True

    def ar_balances(self, ar_account: str, token: str) -> dict[tuple[str, str], Decimal]:
        out: dict[tuple[str, str], Decimal] = {}
        for company, cur, debit, credit in self._c.execute(
            self._q["ar_lines"], (ar_account, token)
        ):
            k = (company, cur)
            out[k] = out.get(k, Decimal(0)) + Decimal(debit) - Decimal(credit)
        return out


class SqlJournal(StoreBase):
    """The journal reads on SQL (mixin of SqlStore)."""

    def journal_lines(self) -> Iterator[JournalLine]:
        for r in self._rows(self._q["lines_all"]):
            yield line(r)

    def with_lines(self, rows: Sequence[Sequence[Any]], at: int = 0) -> list[JournalEntry]:
        """Entries of `rows` (ENTRY_COLS from column `at` on) with their lines."""
        lines: dict[str, list[JournalLine]] = {}
        for r in self._chunked(self._q["lines_of"], [r[at] for r in rows]):
            lines.setdefault(r[0], []).append(line(r[1:]))
        return [
            JournalEntry(
                entry_key=r[at],
                posted_on=day(r[at + 1]),
                period=r[at + 2],
                channel=r[at + 3],
                memo=r[at + 4],
                lines=tuple(lines.get(r[at], ())),
                correlation_id=r[at + 5],
                causation_id=r[at + 6],
                reverses=r[at + 7],
                moved_from=r[at + 8],
            )
            for r in rows
        ]

    def entries(
        self,
        *,
        correlation_id: str | None = None,
        unbatched_channel: str | None = None,
        limit: int = 100_000,
    ) -> list[JournalEntry]:
        m = self._d.mark
        args: tuple[object, ...] = (limit,)
        q = self._q["entries"]
        if correlation_id is not None:
            q, args = q + f" WHERE correlation_id = {m}", (correlation_id, limit)
        elif unbatched_channel is not None:
            q, args = q + f" WHERE batch_id IS NULL AND channel = {m}", (unbatched_channel, limit)
        return self.with_lines(self._rows(f"{q} ORDER BY {self._d.seq} LIMIT {m}", args))

    def entry_batches(self, entry_keys: Sequence[str]) -> dict[str, str]:
        return {
            str(k): str(b) for k, b in self._chunked(self._q["entry_batches"], list(entry_keys))
        }

    def unbatched_channels(self) -> list[str]:
        return [str(r[0]) for r in self._rows(self._q["unbatched"])]

    def record_batch(
        self, batch: JournalBatch, outbox: Sequence[tuple[str, str, bytes]], now: float
    ) -> bool:
        """Seal a batch: mark its entries, keep its body, queue its files (a `BATCH_BODY` row
        is the body, not a copy of it). All or nothing: refused (False) when the batch id
        exists or another batch sealed one of its entries."""
        q, d, keys = self._q, self._d, list(batch.entry_keys)

        def work(c: Any) -> bool:
            if (
                c.execute(
                    q["batch_insert"],
                    (
                        batch.batch_id,
                        batch.channel,
                        batch.policy,
                        len(batch.lines),
                        now,
                        batch_codec.encode(batch)[1],
                    ),
                ).rowcount
                != 1
            ):
                return False
            # PostgreSQL's READ COMMITTED: a racing exporter's UPDATE waits for ours, then
            # finds these rows sealed and its count short: one batch ever holds an entry
            if sum(
                c.execute(
                    d.expand(q["batch_seal"], len(chunk)), (batch.batch_id, *d.values(chunk))
                ).rowcount
                for chunk in d.chunks(keys)
            ) != len(keys):
                raise _AlreadySealed
            d.many(
                c, q["batch_outbox"], [(dest, batch.batch_id, f, p, now) for dest, f, p in outbox]
            )
            return True

        try:
            return self._run(work)
        except _AlreadySealed:
            return False  # rolled back: another batch holds one of these entries

    def batches(self) -> list[tuple[str, str, int, float]]:
        return [
            (str(r[0]), str(r[1]), int(r[2]), float(r[3])) for r in self._rows(self._q["batches"])
        ]

    def batch_body(self, batch_id: str) -> bytes | None:
        r = self._one(self._q["batch_body"], (batch_id,))
        return bytes(r[0]) if r else None
