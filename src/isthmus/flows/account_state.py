"""BAR account events -> the billing account's flow state: open, ended or purged, coverage.

Split from `flows.visits` (issue 17, the 400-line rule). Per billing account
(`account:<PID-18>`) the hub keeps the coverage the latest IN1 states (payer, plan, plan
type, PV1-20 financial class) and whether BAR P06 ended the account or P02 purged it: a
later charge to it is held (`closed_status`, `flows.transactions`); a BAR P01 / P05 opens
it again (`reopen`). When `flows.merges` merges or renumbers an account (A41, A49), a
survivor the hub knows nothing of takes the coverage of the account merged into it
(`merged_account`).

Issue 17: `decide_coverage`, `decide_close` and `decide_reopen` decide without the store on
the facts read (the account's state, whether the store has the account), and
`flows.decision.apply` writes the decision.
"""

from __future__ import annotations

from dataclasses import dataclass

import msgspec

from isthmus.flows.accounts import resolve
from isthmus.flows.decision import Decision, SaveState, apply
from isthmus.flows.outcome import APPLIED, Outcome, label
from isthmus.model.events import BillingAccountClosed, Coverage, CoverageRecorded
from isthmus.store.ports import Tx


class AccountState(msgspec.Struct):
    """A billing account's flow state: open, ended or purged, and its coverage plans."""

    status: str = "open"  # open | ended | purged
    plans: list[Coverage] = msgspec.field(default_factory=list)
    seen: list[str] = msgspec.field(default_factory=list)


_account_dec = msgspec.json.Decoder(AccountState)
_enc = msgspec.json.Encoder()


def state_name(number: str) -> str:
    """The flow-state record of a billing account."""
    return f"account:{number}"


def load_account(tx: Tx, number: str) -> AccountState:
    """A billing account's flow state (a new one when none is stored)."""
    body = tx.load_state(state_name(number))
    return _account_dec.decode(body) if body else AccountState()


def save(number: str, state: AccountState) -> SaveState:
    """The write that keeps `state` as the account's."""
    return SaveState(state_name(number), _enc.encode(state))


@dataclass(frozen=True, slots=True)
class PutBillingAccount:
    """Record a billing account under its patient and facility (`Tx.put_billing_account`)."""

    number: str
    patient_key: str
    facility: str

    def write(self, tx: Tx, now: float) -> bool:
        tx.put_billing_account(self.number, self.patient_key, self.facility)
        return True


def decide_coverage(ev: CoverageRecorded, state: AccountState) -> Decision:
    """IN1: the account's payers and plans, as the latest message states them."""
    kept = msgspec.structs.replace(state, plans=list(ev.plans))
    return Decision(APPLIED, writes=(save(ev.account_number, kept),))


def coverage(tx: Tx, ev: CoverageRecorded, now: float) -> Outcome:
    """`decide_coverage` on the account's state, written at `now`."""
    return apply(tx, decide_coverage(ev, load_account(tx, ev.account_number)), now)


def decide_close(
    ev: BillingAccountClosed, patient_key: str, known: bool, state: AccountState
) -> Decision:
    """P06 end account / P02 purge: later charges to it are held (`closed_status`); an
    account the store does not know (`known` False) is recorded under `patient_key`."""
    kept = msgspec.structs.replace(state, status="purged" if ev.purged else "ended")
    opened = () if known else (PutBillingAccount(ev.account_number, patient_key, ""),)
    return Decision(APPLIED, writes=(*opened, save(ev.account_number, kept)))


def close_account(tx: Tx, secret: str, ev: BillingAccountClosed, now: float = 0.0) -> str:
    """`decide_close` on what the store knows of the account, written at `now`."""
    p = resolve(tx, secret, ev.patient)
    known = tx.get_billing_account(ev.account_number) is not None
    decision = decide_close(ev, p.key, known, load_account(tx, ev.account_number))
    return label(apply(tx, decision, now))


def decide_reopen(account_number: str, state: AccountState | None) -> Decision:
    """BAR P01 / P05 for an account P06 ended or P02 purged: it is open again. `state`:
    the account's (None: the message names no account); an open one stays as it is."""
    if state is None or state.status == "open":
        return Decision(APPLIED)
    return Decision(
        APPLIED, writes=(save(account_number, msgspec.structs.replace(state, status="open")),)
    )


def reopen(tx: Tx, account_number: str, now: float) -> Outcome:
    """`decide_reopen` on the account's state, written at `now`."""
    state = load_account(tx, account_number) if account_number else None
    return apply(tx, decide_reopen(account_number, state), now)


def closed_status(tx: Tx, account_number: str) -> str:
    """ "ended" or "purged" when BAR P06 / P02 closed the account, else ""."""
    if not account_number:
        return ""
    status = load_account(tx, account_number).status
    return "" if status == "open" else status


def merged_account(was: AccountState, survivor_known: bool) -> AccountState | None:
    """A41 / A49 (`flows.merges`): the state of a survivor account the hub knows nothing of
    (`survivor_known` False: it takes the coverage of the account merged into it, `was`);
    None for a known one, which keeps its own coverage and status."""
    return None if survivor_known else AccountState(plans=list(was.plans))
