"""Fact rows of the star schema (analytics/schema.py), from what the store port returns.

Pure: journal entries (with their posting position) and inbox messages (with their id)
in, one tuple per row out, in the column order of `schema.TABLES` (warehouse.to_arrow
turns each table's tuples into columns at once). The hot path stays bulk: a journal
entry's lines are one list comprehension, and a charge (most of a site's events) is
decoded once into a struct of the columns it feeds, the patient left unread (tests/
analytics/test_facts.py keeps that struct in step with `Charge`). Nothing here reads a
patient: the events' patient references, billing account numbers (CLP01, CLM01) and free
text are dropped; an account becomes its token (PA-...) through `resolve`, a claim its
HMAC key. Only identifiers that name no patient pass: event ids, NPIs (a provider's
10-digit number, checked with the Luhn check of 45 CFR 162.406), payer ids, CARCs (X12
code list 139), group codes (X12 CAS01), charge codes, cost centers, facilities.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from decimal import Decimal

import msgspec

from isthmus.flows.denial_codes import is_denial
from isthmus.ledger.journal import JournalEntry
from isthmus.ledger.labor import is_accrual
from isthmus.model.events import ClaimRemitted, ClaimSubmitted, CoverageRecorded
from isthmus.model.money import Money

Row = tuple[object, ...]
# a billing account number (CLP01/CLM01) -> (claim key, account token or "")
Resolve = Callable[[str], tuple[str, str]]

# X12 CAS01 claim adjustment group codes -> the executive view's categories
CATEGORY = {
    "CO": "contractual",
    "PR": "patient_responsibility",
    "OA": "write_off",
    "PI": "write_off",
    "CR": "write_off",
}


@dataclass(slots=True)
class Rows:
    """Rows per fact table, in page order."""

    tables: dict[str, list[Row]] = field(default_factory=dict)

    def add(self, table: str, row: Row) -> None:
        self.tables.setdefault(table, []).append(row)

    def into(self, table: str) -> list[Row]:
        """The table's row list, to append or extend in a loop."""
        return self.tables.setdefault(table, [])

    def count(self) -> int:
        return sum(len(r) for r in self.tables.values())


@functools.lru_cache(maxsize=4096)  # a site has few providers, named on every charge
def npi(value: str) -> str:
    """`value` when it is a valid NPI (10 digits, Luhn check with the 80840 prefix), else
    "": a provider field that holds a name or a local id never reaches the warehouse."""
    v = value.split("^", 1)[0].strip()
    if len(v) != 10 or not v.isdigit():
        return ""
    digits = [int(c) for c in "80840" + v[:-1]]
    total = 0
    for i, d in enumerate(reversed(digits)):
        total += sum(divmod(d * 2, 10)) if i % 2 == 0 else d
    return v if (10 - total % 10) % 10 == int(v[-1]) else ""


def journal_rows(page: Iterable[tuple[int, JournalEntry]], out: Rows) -> None:
    """Append one `fact_journal_line` row per journal line of the page: posting position,
    entry key, line number, dimensions (account token, never a patient), amounts."""
    extend = out.into("fact_journal_line").extend
    for pos, e in page:
        key, on, period, channel = e.entry_key, e.posted_on, e.period, e.channel
        cause, reverses, moved, accrual = e.causation_id, e.reverses, e.moved_from, is_accrual(e)
        extend(
            [
                (
                    pos,
                    key,
                    no,
                    on,
                    period,
                    channel,
                    ln.account,
                    ln.debit,
                    ln.credit,
                    ln.debit - ln.credit,
                    ln.currency,
                    d.company,
                    d.cost_center,
                    d.service_line,
                    d.account_token,
                    cause,
                    reverses,
                    moved,
                    accrual,
                )
                for no, ln in enumerate(e.lines, start=1)
                for d in (ln.dims,)
            ]
        )


class _Head(msgspec.Struct):
    """An envelope with its payload left undecoded: most events are none of the kinds read."""

    event_id: str
    type: str
    payload: msgspec.Raw


class _ChargeColumns(msgspec.Struct, frozen=True):
    """The fields of a `Charge` payload that fact_charge holds (same names and defaults):
    decoding skips the rest, the patient first."""

    transaction_type: str
    quantity: int
    amount: Money
    charge_code: str
    department: str
    facility: str
    service_date: date
    performing_provider: str = ""
    negative: bool = False


_heads = msgspec.json.Decoder(list[_Head])
_charges = msgspec.json.Decoder(_ChargeColumns)
_decoders: dict[str, msgspec.json.Decoder[object]] = {
    "ClaimRemitted": msgspec.json.Decoder(ClaimRemitted),
    "ClaimSubmitted": msgspec.json.Decoder(ClaimSubmitted),
    "CoverageRecorded": msgspec.json.Decoder(CoverageRecorded),
}


@functools.lru_cache(maxsize=4096)  # a page's charges fall on a few hundred days at most
def _period(d: date) -> str:
    return f"{d.year:04d}-{d.month:02d}"


def _charge(mid: int, at: datetime, eid: str, ev: _ChargeColumns) -> Row:
    return (
        mid,
        eid,
        at,
        ev.service_date,
        _period(ev.service_date),
        ev.transaction_type,
        ev.charge_code,
        ev.quantity,
        ev.amount.amount,
        ev.amount.currency,
        ev.department,
        ev.facility,
        npi(ev.performing_provider),
        ev.negative,
    )


def _claim(
    mid: int, at: datetime, eid: str, ev: ClaimSubmitted, resolve: Resolve, out: Rows
) -> None:
    key, token = resolve(ev.patient_control_number)
    out.add(
        "fact_claim",
        (
            mid,
            eid,
            at,
            _period(at.date()),
            key,
            token,
            ev.payer_id,
            npi(ev.billing_npi),
            ev.total_charge,
            ev.currency,
            ev.kind,
            ev.frequency,
        ),
    )
    if ev.payer_name:
        out.add("payer_hint", (ev.payer_id, ev.payer_name, ""))


def _remit(
    mid: int, at: datetime, eid: str, ev: ClaimRemitted, resolve: Resolve, out: Rows
) -> None:
    key, token = resolve(ev.patient_control_number)
    day = ev.payment_date or at.date()
    period = _period(day)
    denied = is_denial(ev)
    contractual = sum(
        (a.amount for a in ev.adjustments if a.group == "CO" and not denied), Decimal(0)
    )
    out.add(
        "fact_remit",
        (
            mid,
            eid,
            at,
            day,
            period,
            key,
            token,
            ev.payer_id,
            npi(ev.payee_npi),
            ev.trace_number,
            ev.payment_method,
            ev.claim_status,
            ev.charge,
            ev.paid,
            ev.patient_responsibility,
            contractual,
            denied,
            ev.reversal,
            ev.currency,
            ev.facility,
        ),
    )
    for no, a in enumerate(ev.adjustments, start=1):
        category = (
            "denial" if denied and a.group in ("CO", "PR") else CATEGORY.get(a.group, "write_off")
        )
        sign = -1 if ev.reversal else 1
        out.add(
            "fact_adjustment",
            (
                mid,
                eid,
                no,
                period,
                ev.payer_id,
                token,
                a.group,
                a.reason,
                category,
                a.amount * sign,
                ev.currency,
            ),
        )
    if ev.payer_name:
        out.add("payer_hint", (ev.payer_id, ev.payer_name, ""))


def _coverage(ev: CoverageRecorded, out: Rows) -> None:
    for plan in ev.plans:
        if plan.payer_id:
            out.add(
                "payer_hint",
                (plan.payer_id, plan.payer_name, (plan.financial_class or plan.plan_type).strip()),
            )


def inbox_rows(page: Iterable[tuple[int, str, float, bytes]], resolve: Resolve, out: Rows) -> None:
    """Rows of the accepted messages' events (other statuses carry none to count)."""
    charges = out.into("fact_charge").append
    for mid, status, received, events in page:
        if status != "accepted" or not events:
            continue
        at = datetime.fromtimestamp(received, UTC)
        for head in _heads.decode(events):
            if head.type == "Charge":
                charges(_charge(mid, at, head.event_id, _charges.decode(head.payload)))
                continue
            dec = _decoders.get(head.type)
            if dec is None:
                continue
            ev = dec.decode(head.payload)
            if isinstance(ev, ClaimRemitted):
                _remit(mid, at, head.event_id, ev, resolve, out)
            elif isinstance(ev, ClaimSubmitted):
                _claim(mid, at, head.event_id, ev, resolve, out)
            elif isinstance(ev, CoverageRecorded):
                _coverage(ev, out)
