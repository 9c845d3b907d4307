"""The analytics warehouse: an embedded DuckDB database and Parquet files beside it.

DuckDB (https://duckdb.org/docs/sql/statements/create_table, transactions with ACID
commit) holds the tables of analytics/schema.py, the `schema_version` table and the
`watermark` table. The watermark commits in the same transaction as the rows it covers,
so a kill -9 leaves either both or neither: the next export redoes exactly what was not
committed. Keys are declared PRIMARY KEY, so a row written twice fails loudly instead of
counting twice.

Parquet files (Apache Parquet, written with pyarrow) are the hand-off to a bigger engine:
`<out>/<table>/period=YYYY-MM/<table>-<source>-<from>-<to>.parquet` (Hive partitioning by
period; from/to the watermark range the file covers), written under a temporary name and
renamed. Before an export writes, the files of a range above the committed watermark (left
by an export killed before its commit) are removed, so a rerun rewrites them instead of
duplicating them. Dimensions are rewritten whole at each export (`<table>/<table>.parquet`).

pyarrow and duckdb come with the `analytics` extra; without it, `Missing` says what to
install (the CLI exits 2 with it).
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any

from isthmus.analytics.schema import DIMENSIONS, FACTS, SCHEMA_VERSION, TABLES, VIEWS, Table
from isthmus.errors import ConfigurationError

if TYPE_CHECKING:
    import duckdb

# The default place of the warehouse, under the data directory (docs/analytics.md).
WAREHOUSE = Path("analytics") / "warehouse.duckdb"

EXTRA = "pip install 'isthmus[analytics]'"
_RANGE = re.compile(r"^(?P<table>[a-z_]+)-(?P<source>[a-z]+)-(?P<lo>\d+)-(?P<hi>\d+)\.parquet$")


class Missing(ConfigurationError, RuntimeError):
    """pyarrow or duckdb is not installed: the analytics extra is needed."""

    http_status = 503


class VersionMismatch(ConfigurationError, RuntimeError):
    """The warehouse was written by another schema version."""


def modules() -> tuple[ModuleType, ModuleType]:
    """(duckdb, pyarrow), imported on first use: the hub serves without them."""
    try:
        import duckdb  # noqa: PLC0415
        import pyarrow  # noqa: PLC0415
    except ImportError as exc:
        raise Missing(
            f"analytics needs pyarrow and duckdb ({exc.name} is missing): {EXTRA}"
        ) from exc
    return duckdb, pyarrow


def arrow_type(pa: Any, sql: str) -> Any:
    """The Arrow type of a schema column's DuckDB type (DECIMAL(p,s) included); `pa` is the
    lazily imported pyarrow module."""
    if sql.startswith("DECIMAL"):
        p, s = sql[8:-1].split(",")
        return pa.decimal128(int(p), int(s))
    return {
        "VARCHAR": pa.string(),
        "BIGINT": pa.int64(),
        "INTEGER": pa.int32(),
        "DATE": pa.date32(),
        "BOOLEAN": pa.bool_(),
        "TIMESTAMPTZ": pa.timestamp("us", tz="UTC"),
    }[sql]


def arrow_schema(pa: Any, table: Table) -> Any:
    """The Arrow schema of a warehouse table, column for column."""
    return pa.schema([(c, arrow_type(pa, t)) for c, t in table.columns])


def to_arrow(pa: Any, table: Table, rows: Sequence[tuple[object, ...]]) -> Any:
    """Rows (tuples in column order) to an Arrow table: transposed once (`zip`, in C),
    then one typed `pa.array` per column, no Python object per cell in between."""
    schema = arrow_schema(pa, table)
    if not rows:
        return schema.empty_table()
    cols = zip(*rows, strict=True)
    return pa.Table.from_arrays(
        [pa.array(c, type=f.type) for c, f in zip(cols, schema, strict=True)], schema=schema
    )


def _ddl(t: Table) -> str:
    cols = ", ".join(f"{c} {ty}" for c, ty in t.columns)
    return f"CREATE TABLE IF NOT EXISTS {t.name} ({cols}, PRIMARY KEY ({', '.join(t.key)}))"


class Warehouse:
    """One DuckDB database (one writer at a time: DuckDB locks the file)."""

    def __init__(self, path: Path) -> None:
        self.duckdb, self.pa = modules()
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self.con: duckdb.DuckDBPyConnection = self.duckdb.connect(str(path))
        self._prepare()

    def _prepare(self) -> None:
        c = self.con
        c.execute("BEGIN TRANSACTION")
        try:
            c.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")
            found = c.execute("SELECT version FROM schema_version").fetchall()
            if found and found[0][0] != SCHEMA_VERSION:
                raise VersionMismatch(
                    f"warehouse {self.path} is at analytics schema {found[0][0]}, this hub "
                    f"writes {SCHEMA_VERSION}: export into a new directory"
                )
            if not found:
                c.execute("INSERT INTO schema_version VALUES (?)", [SCHEMA_VERSION])
            c.execute(
                "CREATE TABLE IF NOT EXISTS watermark (source VARCHAR PRIMARY KEY, "
                "position BIGINT NOT NULL, exported_at TIMESTAMPTZ NOT NULL)"
            )
            for t in FACTS + DIMENSIONS:
                c.execute(_ddl(t))
            for name, body in VIEWS.items():
                c.execute(f"CREATE OR REPLACE VIEW {name} AS {body}")
            c.execute("COMMIT")
        except BaseException:
            c.execute("ROLLBACK")
            raise

    def close(self) -> None:
        self.con.close()

    def watermarks(self) -> dict[str, int]:
        return {
            str(s): int(p)
            for s, p in self.con.execute("SELECT source, position FROM watermark").fetchall()
        }

    def commit(self, tables: Mapping[str, Any], marks: Mapping[str, int], now: float) -> None:
        """Insert arrow tables and move the watermarks, in one transaction."""
        c = self.con
        c.execute("BEGIN TRANSACTION")
        try:
            for name, data in tables.items():
                if not data.num_rows:
                    continue
                c.register("_batch", data)
                cols = ", ".join(TABLES[name].names)
                verb = "INSERT OR REPLACE" if name == "payer_hint" else "INSERT"
                c.execute(f"{verb} INTO {name} ({cols}) SELECT {cols} FROM _batch")
                c.unregister("_batch")
            for source, pos in marks.items():
                c.execute(
                    "INSERT OR REPLACE INTO watermark VALUES (?, ?, to_timestamp(?))",
                    [source, pos, now],
                )
            c.execute("COMMIT")
        except BaseException:
            c.execute("ROLLBACK")
            raise

    def rebuild(self, sql: Iterable[str]) -> None:
        """Replace the dimensions, in one transaction."""
        c = self.con
        c.execute("BEGIN TRANSACTION")
        try:
            for stmt in sql:
                c.execute(stmt)
            c.execute("COMMIT")
        except BaseException:
            c.execute("ROLLBACK")
            raise

    def arrow(self, query: str) -> Any:
        return self.con.sql(query).to_arrow_table()


# --- Parquet ---------------------------------------------------------------------------------


def _write(pq: Any, data: Any, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    pq.write_table(data, tmp)
    with open(tmp, "rb") as fh:
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def fact_files(out: Path, name: str, source: str, lo: int, hi: int, data: Any) -> list[Path]:
    """Write one fact table's rows of a watermark range, one file per period."""
    import pyarrow.compute as pc  # noqa: PLC0415
    import pyarrow.parquet as pq  # noqa: PLC0415

    written = []
    periods = sorted(pc.unique(data.column("period")).to_pylist())
    for period in periods:  # most pages hold one period: written whole, no filter pass
        part = data if len(periods) == 1 else data.filter(pc.equal(data.column("period"), period))
        path = out / name / f"period={period}" / f"{name}-{source}-{lo:012d}-{hi:012d}.parquet"
        _write(pq, part, path)
        written.append(path)
    return written


def dimension_file(out: Path, name: str, data: Any) -> Path:
    """Write a dimension table whole, as one Parquet file that replaces the previous one."""
    import pyarrow.parquet as pq  # noqa: PLC0415

    path = out / name / f"{name}.parquet"
    _write(pq, data, path)
    return path


def drop_uncommitted(out: Path, marks: Mapping[str, int]) -> int:
    """Remove the fact files of ranges above the committed watermark (and stray temporary
    files): what an export killed before its commit left. How many were removed."""
    removed = 0
    if not out.is_dir():
        return 0
    for path in out.glob("*/period=*/*"):
        m = _RANGE.match(path.name)
        if path.name.startswith(".") or (m and int(m["lo"]) > marks.get(m["source"], 0)):
            path.unlink()
            removed += 1
    return removed
