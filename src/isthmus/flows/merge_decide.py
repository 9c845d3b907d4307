"""The ADT moves (A41..A51, `flows.merges`) decided without the store: facts in, records out.

`flows.merges.facts` reads what a move message needs (its business key's mark, the
survivor, the lineage records, the visits' states, the facilities and the cells' owners);
`decide` works out, without the store, what the move writes: the lineage records of the
accounts and visits, the visits' and accounts' flow state, the patients an A47 retires, the
billing accounts, the reclassification entries of A/R between tokens, or the work item a
refused move waits in; and the mark that makes the message once. `flows.decision.apply`
writes the decision (issue 17). The policy is the module docstring of `flows.merges`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Final

import msgspec

from isthmus.flows import account_state, lineage, visits
from isthmus.flows.account_state import AccountState, PutBillingAccount
from isthmus.flows.decision import Decision, Resolve, SaveState, Write, hold
from isthmus.flows.lineage import AccountLineage, Cell, VisitLineage, add_cell
from isthmus.flows.outcome import APPLIED, DUPLICATE
from isthmus.ledger.errors import ClosedPeriod
from isthmus.ledger.journal import JournalEntry
from isthmus.ledger.periods import FiscalCalendar, PeriodAssignment, first_day, period_of
from isthmus.ledger.rules import merge_reclass_entry
from isthmus.model.envelope import Envelope
from isthmus.model.events import IdentifiersMoved
from isthmus.store.ports import Patient, Tx

QUEUE: Final = "merge-review"
REFUSED: Final = "merge_refused"
ACCOUNT_MOVES: Final = frozenset({"A41", "A44", "A49"})
VISIT_MOVES: Final = frozenset({"A42", "A45", "A50"})


@dataclass(frozen=True)
class Facts:
    """What the store knows that a move's decision needs (`flows.merges.facts`)."""

    key: str  # the message's business key (`flows.merges.business_key`)
    done: bytes | None = None  # the mark of the key: "<outcome> <event id>", None when new
    survivor: Patient | None = None  # the PID-3 patient, live (created when unknown)
    old: Patient | None = None  # A47: the live patient of the prior identifier
    new: Patient | None = None  # A47: the patient of the new identifier, as stored
    balances: Mapping[tuple[str, str], Mapping[str, Decimal]] = field(default_factory=dict)
    source: str = ""  # the prior account or visit, followed to its final number
    target: str = ""  # the survivor account or visit
    account: str = ""  # a visit move: the account (or unbilled holder) the visit goes to
    books: Mapping[str, AccountLineage] = field(default_factory=dict)  # account records
    trail: Mapping[str, VisitLineage] = field(default_factory=dict)  # visit records
    states: Mapping[str, visits.VisitState] = field(default_factory=dict)  # visit flow state
    survivor_state: bool = True  # an account merge: the survivor has a flow state
    prior_state: AccountState | None = None  # ... and the prior's, when it has none
    facilities: Mapping[str, str] = field(default_factory=dict)  # account -> facility
    known: frozenset[str] = frozenset()  # billing accounts the store has
    tokens: Mapping[str, str] = field(default_factory=dict)  # cell patient -> live token


@dataclass(frozen=True, slots=True)
class PutPatient:
    """Keep a patient row (`Tx.put_patient`)."""

    patient: Patient

    def write(self, tx: Tx, now: float) -> bool:
        tx.put_patient(self.patient)
        return True


@dataclass(frozen=True, slots=True)
class MergePatient:
    """Point what the store keeps under a patient at its survivor (`Tx.merge_patient`)."""

    old: str
    into: str

    def write(self, tx: Tx, now: float) -> bool:
        tx.merge_patient(self.old, self.into)
        return True


@dataclass(frozen=True, slots=True)
class SaveLineage:
    """Keep a billing account's or a visit's lineage record (`flows.lineage`)."""

    name: str
    record: AccountLineage | VisitLineage

    def write(self, tx: Tx, now: float) -> bool:
        if isinstance(self.record, AccountLineage):
            lineage.save_account(tx, self.name, self.record)
        else:
            lineage.save_visit(tx, self.name, self.record)
        return True


def conflict(
    facilities: Mapping[str, str], source: str, target: str, moving: list[Cell], staying: list[Cell]
) -> str:
    """Why the move is refused, or "" (`flows.merges` docstring, policy)."""
    if source and target and source != target:
        a, b = facilities.get(source, ""), facilities.get(target, "")
        if a and b and a != b:
            return f"the prior account is of facility {a!r}, the survivor of {b!r}"
    have, into = set(lineage.balance(moving)), set(lineage.balance(staying))
    if have and into and not have <= into:
        return (
            f"the prior holds A/R in {', '.join(sorted(have))}, the survivor in "
            f"{', '.join(sorted(into))}"
        )
    return ""


def visit_cells(
    books: Mapping[str, AccountLineage],
    homes: Sequence[str],
    account: str,
    source: str,
    target: str,
) -> tuple[list[Cell], list[Cell]]:
    """A visit move: the cells of the two visits (where they are) and the cells of the
    other visits of the account they go to."""
    pair = (source, target)
    mine = [c for a in homes for c in books[a].cells if c.visit in pair]
    return mine, [c for c in books[account].cells if c.visit not in pair]


def folded(cells: Iterable[Cell], survivor_key: str) -> list[Cell]:
    """The cells relabelled to the survivor, one per visit, ledger account, company and
    currency (zero cells dropped)."""
    out: list[Cell] = []
    for c in cells:
        add_cell(out, msgspec.structs.replace(c, patient_key=survivor_key))
    return out


def moved_visits(cells: Iterable[Cell], on: Iterable[str]) -> list[str]:
    """The visits an account's cells name and the visits a move put on it, sorted."""
    return sorted({c.visit for c in cells if c.visit} | set(on))


class _Plan:
    """The writes and entries of one move, in the order the flow always wrote them."""

    def __init__(
        self, env: Envelope, ev: IdentifiersMoved, facts: Facts, calendar: FiscalCalendar
    ) -> None:
        self.env, self.ev, self.facts, self.calendar = env, ev, facts, calendar
        self.writes: list[Write] = []
        self.entries: list[JournalEntry] = []

    def reclass(
        self, amounts: Mapping[str, Decimal], from_token: str, to_token: str, account: str, co: str
    ) -> None:
        day = self.env.occurred_at.date()
        try:
            where = self.calendar.assign(day)
        except ClosedPeriod:  # a move between tokens goes to the next open month
            period = self.calendar.next_open(period_of(day))
            where = PeriodAssignment(
                period=period, posted_on=first_day(period), moved_from=period_of(day)
            )
        entry = merge_reclass_entry(
            dict(amounts),
            from_token=from_token,
            to_token=to_token,
            ar_account=account,
            company=co,
            entry_key=f"{self.facts.key}/{account}/{co}/{from_token}",
            posted_on=where.posted_on,
            period=where.period,
            channel=self.env.source.channel,
            correlation_id=self.env.correlation_id,
            causation_id=self.env.event_id,
            memo=f"{self.ev.trigger} move: A/R reclass to the surviving account",
            moved_from=where.moved_from,
        )
        if entry is not None:
            self.entries.append(entry)

    def move_cells(self, cells: Iterable[Cell], survivor: Patient) -> list[Cell]:
        """The cells relabelled to the survivor; the A/R of every other token reclassified
        onto the survivor's token, one entry per company and source token."""
        cells = list(cells)
        moving: dict[tuple[str, str, str], dict[str, Decimal]] = {}
        for c in cells:
            token = self.facts.tokens.get(c.patient_key, "")
            if token and token != survivor.token:
                by_currency = moving.setdefault((token, c.ledger_account, c.company), {})
                by_currency[c.currency] = by_currency.get(c.currency, Decimal(0)) + c.amount
        for (token, account, company), amounts in sorted(moving.items()):
            self.reclass(amounts, token, survivor.token, account, company)
        return folded(cells, survivor.key)

    def retire(self, old: Patient, into: str) -> None:
        self.writes += [PutPatient(msgspec.structs.replace(old, merged_into=into))]
        self.writes += [MergePatient(old.key, into)]

    # -- A47: the patient identifier changes ------------------------------------------
    def patient_change(self) -> str:
        """The new identifier takes over the old one's token (an alias, no money moves);
        onto an identifier that is already another patient, the account changes: a merge
        as A40, whose A/R moves by reclassification."""
        ev, f = self.ev, self.facts
        if ev.prior_patient is None or ev.prior_patient.key == ev.patient.key:
            return ""
        old, prior = f.old, ev.prior_patient
        if old is None:  # nothing known under the old id: later messages follow the alias
            assert f.survivor is not None
            alias = Patient(
                key=prior.key,
                mrn=prior.mrn,
                authority=prior.authority,
                token=f.survivor.token,
                merged_into=f.survivor.key,
            )
            self.writes.append(PutPatient(alias))
        elif f.new is None:  # the old account under its new identifier: same token
            p = ev.patient
            self.writes.append(
                PutPatient(
                    msgspec.structs.replace(
                        old, key=p.key, mrn=p.mrn, authority=p.authority, merged_into=""
                    )
                )
            )
            self.retire(old, p.key)
        elif f.survivor is not None and f.survivor.key != old.key:
            self.retire(old, f.survivor.key)
            for (account, company), amounts in sorted(f.balances.items()):
                self.reclass(amounts, old.token, f.survivor.token, account, company)
        return ""

    # -- A41, A44, A49: a billing account ---------------------------------------------
    def account_move(self, survivor: Patient) -> str:
        f = self.facts
        source, target = f.source, f.target
        if not source:
            return ""
        held = _book(f.books[source])
        into = held if target == source else _book(f.books[target])
        why = conflict(f.facilities, source, target, held.cells, into.cells)
        if why:
            return why
        facility = f.facilities.get(target, "") or f.facilities.get(source, "")
        if target != source:  # the survivor's own A/R goes to the survivor too
            into.cells = self.move_cells([*held.cells, *into.cells], survivor)
            into.visits += [v for v in held.visits if v not in into.visits]
            held.cells, held.moved_to, held.owner = [], target, survivor.key
            self.writes.append(SaveLineage(source, held))
            if f.prior_state is not None:
                took = account_state.merged_account(f.prior_state, f.survivor_state)
                if took is not None:
                    self.writes.append(account_state.save(target, took))
            own = f.facilities.get(source, "") or facility
            self.writes.append(PutBillingAccount(source, survivor.key, own))
        else:
            into.cells = self.move_cells(held.cells, survivor)
        into.moved_to, into.owner = "", survivor.key
        self.writes += [
            SaveLineage(target, into),
            PutBillingAccount(target, survivor.key, facility),
        ]
        for visit in moved_visits(into.cells, into.visits):
            moved = msgspec.structs.replace(
                f.trail[visit],
                owner=survivor.key,
                account=target,
                accounts=list(
                    dict.fromkeys(target if a == source else a for a in f.trail[visit].accounts)
                ),
            )
            state = visits.merged_visit(f.states[visit], None, survivor.key)
            self.writes += [SaveLineage(visit, moved), visits.save_visit(visit, state)]
        return ""

    # -- A42, A45, A50: a visit ---------------------------------------------------------
    def visit_move(self, survivor: Patient) -> str:
        f = self.facts
        source, target, account = f.source, f.target, f.account
        if not source:
            return ""
        old = _trail(f.trail[source])
        new = old if target == source else _trail(f.trail[target])
        homes = list(dict.fromkeys([*old.accounts, *new.accounts]))
        books = {a: _book(b) for a, b in f.books.items()}
        mine, staying = visit_cells(books, homes, account, source, target)
        why = conflict(f.facilities, homes[0] if homes else account, account, mine, staying)
        if why:
            return why
        moved = self.move_cells([msgspec.structs.replace(c, visit=target) for c in mine], survivor)
        for a in homes:
            books[a].cells = [c for c in books[a].cells if c.visit not in (source, target)]
            books[a].visits = [v for v in books[a].visits if v not in (source, target)]
        for cell in moved:
            add_cell(books[account].cells, cell)
        if lineage.is_account(account) and target not in books[account].visits:
            books[account].visits.append(target)
        self.writes += [SaveLineage(a, book) for a, book in books.items()]
        if target != source:
            old.moved_to, old.owner, old.account, old.accounts = target, survivor.key, account, []
            self.writes.append(SaveLineage(source, old))
        was = f.states[source] if target != source else None
        state = visits.merged_visit(f.states[target], was, survivor.key)
        self.writes.append(visits.save_visit(target, state))
        new.moved_to, new.owner, new.account, new.accounts = "", survivor.key, account, [account]
        self.writes.append(SaveLineage(target, new))
        if lineage.is_account(account) and account not in f.known:
            facility = f.facilities.get(homes[0], "") if homes else ""
            self.writes.append(PutBillingAccount(account, survivor.key, facility))
        return ""


def _book(b: AccountLineage) -> AccountLineage:
    return msgspec.structs.replace(b, cells=list(b.cells), visits=list(b.visits))


def _trail(v: VisitLineage) -> VisitLineage:
    return msgspec.structs.replace(v, accounts=list(v.accounts))


def decide(
    env: Envelope, ev: IdentifiersMoved, facts: Facts, *, calendar: FiscalCalendar
) -> Decision:
    """One move message, decided on its facts: "duplicate" (the same move seen before),
    held in a `merge_refused` item (refused: nothing moves) or applied."""
    done = facts.done
    if done is not None and not done.startswith(f"held {env.event_id}".encode()):
        return Decision(DUPLICATE)
    plan = _Plan(env, ev, facts, calendar)
    if ev.trigger == "A47":
        why = plan.patient_change()
    elif ev.trigger in ACCOUNT_MOVES | VISIT_MOVES and facts.survivor is not None:
        move = plan.account_move if ev.trigger in ACCOUNT_MOVES else plan.visit_move
        why = move(facts.survivor)
    else:  # A51: the alternate visit id is not a key of anything here
        why = ""
    if why:
        refused = hold(
            env,
            kind=REFUSED,
            queue=QUEUE,
            detail=f"ADT^{ev.trigger}: {why}; nothing was moved: move the balance "
            "by hand or have the source correct it, then resolve",
        )
        mark = SaveState(facts.key, f"held {env.event_id}".encode())
        return Decision(refused.outcome, open=refused.open, writes=(mark,))
    mark = SaveState(facts.key, f"applied {env.event_id}".encode())
    again = (Resolve(env.event_id, "moved after the fix"),) if done is not None else ()
    return Decision(
        APPLIED, writes=(*plan.writes, mark), entries=tuple(plan.entries), resolve=again
    )
