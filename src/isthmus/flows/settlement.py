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
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import date
from typing import Final

from isthmus.config import Mappings, SettlementPolicy
from isthmus.flows import mapping_holds, posting
from isthmus.flows.accounts import live_token
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
from isthmus.store.ports import DepositRecord, Tx

QUEUES: Final = {
    "unapplied_cash": "cash-posting",
    "closed_period": "finance-close",
    "unpostable_settlement": "cash-posting",
}
EFT: Final = "eft"
PROCESSOR: Final = "processor"
BANK: Final = "bank"


def reference_of(text: str) -> str:
    """A deposit reference as matched: trimmed, upper case (banks shout)."""
    return text.strip().upper()


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
        return SettlementAccounts(ar=self.ar_account, bank=p.bank_account,
                                  card_clearing=p.card_clearing_account,
                                  cash_clearing=p.cash_clearing_account,
                                  processor_fees=p.fees_account)

    def handle(self, tx: Tx, env: Envelope) -> str:
        ev = env.payload
        if isinstance(ev, PatientPaymentSettled):
            return self.card_payment(tx, env, ev)
        if isinstance(ev, ProcessorDeposited):
            return self.processor_deposit(tx, env, ev)
        if isinstance(ev, RemittancePaid):
            return self.remittance_paid(tx, env, ev)
        if isinstance(ev, BankDeposited):
            return self.bank_deposit(tx, env, ev)
        raise TypeError(f"not a settlement event: {type(ev).__name__}")

    # -- steps -------------------------------------------------------------------------
    def _posting(self, env: Envelope, when: date, memo: str, key: str = "") -> Posting:
        where = self.calendar.assign(when)
        return Posting(entry_key=key or env.event_id, posted_on=where.posted_on,
                       period=where.period, channel=env.source.channel, memo=memo,
                       correlation_id=env.correlation_id, causation_id=env.event_id,
                       moved_from=where.moved_from)

    def card_payment(self, tx: Tx, env: Envelope, ev: PatientPaymentSettled) -> str:
        acct = tx.get_billing_account(ev.account_number)
        if acct is None:
            return _hold(tx, env, "unapplied_cash", f"card {ev.kind} {ev.gross} "
                         f"{ev.currency} ({ev.processor} {ev.transaction_id}, deposit "
                         f"{ev.deposit_id}) matches no billing account {ev.account_number!r}; "
                         "resubmit once it is known")
        company = mapping_holds.company(tx, self.mappings, acct.facility)
        if not company:
            return mapping_holds.hold_facility(tx, env, acct.facility, amount=ev.gross,
                                               currency=ev.currency, now=time.time())
        try:
            entry = card_payment_entry(
                gross=ev.gross, currency=ev.currency, accounts=self.accounts,
                company=company, account_token=live_token(tx, self.secret, acct.patient_key),
                posting=self._posting(env, ev.transaction_date, f"card {ev.kind} "
                                      f"{ev.processor} {ev.transaction_id} deposit "
                                      f"{ev.deposit_id}"))
        except ClosedPeriod as exc:
            return _hold(tx, env, "closed_period", str(exc))
        except LedgerRefusal as exc:
            return _hold(tx, env, "unpostable_settlement", str(exc))
        return _post(tx, env, entry)

    def processor_deposit(self, tx: Tx, env: Envelope, ev: ProcessorDeposited) -> str:
        try:
            entry = processor_deposit_entry(
                gross=ev.gross, fee=ev.fee, net=ev.net, currency=ev.currency,
                accounts=self.accounts, company=self.policy.company,
                posting=self._posting(env, ev.deposit_date, f"{ev.processor} deposit "
                                      f"{ev.deposit_id}: {ev.transactions} transaction(s)"))
        except ClosedPeriod as exc:
            return _hold(tx, env, "closed_period", str(exc))
        except LedgerRefusal as exc:
            return _hold(tx, env, "unpostable_settlement", str(exc))
        mine = DepositRecord(env.event_id, PROCESSOR, reference_of(ev.deposit_id), ev.net,
                             ev.currency, ev.deposit_date, ev.processor, env.correlation_id)
        if not tx.record_deposit(mine):
            return "duplicate"
        bank = _counterpart(tx, mine, (BANK,))
        if bank is not None:
            tx.match_deposits(mine.event_id, bank.event_id, "")
        return _post(tx, env, entry)

    def remittance_paid(self, tx: Tx, env: Envelope, ev: RemittancePaid) -> str:
        mine = DepositRecord(env.event_id, EFT, reference_of(ev.trace_number), ev.amount,
                             ev.currency, ev.payment_date or env.occurred_at.date(),
                             ev.payer_id or ev.payer_name, env.correlation_id)
        bank = _counterpart(tx, mine, (BANK,))
        return self._settle(tx, env, mine, bank, bank)

    def bank_deposit(self, tx: Tx, env: Envelope, ev: BankDeposited) -> str:
        mine = DepositRecord(env.event_id, BANK, reference_of(ev.reference), ev.amount,
                             ev.currency, ev.deposit_date, ev.method, env.correlation_id)
        other = _counterpart(tx, mine, (EFT, PROCESSOR))
        return self._settle(tx, env, mine, other, mine)

    def _settle(self, tx: Tx, env: Envelope, mine: DepositRecord,
                other: DepositRecord | None, bank: DepositRecord | None) -> str:
        """Record `mine`; when `other` matches it and is an 835 payment, post the bank
        side (keyed by the bank record) on the bank's date."""
        entry: JournalEntry | None = None
        eft = other if other is not None and other.side == EFT else \
            mine if mine.side == EFT else None
        if other is not None and bank is not None and eft is not None:
            try:
                entry = bank_match_entry(
                    amount=bank.amount, currency=bank.currency, accounts=self.accounts,
                    company=self.policy.company,
                    posting=self._posting(env, bank.on_date, f"bank deposit {bank.reference} "
                                          f"matched to 835 payment (payer {eft.party})",
                                          key=f"{bank.event_id}/match"))
            except ClosedPeriod as exc:
                return _hold(tx, env, "closed_period", str(exc))
            except LedgerRefusal as exc:
                return _hold(tx, env, "unpostable_settlement", str(exc))
        if not tx.record_deposit(mine):
            return "duplicate"
        if other is None:
            tx.close_work_items(env.event_id, "recorded", time.time())
            return "applied"
        tx.match_deposits(mine.event_id, other.event_id, entry.entry_key if entry else "")
        return _post(tx, env, entry)


def _counterpart(tx: Tx, mine: DepositRecord, sides: tuple[str, ...]) -> DepositRecord | None:
    """The oldest unmatched record of another side with the same reference, amount and
    currency."""
    return next((d for d in tx.open_deposits(mine.reference)
                 if d.side in sides and d.amount == mine.amount
                 and d.currency == mine.currency and d.event_id != mine.event_id), None)


def _hold(tx: Tx, env: Envelope, kind: str, detail: str) -> str:
    return posting.hold(tx, env, kind=kind, queue=QUEUES[kind], detail=detail)


def _post(tx: Tx, env: Envelope, entry: JournalEntry | None) -> str:
    if entry is None:  # recorded for matching, nothing to post
        tx.close_work_items(env.event_id, "recorded", time.time())
        return "applied"
    return posting.post(tx, env, entry)
