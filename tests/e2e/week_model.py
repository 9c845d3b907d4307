"""The expected state of a hub after each message of the hospital week, kept from the facts.

`Expected.apply(fact)` follows the README's "HL7 v2 events" table, one event at a time, in
its own terms: it never reads the HL7 the hub reads, and never asks the hub. The site's
chart is `CHART` here, written into the hub's config by the test (`chart_toml`), so the
cost center and revenue account of every line are known before it is sent.

State, as `state()` returns it (and the test's probe reads it from the hub's store):
- inbox: (MSH-9, status, MSA-1) -> count;
- patients (MRNs) and billing accounts (BAR P01/P05/P02/P06 numbers);
- encounters: visit -> (status, patient class);
- visits: visit -> status, the departments of its location history (A01/A04 its first
  unit, A02/A17 add, A12 removes the last transfer), pending events (A14, A15, A16 until the
  A01, A02, A03 that completes them or the A27, A26, A25 that cancels them), posted charge
  lines, diagnoses, procedures;
- accounts: number -> (open | ended | purged, IN1-3 payers of the last message with IN1);
- ledger: (account, company, cost center, MRN of the A/R token) -> net debit, non-zero;
- work items: (kind, status) -> count.

Merges and moves (README rows A40 to A51, `flows/merges.py`): the model attributes the A/R of
every line to its (billing account, visit) and patient, as the hub's lineage does, and moves
it itself: an account (A41, A44, A49) or a visit (A42, A45, A50) that ends up with another
patient takes its A/R to that patient's token, one reclassification per old patient and
company (DR new / CR old, the mirror for a credit); A40 and A47 onto another patient move the
whole token; within one patient nothing moves. A message resent under a new control id with
the same MSH-7 changes nothing but the inbox.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import date
from decimal import Decimal
from typing import Any

from isthmus.demo.week_render import Fact, Line, Person

# every message type the README's hospital-week table lists (ORU and SIU come too, ignored)
README_EVENTS = frozenset(
    {f"ADT^A{n:02d}" for n in (*range(1, 18), 25, 26, 27, 28, 29, 31, 32, 33, 38, 40, 41, 42,
                               44, 45, 47, 49, 50, 51, 60)}
    | {f"BAR^P{n:02d}" for n in (1, 2, 5, 6, 10, 12)}
    | {"DFT^P03", "DFT^P11"}
)  # fmt: skip
FACILITY_COMPANY = {"NORTH": "C100", "SOUTH": "C200"}
DEPARTMENT_COST_CENTER = {
    "ED": "CC-4300",
    "LAB": "CC-4200",
    "RAD": "CC-4100",
    "PHARM": "CC-4400",
    "CARD": "CC-4600",
    "SURG": "CC-4500",
    "4W": "CC-5100",
    "ICU": "CC-5200",
    "OPC": "CC-5300",
}
REVENUE = {
    "71046": "4100",
    "74177": "4100",
    "80053": "4200",
    "85025": "4200",
    "81001": "4200",
    "84443": "4200",
    "99281": "4300",
    "99283": "4300",
    "99285": "4300",
    "J1100": "4400",
    "J2405": "4400",
    "J0696": "4400",
    "93000": "4600",
    "93306": "4600",
}
AR, CASH_CLEARING, OTHER_ADJUSTMENTS = "1200", "1010", "4910"  # README, FT1 PY and AJ
IGNORED = {"ADT^A09", "ADT^A10", "ADT^A32", "ADT^A33", "ADT^A60", "BAR^P10", "ORU^R01", "SIU^S12"}
PENDING = {"A14", "A15", "A16"}
CANCELS_PENDING = {"A25": "A16", "A26": "A15", "A27": "A14"}
COMPLETES_PENDING = {"A01": "A14", "A02": "A15", "A03": "A16"}
CANCELS_VISIT = {"A11", "A27", "A38"}
ACCOUNT_MOVES, VISIT_MOVES, PATIENT_MERGES = (
    {"A41", "A44", "A49"},
    {"A42", "A45", "A50"},
    {"A40", "A47"},
)
KIND = {"CG": "charge", "CD": "credit", "PY": "payment", "AJ": "adjustment"}


def chart_toml() -> str:
    """The site's `[mappings]`: facilities, departments (units too), charge codes."""
    out = ["[mappings.facility_company]"]
    out += [f'"{k}" = "{v}"' for k, v in FACILITY_COMPANY.items()]
    out += ["", "[mappings.department_cost_center]"]
    out += [f'"{k}" = "{v}"' for k, v in DEPARTMENT_COST_CENTER.items()]
    out += ["", "[mappings.charge_codes]"]
    out += [
        f'"{k}" = {{ revenue_account = "{v}", service_line = "SL{v}" }}' for k, v in REVENUE.items()
    ]
    return "\n".join(out) + "\n"


@dataclass
class Visit:
    status: str = ""
    stops: list[tuple[date, str]] = field(default_factory=list)
    pending: list[str] = field(default_factory=list)
    charged: bool = False  # an FT1 line posted on it (the hub's lineage record says so)
    diagnoses: tuple[str, ...] = ()
    procedures: tuple[str, ...] = ()


@dataclass
class Expected:
    inbox: Counter[tuple[str, str, str]] = field(default_factory=Counter)
    patients: set[str] = field(default_factory=set)
    billing_accounts: set[str] = field(default_factory=set)
    encounters: dict[str, list[str]] = field(default_factory=dict)
    visits: dict[str, Visit] = field(default_factory=dict)
    accounts: dict[str, list[Any]] = field(default_factory=dict)
    ledger: defaultdict[tuple[str, str, str, str], Decimal] = field(
        default_factory=lambda: defaultdict(Decimal)
    )
    debits: Decimal = Decimal("0.00")
    work_items: Counter[tuple[str, str]] = field(default_factory=Counter)
    # (billing account, visit) -> (patient MRN, company) -> A/R its lines posted there
    holdings: defaultdict[tuple[str, str], defaultdict[tuple[str, str], Decimal]] = field(
        default_factory=lambda: defaultdict(lambda: defaultdict(Decimal))
    )
    # what the merges made of a number: account or visit -> the one it became; the patient a
    # move gave an account ("a", number) or a visit ("v", number); MRN -> A40/A47 survivor
    became: dict[str, str] = field(default_factory=dict)
    owner: dict[tuple[str, str], str] = field(default_factory=dict)
    merged_into: dict[str, str] = field(default_factory=dict)
    visit_account: dict[str, str] = field(default_factory=dict)  # A42/A45/A50: PID-18

    # -- reading -------------------------------------------------------------------------

    def state(self) -> dict[str, Any]:
        return {
            "inbox": dict(self.inbox),
            "patients": sorted(self.patients),
            "billing_accounts": sorted(self.billing_accounts),
            "encounters": {v: tuple(e) for v, e in self.encounters.items()},
            "visits": {
                v: {
                    "status": s.status,
                    "stops": [d for _, d in s.stops],
                    "pending": list(s.pending),
                    "charged": s.charged,
                    "diagnoses": list(s.diagnoses),
                    "procedures": list(s.procedures),
                }
                for v, s in self.visits.items()
            },
            "accounts": {n: (a[0], tuple(a[1])) for n, a in self.accounts.items()},
            "ledger": {k: v for k, v in self.ledger.items() if v},
            "work_items": dict(self.work_items),
        }

    def department_at(self, visit: str, on: date) -> str:
        """The unit of the latest stop (admit, transfer) on or before `on` (the week sends
        no line without FT1-13 before a visit's admit)."""
        stops = [d for when, d in self.visits[visit].stops if when <= on]
        assert stops, f"no location known for {visit} on {on}"
        return stops[-1]

    # -- applying one message ----------------------------------------------------------------

    def apply(self, f: Fact, on: date) -> None:
        if f.event in IGNORED:
            self.inbox[(f.event, "ignored", "AA")] += 1
            return
        self.inbox[(f.event, "accepted", "AA")] += 1
        if f.resent:  # the same move again (same MSH-7): applied once
            return
        p = f.person
        assert p is not None
        self.patients.add(p.mrn)
        mtype, trigger = f.event.split("^")
        if f.payers:
            self.accounts.setdefault(p.account, ["open", ()])[1] = f.payers
        if f.diagnoses or f.procedures:
            v = self._visit(p.visit)
            v.diagnoses = f.diagnoses or v.diagnoses
            v.procedures = f.procedures or v.procedures
        if mtype == "DFT":
            for line in f.lines:
                self._line(f, line)
        elif mtype == "BAR":
            self._bar(f, trigger)
        else:
            self._adt(f, trigger, on)

    def _visit(self, visit: str) -> Visit:
        return self.visits.setdefault(visit, Visit())

    def _settle(self, visit: str, trigger: str) -> None:
        """A completed or cancelled pending event leaves the visit's pending list."""
        done = COMPLETES_PENDING.get(trigger) or CANCELS_PENDING[trigger]
        v = self._visit(visit)
        v.pending = [t for t in v.pending if t != done]

    def _encounter(self, visit: str, status: str, pclass: str = "") -> None:
        row = self.encounters.setdefault(visit, [status, pclass])
        row[0] = status
        row[1] = pclass or row[1]

    def _adt(self, f: Fact, trigger: str, on: date) -> None:
        p = f.person
        assert p is not None
        if f.prior is not None:
            self._merge(f, trigger)
            return
        if trigger in COMPLETES_PENDING:
            self._settle(p.visit, trigger)
        if trigger in ("A01", "A04"):
            v = self._visit(p.visit)
            v.status = "active"
            assert f.unit, "the week admits to a unit (PV1-3)"
            v.stops.append((on, f.unit))  # the visit's first location
            self._encounter(p.visit, "active", f.patient_class)
        elif trigger == "A03":
            self._visit(p.visit).status = "discharged"
            self._encounter(p.visit, "discharged")
        elif trigger in ("A02", "A12", "A17"):
            moves = [(p, f.unit)] + ([f.other] if f.other else [])
            for who, unit in moves:
                v = self._visit(who.visit)
                if trigger == "A12":  # the last transfer: the week's A12s follow one
                    v.stops.pop()
                else:
                    v.stops.append((on, unit))
                self._encounter(who.visit, v.status or "active")
        elif trigger in ("A06", "A07"):
            self._visit(p.visit)
            self._encounter(p.visit, self.visits[p.visit].status or "active", f.patient_class)
        elif (
            trigger in PENDING
            or trigger in CANCELS_PENDING
            or trigger in CANCELS_VISIT
            or trigger == "A13"
        ):
            v = self._visit(p.visit)
            if trigger in PENDING:
                if trigger not in v.pending:
                    v.pending.append(trigger)
            elif trigger in CANCELS_PENDING:
                self._settle(p.visit, trigger)
            if trigger == "A13":
                v.status = "active"
            elif trigger in CANCELS_VISIT:
                v.status = "cancelled"
                if v.charged:  # the hub never reverses them: a person decides
                    self.work_items[("cancelled_visit_with_charges", "open")] += 1
            if v.status:
                self._encounter(p.visit, v.status)
        elif trigger == "A29" and any(k[3] == p.mrn for k in self.ledger):
            # a person with any A/R posting, even settled, is not deleted
            self.work_items[("person_delete_refused", "open")] += 1
        # A05, A08, A28, A31: the person registered or updated, nothing else

    def _bar(self, f: Fact, trigger: str) -> None:
        p = f.person
        assert p is not None
        self.billing_accounts.add(p.account)
        if trigger in ("P02", "P06"):
            self.accounts.setdefault(p.account, ["open", ()])[0] = (
                "purged" if trigger == "P02" else "ended"
            )
        elif p.account in self.accounts:  # P01 / P05 reopen an ended account
            self.accounts[p.account][0] = "open"

    def _followed(self, p: Person) -> Person:
        """The person, account and visit a line lands on after the merges (README: later
        lines to an old number land on the survivor; the visit's move wins)."""
        visit = chase(self.became, p.visit)
        account = chase(self.became, self.visit_account.get(visit) or p.account)
        mrn = self.owner.get(("v", visit)) or self.owner.get(("a", account)) or p.mrn
        return replace(p, mrn=chase(self.merged_into, mrn), account=account, visit=visit)

    def _line(self, f: Fact, line: Line) -> None:
        assert f.person is not None
        p = self._followed(f.person)
        if self.accounts.get(p.account, ["open"])[0] != "open":
            self.work_items[("charge_to_closed_account", "open")] += 1
            return
        company = FACILITY_COMPANY[p.facility]
        kind, amount = KIND[line.ttype], line.amount
        ar = (AR, company, "", p.mrn)
        if kind in ("charge", "credit"):
            if amount < 0:
                kind, amount = "credit", -amount
            dept = line.department or self.department_at(p.visit, line.service_date)
            revenue = (REVENUE[line.code], company, DEPARTMENT_COST_CENTER[dept], "")
            debit, credit = (ar, revenue) if kind == "charge" else (revenue, ar)
        elif kind == "payment":
            debit, credit = (CASH_CLEARING, company, "", ""), ar
            amount = abs(amount)
        else:  # adjustment: sent negative lowers A/R, positive raises it
            other = (OTHER_ADJUSTMENTS, company, "", "")
            debit, credit = (other, ar) if amount < 0 else (ar, other)
            amount = abs(amount)
        self.ledger[debit] += amount
        self.ledger[credit] -= amount
        self.debits += amount
        if p.visit and amount:  # its A/R is attributed to the visit (flows/lineage.py)
            self._visit(p.visit).charged = True
        ar_delta = amount if debit == ar else -amount
        self.holdings[(p.account, p.visit)][(p.mrn, company)] += ar_delta

    # -- merges and moves ----------------------------------------------------------------------

    def _merge(self, f: Fact, trigger: str) -> None:
        p, q = f.person, f.prior
        assert p is not None and q is not None
        if trigger in PATIENT_MERGES:
            if q.mrn != p.mrn:  # the whole token, per company
                self.merged_into[q.mrn] = p.mrn
                moving: defaultdict[tuple[str, str], Decimal] = defaultdict(Decimal)
                for (account, company, _cc, mrn), amount in self.ledger.items():
                    if account == AR and mrn == q.mrn:
                        moving[(mrn, company)] += amount
                for cells in self.holdings.values():
                    for mrn, company in list(cells):
                        if mrn == q.mrn:
                            cells[(p.mrn, company)] += cells.pop((mrn, company))
                self._reclass(moving, p.mrn)
        elif trigger in ACCOUNT_MOVES:
            source, target = q.account, p.account
            self.billing_accounts |= {source, target}
            if target != source and target not in self.accounts:  # takes the coverage
                self.accounts[target] = ["open", self.accounts.get(source, ["open", ()])[1]]
            if target != source:
                self.became[source] = target
            self.owner[("a", target)] = p.mrn
            for _, visit in (k for k in self.holdings if k[0] in (source, target)):
                self.owner[("v", visit)] = p.mrn
            self._move(
                {k for k in self.holdings if k[0] in (source, target)},
                p.mrn,
                lambda k: (target, k[1]),
            )
        elif trigger in VISIT_MOVES:
            source, target = q.visit, p.visit
            self.billing_accounts.add(p.account)
            if target != source:
                self.visits[target] = joined(self.visits.get(target), self.visits[source])
                self.visits[source].charged = False  # its postings moved with it
                self.became[source] = target
            self.owner[("v", target)] = p.mrn
            self.visit_account[target] = p.account
            self._move(
                {k for k in self.holdings if k[1] in (source, target)},
                p.mrn,
                lambda k: (p.account, target),
            )
        # A51: the alternate visit id keys nothing

    def _move(
        self,
        keys: set[tuple[str, str]],
        owner: str,
        dest: Callable[[tuple[str, str]], tuple[str, str]],
    ) -> None:
        moving: defaultdict[tuple[str, str], Decimal] = defaultdict(Decimal)
        for key in sorted(keys):
            for (mrn, company), amount in self.holdings.pop(key).items():
                self.holdings[dest(key)][(owner, company)] += amount
                if mrn != owner:
                    moving[(mrn, company)] += amount
        self._reclass(moving, owner)

    def _reclass(self, moving: dict[tuple[str, str], Decimal], owner: str) -> None:
        """One entry per old patient and company: its A/R onto `owner`'s token."""
        for (mrn, company), amount in moving.items():
            if amount and mrn != owner:
                self.ledger[(AR, company, "", mrn)] -= amount
                self.ledger[(AR, company, "", owner)] += amount
                self.debits += abs(amount)


def chase(links: dict[str, str], start: str) -> str:
    seen = {start}
    while links.get(start, start) not in seen:
        start = links[start]
        seen.add(start)
    return start


def joined(into: Visit | None, was: Visit) -> Visit:
    """Visit `was` merged into `into` (A42, A50): stops in time order, charges, pending
    events and codes joined; `into` keeps its own status."""
    new = into or Visit()
    return Visit(
        status=new.status or was.status,
        stops=sorted([*new.stops, *was.stops], key=lambda s: s[0]),
        pending=[*new.pending, *(t for t in was.pending if t not in new.pending)],
        charged=new.charged or was.charged,
        diagnoses=(*new.diagnoses, *(c for c in was.diagnoses if c not in new.diagnoses)),
        procedures=(*new.procedures, *(c for c in was.procedures if c not in new.procedures)),
    )
