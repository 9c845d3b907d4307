"""What differs between SQLite and PostgreSQL, once, so the store's SQL is written once.

Every statement of the sql_*.py modules is written with `?` placeholders and a few tokens
that `Dialect.compile` turns into the dialect's own text when an adapter class is made
(never per call): `{seq}` the column that gives insertion order (SQLite's rowid, a
PostgreSQL identity `seq`), `{C}` a bytewise collation, `{published}`/`{unpublished}` the
inbox flag test, `{blob0}` an empty byte string, `{any}` a membership test for a list of
values (`IN (?,?,...)` on SQLite, `= ANY(%s)` with one array on PostgreSQL; see `expand`).
Both take `INSERT ... ON CONFLICT ... DO NOTHING / DO UPDATE` (SQLite 3.24+) and
`RETURNING` (SQLite 3.35+). Values: money goes in as decimal text (SQLite keeps TEXT,
PostgreSQL casts it to NUMERIC) and comes out through `Decimal(...)`; dates go in ISO text
and come out through `day`.

The base classes at the end name what the aggregate mixins (sql_*.py) use from the
adapter they are mixed into: a connection and the compiled statements for a transaction,
and `_rows`/`_one`/`_run`/`_tx` for a store.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any, TypeVar

T = TypeVar("T")
Rows = Sequence[Sequence[Any]]


def _sqlite_many(conn: Any, statement: str, rows: Rows) -> int:
    return int(conn.executemany(statement, rows).rowcount)


def _postgres_many(conn: Any, statement: str, rows: Rows) -> int:
    if not rows:
        return 0
    with conn.cursor() as cur:
        cur.executemany(statement, rows)
        return int(cur.rowcount)


def _no_nul(s: str) -> str:
    """PostgreSQL TEXT cannot hold NUL. A garbled message's control id or error may carry
    one; it must still be stored (and answered) rather than fail its whole batch, so NUL is
    kept as U+FFFD in the inbox's text columns. The raw bytes keep the exact content."""
    return s.replace("\x00", "\ufffd")


def _same(s: str) -> str:
    return s


@dataclass(frozen=True, eq=False)
class Dialect:
    """One SQL dialect: placeholder, the SQL fragments that differ, and how to run a batch."""

    name: str
    mark: str  # the driver's placeholder
    tail: str  # SQL for the part of control_id after its first ":" (as indexed)
    bytewise: str  # what makes a compare or an order bytewise (as the indexes are built)
    seq: str  # the column of insertion order
    published: str
    unpublished: str
    blob0: str
    array: bool  # lists go as one array parameter (`= ANY(%s)`), not one mark a value
    chunk: int  # the most values one `{any}` takes
    lock: str  # a transaction-scoped lock on one text key, or "" (writers are serialized)
    text: Callable[[str], str]  # what a text value of the inbox becomes
    many: Callable[[Any, str, Rows], int]  # executemany -> rows changed

    def compile(self, statements: Mapping[str, str]) -> dict[str, str]:
        """The statements in this dialect's text (once, when an adapter class is made)."""
        return {name: self.sql(s) for name, s in statements.items()}

    def sql(self, statement: str) -> str:
        out = statement.replace("?", self.mark)
        for token, text in (
            ("{seq}", self.seq),
            ("{C}", self.bytewise),
            ("{published}", self.published),
            ("{unpublished}", self.unpublished),
            ("{blob0}", self.blob0),
        ):
            out = out.replace(token, text)
        return out

    def expand(self, statement: str, n: int) -> str:
        """`statement` (compiled) with each `{any}` testing membership in `n` values."""
        return _expand(statement, " = ANY(%s)" if self.array else f" IN ({','.join('?' * n)})")

    def values(self, values: Sequence[Any]) -> list[Any]:
        """The arguments of one `{any}` for these values."""
        return [list(values)] if self.array else list(values)

    def chunks(self, values: Sequence[Any]) -> list[Sequence[Any]]:
        return [values[i : i + self.chunk] for i in range(0, len(values), self.chunk)]


@functools.lru_cache(maxsize=256)
def _expand(statement: str, test: str) -> str:
    return statement.replace("{any}", test)


def day(value: date | str) -> date:
    """A date column's value as a date (SQLite gives ISO text)."""
    return value if isinstance(value, date) else date.fromisoformat(value)


SQLITE = Dialect(
    name="sqlite",
    mark="?",
    tail="substr(control_id, instr(control_id, ':') + 1)",
    bytewise="",
    seq="rowid",
    published="published = 1",
    unpublished="published = 0",
    blob0="x''",
    array=False,
    chunk=500,
    lock="",
    text=_same,
    many=_sqlite_many,
)
# a PostgreSQL locale collation skips punctuation when it sorts: ranges and orders want "C"
POSTGRES = Dialect(
    name="postgresql",
    mark="%s",
    tail="substr(control_id, strpos(control_id, ':') + 1)",
    bytewise=' COLLATE "C"',
    seq="seq",
    published="published",
    unpublished="NOT published",
    blob0="''::bytea",
    array=True,
    chunk=1 << 30,
    lock="SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))",
    text=_no_nul,
    many=_postgres_many,
)


class TxBase:
    """What a transaction's aggregate mixins use: its connection, dialect and statements."""

    _c: Any
    _d: Dialect
    _q: Mapping[str, str]

    def _lock(self, key: str) -> None:
        if self._d.lock:
            self._c.execute(self._d.lock, (key,))


class StoreBase:
    """What a store's aggregate mixins use; each adapter gives the four methods."""

    _d: Dialect
    _q: Mapping[str, str]

    def _rows(self, query: str, args: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        raise NotImplementedError

    def _one(self, query: str, args: Sequence[Any] = ()) -> tuple[Any, ...] | None:
        raise NotImplementedError

    def _run(self, work: Callable[[Any], T]) -> T:
        """`work` on a connection inside a write transaction of its own."""
        raise NotImplementedError

    def _tx(self, conn: Any) -> Any:
        """The adapter's transaction object on this connection (the Tx port)."""
        raise NotImplementedError

    def _chunked(
        self, statement: str, values: Sequence[Any], before: Sequence[Any] = ()
    ) -> list[tuple[Any, ...]]:
        """The rows of `statement` (one `{any}`, after the arguments `before`) for every
        chunk of `values`."""
        rows: list[tuple[Any, ...]] = []
        for chunk in self._d.chunks(values):
            rows += self._rows(
                self._d.expand(statement, len(chunk)), (*before, *self._d.values(chunk))
            )
        return rows
