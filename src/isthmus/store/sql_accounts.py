"""The accounts-and-claims aggregate on SQL (SQLite and PostgreSQL): patients, encounters,
billing accounts, charges, the claim register and deposit matching (ports.py).

Each register is keyed on its business key (a charge's or claim's event id, a deposit's
event id): recording one twice changes nothing and reports False. Registers read back in
insertion order, the dialect's `{seq}`.
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal
from typing import Any, Final

from isthmus.store.ports_accounts import (
    BillingAccount,
    ChargeRecord,
    ClaimRecord,
    DepositRecord,
    Patient,
)
from isthmus.store.sql_dialect import StoreBase, TxBase, day

_PATIENT: Final = (
    "key, mrn, authority, token, family_name, given_name, birth_date, sex, merged_into"
)
_CLAIM: Final = "event_id, patient_control_number, payer_id, payer_claim_id, total_charge, currency"
_DEPOSIT: Final = (
    "event_id, side, reference, amount, currency, on_date, party, "
    "correlation_id, matched_with, entry_key"
)
SQL: Final = {
    "patient_get": f"SELECT {_PATIENT} FROM patients WHERE key = ?",
    "patient_put": f"INSERT INTO patients ({_PATIENT}) VALUES (?,?,?,?,?,?,?,?,?) "
    "ON CONFLICT (key) DO UPDATE SET family_name = excluded.family_name, "
    "given_name = excluded.given_name, birth_date = excluded.birth_date, "
    "sex = excluded.sex, merged_into = excluded.merged_into",
    "encounter_put": "INSERT INTO encounters (visit_number, patient_key, facility, "
    "patient_class, status, updated_at) VALUES (?,?,?,?,?,?) "
    "ON CONFLICT (visit_number) DO UPDATE SET status = excluded.status, "
    "updated_at = excluded.updated_at, patient_class = CASE WHEN "
    "excluded.patient_class = '' THEN encounters.patient_class "
    "ELSE excluded.patient_class END",
    "account_put": "INSERT INTO billing_accounts (account_number, patient_key, facility) "
    "VALUES (?,?,?) ON CONFLICT (account_number) DO UPDATE "
    "SET patient_key = excluded.patient_key",
    "account_get": "SELECT account_number, patient_key, facility FROM billing_accounts "
    "WHERE account_number = ?",
    "claim_add": f"INSERT INTO claims ({_CLAIM}) VALUES (?,?,?,?,?,?) "
    "ON CONFLICT (event_id) DO NOTHING",
    "claim_by_pcn": f"SELECT {_CLAIM} FROM claims WHERE patient_control_number = ? "
    "ORDER BY {seq} DESC LIMIT 1",
    "claim_by_payer": f"SELECT {_CLAIM} FROM claims WHERE payer_claim_id = ? "
    "ORDER BY {seq} DESC LIMIT 1",
    "merge_patient": "UPDATE patients SET merged_into = ? WHERE key = ?",
    "merge_encounters": "UPDATE encounters SET patient_key = ? WHERE patient_key = ?",
    "merge_accounts": "UPDATE billing_accounts SET patient_key = ? WHERE patient_key = ?",
    "merge_charges": "UPDATE charges SET patient_key = ? WHERE patient_key = ?",
    "charge_add": "INSERT INTO charges (event_id, patient_key, account_token, transaction_id, "
    "transaction_type, charge_code, amount, currency, service_date, entry_key) "
    "VALUES (?,?,?,?,?,?,?,?,?,?) ON CONFLICT (event_id) DO NOTHING",
    "deposit_add": f"INSERT INTO deposits ({_DEPOSIT}) VALUES (?,?,?,?,?,?,?,?,?,?) "
    "ON CONFLICT (event_id) DO NOTHING",
    "deposits_open": f"SELECT {_DEPOSIT} FROM deposits WHERE reference = ? AND "
    "matched_with = '' ORDER BY {seq}",
    "deposit_match": "UPDATE deposits SET matched_with = ?, entry_key = ? WHERE event_id = ?",
    "deposits": f"SELECT {_DEPOSIT} FROM deposits ORDER BY {{seq}}",
}


def _deposit(r: Sequence[Any]) -> DepositRecord:
    return DepositRecord(r[0], r[1], r[2], Decimal(r[3]), r[4], day(r[5]), r[6], r[7], r[8], r[9])


class SqlAccountsTx(TxBase):
    """The accounts-and-claims writes of a transaction on SQL (mixin of SqlTx)."""

    def get_patient(self, key: str) -> Patient | None:
        r = self._c.execute(self._q["patient_get"], (key,)).fetchone()
        return Patient(*r) if r else None

    def put_patient(self, patient: Patient) -> None:
        p = patient
        self._c.execute(
            self._q["patient_put"],
            (
                p.key,
                p.mrn,
                p.authority,
                p.token,
                p.family_name,
                p.given_name,
                p.birth_date,
                p.sex,
                p.merged_into,
            ),
        )

    def put_encounter(
        self,
        visit_number: str,
        patient_key: str,
        facility: str,
        patient_class: str,
        status: str,
        at: str,
    ) -> None:
        self._c.execute(
            self._q["encounter_put"],
            (visit_number, patient_key, facility, patient_class, status, at),
        )

    def put_billing_account(self, account_number: str, patient_key: str, facility: str) -> None:
        self._c.execute(self._q["account_put"], (account_number, patient_key, facility))

    def get_billing_account(self, account_number: str) -> BillingAccount | None:
        r = self._c.execute(self._q["account_get"], (account_number,)).fetchone()
        return BillingAccount(r[0], r[1], r[2]) if r else None

    def record_claim(self, claim: ClaimRecord) -> bool:
        c = claim
        return bool(
            self._c.execute(
                self._q["claim_add"],
                (
                    c.event_id,
                    c.patient_control_number,
                    c.payer_id,
                    c.payer_claim_id,
                    str(c.total_charge),
                    c.currency,
                ),
            ).rowcount
            == 1
        )

    def find_claim(
        self, patient_control_number: str, payer_claim_id: str = ""
    ) -> ClaimRecord | None:
        r = self._c.execute(self._q["claim_by_pcn"], (patient_control_number,)).fetchone()
        if r is None and payer_claim_id:
            r = self._c.execute(self._q["claim_by_payer"], (payer_claim_id,)).fetchone()
        return None if r is None else ClaimRecord(r[0], r[1], r[2], r[3], Decimal(r[4]), r[5])

    def merge_patient(self, merged_key: str, survivor_key: str) -> int:
        moves = (survivor_key, merged_key)
        for name in ("merge_patient", "merge_encounters", "merge_accounts"):
            self._c.execute(self._q[name], moves)
        return int(self._c.execute(self._q["merge_charges"], moves).rowcount)

    def record_charge(self, charge: ChargeRecord) -> bool:
        c = charge
        return bool(
            self._c.execute(
                self._q["charge_add"],
                (
                    c.event_id,
                    c.patient_key,
                    c.account_token,
                    c.transaction_id,
                    c.transaction_type,
                    c.charge_code,
                    str(c.amount),
                    c.currency,
                    c.service_date.isoformat(),
                    c.entry_key,
                ),
            ).rowcount
            == 1
        )

    def record_deposit(self, record: DepositRecord) -> bool:
        r = record
        return bool(
            self._c.execute(
                self._q["deposit_add"],
                (
                    r.event_id,
                    r.side,
                    r.reference,
                    str(r.amount),
                    r.currency,
                    r.on_date.isoformat(),
                    r.party,
                    r.correlation_id,
                    r.matched_with,
                    r.entry_key,
                ),
            ).rowcount
            == 1
        )

    def open_deposits(self, reference: str) -> list[DepositRecord]:
        return [
            _deposit(r) for r in self._c.execute(self._q["deposits_open"], (reference,)).fetchall()
        ]

    def match_deposits(self, event_id: str, other_event_id: str, entry_key: str) -> None:
        for a, b in ((event_id, other_event_id), (other_event_id, event_id)):
            self._c.execute(self._q["deposit_match"], (b, entry_key, a))


class SqlAccounts(StoreBase):
    """The accounts-and-claims reads on SQL (mixin of SqlStore)."""

    def deposit_records(self) -> list[DepositRecord]:
        return [_deposit(r) for r in self._rows(self._q["deposits"])]
