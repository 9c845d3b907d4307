"""ERP journal batches: the summarization policy, control totals, and the file formats.

A batch is what leaves Isthmus for the general ledger. Two policies (per channel):

- `detailed`: one batch line per journal line, account token included, so the ERP can
  drill down to a patient account (still no PHI: the token is opaque).
- `summary`: lines are aggregated per accounting day x company x cost center x account x
  currency. The account token is dropped (patient-level detail never leaves in a summary);
  the service line is kept only when every merged line shares it. Each group is NETTED to
  one side: debit total minus credit total becomes a single debit or credit line, as an
  ERP summary journal shows it. A group that nets to zero is omitted, but its entries stay
  in `entry_keys`, so the batch still accounts for every entry it consumed.

Netting preserves, per currency and per account, the net of the input, which is what the
tests check. A batch balances per currency or it is refused (`UnbalancedBatch`). Control
totals per currency (line count, debit and credit totals, and a SHA-256 hash total of the
entry keys behind that currency's lines) let the ERP check that the file arrived whole.
Ordering is deterministic: the same entries in any order give the same batch.

The batch is typed once, here. It is queued as one outbox row (`batch_codec`), and each
sink renders it: the CSV and JSON Lines files of `batch_file` (file drop, and their readers),
Tryton JSON-RPC and REST moves (`ports.erp.move_specs`), after `restrict` left out what its
destination may not receive.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Collection, Iterable, Sequence
from datetime import date
from decimal import Decimal
from typing import Literal

import msgspec

from isthmus.ledger.currency import quantize
from isthmus.ledger.errors import InvalidBatch, LedgerError, UnbalancedBatch
from isthmus.ledger.journal import Dimensions, JournalEntry, validate_entry

Summarization = Literal["detailed", "summary"]


class BatchLine(msgspec.Struct, frozen=True, kw_only=True):
    """One line of an ERP journal batch, with the journal entries and line count merged into
    it."""

    line_no: int
    posted_on: date
    period: str
    account: str
    dims: Dimensions
    currency: str
    debit: Decimal
    credit: Decimal
    source_entries: tuple[str, ...]  # entry keys that made this line, sorted
    source_lines: int  # journal lines merged into this one


class ControlTotal(msgspec.Struct, frozen=True, kw_only=True):
    """Control totals of one currency of a batch: line count, debit and credit totals, and a
    SHA-256 hash total of the entry keys behind those lines."""

    currency: str
    line_count: int
    debit_total: Decimal
    credit_total: Decimal
    hash_total: str  # see `hash_total`


class JournalBatch(msgspec.Struct, frozen=True, kw_only=True):
    """A batch for the general ledger: its lines under one summarization policy, control
    totals per currency, and every entry and source reference it consumed."""

    batch_id: str
    channel: str
    policy: Summarization
    lines: tuple[BatchLine, ...]
    control: tuple[ControlTotal, ...]  # one per currency, sorted
    entry_keys: tuple[str, ...]  # every entry consumed, sorted
    correlation_ids: tuple[str, ...]  # source references (inbox ids), sorted


def hash_total(entry_keys: Iterable[str]) -> str:
    """SHA-256 hex of the sorted, distinct entry keys joined by newlines."""
    return hashlib.sha256("\n".join(sorted(set(entry_keys))).encode()).hexdigest()


def control_totals(lines: Iterable[BatchLine]) -> tuple[ControlTotal, ...]:
    """Per-currency control record computed from batch lines."""
    groups: dict[str, list[BatchLine]] = {}
    for line in lines:
        groups.setdefault(line.currency, []).append(line)
    return tuple(
        ControlTotal(
            currency=cur,
            line_count=len(group),
            debit_total=sum((x.debit for x in group), quantize(Decimal(0), cur)),
            credit_total=sum((x.credit for x in group), quantize(Decimal(0), cur)),
            hash_total=hash_total(k for x in group for k in x.source_entries),
        )
        for cur, group in sorted(groups.items())
    )


def validate_batch(batch: JournalBatch) -> list[LedgerError]:
    """Findings about a batch (as built, or as read back from a file)."""
    errors: list[LedgerError] = []
    for total in batch.control:
        if total.debit_total != total.credit_total:
            errors.append(
                LedgerError(
                    code="unbalanced",
                    message=f"{total.currency} debits {total.debit_total} != "
                    f"credits {total.credit_total}",
                )
            )
    if batch.control != control_totals(batch.lines):
        errors.append(LedgerError(code="unbalanced", message="control totals differ from lines"))
    if [x.line_no for x in batch.lines] != list(range(1, len(batch.lines) + 1)):
        errors.append(LedgerError(code="bad_line", message="line numbers are not 1..n"))
    if batch.policy == "summary" and any(x.dims.account_token for x in batch.lines):
        errors.append(LedgerError(code="bad_line", message="summary line carries a token"))
    return errors


def build_batch(
    batch_id: str, entries: Sequence[JournalEntry], *, policy: Summarization, channel: str
) -> JournalBatch:
    """Build the ERP batch for `entries` under `policy`; refuse rather than send bad data.

    Raises UnbalancedBatch if an entry is invalid or a currency does not balance, and
    InvalidBatch if an entry_key appears twice (it would post twice).
    """
    errors: list[LedgerError] = []
    for entry in entries:
        errors.extend(validate_entry(entry))
    if errors:
        raise UnbalancedBatch(f"batch {batch_id!r}: {len(errors)} invalid entr(ies)", tuple(errors))
    keys = [e.entry_key for e in entries]
    dupes = sorted(k for k, n in Counter(keys).items() if n > 1)
    if dupes:
        twice = tuple(
            LedgerError(code="duplicate_entry", message="entry twice in batch", entry_key=k)
            for k in dupes
        )
        raise InvalidBatch(f"batch {batch_id!r}: duplicate entries {dupes}", twice)
    if policy not in ("detailed", "summary"):
        raise InvalidBatch(f"policy {policy!r} is not detailed or summary")
    ordered = sorted(entries, key=lambda e: (e.posted_on, e.entry_key))
    lines = _detailed(ordered) if policy == "detailed" else _summary(ordered)
    batch = JournalBatch(
        batch_id=batch_id,
        channel=channel,
        policy=policy,
        lines=lines,
        control=control_totals(lines),
        entry_keys=tuple(sorted(keys)),
        correlation_ids=tuple(sorted({e.correlation_id for e in entries})),
    )
    found = validate_batch(batch)
    if found:
        raise UnbalancedBatch(
            f"batch {batch_id!r} refused: " + "; ".join(map(str, found)), tuple(found)
        )
    return batch


def _detailed(entries: Sequence[JournalEntry]) -> tuple[BatchLine, ...]:
    return tuple(
        BatchLine(
            line_no=n,
            posted_on=entry.posted_on,
            period=entry.period,
            account=line.account,
            dims=line.dims,
            currency=line.currency,
            debit=line.debit,
            credit=line.credit,
            source_entries=(entry.entry_key,),
            source_lines=1,
        )
        for n, (entry, line) in enumerate(((e, x) for e in entries for x in e.lines), start=1)
    )


class _Group:
    """Accumulator for one summary group (mutable, private to `_summary`)."""

    def __init__(self, currency: str) -> None:
        self.debit = quantize(Decimal(0), currency)
        self.credit = self.debit
        self.service_lines: set[str] = set()
        self.entries: set[str] = set()
        self.count = 0


def _summary(entries: Sequence[JournalEntry]) -> tuple[BatchLine, ...]:
    groups: dict[tuple[date, str, str, str, str, str], _Group] = {}
    for entry in entries:
        for line in entry.lines:
            key = (
                entry.posted_on,
                entry.period,
                line.dims.company,
                line.dims.cost_center,
                line.account,
                line.currency,
            )
            group = groups.get(key)
            if group is None:
                group = groups[key] = _Group(line.currency)
            group.debit += line.debit
            group.credit += line.credit
            group.service_lines.add(line.dims.service_line)
            group.entries.add(entry.entry_key)
            group.count += 1
    out: list[BatchLine] = []
    for (posted_on, period, company, cost_center, account, currency), g in sorted(groups.items()):
        net = g.debit - g.credit
        if net == 0:
            continue
        zero = quantize(Decimal(0), currency)
        service_line = next(iter(g.service_lines)) if len(g.service_lines) == 1 else ""
        out.append(
            BatchLine(
                line_no=len(out) + 1,
                posted_on=posted_on,
                period=period,
                account=account,
                dims=Dimensions(
                    company=company, cost_center=cost_center, service_line=service_line
                ),
                currency=currency,
                debit=net if net > 0 else zero,
                credit=-net if net < 0 else zero,
                source_entries=tuple(sorted(g.entries)),
                source_lines=g.count,
            )
        )
    return tuple(out)


# --- per-destination allow-lists ----------------------------------------------------------

_DIMENSIONS = ("company", "cost_center", "service_line", "account_token")


def restrict(batch: JournalBatch, withheld: Collection[str]) -> JournalBatch:
    """The batch with the withheld optional fields left empty (governance/allowlist.py):
    dimensions, `source_entries` (each line's and the batch's entry keys) and
    `correlation_ids`. Amounts, accounts and the control totals are never touched, so the
    batch still balances and the ERP can still check it arrived whole."""
    if not withheld:
        return batch
    blank = {k: "" for k in _DIMENSIONS if k in withheld}
    keys = "source_entries" not in withheld
    lines = tuple(
        msgspec.structs.replace(
            x,
            dims=msgspec.structs.replace(x.dims, **blank),
            source_entries=x.source_entries if keys else (),
        )
        for x in batch.lines
    )
    return msgspec.structs.replace(
        batch,
        lines=lines,
        entry_keys=batch.entry_keys if keys else (),
        correlation_ids=() if "correlation_ids" in withheld else batch.correlation_ids,
    )
