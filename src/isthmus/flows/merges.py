"""ADT merges, moves and identifier changes: A41, A42, A44, A45, A47, A49, A50, A51.

HL7 v2.5.1 chapter 3: A41 merge account (3.3.41), A42 merge visit (3.3.42), A44 move account
(3.3.44), A45 move visit (3.3.45), A47 change patient identifier list (3.3.47), A49 change
patient account number (3.3.49), A50 change visit number (3.3.50), A51 change alternate
visit id (3.3.51). MRG-1 / MRG-3 / MRG-5 name the prior patient / account / visit; PID-3,
PID-18 and PV1-19 what they become. (A40 is `flows.accounts.merge`.)

What happens, in money (README "HL7 v2 events"):
- A/R lives on the patient's account token. A merge, move or renumber inside one patient
  moves no money: only the lineage (`flows.lineage`) and the visit state follow, so later
  lines for the old number land on the survivor.
- When the account or visit ends up with another patient (A44; A41/A42/A45 across
  patients; A47 onto an identifier that is already another patient), the A/R attributed to
  it moves to the new token with one balanced reclassification entry per receivable
  account (A/R, patient A/R), company and source token (CR old token / DR new token, or
  the mirror for a credit balance). Posted entries are never edited.
- Each message is applied once per business key (trigger, the identifiers, MSH-7): a resend
  under a new control id or a replay is a "duplicate", and the entry keys derive from the
  same key, so the ledger itself refuses a second copy. A move is also idempotent on state:
  applied again, it finds the money where it put it.

Policy where the standard is silent:
- an account or visit merged into one of another facility, or holding A/R in another
  currency than the survivor's, is refused into a `merge_refused` work item (queue
  `merge-review`) with the reason; nothing moves. A person moves it, then resolves. A
  resend of a refused move is a duplicate; a resubmit of its work item runs it again.
- an account merged into another takes the survivor's own A/R along to the PID-3 patient
  (the survivor is that patient's from then on).
- a survivor (account, visit or patient) not known yet is created; an MRG-less message or
  an unknown prior number changes nothing but the survivor's existence.
- A51 (alternate visit id, PV1-50) has no finance effect: the hub keys nothing on it.

Issue 17: `facts` reads what a message needs, in the order the flow always took the records
(PostgreSQL locks each record name until the commit: one order, no deadlock), and stops
where the decision needs no more (a duplicate, a refusal); `decide` works out the records,
patients and reclassification entries without the store (`flows.merge_decide`), and
`flows.decision.apply` writes them.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import replace
from decimal import Decimal

from isthmus.flows import account_state, lineage, visits
from isthmus.flows.accounts import resolve
from isthmus.flows.decision import apply as write
from isthmus.flows.lineage import AccountLineage, live_key
from isthmus.flows.merge_decide import (
    ACCOUNT_MOVES,
    QUEUE,
    REFUSED,
    VISIT_MOVES,
    Facts,
    conflict,
    decide,
    folded,
    moved_visits,
    visit_cells,
)
from isthmus.flows.outcome import label
from isthmus.ledger.periods import FiscalCalendar
from isthmus.model.envelope import Envelope
from isthmus.model.events import IdentifiersMoved
from isthmus.store.ports import Tx


def business_key(env: Envelope, ev: IdentifiersMoved) -> str:
    """The fact a move message states: its trigger, the identifiers and MSH-7, hashed
    (the identifiers are patient data: they never reach an entry key or a work item)."""
    parts = [
        ev.trigger,
        ev.prior_patient.key if ev.prior_patient else "",
        ev.prior_account,
        ev.prior_visit,
        ev.patient.key,
        ev.account_number,
        ev.visit_number,
        env.occurred_at.isoformat(),
    ]
    return "move:" + hashlib.sha256("\x1f".join(parts).encode()).hexdigest()[:32]


class Reader:
    """The reads of one move message, each record once, in the flow's order."""

    def __init__(self, tx: Tx, secret: str, receivables: Sequence[str]) -> None:
        self.tx, self.secret, self.receivables = tx, secret, receivables
        self.facilities: dict[str, str] = {}
        self.known: set[str] = set()
        self.tokens: dict[str, str] = {}

    def facility(self, account: str) -> str:
        if account and account not in self.facilities:
            found = self.tx.get_billing_account(account)
            self.facilities[account] = found.facility if found is not None else ""
            if found is not None:
                self.known.add(account)
        return self.facilities.get(account, "")

    def owners(self, cells: Sequence[lineage.Cell]) -> None:
        """The live owner's token of each cell's patient ("" when none is stored)."""
        for c in cells:
            if c.patient_key not in self.tokens:
                owner = self.tx.get_patient(live_key(self.tx, c.patient_key))
                self.tokens[c.patient_key] = owner.token if owner is not None else ""

    def done(self, facts: Facts) -> Facts:
        return replace(
            facts, facilities=dict(self.facilities), known=frozenset(self.known), tokens=self.tokens
        )

    def patient_change(self, ev: IdentifiersMoved, facts: Facts) -> Facts:
        """A47: the prior identifier's live patient, the new identifier's, the survivor
        when the change needs it and the A/R on the prior's token."""
        tx = self.tx
        if ev.prior_patient is None or ev.prior_patient.key == ev.patient.key:
            return replace(facts, survivor=resolve(tx, self.secret, ev.patient))
        old = tx.get_patient(live_key(tx, ev.prior_patient.key))
        new = tx.get_patient(ev.patient.key)
        if new is None and old is not None:
            return replace(facts, old=old)
        survivor = resolve(tx, self.secret, ev.patient)
        facts = replace(facts, old=old, new=new, survivor=survivor)
        if old is None or survivor.key == old.key:
            return facts
        balances: dict[tuple[str, str], dict[str, Decimal]] = {}
        for account in self.receivables:
            for (company, currency), amount in tx.ar_balances(account, old.token).items():
                balances.setdefault((account, company), {})[currency] = amount
        return replace(facts, balances=balances)

    def account_move(self, ev: IdentifiersMoved, facts: Facts) -> Facts:
        tx = self.tx
        prior = ev.prior_account or ev.account_number
        if not prior:
            return facts
        source = lineage.final_account(tx, prior)
        target = lineage.final_account(tx, ev.account_number) if ev.account_number else source
        held = lineage.load_account(tx, source)
        into = held if target == source else lineage.load_account(tx, target)
        books = {source: held, target: into}
        facts = replace(facts, source=source, target=target, books=books)
        if source != target:
            self.facility(source)
            self.facility(target)
        if conflict(self.facilities, source, target, held.cells, into.cells):
            return self.done(facts)
        self.facility(target)
        self.facility(source)
        cells = [*held.cells, *into.cells] if target != source else held.cells
        self.owners(cells)
        on = list(into.visits)
        if target != source:
            on += held.visits
            known = tx.load_state(account_state.state_name(target)) is not None
            was = None if known else account_state.load_account(tx, source)
            facts = replace(facts, survivor_state=known, prior_state=was)
        assert facts.survivor is not None
        trail: dict[str, lineage.VisitLineage] = {}
        states: dict[str, visits.VisitState] = {}
        for visit in moved_visits(folded(cells, facts.survivor.key), on):
            trail[visit] = lineage.load_visit(tx, visit)
            states[visit] = visits.load_visit(tx, visit)
        return self.done(replace(facts, trail=trail, states=states))

    def visit_move(self, ev: IdentifiersMoved, facts: Facts) -> Facts:
        tx = self.tx
        prior = ev.prior_visit or ev.visit_number
        if not prior:
            return facts
        source = lineage.final_visit(tx, prior)
        target = lineage.final_visit(tx, ev.visit_number) if ev.visit_number else source
        old = lineage.load_visit(tx, source)
        new = old if target == source else lineage.load_visit(tx, target)
        homes = list(dict.fromkeys([*old.accounts, *new.accounts]))
        account = (
            lineage.final_account(tx, ev.account_number)
            if ev.account_number
            else (
                new.account
                or old.account
                or next((h for h in homes if lineage.is_account(h)), lineage.unbilled(target))
            )
        )
        books = {a: lineage.load_account(tx, a) for a in dict.fromkeys([*homes, account])}
        facts = replace(
            facts,
            source=source,
            target=target,
            account=account,
            books=books,
            trail={source: old, target: new},
        )
        mine, staying = visit_cells(books, homes, account, source, target)
        first = homes[0] if homes else account
        if first and account and first != account:
            self.facility(first)
            self.facility(account)
        if conflict(self.facilities, first, account, mine, staying):
            return self.done(facts)
        self.owners(mine)
        states = {target: visits.load_visit(tx, target)}
        if target != source:
            states[source] = visits.load_visit(tx, source)
        if lineage.is_account(account):
            self.facility(account)
            if homes:
                self.facility(homes[0])
        return self.done(replace(facts, states=states))


def facts(
    tx: Tx, secret: str, env: Envelope, ev: IdentifiersMoved, receivables: Sequence[str]
) -> Facts:
    """What `decide` needs of the store for one move message (module docstring)."""
    key = business_key(env, ev)
    facts = Facts(key=key, done=tx.load_state(key))
    if facts.done is not None and not facts.done.startswith(f"held {env.event_id}".encode()):
        return facts  # a duplicate: nothing more to read
    read = Reader(tx, secret, receivables)
    if ev.trigger == "A47":
        return read.patient_change(ev, facts)
    facts = replace(facts, survivor=resolve(tx, secret, ev.patient))  # created if unknown
    if ev.trigger in ACCOUNT_MOVES:
        return read.account_move(ev, facts)
    if ev.trigger in VISIT_MOVES:
        return read.visit_move(ev, facts)
    return facts  # A51: the alternate visit id is not a key of anything here


def apply(
    tx: Tx,
    secret: str,
    env: Envelope,
    ev: IdentifiersMoved,
    *,
    receivables: Sequence[str],
    calendar: FiscalCalendar,
    now: float,
) -> str:
    """Apply one ADT move message (module docstring); `receivables` are the ledger accounts
    whose balances carry the patient's token (A/R, patient A/R)."""
    decision = decide(env, ev, facts(tx, secret, env, ev, receivables), calendar=calendar)
    return label(write(tx, decision, now))


__all__ = ["QUEUE", "REFUSED", "AccountLineage", "apply", "business_key", "decide", "facts"]
