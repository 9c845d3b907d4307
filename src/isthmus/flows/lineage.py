"""Where the A/R of a billing account and of a visit sits, and what each number became.

The ledger's A/R dimension is the patient account token (`flows.accounts`): one per
patient, not one per billing account (PID-18) or visit (PV1-19). To move one account or one
visit to another patient (ADT A44, A45, `flows.merges`) the hub must know how much of a
token's A/R belongs to it. So every posting that names an account or a visit (an FT1 line,
an 835 claim payment matched to a billing account, a card payment) is attributed here: the
A/R lines it posted on its patient's token, per company and currency (`books` before the
flow, a `Recorder` around its transaction, `settle` after it), kept in one flow-state
record per billing account (`lineage:account:<PID-18>`) as cells by visit and patient.

The same records keep what the merges wrote: the number an account or a visit became
(`moved_to`) and the patient a move gave it (`owner`). `follow` applies them to an FT1 line
that still names the old identifiers, so a charge sent late for a merged or moved account
lands on the survivor. Nothing here posts; the records only say where money is.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, cast

import msgspec

from isthmus.ledger.journal import JournalEntry
from isthmus.model import Charge, PatientRef
from isthmus.store.ports import Tx


class Cell(msgspec.Struct, frozen=True):
    """What a visit of an account holds on one patient's token in one receivable account
    (A/R, patient A/R) of one company."""

    visit: str
    patient_key: str
    ledger_account: str
    company: str
    currency: str
    amount: Decimal


class AccountLineage(msgspec.Struct):
    """A billing account's lineage record: where it moved, its owner, its A/R cells and the
    visits a move put on it."""

    moved_to: str = ""  # the billing account this one was merged into or renumbered to
    owner: str = ""  # the patient key a move (A41, A44, A49) gave it
    cells: list[Cell] = msgspec.field(default_factory=list)
    visits: list[str] = msgspec.field(default_factory=list)  # visits a move put on it


class VisitLineage(msgspec.Struct):
    """A visit's lineage record: where it moved, its owner, its account, where its cells are."""

    moved_to: str = ""  # the visit this one was merged into or renumbered to (A42, A50)
    owner: str = ""  # the patient key a move gave it
    account: str = ""  # the billing account a move (A45) put it on
    accounts: list[str] = msgspec.field(default_factory=list)  # where its cells are


_enc = msgspec.json.Encoder(decimal_format="string")
_account_dec = msgspec.json.Decoder(AccountLineage)
_visit_dec = msgspec.json.Decoder(VisitLineage)


def load_account(tx: Tx, number: str) -> AccountLineage:
    """A billing account's lineage record (an empty one when none is stored)."""
    body = tx.load_state(f"lineage:account:{number}")
    return _account_dec.decode(body) if body else AccountLineage()


def save_account(tx: Tx, number: str, state: AccountLineage) -> None:
    """Store a billing account's lineage record."""
    tx.save_state(f"lineage:account:{number}", _enc.encode(state))


def load_visit(tx: Tx, visit: str) -> VisitLineage:
    """A visit's lineage record (an empty one when none is stored)."""
    body = tx.load_state(f"lineage:visit:{visit}")
    return _visit_dec.decode(body) if body else VisitLineage()


def save_visit(tx: Tx, visit: str, state: VisitLineage) -> None:
    """Store a visit's lineage record."""
    tx.save_state(f"lineage:visit:{visit}", _enc.encode(state))


def _final_account(tx: Tx, number: str) -> tuple[str, AccountLineage]:
    state = load_account(tx, number)
    if not state.moved_to:  # never merged or renumbered: the common case
        return number, state
    seen = {number}
    while state.moved_to and state.moved_to not in seen:
        number = state.moved_to
        seen.add(number)
        state = load_account(tx, number)
    return number, state


def _final_visit(tx: Tx, visit: str) -> tuple[str, VisitLineage]:
    state = load_visit(tx, visit)
    if not state.moved_to:
        return visit, state
    seen = {visit}
    while state.moved_to and state.moved_to not in seen:
        visit = state.moved_to
        seen.add(visit)
        state = load_visit(tx, visit)
    return visit, state


def final_account(tx: Tx, number: str) -> str:
    """The account a number stands for now, following merges and renumbers (cycle-safe)."""
    return _final_account(tx, number)[0] if number else ""


def final_visit(tx: Tx, visit: str) -> str:
    """The visit a number stands for now, following merges and renumbers (cycle-safe)."""
    return _final_visit(tx, visit)[0] if visit else ""


def live_key(tx: Tx, key: str) -> str:
    """The patient key an account lives under now, following A40/A47 merges."""
    seen = {key}
    while True:
        p = tx.get_patient(key)
        if p is None or not p.merged_into or p.merged_into in seen:
            return key
        key = p.merged_into
        seen.add(key)


@dataclass
class Books:
    """The lineage records of the account and visit a posting names, read once before the
    flow runs and written once after it (`settle`)."""

    account: str
    visit: str
    patient_key: str
    held: AccountLineage
    trail: VisitLineage | None


def books(tx: Tx, *, account: str, visit: str, patient_key: str) -> Books | None:
    """The records of what a posting names (None when it names no account or visit)."""
    if not account and not visit:
        return None
    # the account's record first, then the visit's, as `flows.merges` takes them (PostgreSQL
    # locks each record name until the commit: one order, no deadlock)
    chain = _final_account(tx, account) if account else None
    trail = _final_visit(tx, visit) if visit else None
    number, held = chain or _final_account(tx, unbilled(trail[0] if trail else ""))
    return Books(number, trail[0] if trail else "", patient_key, held, trail[1] if trail else None)


def unbilled(visit: str) -> str:
    """The holder of a visit's cells when its lines name no billing account: `|<visit>`
    ("|" is the HL7 field separator, so no PID-18 can be this); one per visit, so no
    record is shared by every account-less line of the site."""
    return "|" + visit


def is_account(holder: str) -> bool:
    """True for a billing account number, False for an `unbilled` visit holder."""
    return bool(holder) and not holder.startswith("|")


def follow(tx: Tx, ev: Charge) -> tuple[Charge, Books | None]:
    """The FT1 line as the merges have it: its account and visit numbers as they are now,
    its patient the one a move gave them (the visit's move wins over the account's)."""
    found = books(tx, account=ev.account_number, visit=ev.visit_number, patient_key=ev.patient.key)
    if found is None:
        return ev, None
    owner = found.trail.owner if found.trail is not None else ""
    if found.trail is not None and found.trail.account and found.trail.account != found.account:
        found.account, found.held = _final_account(tx, found.trail.account)
    owner = owner or found.held.owner
    patient = ev.patient
    if owner and live_key(tx, owner) != live_key(tx, ev.patient.key):
        p = tx.get_patient(owner)
        if p is not None:
            patient = PatientRef(mrn=p.mrn, authority=p.authority)
            found.patient_key = p.key
    account = found.account if is_account(found.account) else ev.account_number
    if (account, found.visit, patient) == (ev.account_number, ev.visit_number, ev.patient):
        return ev, found
    return msgspec.structs.replace(
        ev, account_number=account, visit_number=found.visit, patient=patient
    ), found


# -- attribution ---------------------------------------------------------------------------


def _resolved(tx: object) -> dict[str, Any] | None:
    """A transaction's methods as a Recorder found them, kept on the transaction for the
    next Recorder of it (one per event of a batch): each would otherwise look them up
    again. None for a transaction object without an instance dict."""
    attrs = getattr(tx, "__dict__", None)
    return None if attrs is None else attrs.setdefault("_lineage_resolved", {})


class Recorder:
    """The caller's transaction, noting each journal entry the flow inserts, so `settle`
    attributes exactly what was posted without reading the journal back."""

    def __init__(self, tx: Tx) -> None:
        self._tx = tx
        self.posted: list[JournalEntry] = []
        self._known = _resolved(tx)
        if self._known:  # the methods an earlier event of this transaction resolved
            self.__dict__.update(self._known)

    def __getattr__(self, name: str) -> Any:
        found = getattr(self._tx, name)
        setattr(self, name, found)  # kept: a flow asks for the same few methods again
        if self._known is not None:
            self._known[name] = found
        return found

    def insert_entry(self, entry: JournalEntry) -> bool:
        inserted = self._tx.insert_entry(entry)
        if inserted:
            self.posted.append(entry)
        return inserted

    @property
    def tx(self) -> Tx:
        return cast(Tx, self)


def add_cell(cells: list[Cell], cell: Cell) -> None:
    """Fold `cell` into `cells` (one cell per visit, patient, ledger account, company and
    currency)."""
    for i, c in enumerate(cells):
        if (c.visit, c.patient_key, c.ledger_account, c.company, c.currency) == (
            cell.visit,
            cell.patient_key,
            cell.ledger_account,
            cell.company,
            cell.currency,
        ):
            total = c.amount + cell.amount
            if total:
                cells[i] = msgspec.structs.replace(c, amount=total)
            else:
                del cells[i]
            return
    if cell.amount:
        cells.append(cell)


def settle(
    tx: Tx, receivables: Collection[str], found: Books | None, posted: list[JournalEntry]
) -> None:
    """Attribute the lines the flow posted to a patient token in a receivable account (A/R,
    patient A/R) to the billing account and visit the posting named, under the patient the
    posting was for (resolved through merges when a move reads the cells)."""
    if found is None or not posted:
        return
    changed: dict[tuple[str, str, str], Decimal] = {}
    for entry in posted:
        for ln in entry.lines:
            if ln.account in receivables and ln.dims.account_token:
                k = (ln.account, ln.dims.company, ln.currency)
                amount = ln.debit - ln.credit
                changed[k] = changed[k] + amount if k in changed else amount
    if not any(changed.values()):
        return
    for (account, company, currency), amount in (
        sorted(changed.items()) if len(changed) > 1 else changed.items()
    ):
        add_cell(
            found.held.cells,
            Cell(found.visit, found.patient_key, account, company, currency, amount),
        )
    save_account(tx, found.account, found.held)
    if found.trail is not None and found.account not in found.trail.accounts:
        found.trail.accounts.append(found.account)
        save_visit(tx, found.visit, found.trail)


def balance(cells: list[Cell], visit: str | None = None) -> dict[str, Decimal]:
    """Currency -> A/R attributed to the cells (of one visit when named)."""
    out: dict[str, Decimal] = {}
    for c in cells:
        if visit is None or c.visit == visit:
            out[c.currency] = out.get(c.currency, Decimal(0)) + c.amount
    return {k: v for k, v in out.items() if v}
