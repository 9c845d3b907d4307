"""An 835 claim payment applied to the claim's life: paid, underpaid or denied, and why.

Issue 20. Runs in the transaction that posts the payment (`flows.processor`, after
`flows.remittance.post_claim_payment`), for a claim the hub submitted (found by CLP01 =
CLM01, else CLP07 = the payer's claim control number):

* **denied** (CLP02 4, or nothing paid with a denial CARC; `remittance.is_denial`): the
  CARC/RARC codes give a category (:data:`CATEGORIES`: eligibility, authorization, coding,
  timely filing, medical necessity, duplicate, else other), each with its work queue
  ``denials-<category>``; the claim gets an appeal deadline (payment date + the payer's
  `[claims] appeal_deadline_days`, else `appeal_days`). The generic ``denial`` item the
  payment flow opened is closed in favour of that one (one item per cause).
* **expected vs paid**: the claim's lines (as submitted) priced with the payer's fee
  schedule (:class:`FeeSchedule`, a CSV of code -> allowed amount per "payer/plan", else
  per payer) give the expected allowed amount. The payer's allowed amount is CLP04 paid +
  the PR (patient responsibility) adjustments. Short by more than `underpayment_tolerance`:
  ``partially_paid``, an ``underpayment`` work item in queue ``underpayments``, and the
  contractual allowance is posted against the expected amount, not against what the payer
  allowed: the CO adjustment the payment flow wrote off beyond (charge - expected) is put
  back on the claim's A/R (DR A/R / CR contractual allowance, entry key
  ``claim-expected/<event id>``), so the receivable stays open for the underpayment until
  it is collected or written off (`flows.claim_denials`). Else ``paid``.
* **expected vs paid per service line**: when the 835 names its service lines (SVC, on
  the event as ``ClaimRemitted.lines``) each paid line is priced on its own
  (:func:`compare_lines`): SVC01 code (else the SVC04 revenue code) x SVC05 units (1 when
  not sent) with the payer/plan schedule is the expected amount; the payer allowed
  SVC03 paid + the line's PR adjustments. A line short by more than the tolerance opens
  one ``underpayment`` item per line (its number, REF*6R, code, expected, paid, variance;
  no PHI) and the contractual allowance of that line is posted against the expected
  amount: billed - expected stays contractual, expected - allowed (the underpayment to
  recover) goes back to A/R out of the line's CO write-off (one journal line pair per
  line, entry ``claim-expected/<event id>``). Lines with no schedule entry are left as the
  payer adjusted them; when no line is priced (or the 835 has no SVC, or a FHIR EOB), the
  claim-level comparison above applies.
* a reversal (CLP02 22) is kept as a fact on the claim.
* a FHIR answer (`flows.claim_fhir`): a scrubbed FHIR claim is marked submitted first; a
  ClaimResponse accepts the claim before its payment applies, or rejects it when it pays
  nothing (outcome error).
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
from typing import Any, Final

from isthmus.config import ClaimSettings, Mappings
from isthmus.flows import claim_acks, claim_fhir, mapping_holds, remittance
from isthmus.flows import claim_life as life
from isthmus.flows.accounts import live_token
from isthmus.flows.claim_submission import claim_from_body
from isthmus.formats.x12 import parse_837
from isthmus.formats.x12.claim_batch import build_837
from isthmus.ledger.currency import quantum
from isthmus.ledger.journal import Dimensions, JournalEntry, cr, dr, require_valid
from isthmus.ledger.periods import FiscalCalendar
from isthmus.ledger.remit import RemitAccounts
from isthmus.model import ClaimRemitted, RemitServiceLine
from isthmus.model.envelope import Envelope
from isthmus.store.ports import ClaimState, Tx

# CARC (X12 code list 139) -> denial category; RARC (code list 411) where the CARC is generic
CATEGORIES: Final[dict[str, frozenset[str]]] = {
    "eligibility": frozenset({"26", "27", "31", "32", "33", "177", "200", "B1", "N30"}),
    "authorization": frozenset({"15", "39", "62", "197", "198", "243", "N54"}),
    "coding": frozenset(
        {
            "4",
            "5",
            "6",
            "7",
            "8",
            "9",
            "10",
            "11",
            "12",
            "16",
            "181",
            "182",
            "185",
            "189",
            "199",
            "236",
            "M20",
            "M51",
            "N56",
        }
    ),
    "timely-filing": frozenset({"29"}),
    "medical-necessity": frozenset(
        {"50", "55", "56", "57", "58", "150", "151", "152", "167", "N115"}
    ),
    "duplicate": frozenset({"18", "B13"}),
}
OTHER: Final = "other"
UNDERPAYMENTS: Final = "underpayments"
REVERSAL: Final = "22"
_SCHEDULE_COLUMNS: Final = ("code", "allowed")
_EPOCH: Final = datetime(2000, 1, 1, tzinfo=UTC)  # the stamp of a rebuilt claim: not read


def category_of(codes: list[str]) -> str:
    """The first category any CARC/RARC of a denial falls in (in CARC order), else other."""
    for code in codes:
        for name, members in CATEGORIES.items():
            if code in members:
                return name
    return OTHER


def denial_queue(category: str) -> str:
    """The work queue for denials of a category."""
    return f"denials-{category}"


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
class Books:
    """Where claim adjustments post: the chart and the mapping of facilities to companies."""

    secret: str
    mappings: Mappings
    calendar: FiscalCalendar
    accounts: RemitAccounts = field(default_factory=RemitAccounts)


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
                expected=_cents(rate * units, schedule.currency),
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
    return _cents(total, schedule.currency)


def _cents(amount: Decimal, currency: str) -> Decimal:
    """An expected amount at the currency's minor unit (rate x units), rounded half up."""
    return amount.quantize(quantum(currency), rounding=ROUND_HALF_UP)


def on_remitted(
    tx: Tx, env: Envelope, ev: ClaimRemitted, *, policy: ClaimPolicy, books: Books, outcome: str
) -> str:
    """Move the claim an 835 CLP names; "" when the hub did not submit it."""
    claim = life.find(tx, ev.patient_control_number, ev.payer_claim_control_number)
    if claim is None:
        return ""
    now = env.recorded_at.timestamp()
    claim = claim_fhir.answered(tx, claim, env, now=now)  # a FHIR claim: sent over FHIR
    paid_on = ev.payment_date or env.occurred_at.date()
    changes: dict[str, Any] = {}
    if ev.payer_claim_control_number:
        changes["payer_claim_id"] = ev.payer_claim_control_number
    codes = [a.reason for a in ev.adjustments if a.amount] + list(ev.remarks)
    summary = (
        f"835 trace {ev.trace_number} CLP02 {ev.claim_status} paid {ev.paid} "
        f"{ev.currency}; {remittance.codes_of(ev)}"
    )
    if ev.reversal or ev.claim_status == REVERSAL:
        life.note(
            tx,
            claim,
            "remit_reversed",
            now=now,
            causation_id=env.event_id,
            detail=summary,
            paid=claim.paid + ev.paid,
            **changes,
        )
        return claim.state
    if claim_fhir.from_claim_response(env):
        claim = _responded(tx, env, ev, claim, summary=summary)
        if claim.state == life.REJECTED:
            return claim.state
    if remittance.is_denial(ev):
        category = category_of(codes)
        due = policy.appeal_due(claim.payer_id, paid_on)
        kind = "remit_denied"
        if not life.can(claim.state, kind):
            life.note(tx, claim, "remit", now=now, causation_id=env.event_id, detail=summary)
            return claim.state
        new = life.advance(
            tx,
            claim,
            kind,
            now=now,
            causation_id=env.event_id,
            correlation_id=env.correlation_id,
            detail=f"{summary}; category {category}, appeal by {due}",
            denial_category=category,
            appeal_due=due.isoformat(),
            **changes,
        )
        tx.close_work_items(env.event_id, f"worked in {denial_queue(category)}", now)
        tx.add_work_item(
            kind="claim_denial",
            queue=denial_queue(category),
            key=claim.claim_key,
            event_id=f"claim-denial/{env.event_id}",
            correlation_id=env.correlation_id,
            detail=f"claim {claim.claim_key} denied by payer {claim.payer_id} "
            f"({category}): {remittance.codes_of(ev)}; appeal by {due}",
            envelope=b"",
            now=now,
        )
        return new.state
    schedule = policy.schedule(claim.payer_id, plan_of(claim)) if ev.lines else None
    priced = compare_lines(ev.lines, schedule) if schedule is not None else []
    if priced:
        return _by_line(
            tx,
            env,
            ev,
            claim,
            priced,
            policy=policy,
            books=books,
            outcome=outcome,
            summary=summary,
            changes=changes,
        )
    allowed = ev.paid + sum((a.amount for a in ev.adjustments if a.group == "PR"), Decimal(0))
    expected = expected_allowed(claim, policy)
    short = (expected - allowed) if expected is not None else Decimal(0)
    tolerance = policy.settings.underpayment_tolerance
    kind = "remit_partial" if short > tolerance else "remit_paid"
    if not life.can(claim.state, kind):
        life.note(tx, claim, "remit", now=now, causation_id=env.event_id, detail=summary)
        return claim.state
    detail = summary + (
        f"; expected allowed {expected}, payer allowed {allowed}" if expected is not None else ""
    )
    new = life.advance(
        tx,
        claim,
        kind,
        now=now,
        causation_id=env.event_id,
        correlation_id=env.correlation_id,
        detail=detail,
        paid=claim.paid + ev.paid,
        **changes,
    )
    if kind == "remit_partial":
        tx.add_work_item(
            kind="underpayment",
            queue=UNDERPAYMENTS,
            key=claim.claim_key,
            event_id=f"claim-underpaid/{env.event_id}",
            correlation_id=env.correlation_id,
            detail=f"claim {claim.claim_key} payer {claim.payer_id}: allowed "
            f"{allowed} {ev.currency}, fee schedule {expected} (short "
            f"{short}, tolerance {tolerance})",
            envelope=b"",
            now=now,
        )
        if outcome == "posted":
            _restore_expected(tx, env, ev, books=books, amount=short, claim=new)
    return new.state


def _responded(
    tx: Tx, env: Envelope, ev: ClaimRemitted, claim: ClaimState, *, summary: str
) -> ClaimState:
    """A FHIR ClaimResponse answers the claim first: one that pays nothing rejects it
    (a ``claim-rejections`` item; the generic ``denial`` item is closed in its favour),
    one that pays accepts it before the payment applies."""
    now = env.recorded_at.timestamp()
    if remittance.is_denial(ev):
        if not life.can(claim.state, "ack_rejected"):
            return claim
        new = life.advance(
            tx,
            claim,
            "ack_rejected",
            now=now,
            causation_id=env.event_id,
            correlation_id=env.correlation_id,
            detail=f"ClaimResponse {summary}",
        )
        tx.close_work_items(env.event_id, f"worked in {claim_acks.QUEUE}", now)
        tx.add_work_item(
            kind=claim_acks.KIND,
            queue=claim_acks.QUEUE,
            key=claim.claim_key,
            event_id=f"claim-rejected/{claim.claim_key}/{env.event_id}",
            correlation_id=env.correlation_id,
            detail=f"claim {claim.claim_key} rejected by payer {claim.payer_id} "
            f"(FHIR ClaimResponse): {remittance.codes_of(ev)}",
            envelope=b"",
            now=now,
        )
        return new
    if life.can(claim.state, "ack_accepted"):
        return life.advance(
            tx,
            claim,
            "ack_accepted",
            now=now,
            causation_id=env.event_id,
            correlation_id=env.correlation_id,
            detail=f"ClaimResponse {summary}",
        )
    return claim


def _by_line(
    tx: Tx,
    env: Envelope,
    ev: ClaimRemitted,
    claim: ClaimState,
    priced: list[LineVariance],
    *,
    policy: ClaimPolicy,
    books: Books,
    outcome: str,
    summary: str,
    changes: dict[str, Any],
) -> str:
    """Paid or partially paid by the lines the schedule prices: an item per short line,
    and its contractual allowance posted against the expected amount."""
    now = env.recorded_at.timestamp()
    tolerance = policy.settings.underpayment_tolerance
    short = [v for v in priced if v.variance > tolerance]
    kind = "remit_partial" if short else "remit_paid"
    if not life.can(claim.state, kind):
        life.note(tx, claim, "remit", now=now, causation_id=env.event_id, detail=summary)
        return claim.state
    detail = summary + "; " + "; ".join(v.describe() for v in priced)
    new = life.advance(
        tx,
        claim,
        kind,
        now=now,
        causation_id=env.event_id,
        correlation_id=env.correlation_id,
        detail=detail,
        paid=claim.paid + ev.paid,
        **changes,
    )
    for v in short:
        tx.add_work_item(
            kind="underpayment",
            queue=UNDERPAYMENTS,
            key=claim.claim_key,
            event_id=f"claim-underpaid/{env.event_id}/{v.number}",
            correlation_id=env.correlation_id,
            detail=f"claim {claim.claim_key} payer {claim.payer_id} "
            f"{v.describe()} {ev.currency} (tolerance {tolerance})",
            envelope=b"",
            now=now,
        )
    if outcome == "posted":
        restore = [(f"line {v.number} {v.code}", min(v.variance, v.contractual)) for v in short]
        _post_expected(tx, env, ev, books=books, claim=new, amounts=restore)
    return new.state


def _restore_expected(
    tx: Tx, env: Envelope, ev: ClaimRemitted, *, books: Books, amount: Decimal, claim: ClaimState
) -> None:
    """Post the contractual allowance against the expected amount: the part of the CO
    write-off beyond (charge - expected) goes back to the claim's A/R."""
    contractual = sum((a.amount for a in ev.adjustments if a.group == "CO"), Decimal(0))
    _post_expected(
        tx, env, ev, books=books, claim=claim, amounts=[("claim", min(amount, contractual))]
    )


def _post_expected(
    tx: Tx,
    env: Envelope,
    ev: ClaimRemitted,
    *,
    books: Books,
    claim: ClaimState,
    amounts: list[tuple[str, Decimal]],
) -> None:
    """DR A/R / CR contractual allowance, one pair per (what, amount) with amount > 0."""
    amounts = [(what, a) for what, a in amounts if a > 0]
    if not amounts:
        return
    acct, _ = remittance.match_account(tx, ev)
    if acct is None:
        return
    company = mapping_holds.company(tx, books.mappings, acct.facility)
    if not company:
        return
    token = live_token(tx, books.secret, acct.patient_key)
    where = books.calendar.assign(ev.payment_date or env.occurred_at.date())
    ar = Dimensions(company=company, account_token=token)
    under = Dimensions(company=company, service_line="underpayment")
    pairs = tuple(
        x
        for _, a in amounts
        for x in (
            dr(books.accounts.ar, a, ev.currency, ar),
            cr(books.accounts.contractual, a, ev.currency, under),
        )
    )
    entry = require_valid(
        JournalEntry(
            entry_key=f"claim-expected/{env.event_id}",
            posted_on=where.posted_on,
            period=where.period,
            channel="claims",
            memo=f"claim {claim.claim_key} underpaid by payer {claim.payer_id}: contractual "
            f"allowance against the fee schedule ({', '.join(w for w, _ in amounts)})",
            lines=pairs,
            correlation_id=env.correlation_id,
            causation_id=env.event_id,
            moved_from=where.moved_from,
        )
    )
    tx.insert_entry(entry)
