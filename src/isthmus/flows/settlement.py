"""Card settlements and deposits -> the ledger, and the matching of deposits to payments.

* `PatientPaymentSettled` (a card or online patient payment, refund or chargeback from a
  processor's settlement file) is matched to its billing account by account number (PID-18)
  and posts DR card clearing / CR A/R of that account (`ledger.settlement`). No account
  known: `unapplied_cash` in queue `cash-posting`, as for an 835 (`flows.remittance`);
  resubmit once the account is known. An account whose facility has no ERP company waits
  behind that facility's one `unmapped_facility` item (`flows.mapping_holds`).
* `ProcessorDeposited` (a processor's payout) posts DR bank, DR fees / CR card clearing, and
  is recorded for matching with the bank's credit of the same reference and net amount.
* `RemittancePaid` (an 835's BPR02 and TRN02) is recorded for matching: its claims already
  debited cash clearing (`ledger.remit`).
* `BankDeposited` (a credit on the bank account) is recorded and matched on reference and
  amount: to an 835 payment (posts DR bank / CR cash clearing, the money has arrived), or to
  a processor deposit (nothing to post: that deposit posted the bank side already).
  Whichever of the two sides arrives second makes the match; both are keyed on
  `deposit|<reference>`, so they are handled in order on one partition.

Every entry is keyed by an event id (a match by the bank deposit's id + "/match"), every
record by its event id, so a replayed event or file never posts twice. What stays
unmatched ages in `recon.deposits`.

Issue 17: the flow reads what it needs first (`SettlementFlow.facts`: the billing account,
its company and token, the deposit on the other side), then decides without the store
(`SettlementFlow.decide`, a `flows.decision.Decision`), and `flows.decision.apply` writes
the decision at the worker's `now`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Final

from isthmus.config import Mappings, SettlementPolicy
from isthmus.flows import mapping_holds
from isthmus.flows.accounts import live_token
from isthmus.flows.decision import Decision, FacilityHold, Resolve, apply, hold, post
from isthmus.flows.outcome import APPLIED, HELD, Outcome
from isthmus.ledger.errors import ClosedPeriod, LedgerRefusal
from isthmus.ledger.journal import JournalEntry, Posting
from isthmus.ledger.periods import FiscalCalendar
from isthmus.ledger.settlement import (
    SettlementAccounts,
    bank_match_entry,
    card_payment_entry,
    processor_deposit_entry,
)
from isthmus.model import BankDeposited, PatientPaymentSettled, ProcessorDeposited, RemittancePaid
from isthmus.model.envelope import Envelope
from isthmus.store.ports import BillingAccount, DepositRecord, Tx

QUEUES: Final = {
    "unapplied_cash": "cash-posting",
    "closed_period": "finance-close",
    "unpostable_settlement": "cash-posting",
}
EFT: Final = "eft"
PROCESSOR: Final = "processor"
BANK: Final = "bank"
RECORDED: Final = "recorded"  # the resolution of an event recorded for matching


def reference_of(text: str) -> str:
    """A deposit reference as matched: trimmed, upper case (banks shout)."""
    return text.strip().upper()


@dataclass(frozen=True, slots=True)
class Facts:
    """What the store knows that a settlement decision needs."""

    account: BillingAccount | None = None  # a card payment: the account it pays
    company: str = ""  # that account's facility's ERP company ("" when unmapped)
    token: str = ""  # that account's live A/R token
    counterpart: DepositRecord | None = None  # a deposit: the open one it matches


@dataclass(frozen=True, slots=True)
class RecordDeposit:
    """Record a deposit for matching; False when its event was recorded before."""

    record: DepositRecord

    def write(self, tx: Tx, now: float) -> bool:
        return tx.record_deposit(self.record)


@dataclass(frozen=True, slots=True)
class MatchDeposits:
    """Match two deposit records, naming the entry that posted the match ("" for none)."""

    mine: str
    other: str
    entry_key: str = ""

    def write(self, tx: Tx, now: float) -> bool:
        tx.match_deposits(self.mine, self.other, self.entry_key)
        return True


def deposit_of(env: Envelope) -> DepositRecord | None:
    """The record a deposit event is matched by (None for a card payment)."""
    ev = env.payload
    if isinstance(ev, ProcessorDeposited):
        return DepositRecord(
            env.event_id,
            PROCESSOR,
            reference_of(ev.deposit_id),
            ev.net,
            ev.currency,
            ev.deposit_date,
            ev.processor,
            env.correlation_id,
        )
    if isinstance(ev, RemittancePaid):
        return DepositRecord(
            env.event_id,
            EFT,
            reference_of(ev.trace_number),
            ev.amount,
            ev.currency,
            ev.payment_date or env.occurred_at.date(),
            ev.payer_id or ev.payer_name,
            env.correlation_id,
        )
    if isinstance(ev, BankDeposited):
        return DepositRecord(
            env.event_id,
            BANK,
            reference_of(ev.reference),
            ev.amount,
            ev.currency,
            ev.deposit_date,
            ev.method,
            env.correlation_id,
        )
    return None


def matches(mine: DepositRecord) -> tuple[str, ...]:
    """The sides a record matches: a bank credit an 835 payment or a processor payout;
    those two, a bank credit."""
    return (EFT, PROCESSOR) if mine.side == BANK else (BANK,)


def counterpart(open_records: list[DepositRecord], mine: DepositRecord) -> DepositRecord | None:
    """The oldest unmatched record of another side with the same reference, amount and
    currency."""
    sides = matches(mine)
    return next(
        (
            d
            for d in open_records
            if d.side in sides
            and d.amount == mine.amount
            and d.currency == mine.currency
            and d.event_id != mine.event_id
        ),
        None,
    )


@dataclass(frozen=True)
class SettlementFlow:
    """The settlement flows with this site's accounts, company and calendar."""

    secret: str
    mappings: Mappings
    policy: SettlementPolicy
    calendar: FiscalCalendar
    ar_account: str = "1200"

    @property
    def accounts(self) -> SettlementAccounts:
        p = self.policy
        return SettlementAccounts(
            ar=self.ar_account,
            bank=p.bank_account,
            card_clearing=p.card_clearing_account,
            cash_clearing=p.cash_clearing_account,
            processor_fees=p.fees_account,
        )

    def handle(self, tx: Tx, env: Envelope, now: float) -> Outcome:
        """Read the facts, decide, write the decision at `now`."""
        return apply(tx, self.decide(env, self.facts(tx, env)), now)

    # -- the reads ---------------------------------------------------------------------
    def facts(self, tx: Tx, env: Envelope) -> Facts:
        ev = env.payload
        if isinstance(ev, PatientPaymentSettled):
            acct = tx.get_billing_account(ev.account_number)
            if acct is None:
                return Facts()
            company = mapping_holds.company(tx, self.mappings, acct.facility)
            if not company:
                return Facts(acct)
            return Facts(acct, company, live_token(tx, self.secret, acct.patient_key))
        mine = deposit_of(env)
        if mine is None:
            raise TypeError(f"not a settlement event: {type(ev).__name__}")
        return Facts(counterpart=counterpart(tx.open_deposits(mine.reference), mine))

    # -- the decisions (no store) ------------------------------------------------------
    def decide(self, env: Envelope, facts: Facts) -> Decision:
        ev = env.payload
        if isinstance(ev, PatientPaymentSettled):
            return self.card_payment(env, ev, facts)
        mine = deposit_of(env)
        if mine is None:
            raise TypeError(f"not a settlement event: {type(ev).__name__}")
        if isinstance(ev, ProcessorDeposited):
            return self.processor_deposit(env, ev, mine, facts.counterpart)
        if isinstance(ev, RemittancePaid):
            return self._settle(env, mine, facts.counterpart, facts.counterpart)
        return self._settle(env, mine, facts.counterpart, mine)

    def _posting(self, env: Envelope, when: date, memo: str, key: str = "") -> Posting:
        where = self.calendar.assign(when)
        return Posting(
            entry_key=key or env.event_id,
            posted_on=where.posted_on,
            period=where.period,
            channel=env.source.channel,
            memo=memo,
            correlation_id=env.correlation_id,
            causation_id=env.event_id,
            moved_from=where.moved_from,
        )

    def card_payment(self, env: Envelope, ev: PatientPaymentSettled, facts: Facts) -> Decision:
        acct = facts.account
        if acct is None:
            return _hold(
                env,
                "unapplied_cash",
                f"card {ev.kind} {ev.gross} "
                f"{ev.currency} ({ev.processor} {ev.transaction_id}, deposit "
                f"{ev.deposit_id}) matches no billing account {ev.account_number!r}; "
                "resubmit once it is known",
            )
        if not facts.company:
            return Decision(HELD, writes=(FacilityHold(env, acct.facility, ev.gross, ev.currency),))
        try:
            entry = card_payment_entry(
                gross=ev.gross,
                currency=ev.currency,
                accounts=self.accounts,
                company=facts.company,
                account_token=facts.token,
                posting=self._posting(
                    env,
                    ev.transaction_date,
                    f"card {ev.kind} {ev.processor} {ev.transaction_id} deposit {ev.deposit_id}",
                ),
            )
        except ClosedPeriod as exc:
            return _hold(env, "closed_period", str(exc))
        except LedgerRefusal as exc:
            return _hold(env, "unpostable_settlement", str(exc))
        return _post(env, entry)

    def processor_deposit(
        self, env: Envelope, ev: ProcessorDeposited, mine: DepositRecord, bank: DepositRecord | None
    ) -> Decision:
        try:
            entry = processor_deposit_entry(
                gross=ev.gross,
                fee=ev.fee,
                net=ev.net,
                currency=ev.currency,
                accounts=self.accounts,
                company=self.policy.company,
                posting=self._posting(
                    env,
                    ev.deposit_date,
                    f"{ev.processor} deposit {ev.deposit_id}: {ev.transactions} transaction(s)",
                ),
            )
        except ClosedPeriod as exc:
            return _hold(env, "closed_period", str(exc))
        except LedgerRefusal as exc:
            return _hold(env, "unpostable_settlement", str(exc))
        matched = () if bank is None else (MatchDeposits(mine.event_id, bank.event_id),)
        return _post(env, entry)._replace(claim=RecordDeposit(mine), writes=matched)

    def _settle(
        self,
        env: Envelope,
        mine: DepositRecord,
        other: DepositRecord | None,
        bank: DepositRecord | None,
    ) -> Decision:
        """Record `mine`; when `other` matches it and is an 835 payment, post the bank
        side (keyed by the bank record) on the bank's date."""
        entry: JournalEntry | None = None
        eft = (
            other if other is not None and other.side == EFT else mine if mine.side == EFT else None
        )
        if other is not None and bank is not None and eft is not None:
            try:
                entry = bank_match_entry(
                    amount=bank.amount,
                    currency=bank.currency,
                    accounts=self.accounts,
                    company=self.policy.company,
                    posting=self._posting(
                        env,
                        bank.on_date,
                        f"bank deposit {bank.reference} matched to 835 payment (payer {eft.party})",
                        key=f"{bank.event_id}/match",
                    ),
                )
            except ClosedPeriod as exc:
                return _hold(env, "closed_period", str(exc))
            except LedgerRefusal as exc:
                return _hold(env, "unpostable_settlement", str(exc))
        claim = RecordDeposit(mine)
        if other is None:
            return Decision(APPLIED, claim=claim, resolve=(Resolve(env.event_id, RECORDED),))
        match = MatchDeposits(mine.event_id, other.event_id, entry.entry_key if entry else "")
        return _post(env, entry)._replace(claim=claim, writes=(match,))


def _hold(env: Envelope, kind: str, detail: str) -> Decision:
    return hold(env, kind=kind, queue=QUEUES[kind], detail=detail)


def _post(env: Envelope, entry: JournalEntry | None) -> Decision:
    """Post `entry`; none (recorded for matching, nothing to post): resolved as recorded."""
    return post(env, entry, nothing=RECORDED)
