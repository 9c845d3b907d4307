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
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from decimal import Decimal

import msgspec

from isthmus.flows import lineage, visits
from isthmus.flows.accounts import resolve
from isthmus.flows.lineage import AccountLineage, Cell, add_cell, live_key
from isthmus.ledger.errors import ClosedPeriod
from isthmus.ledger.periods import FiscalCalendar, PeriodAssignment, first_day, period_of
from isthmus.ledger.rules import merge_reclass_entry
from isthmus.model.envelope import Envelope, encode_envelope
from isthmus.model.events import IdentifiersMoved
from isthmus.store.ports import Patient, Tx

QUEUE = "merge-review"
REFUSED = "merge_refused"
ACCOUNT_MOVES = frozenset({"A41", "A44", "A49"})
VISIT_MOVES = frozenset({"A42", "A45", "A50"})


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


class Mover:
    """One move message applied inside the caller's transaction."""

    def __init__(
        self,
        tx: Tx,
        secret: str,
        env: Envelope,
        ev: IdentifiersMoved,
        *,
        receivables: Sequence[str],
        calendar: FiscalCalendar,
        now: float,
    ) -> None:
        self.tx, self.secret, self.env, self.ev = tx, secret, env, ev
        self.now = now
        self.receivables, self.calendar = receivables, calendar
        self.key = business_key(env, ev)

    # -- the decision of one message ----------------------------------------------------

    def run(self) -> str:
        """ "applied", "duplicate" (the same move seen before) or "held" (refused)."""
        done = self.tx.load_state(self.key)
        if done is not None and not done.startswith(f"held {self.env.event_id}".encode()):
            return "duplicate"
        ev = self.ev
        if ev.trigger == "A47":
            outcome = self.patient_change()
        else:
            survivor = resolve(self.tx, self.secret, ev.patient)  # created if unknown
            if ev.trigger in ACCOUNT_MOVES:
                outcome = self.account_move(survivor)
            elif ev.trigger in VISIT_MOVES:
                outcome = self.visit_move(survivor)
            else:  # A51: the alternate visit id is not a key of anything here
                outcome = "applied"
        mark = f"{outcome} {self.env.event_id}".encode()
        self.tx.save_state(self.key, mark)
        if outcome == "applied" and done is not None:  # a resubmitted refusal went through
            self.tx.close_work_items(self.env.event_id, "moved after the fix", self.now)
        return outcome

    def refuse(self, reason: str) -> str:
        self.tx.add_work_item(
            kind=REFUSED,
            queue=QUEUE,
            key=self.env.key,
            event_id=self.env.event_id,
            correlation_id=self.env.correlation_id,
            detail=f"ADT^{self.ev.trigger}: {reason}; nothing was moved: move the balance "
            "by hand or have the source correct it, then resolve",
            envelope=encode_envelope(self.env),
            now=self.now,
        )
        return "held"

    # -- A47: the patient identifier changes ------------------------------------------

    def patient_change(self) -> str:
        """The new identifier takes over the old one's token (an alias, no money moves);
        onto an identifier that is already another patient, the account changes: a merge
        as A40, whose A/R moves by reclassification."""
        ev, tx = self.ev, self.tx
        if ev.prior_patient is None or ev.prior_patient.key == ev.patient.key:
            resolve(tx, self.secret, ev.patient)
            return "applied"
        old = tx.get_patient(live_key(tx, ev.prior_patient.key))
        new = tx.get_patient(ev.patient.key)
        if old is None:  # nothing known under the old id: later messages follow the alias
            survivor = resolve(tx, self.secret, ev.patient)
            tx.put_patient(
                Patient(
                    key=ev.prior_patient.key,
                    mrn=ev.prior_patient.mrn,
                    authority=ev.prior_patient.authority,
                    token=survivor.token,
                    merged_into=survivor.key,
                )
            )
            return "applied"
        if new is None:  # the old account under its new identifier: same token
            tx.put_patient(
                Patient(
                    key=ev.patient.key,
                    mrn=ev.patient.mrn,
                    authority=ev.patient.authority,
                    token=old.token,
                    family_name=old.family_name,
                    given_name=old.given_name,
                    birth_date=old.birth_date,
                    sex=old.sex,
                )
            )
            self._retire(old, ev.patient.key)
            return "applied"
        survivor = resolve(tx, self.secret, ev.patient)
        if survivor.key == old.key:
            return "applied"
        balances: dict[tuple[str, str], dict[str, Decimal]] = {}
        for account in self.receivables:
            for (company, currency), amount in tx.ar_balances(account, old.token).items():
                balances.setdefault((account, company), {})[currency] = amount
        self._retire(old, survivor.key)
        for (account, company), amounts in sorted(balances.items()):
            self._reclass(amounts, old.token, survivor.token, account, company)
        return "applied"

    def _retire(self, old: Patient, into: str) -> None:
        self.tx.put_patient(
            Patient(
                key=old.key,
                mrn=old.mrn,
                authority=old.authority,
                token=old.token,
                family_name=old.family_name,
                given_name=old.given_name,
                birth_date=old.birth_date,
                sex=old.sex,
                merged_into=into,
            )
        )
        self.tx.merge_patient(old.key, into)

    # -- A41, A44, A49: a billing account ---------------------------------------------

    def account_move(self, survivor: Patient) -> str:
        ev, tx = self.ev, self.tx
        prior = ev.prior_account or ev.account_number
        if not prior:
            return "applied"
        source = lineage.final_account(tx, prior)
        target = lineage.final_account(tx, ev.account_number) if ev.account_number else source
        held = lineage.load_account(tx, source)
        into = held if target == source else lineage.load_account(tx, target)
        why = self._conflict(source, target, held.cells, into.cells)
        if why:
            return self.refuse(why)
        facility = self._facility(target) or self._facility(source)
        if target != source:  # the survivor's own A/R goes to the survivor too
            into.cells = self._move_cells([*held.cells, *into.cells], survivor)
            into.visits += [v for v in held.visits if v not in into.visits]
            held.cells, held.moved_to, held.owner = [], target, survivor.key
            lineage.save_account(tx, source, held)
            visits.merge_account_state(tx, source, target)
            tx.put_billing_account(source, survivor.key, self._facility(source) or facility)
        else:
            into.cells = self._move_cells(held.cells, survivor)
        into.moved_to, into.owner = "", survivor.key
        lineage.save_account(tx, target, into)
        tx.put_billing_account(target, survivor.key, facility)
        for visit in sorted({c.visit for c in into.cells if c.visit} | set(into.visits)):
            moved = lineage.load_visit(tx, visit)
            moved.owner, moved.account = survivor.key, target
            moved.accounts = list(
                dict.fromkeys(target if a == source else a for a in moved.accounts)
            )
            lineage.save_visit(tx, visit, moved)
            visits.merge_visit_state(tx, visit, visit, survivor.key)
        return "applied"

    # -- A42, A45, A50: a visit ---------------------------------------------------------

    def visit_move(self, survivor: Patient) -> str:
        ev, tx = self.ev, self.tx
        prior = ev.prior_visit or ev.visit_number
        if not prior:
            return "applied"
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
        mine = [c for a in homes for c in books[a].cells if c.visit in (source, target)]
        staying = [c for c in books[account].cells if c.visit not in (source, target)]
        why = self._conflict(homes[0] if homes else account, account, mine, staying)
        if why:
            return self.refuse(why)
        moved = self._move_cells([msgspec.structs.replace(c, visit=target) for c in mine], survivor)
        for a in homes:
            books[a].cells = [c for c in books[a].cells if c.visit not in (source, target)]
            books[a].visits = [v for v in books[a].visits if v not in (source, target)]
        for cell in moved:
            add_cell(books[account].cells, cell)
        if lineage.is_account(account) and target not in books[account].visits:
            books[account].visits.append(target)
        for a, book in books.items():
            lineage.save_account(tx, a, book)
        if target != source:
            old.moved_to, old.owner, old.account, old.accounts = target, survivor.key, account, []
            lineage.save_visit(tx, source, old)
        visits.merge_visit_state(tx, source, target, survivor.key)
        new.moved_to, new.owner, new.account, new.accounts = "", survivor.key, account, [account]
        lineage.save_visit(tx, target, new)
        if lineage.is_account(account) and tx.get_billing_account(account) is None:
            tx.put_billing_account(account, survivor.key, self._facility(homes[0]) if homes else "")
        return "applied"

    # -- shared steps -------------------------------------------------------------------

    def _facility(self, account: str) -> str:
        found = self.tx.get_billing_account(account) if account else None
        return found.facility if found is not None else ""

    def _conflict(self, source: str, target: str, moving: list[Cell], staying: list[Cell]) -> str:
        """Why the move is refused, or "" (module docstring, policy)."""
        if source and target and source != target:
            a, b = self._facility(source), self._facility(target)
            if a and b and a != b:
                return f"the prior account is of facility {a!r}, the survivor of {b!r}"
        have, into = set(lineage.balance(moving)), set(lineage.balance(staying))
        if have and into and not have <= into:
            return (
                f"the prior holds A/R in {', '.join(sorted(have))}, the survivor in "
                f"{', '.join(sorted(into))}"
            )
        return ""

    def _move_cells(self, cells: Iterable[Cell], survivor: Patient) -> list[Cell]:
        """The cells relabelled to the survivor; the A/R of every other token reclassified
        onto the survivor's token, one entry per company and source token."""
        out: list[Cell] = []
        moving: dict[tuple[str, str, str], dict[str, Decimal]] = {}
        for c in cells:
            owner = self.tx.get_patient(live_key(self.tx, c.patient_key))
            if owner is not None and owner.token != survivor.token:
                by_currency = moving.setdefault((owner.token, c.ledger_account, c.company), {})
                by_currency[c.currency] = by_currency.get(c.currency, Decimal(0)) + c.amount
            out.append(msgspec.structs.replace(c, patient_key=survivor.key))
        for (token, account, company), amounts in sorted(moving.items()):
            self._reclass(amounts, token, survivor.token, account, company)
        folded: list[Cell] = []
        for cell in out:
            add_cell(folded, cell)
        return folded

    def _reclass(
        self,
        amounts: dict[str, Decimal],
        from_token: str,
        to_token: str,
        account: str,
        company: str,
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
            amounts,
            from_token=from_token,
            to_token=to_token,
            ar_account=account,
            company=company,
            entry_key=f"{self.key}/{account}/{company}/{from_token}",
            posted_on=where.posted_on,
            period=where.period,
            channel=self.env.source.channel,
            correlation_id=self.env.correlation_id,
            causation_id=self.env.event_id,
            memo=f"{self.ev.trigger} move: A/R reclass to the surviving account",
            moved_from=where.moved_from,
        )
        if entry is not None:
            self.tx.insert_entry(entry)


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
    return Mover(tx, secret, env, ev, receivables=receivables, calendar=calendar, now=now).run()


__all__ = ["QUEUE", "REFUSED", "AccountLineage", "apply", "business_key"]
