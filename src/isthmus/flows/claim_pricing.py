"""What a claim should have been paid: fee schedules, the claim policy, priced lines.

Split from `flows.claim_remit` (issue 17, the 400-line rule), which compares an 835 claim
payment with these: a payer's (or payer/plan's) fee schedule (:class:`FeeSchedule`, a CSV
of code -> allowed amount), the `[claims]` policy built once at start (:class:`ClaimPolicy`:
the schedules, the appeal deadline per payer), the claim as submitted priced with its
schedule (:func:`expected_allowed`) and each paid 835 service line priced on its own
(:func:`compare_lines`, :class:`LineVariance`). Pure but for `ClaimPolicy.load`, which reads
the schedules' files.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from pathlib import Path
from typing import Final

from isthmus.config import ClaimSettings
from isthmus.flows.claim_submission import claim_from_body
from isthmus.formats.x12 import parse_837
from isthmus.formats.x12.claim_batch import build_837
from isthmus.ledger.currency import quantum
from isthmus.model import RemitServiceLine
from isthmus.store.ports import ClaimState

_SCHEDULE_COLUMNS: Final = ("code", "allowed")
_EPOCH: Final = datetime(2000, 1, 1, tzinfo=UTC)  # the stamp of a rebuilt claim: not read


@dataclass(frozen=True)
class FeeSchedule:
    """Allowed amount per procedure code (CPT/HCPCS, or a revenue code for 837I lines)."""

    currency: str
    allowed: Mapping[str, Decimal]

    @classmethod
    def from_csv(cls, text: str, currency: str) -> FeeSchedule:
        """Columns ``code,allowed`` (a header row; amounts as decimals, no float)."""
        rows = csv.DictReader(io.StringIO(text))
        if tuple(rows.fieldnames or ())[:2] != _SCHEDULE_COLUMNS:
            raise ValueError("a fee schedule has the columns code,allowed")
        out: dict[str, Decimal] = {}
        for n, row in enumerate(rows, start=2):
            try:
                amount = Decimal(row["allowed"].strip())
            except (InvalidOperation, AttributeError) as exc:
                raise ValueError(f"fee schedule line {n}: allowed is not a decimal") from exc
            out[row["code"].strip()] = amount
        return cls(currency=currency, allowed=out)


@dataclass(frozen=True)
class ClaimPolicy:
    """What the claim flows need of `[claims]` and the chart, built once at start."""

    settings: ClaimSettings = field(default_factory=ClaimSettings)
    schedules: Mapping[str, FeeSchedule] = field(default_factory=dict)  # "payer/plan", "payer"

    @classmethod
    def load(cls, settings: ClaimSettings, base: Path) -> ClaimPolicy:
        schedules = {
            key: FeeSchedule.from_csv((base / path).read_text(), settings.currency)
            for key, path in settings.fee_schedules.items()
        }
        return cls(settings=settings, schedules=schedules)

    def schedule(self, payer: str, plan: str = "") -> FeeSchedule | None:
        return self.schedules.get(f"{payer}/{plan}") or self.schedules.get(payer)

    def appeal_due(self, payer: str, on: date) -> date:
        days = self.settings.appeal_deadline_days.get(payer, self.settings.appeal_days)
        return on + timedelta(days=days)


@dataclass(frozen=True)
class LineVariance:
    """One paid 835 service line compared with the fee schedule (amounts, codes, no PHI)."""

    number: int  # the line's position in its CLP loop, from 1
    control_number: str  # REF*6R
    code: str
    expected: Decimal  # allowed amount x units
    allowed: Decimal  # SVC03 paid + the line's PR adjustments
    paid: Decimal
    contractual: Decimal  # the line's CO adjustments

    @property
    def variance(self) -> Decimal:
        """What the payer still owes against the schedule (negative: paid above it)."""
        return self.expected - self.allowed

    def describe(self) -> str:
        ctl = f" (REF*6R {self.control_number})" if self.control_number else ""
        return (
            f"line {self.number}{ctl} code {self.code}: expected {self.expected}, paid "
            f"{self.paid}, payer allowed {self.allowed}, variance {self.variance}"
        )


def compare_lines(lines: tuple[RemitServiceLine, ...], schedule: FeeSchedule) -> list[LineVariance]:
    """Each paid line whose code (else revenue code) the schedule prices, with its
    expected amount; lines it does not price are left out (pure)."""
    out: list[LineVariance] = []
    for n, line in enumerate(lines, start=1):
        code = line.code if line.code in schedule.allowed else line.revenue_code
        rate = schedule.allowed.get(code) if code else None
        if rate is None:
            continue
        units = line.units if line.units is not None and line.units > 0 else Decimal(1)
        pr = sum((a.amount for a in line.adjustments if a.group == "PR"), Decimal(0))
        co = sum((a.amount for a in line.adjustments if a.group == "CO"), Decimal(0))
        out.append(
            LineVariance(
                number=n,
                control_number=line.control_number,
                code=code,
                expected=cents(rate * units, schedule.currency),
                allowed=line.paid + pr,
                paid=line.paid,
                contractual=co,
            )
        )
    return out


def plan_of(claim: ClaimState) -> str:
    """The plan the claim was submitted under (SBR03/SBR04, kept on its body)."""
    return str(json.loads(claim.body).get("plan", "")) if claim.body else ""


def expected_allowed(claim: ClaimState, policy: ClaimPolicy) -> Decimal | None:
    """The claim's lines as submitted, priced with its payer's fee schedule; None when no
    schedule applies or a line's code is not in it."""
    if not claim.body:
        return None
    schedule = policy.schedule(claim.payer_id, plan_of(claim))
    if schedule is None:
        return None
    text = build_837(
        [claim_from_body(claim)],
        sender="X",
        receiver="Y",
        interchange_control=1,
        group_control=1,
        transaction_control=1,
        reference="R",
        at=_EPOCH,
    ).text
    total = Decimal(0)
    for entry in parse_837(text).claims:
        for line in entry.lines:
            code = line.procedure.code or line.revenue_code
            amount = schedule.allowed.get(code)
            if amount is None:
                return None
            total += amount * (line.units or 1)
    return cents(total, schedule.currency)


def cents(amount: Decimal, currency: str) -> Decimal:
    """An expected amount at the currency's minor unit (rate x units), rounded half up."""
    return amount.quantize(quantum(currency), rounding=ROUND_HALF_UP)
