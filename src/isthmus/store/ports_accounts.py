"""The accounts-and-claims aggregate's port: patients, encounters, billing accounts, charges,
the claim register and claim life (issue 20), and deposit matching. Each register is keyed
on a business key: recording one twice changes nothing and reports False.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Protocol

import msgspec


class Patient(msgspec.Struct, frozen=True):
    """A patient as the hub knows it: the identity key (`authority|mrn`, PID-3.4 and
    PID-3.1), its account token, demographics, and the patient it was merged into (ADT A40).

    A struct, as `ChargeRecord`: read or made for every charge on the worker's path, where
    a frozen dataclass's field-by-field `__init__` cost ten times as much."""

    key: str
    mrn: str
    authority: str
    token: str
    family_name: str = ""
    given_name: str = ""
    birth_date: str = ""
    sex: str = ""
    merged_into: str = ""


class ChargeRecord(msgspec.Struct, frozen=True, kw_only=True):
    """A charge posted from an HL7 DFT (FT1): its transaction id and type (FT1-2, FT1-6),
    charge code, amount, service date, the patient, and the journal entry it made."""

    event_id: str
    patient_key: str
    account_token: str
    transaction_id: str
    transaction_type: str
    charge_code: str
    amount: Decimal
    currency: str
    service_date: date
    entry_key: str


@dataclass(frozen=True, slots=True)
class BillingAccount:
    """A billing account (PID-18) and the patient and facility it belongs to."""

    account_number: str
    patient_key: str
    facility: str


@dataclass(frozen=True, slots=True)
class ClaimRecord:
    """One submitted claim (837 CLM) in the claim register, keyed by its event id."""

    event_id: str
    patient_control_number: str  # CLM01
    payer_id: str
    payer_claim_id: str  # REF*F8, when the claim corrects an earlier one
    total_charge: Decimal
    currency: str


@dataclass(frozen=True, slots=True)
class DepositRecord:
    """One side of deposit matching, keyed by its event id: `side` is "eft" (an 835
    payment), "processor" (a processor deposit) or "bank" (a credit on the bank account).
    `reference` is normalized (trimmed, upper case); `matched_with` names the event id of
    the other side once matched, `entry_key` the journal entry the match posted (if any)."""

    event_id: str
    side: str
    reference: str
    amount: Decimal
    currency: str
    on_date: date
    party: str  # payer id, processor, or the bank's deposit type
    correlation_id: str
    matched_with: str = ""
    entry_key: str = ""


@dataclass(frozen=True, slots=True)
class ClaimState:
    """Where one claim stands in its life (issue 20, flows/claim_life.py), keyed by its
    patient control number (CLM01); `payer_claim_id` is the payer's (CLP07, 277 REF*1K).

    `controls` is "ISA13/GS06/ST02" of the 837 it last left in (what a 999 names);
    `body` the claim's segments as sent (JSON), for a 276 and a corrected resubmission.
    Money is Decimal in `currency`. No PHI in any text column."""

    claim_key: str
    state: str
    payer_id: str
    total_charge: Decimal
    currency: str
    created_at: float
    updated_at: float
    payer_claim_id: str = ""
    account_number: str = ""
    paid: Decimal = Decimal(0)
    frequency: str = "1"
    controls: str = ""
    status_category: str = ""
    status_code: str = ""
    denial_category: str = ""
    appeal_due: str = ""  # ISO date, "" when none
    submitted_at: float = 0.0
    body: bytes = b""


@dataclass(frozen=True, slots=True)
class ClaimEvent:
    """One transition of a claim (or a fact kept on it without one: from = to), with its
    lineage: `causation_id` the event or file that caused it, `actor` who (a person, or
    "hub"). Unique on `event_id`; `seq` orders a claim's events (1, 2, ...)."""

    event_id: str
    claim_key: str
    seq: int
    kind: str
    from_state: str
    to_state: str
    at: float
    causation_id: str = ""
    correlation_id: str = ""
    actor: str = "hub"
    detail: str = ""


class AccountsTx(Protocol):
    """The accounts-and-claims writes inside a store transaction: patients, encounters,
    billing accounts, claims, charges, deposits and claim life."""

    def get_patient(self, key: str) -> Patient | None: ...

    def put_patient(self, patient: Patient) -> None: ...

    def put_encounter(
        self,
        visit_number: str,
        patient_key: str,
        facility: str,
        patient_class: str,
        status: str,
        at: str,
    ) -> None: ...

    def put_billing_account(self, account_number: str, patient_key: str, facility: str) -> None: ...

    def get_billing_account(self, account_number: str) -> BillingAccount | None:
        """The billing account with this number (PID-18), or None when none is known."""
        ...

    def record_claim(self, claim: ClaimRecord) -> bool:
        """Add a claim to the claim register; False (no change) when its event id is known."""
        ...

    def find_claim(
        self, patient_control_number: str, payer_claim_id: str = ""
    ) -> ClaimRecord | None:
        """The latest registered claim with this patient control number, else (when
        `payer_claim_id` is given) the latest one with that payer claim id."""
        ...

    def merge_patient(self, merged_key: str, survivor_key: str) -> int: ...

    def record_charge(self, charge: ChargeRecord) -> bool: ...

    def record_deposit(self, record: DepositRecord) -> bool:
        """Add one side of deposit matching; False (no change) when its event id is known."""
        ...

    def open_deposits(self, reference: str) -> list[DepositRecord]:
        """The unmatched records with this (normalized) reference, oldest first."""
        ...

    def match_deposits(self, event_id: str, other_event_id: str, entry_key: str) -> None:
        """Mark two records matched with each other (and the entry the match posted)."""
        ...

    def get_claim_state(self, claim_key: str) -> ClaimState | None:
        """A claim's state by its patient control number (issue 20)."""
        ...

    def claim_by_payer_id(self, payer_claim_id: str) -> ClaimState | None:
        """The claim the payer knows by this claim control number (CLP07, REF*1K)."""
        ...

    def put_claim_state(self, state: ClaimState) -> None:
        """Insert or replace a claim's state row."""
        ...

    def add_claim_event(self, event: ClaimEvent) -> bool:
        """Append a claim event; False (no change) when its event id is known."""
        ...


class AccountsStore(Protocol):
    """The accounts-and-claims reads: deposit records, claim states and claim events."""

    def deposit_records(self) -> list[DepositRecord]:
        """Every record of deposit matching (EFTs, processor and bank deposits), in order."""
        ...

    def claim_states(self, state: str | None = None, limit: int = 1000) -> list[ClaimState]:
        """Claims (in one state when given), oldest update first (issue 20)."""
        ...

    def claim_events(self, claim_key: str) -> list[ClaimEvent]:
        """A claim's timeline, in `seq` order."""
        ...
