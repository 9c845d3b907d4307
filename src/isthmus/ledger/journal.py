"""The double-entry journal: immutable entries, their validation, and reversal.

Types follow beancount's `core/data.py`: frozen records, no behaviour beyond what the data
itself implies. Validation follows `ops/validation.py`: a list of plain functions, each
returning the findings it has as `LedgerError` data; `validate_entry` runs them all. An
entry is never edited after it is posted. A correction is a new entry made by `reverse`,
which swaps the sides of every line and names the entry it cancels in `reverses`.

Dimensions carry what the ERP needs to report (company, cost center, service line) and an
opaque patient-account token, never PHI: no name, MRN or birth date ever reaches a line.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import date
from decimal import Decimal

import msgspec

from isthmus.ledger.currency import is_currency_code, is_quantized, quantize, quantum
from isthmus.ledger.errors import ErrorCode, InvalidEntry, LedgerError, UnbalancedEntry
from isthmus.ledger.periods import is_period, period_of


@dataclass(frozen=True)
class Posting:
    """What every entry needs beside its lines: key, date, period, lineage."""

    entry_key: str
    posted_on: date
    period: str
    channel: str
    memo: str
    correlation_id: str
    causation_id: str
    moved_from: str | None = None


class Dimensions(msgspec.Struct, frozen=True, kw_only=True):
    """Financial dimensions of a line. `account_token` is opaque, never PHI."""

    company: str
    cost_center: str = ""
    service_line: str = ""
    account_token: str = ""


class JournalLine(msgspec.Struct, frozen=True, kw_only=True):
    """One side of an entry: exactly one of debit/credit is > 0, the other is zero."""

    account: str
    debit: Decimal
    credit: Decimal
    currency: str
    dims: Dimensions

    @property
    def amount(self) -> Decimal:
        """Signed amount, debit positive."""
        return self.debit - self.credit


class JournalEntry(msgspec.Struct, frozen=True, kw_only=True):
    """A balanced set of lines posted together, keyed for idempotency by `entry_key`.

    `period` is the accounting period (YYYY-MM) and always the month of `posted_on`.
    `moved_from` names the closed period the entry was moved out of, if any (see
    `periods.FiscalCalendar.assign`); `reverses` names the entry this one cancels.
    """

    entry_key: str
    posted_on: date
    period: str
    channel: str
    memo: str
    lines: tuple[JournalLine, ...]
    correlation_id: str
    causation_id: str
    reverses: str | None = None
    moved_from: str | None = None


_ZEROS: dict[str, Decimal] = {}  # currency -> zero at its minor unit (every line needs one)


def _zero(currency: str) -> Decimal:
    found = _ZEROS.get(currency)
    if found is None:
        found = _ZEROS[currency] = quantize(Decimal(0), currency)
    return found


def dr(account: str, amount: Decimal, currency: str, dims: Dimensions) -> JournalLine:
    """A debit line, amount quantized exactly to the currency's minor unit."""
    return JournalLine(
        account=account,
        debit=quantize(amount, currency),
        credit=_zero(currency),
        currency=currency,
        dims=dims,
    )


def cr(account: str, amount: Decimal, currency: str, dims: Dimensions) -> JournalLine:
    """A credit line, amount quantized exactly to the currency's minor unit."""
    return JournalLine(
        account=account,
        debit=_zero(currency),
        credit=quantize(amount, currency),
        currency=currency,
        dims=dims,
    )


def all_lines(entries: Iterable[JournalEntry]) -> Iterator[JournalLine]:
    """Every line of every entry, in order."""
    for entry in entries:
        yield from entry.lines


# --- validation: each check returns its findings; none raises ---------------------------


def _err(
    entry: JournalEntry, code: ErrorCode, message: str, line: int | None = None
) -> LedgerError:
    return LedgerError(code=code, message=message, entry_key=entry.entry_key, line=line)


def check_keys(entry: JournalEntry) -> list[LedgerError]:
    """Idempotency key and lineage ids must be present: every line traces to its source."""
    return [
        _err(entry, "missing_key", f"{name} is empty")
        for name in ("entry_key", "correlation_id", "causation_id")
        if not getattr(entry, name)
    ]


def check_line_count(entry: JournalEntry) -> list[LedgerError]:
    """A journal entry needs at least two lines (double entry)."""
    if len(entry.lines) < 2:
        return [_err(entry, "too_few_lines", f"{len(entry.lines)} line(s); at least 2 needed")]
    return []


def _sound_amounts(line: JournalLine) -> bool:
    return all(isinstance(a, Decimal) and a.is_finite() for a in (line.debit, line.credit))


def check_lines(entry: JournalEntry) -> list[LedgerError]:
    """Each line: account, company, ISO currency, one-sided non-negative quantized amount."""
    errors: list[LedgerError] = []
    for i, line in enumerate(entry.lines):
        if not line.account:
            errors.append(_err(entry, "bad_line", "account is empty", i))
        if not line.dims.company:
            errors.append(_err(entry, "bad_line", "company dimension is empty", i))
        if not is_currency_code(line.currency):
            errors.append(_err(entry, "bad_line", f"currency {line.currency!r} not ISO 4217", i))
        if not _sound_amounts(line):
            errors.append(_err(entry, "bad_line", "debit and credit must be finite Decimals", i))
            continue
        if line.debit < 0 or line.credit < 0 or (line.debit > 0) == (line.credit > 0):
            errors.append(
                _err(
                    entry,
                    "not_one_sided",
                    f"debit {line.debit} / credit {line.credit}: exactly one must be > 0",
                    i,
                )
            )
        if not (
            is_quantized(line.debit, line.currency) and is_quantized(line.credit, line.currency)
        ):
            errors.append(
                _err(
                    entry,
                    "not_quantized",
                    f"{line.debit}/{line.credit} not at the minor unit of {line.currency}",
                    i,
                )
            )
    return errors


def check_balanced(entry: JournalEntry) -> list[LedgerError]:
    """Sum of debits equals sum of credits, separately for each currency."""
    net: dict[str, Decimal] = {}
    for line in entry.lines:
        if _sound_amounts(line):
            net[line.currency] = net.get(line.currency, Decimal(0)) + line.debit - line.credit
    return [
        _err(entry, "unbalanced", f"{cur} debits exceed credits by {diff}")
        for cur, diff in sorted(net.items())
        if diff != 0
    ]


def check_period(entry: JournalEntry) -> list[LedgerError]:
    """Period is YYYY-MM and the month of posted_on; a moved entry moved forward."""
    if not is_period(entry.period):
        return [_err(entry, "bad_period", f"period {entry.period!r} is not YYYY-MM")]
    errors = []
    if entry.period != period_of(entry.posted_on):
        errors.append(
            _err(
                entry,
                "bad_period",
                f"period {entry.period} does not contain posted_on {entry.posted_on}",
            )
        )
    if entry.moved_from is not None and not (
        is_period(entry.moved_from) and entry.moved_from < entry.period
    ):
        errors.append(
            _err(
                entry,
                "bad_period",
                f"moved_from {entry.moved_from!r} is not a period before {entry.period}",
            )
        )
    return errors


def check_reversal(entry: JournalEntry) -> list[LedgerError]:
    """A reversing entry cannot name itself as the entry it reverses."""
    if entry.reverses is not None and entry.reverses == entry.entry_key:
        return [_err(entry, "bad_reversal", "an entry cannot reverse itself")]
    return []


VALIDATIONS: tuple[Callable[[JournalEntry], list[LedgerError]], ...] = (
    check_keys,
    check_line_count,
    check_lines,
    check_balanced,
    check_period,
    check_reversal,
)


def validate_entry(entry: JournalEntry) -> list[LedgerError]:
    """All findings about one entry; an empty list means it may be posted."""
    errors: list[LedgerError] = []
    for check in VALIDATIONS:
        errors.extend(check(entry))
    return errors


def is_valid(entry: JournalEntry) -> bool:
    """True only when `validate_entry(entry)` finds nothing, in one pass over the lines.

    Every posting asks, and almost every entry is valid: this answers that case without
    building the findings (a property test holds it to `validate_entry`, both ways for the
    entries the posting rules make); an entry it doubts goes through `validate_entry`."""
    if not (entry.entry_key and entry.correlation_id and entry.causation_id):
        return False
    lines = entry.lines
    if len(lines) < 2:
        return False
    net: dict[str, Decimal] = {}
    for line in lines:
        debit, credit, currency = line.debit, line.credit, line.currency
        if not (
            line.account
            and line.dims.company
            and type(debit) is Decimal
            and type(credit) is Decimal
            and debit.is_finite()
            and credit.is_finite()
            and is_currency_code(currency)
        ):
            return False
        if debit < 0 or credit < 0 or (debit > 0) == (credit > 0):
            return False
        q = quantum(currency)
        if not (debit.same_quantum(q) and credit.same_quantum(q)):
            return False
        net[currency] = net.get(currency, 0) + debit - credit
    if any(net.values()):
        return False
    period = entry.period
    if not is_period(period) or period != period_of(entry.posted_on):
        return False
    moved = entry.moved_from
    if moved is not None and not (is_period(moved) and moved < period):
        return False
    return entry.reverses is None or entry.reverses != entry.entry_key


def require_valid(entry: JournalEntry) -> JournalEntry:
    """Return `entry` if it validates, else raise UnbalancedEntry or InvalidEntry."""
    if is_valid(entry):
        return entry
    errors = validate_entry(entry)
    if not errors:
        return entry
    kind = UnbalancedEntry if any(e.code == "unbalanced" for e in errors) else InvalidEntry
    raise kind(
        f"entry {entry.entry_key!r} refused: " + "; ".join(str(e) for e in errors),
        tuple(errors),
    )


def reverse(
    entry: JournalEntry, *, entry_key: str, posted_on: date, period: str, causation_id: str
) -> JournalEntry:
    """The entry that cancels `entry`: same lines with debit and credit swapped.

    Lineage is kept (same correlation_id, channel); `reverses` names the original. The
    reversal is posted in an open period of the caller's choosing, never in place.
    """
    return require_valid(
        JournalEntry(
            entry_key=entry_key,
            posted_on=posted_on,
            period=period,
            channel=entry.channel,
            memo=f"Reversal of {entry.entry_key}: {entry.memo}",
            lines=tuple(
                msgspec.structs.replace(line, debit=line.credit, credit=line.debit)
                for line in entry.lines
            ),
            correlation_id=entry.correlation_id,
            causation_id=causation_id,
            reverses=entry.entry_key,
        )
    )
