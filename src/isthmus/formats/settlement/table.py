"""Header-driven CSV tables: the shared reading of settlement and bank deposit files.

Processors and banks export CSV with their own column order and names, a UTF-8 byte order
mark now and then, CRLF or LF line ends, and amounts as text (RFC 4180 quoting). A table is
read by its header: every column the file kind needs is looked up by its name or one of
its aliases (case, spaces, dashes and underscores ignored), so column order never matters
and extra columns are ignored (they are never copied into an event: they may carry PHI or
card data). Every problem is a `Finding` with its row number (the header is row 1, as a
spreadsheet counts) and its column, returned as data, never raised. A finding names the
column and the rule, never the cell's value (a misplaced name or account number would be
echoed into the inbox error, `failed/*.error.txt` and work items otherwise).

Every cell of every row, read or not, goes through the one card-number detector
(`formats.cards`): a cell holding a card number is a finding (the file is refused) and the
cell is read as empty, so a card number is never copied into an event or a key.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from decimal import Decimal, InvalidOperation
from functools import lru_cache
from typing import Final

from isthmus.formats.cards import has_card

CARD_RULE: Final = (
    "holds a card number; send the patient's billing account number or the "
    "processor's ids, never card data"
)
_CURRENCY: Final = re.compile(r"^[A-Z]{3}$")
_AMOUNT: Final = re.compile(r"[+-]?\d+(\.\d+)?")
_TIME: Final = re.compile(r"[T ]")
_DATES: Final = (
    re.compile(r"(?P<y>\d{4})-(?P<m>\d{1,2})-(?P<d>\d{1,2})"),
    re.compile(r"(?P<y>\d{4})(?P<m>\d{2})(?P<d>\d{2})"),
    re.compile(r"(?P<m>\d{1,2})/(?P<d>\d{1,2})/(?P<y>\d{4})"),
)


@dataclass(frozen=True)
class Finding:
    """One problem of a file: row 0 is the file itself, row 1 the header. `value` is the
    offending cell, for programs; it is never part of the text."""

    row: int
    column: str
    text: str
    value: str = ""

    def __str__(self) -> str:
        where = f"row {self.row}" if self.row else "file"
        if self.column:
            where += f", column {self.column}"
        return f"{where}: {self.text}"


@lru_cache(maxsize=4096)
def parse_day(text: str) -> date | None:
    """YYYY-MM-DD, YYYYMMDD or MM/DD/YYYY as a date, None when it is none of them or no
    such day exists. Cached: a file repeats its few dates on every row."""
    for pattern in _DATES:
        m = pattern.fullmatch(text)
        if m:
            try:
                return date(int(m["y"]), int(m["m"]), int(m["d"]))
            except ValueError:
                return None
    return None


def norm(name: str) -> str:
    """A header name compared loosely: lower case, no spaces, dashes or underscores."""
    return re.sub(r"[\s_\-./]+", "", name.strip().lower())


def decode(data: bytes) -> tuple[str, Finding | None]:
    """The text of a file (UTF-8, a BOM removed), or a finding when it is not UTF-8."""
    try:
        return data.decode("utf-8-sig"), None
    except UnicodeDecodeError as exc:
        return "", Finding(0, "", f"not UTF-8 text (byte {exc.start})")


def header_of(data: bytes) -> list[str]:
    """The normalized names of the first line of a CSV file, or [] when it is not text."""
    text, bad = decode(data[:4096])
    if bad is not None and not text:
        text = data[:4096].decode("utf-8-sig", errors="replace")
    first = text.splitlines()[0] if text.strip() else ""
    try:
        row = next(csv.reader([first]), [])
    except csv.Error:
        return []
    return [norm(c) for c in row]


@dataclass(frozen=True)
class Row:
    """One data row: its 1-based row number in the file and its cells by canonical name."""

    number: int
    cells: Mapping[str, str]
    carded: frozenset[str] = frozenset()  # columns read as empty: they held a card number

    def get(self, name: str) -> str:
        return self.cells.get(name, "").strip()


@dataclass(frozen=True)
class Table:
    """A CSV file read by its header: the columns found, the rows, and the findings."""

    columns: Mapping[str, str]  # canonical name -> the header as the file spells it
    rows: tuple[Row, ...]
    findings: tuple[Finding, ...]


def read_table(
    data: bytes, *, required: Mapping[str, Sequence[str]], optional: Mapping[str, Sequence[str]]
) -> Table:
    """Read `data` by its header. `required` and `optional` map each canonical column name
    to its accepted spellings (the canonical name is always accepted). Blank lines are
    skipped; a row with more cells than the header is a finding."""
    text, bad = decode(data)
    if bad is not None:
        return Table({}, (), (bad,))
    try:
        records = list(csv.reader(io.StringIO(text, newline="")))
    except csv.Error as exc:
        return Table({}, (), (Finding(0, "", f"not a readable CSV file: {exc}"),))
    numbered = [(i, r) for i, r in enumerate(records, start=1) if any(c.strip() for c in r)]
    if not numbered:
        return Table({}, (), (Finding(0, "", "the file is empty"),))
    head_no, head = numbered[0]
    spelled = {norm(c): (i, c.strip()) for i, c in reversed(list(enumerate(head)))}
    findings: list[Finding] = []
    where: dict[str, int] = {}
    columns: dict[str, str] = {}
    for group, is_required in ((required, True), (optional, False)):
        for name, aliases in group.items():
            hit = next(
                (spelled[a] for a in (norm(name), *map(norm, aliases)) if a in spelled), None
            )
            if hit is not None:
                where[name], columns[name] = hit
            elif is_required:
                findings.append(
                    Finding(
                        head_no,
                        name,
                        "required column missing from the "
                        f"header (also accepted: {', '.join(aliases) or '-'})",
                    )
                )
    if findings:
        return Table(columns, (), tuple(findings))
    rows: list[Row] = []
    names = {i: n for n, i in where.items()}
    for number, rec in numbered[1:]:
        carded = {i for i, cell in enumerate(rec) if has_card(cell)}
        for i in sorted(carded):
            column = names.get(i) or (head[i].strip() if i < len(head) else f"#{i + 1}")
            findings.append(Finding(number, column, CARD_RULE))
        if len(rec) > len(head):
            findings.append(Finding(number, "", f"{len(rec)} cells for {len(head)} header columns"))
            continue
        rows.append(
            Row(
                number,
                {n: rec[i] if i < len(rec) and i not in carded else "" for n, i in where.items()},
                frozenset(n for n, i in where.items() if i in carded),
            )
        )
    if not rows and not findings:
        findings.append(Finding(0, "", "the file has a header and no data rows"))
    return Table(columns, tuple(rows), tuple(findings))


class Cells:
    """Typed reading of one row's cells; every problem is added to `findings`."""

    def __init__(self, row: Row, findings: list[Finding]) -> None:
        self.row = row
        self.findings = findings

    def _bad(self, column: str, text: str, value: str = "") -> None:
        if column in self.row.carded:
            return  # already a card finding; the cell was read as empty
        self.findings.append(Finding(self.row.number, column, text, value))

    def text(self, column: str, *, required: bool = True) -> str:
        value = self.row.get(column)
        if required and not value:
            self._bad(column, "is empty")
        return value

    def money(self, column: str, *, default: Decimal | None = None) -> Decimal:
        """A decimal amount: digits, an optional sign and point; "(12.50)" is negative;
        a "$" and thousands separators are tolerated. Never a float."""
        raw = self.row.get(column)
        if not raw and default is not None:
            return default
        value = raw.replace("$", "").replace(",", "").strip()
        negative = value.startswith("(") and value.endswith(")")
        if negative:
            value = value[1:-1].strip()
        try:
            amount = Decimal(value)
        except InvalidOperation:
            amount = Decimal("NaN")
        if not amount.is_finite() or not _AMOUNT.fullmatch(value):
            self._bad(column, "is not a decimal amount", raw)
            return Decimal(0)
        return -amount if negative else amount

    def day(self, column: str, *, required: bool = True) -> date | None:
        """A date as YYYY-MM-DD, YYYYMMDD or MM/DD/YYYY; a time after it is ignored."""
        raw = self.row.get(column)
        if not raw:
            if required:
                self._bad(column, "is empty")
            return None
        when = parse_day(_TIME.split(raw, maxsplit=1)[0])
        if when is None:
            self._bad(column, "is not a date (YYYY-MM-DD, YYYYMMDD or MM/DD/YYYY)", raw)
        return when

    def currency(self, column: str, default: str) -> str:
        raw = self.row.get(column)
        cur = raw.upper() or default
        if not _CURRENCY.match(cur):
            self._bad(column, "is not an ISO 4217 currency code", raw)
        return cur
