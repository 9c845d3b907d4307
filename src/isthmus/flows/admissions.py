"""The worker's handlers of patient administration: the ADT encounter, visit, merge and
identifier events and the BAR account events of issue 15, each handed to its flow
(`flows.accounts`, `flows.visits`, `flows.merges`).

The processor (`flows.processor`) builds one `Admissions` with its settings and registers
these bound methods by payload type, so an event reaches its handler with the same one
registry look-up as any other. The registrations that release held postings
(PatientRegistered, BillingAccountOpened) stay in the processor: they hand each released
posting back to `Processor.handle`."""

from __future__ import annotations

from dataclasses import dataclass

from isthmus.flows import account_state, accounts, merges, visits
from isthmus.flows.outcome import APPLIED, Outcome, of
from isthmus.ledger.periods import FiscalCalendar
from isthmus.model import AccountsMerged, EncounterDischarged, EncounterStarted
from isthmus.model.envelope import Envelope
from isthmus.model.events import (
    BillingAccountClosed,
    ClinicalCodesRecorded,
    CoverageRecorded,
    EncounterTransferred,
    IdentifiersMoved,
    PatientClassChanged,
    PatientDeleted,
    VisitEventRecorded,
)
from isthmus.store.ports import Tx


@dataclass(frozen=True)
class Admissions:
    """The ADT and BAR account handlers with the site settings they use; each takes
    (tx, envelope, now) and answers a typed outcome, as the processor's registry expects."""

    secret: str
    ar_account: str
    patient_ar: str
    receivables: tuple[str, ...]  # the accounts whose lines carry the patient's token
    calendar: FiscalCalendar

    def encounter(self, tx: Tx, env: Envelope, now: float) -> Outcome:
        ev = env.payload
        assert isinstance(ev, EncounterStarted | EncounterDischarged)
        accounts.encounter(tx, self.secret, ev, env.occurred_at.isoformat())
        return visits.start_or_end(tx, env, ev, now)

    def merged(self, tx: Tx, env: Envelope, now: float) -> Outcome:
        ev = env.payload
        assert isinstance(ev, AccountsMerged)
        accounts.merge(
            tx,
            self.secret,
            env,
            ev,
            ar_account=self.ar_account,
            calendar=self.calendar,
            patient_ar=self.patient_ar,
        )
        return APPLIED

    def transferred(self, tx: Tx, env: Envelope, now: float) -> Outcome:
        ev = env.payload
        assert isinstance(ev, EncounterTransferred)
        return of(visits.transfer(tx, self.secret, env, ev, now))

    def class_changed(self, tx: Tx, env: Envelope, now: float) -> Outcome:
        ev = env.payload
        assert isinstance(ev, PatientClassChanged)
        return visits.class_change(tx, self.secret, env, ev, now)

    def visit_recorded(self, tx: Tx, env: Envelope, now: float) -> Outcome:
        ev = env.payload
        assert isinstance(ev, VisitEventRecorded)
        return of(visits.record(tx, self.secret, env, ev, now))

    def codes(self, tx: Tx, env: Envelope, now: float) -> Outcome:
        ev = env.payload
        assert isinstance(ev, ClinicalCodesRecorded)
        return visits.codes(tx, env, ev, now)

    def coverage(self, tx: Tx, env: Envelope, now: float) -> Outcome:
        ev = env.payload
        assert isinstance(ev, CoverageRecorded)
        return account_state.coverage(tx, ev, now)

    def account_closed(self, tx: Tx, env: Envelope, now: float) -> Outcome:
        ev = env.payload
        assert isinstance(ev, BillingAccountClosed)
        return of(account_state.close_account(tx, self.secret, ev, now))

    def deleted(self, tx: Tx, env: Envelope, now: float) -> Outcome:
        ev = env.payload
        assert isinstance(ev, PatientDeleted)
        return accounts.delete_person(tx, self.secret, env, ev, ar_account=self.ar_account, now=now)

    def moved(self, tx: Tx, env: Envelope, now: float) -> Outcome:
        ev = env.payload
        assert isinstance(ev, IdentifiersMoved)
        return of(
            merges.apply(
                tx,
                self.secret,
                env,
                ev,
                receivables=self.receivables,
                calendar=self.calendar,
                now=now,
            )
        )
