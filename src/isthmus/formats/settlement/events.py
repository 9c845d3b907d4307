"""Settlement and bank deposit files -> finance events, with ids and business keys.

Ids come from what the processor and the bank name, not from the file, so a transaction
sent again in another file (a re-export, an overlapping statement) is the same event and
never posts twice:

* ``settlement/<processor>/<deposit_id>/<transaction_id>``: one
  :class:`~isthmus.model.PatientPaymentSettled` per transaction, keyed on its billing
  account (``remit|<account>``, the key of the account's 835 claim payments);
* ``settlement/<processor>/<deposit_id>``: one :class:`~isthmus.model.ProcessorDeposited`
  per deposit, keyed ``deposit|<deposit_id>``;
* ``bank/<date>/<REFERENCE>/<amount>`` (the reference in upper case): one
  :class:`~isthmus.model.BankDeposited` per bank credit, keyed ``deposit|<reference>``
  like the 835 payment or processor deposit it matches (`formats.x12.events.deposit_key`).

The business key (`flows.identity`: one fact, kept once) is what the business names:

* a card payment: ``card|<processor>|<transaction_id>`` (processor ``-`` when the file has
  no processor column), not the deposit: the same transaction listed again under another
  deposit id is the same payment (a conflict work item, since its deposit differs);
* a processor deposit: ``payout|<processor>|<deposit_id>``;
* a bank credit: ``bank|<bank_account>|<date>|<REFERENCE>|<amount>``, the natural key of
  a credit on a statement (a bank gives each credit once: `formats.settlement.bank`).

Pure, no I/O.
"""

from __future__ import annotations

from isthmus.formats.settlement.bank import BankFile
from isthmus.formats.settlement.processor import SettlementFile
from isthmus.formats.x12.events import deposit_key, remit_key
from isthmus.model import BankDeposited, KeyedEvent, PatientPaymentSettled, ProcessorDeposited


def card_key(processor: str, transaction_id: str) -> str:
    """The business key of a card payment: processor + the processor's transaction id."""
    return f"card|{processor or '-'}|{transaction_id}"


def settlement_events(sf: SettlementFile) -> list[KeyedEvent]:
    """Events of a settlement file: one PatientPaymentSettled per transaction and one
    ProcessorDeposited per deposit, with ids and business keys as the module docstring says."""
    out: list[KeyedEvent] = []
    for d in sf.deposits:
        prefix = f"settlement/{d.processor or '-'}/{d.deposit_id}"
        for t in d.transactions:
            out.append(
                KeyedEvent(
                    f"{prefix}/{t.transaction_id}",
                    remit_key(t.account_number),
                    PatientPaymentSettled(
                        processor=d.processor,
                        deposit_id=d.deposit_id,
                        transaction_id=t.transaction_id,
                        kind=t.kind,
                        account_number=t.account_number,
                        transaction_date=t.transaction_date,
                        deposit_date=d.deposit_date,
                        gross=t.gross,
                        fee=t.fee,
                        net=t.net,
                        currency=d.currency,
                    ),
                    card_key(d.processor, t.transaction_id),
                )
            )
        out.append(
            KeyedEvent(
                prefix,
                deposit_key(d.deposit_id),
                ProcessorDeposited(
                    processor=d.processor,
                    deposit_id=d.deposit_id,
                    deposit_date=d.deposit_date,
                    gross=d.gross,
                    fee=d.fee,
                    net=d.net,
                    currency=d.currency,
                    transactions=len(d.transactions),
                ),
                f"payout|{d.processor or '-'}|{d.deposit_id}",
            )
        )
    return out


def bank_events(bf: BankFile) -> list[KeyedEvent]:
    """Events of a bank deposit file: one BankDeposited per credit, keyed on its reference
    like the 835 payment or processor deposit it matches."""
    out: list[KeyedEvent] = []
    for b in bf.deposits:
        on, ref = b.deposit_date.isoformat(), b.reference.strip().upper()
        out.append(
            KeyedEvent(
                f"bank/{on}/{ref}/{b.amount}",
                deposit_key(b.reference),
                BankDeposited(
                    deposit_date=b.deposit_date,
                    amount=b.amount,
                    reference=b.reference,
                    method=b.method,
                    currency=b.currency,
                    bank_account=b.bank_account,
                ),
                f"bank|{b.bank_account.strip() or '-'}|{on}|{ref}|{b.amount}",
            )
        )
    return out
