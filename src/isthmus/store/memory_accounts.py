"""The accounts-and-claims aggregate in memory (the fake of ports_accounts): patients,
encounters, billing accounts, charges, the claim register and deposit matching, each keyed
on its business key as the SQL schema's unique constraints key them.
"""

from __future__ import annotations

import dataclasses

import msgspec

from isthmus.store.memory_state import Encounter, MemoryStoreBase, MemoryTxBase
from isthmus.store.ports import (
    BillingAccount,
    ChargeRecord,
    ClaimRecord,
    DepositRecord,
    Patient,
)


class MemoryAccountsTx(MemoryTxBase):
    """The accounts-and-claims writes of a transaction in memory (mixin of MemoryTx)."""

    def get_patient(self, key: str) -> Patient | None:
        return self._s.patients.get(key)

    def put_patient(self, patient: Patient) -> None:
        old = self._s.patients.get(patient.key)
        if old is not None:  # upsert keeps the identity: mrn, authority, token
            patient = msgspec.structs.replace(
                patient, mrn=old.mrn, authority=old.authority, token=old.token
            )
        self._s.patients[patient.key] = patient

    def put_encounter(
        self,
        visit_number: str,
        patient_key: str,
        facility: str,
        patient_class: str,
        status: str,
        at: str,
    ) -> None:
        old = self._s.encounters.get(visit_number)
        if old is None:
            self._s.encounters[visit_number] = (patient_key, facility, patient_class, status, at)
        else:
            self._s.encounters[visit_number] = (old[0], old[1], patient_class or old[2], status, at)

    def put_billing_account(self, account_number: str, patient_key: str, facility: str) -> None:
        old = self._s.billing_accounts.get(account_number)
        self._s.billing_accounts[account_number] = (patient_key, old[1] if old else facility)

    def get_billing_account(self, account_number: str) -> BillingAccount | None:
        row = self._s.billing_accounts.get(account_number)
        return None if row is None else BillingAccount(account_number, row[0], row[1])

    def record_claim(self, claim: ClaimRecord) -> bool:
        if claim.event_id in self._s.claims:
            return False
        self._s.claims[claim.event_id] = claim
        return True

    def find_claim(
        self, patient_control_number: str, payer_claim_id: str = ""
    ) -> ClaimRecord | None:
        claims = list(self._s.claims.values())[::-1]
        found = next(
            (c for c in claims if c.patient_control_number == patient_control_number), None
        )
        if found is None and payer_claim_id:
            found = next((c for c in claims if c.payer_claim_id == payer_claim_id), None)
        return found

    def merge_patient(self, merged_key: str, survivor_key: str) -> int:
        s = self._s
        if merged_key in s.patients:
            s.patients[merged_key] = msgspec.structs.replace(
                s.patients[merged_key], merged_into=survivor_key
            )
        for visit, enc in s.encounters.items():
            if enc[0] == merged_key:
                s.encounters[visit] = (survivor_key, *enc[1:])
        for number, (owner, facility) in s.billing_accounts.items():
            if owner == merged_key:
                s.billing_accounts[number] = (survivor_key, facility)
        moved = 0
        for event_id, charge in s.charges.items():
            if charge.patient_key == merged_key:
                s.charges[event_id] = msgspec.structs.replace(charge, patient_key=survivor_key)
                moved += 1
        return moved

    def record_charge(self, charge: ChargeRecord) -> bool:
        if charge.event_id in self._s.charges:
            return False
        self._s.charges[charge.event_id] = charge
        return True

    def record_deposit(self, record: DepositRecord) -> bool:
        if record.event_id in self._s.deposits:
            return False
        self._s.deposits[record.event_id] = record
        return True

    def open_deposits(self, reference: str) -> list[DepositRecord]:
        return [
            d for d in self._s.deposits.values() if d.reference == reference and not d.matched_with
        ]

    def match_deposits(self, event_id: str, other_event_id: str, entry_key: str) -> None:
        for a, b in ((event_id, other_event_id), (other_event_id, event_id)):
            if a in self._s.deposits:
                self._s.deposits[a] = dataclasses.replace(
                    self._s.deposits[a], matched_with=b, entry_key=entry_key
                )


class MemoryAccounts(MemoryStoreBase):
    """The accounts-and-claims reads of the in-memory store (mixin of MemoryStore)."""

    def deposit_records(self) -> list[DepositRecord]:
        with self._lock:
            return list(self._state.deposits.values())

    def encounter(self, visit_number: str) -> Encounter | None:
        with self._lock:
            return self._state.encounters.get(visit_number)

    def billing_account(self, account_number: str) -> tuple[str, str] | None:
        """(patient_key, facility) of a billing account, or None."""
        with self._lock:
            return self._state.billing_accounts.get(account_number)
