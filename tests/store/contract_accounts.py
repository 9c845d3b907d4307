"""The accounts-and-claims aggregate's contract: patients, encounters, billing accounts, the
claim register, deposits and charges, each idempotent on its business key (ports_accounts)."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest

from isthmus.store.ports import (
    BillingAccount,
    ClaimRecord,
    DepositRecord,
    Patient,
    Store,
)
from tests.store.builders import (
    Boom,
    charge_record,
    patient,
)


class AccountsContract:
    """Mixed into StoreContract (contract.py), which gives the `store` fixture."""

    def encounter_row(
        self, store: Store, visit_number: str
    ) -> tuple[str, str, str, str, str] | None:
        """(patient_key, facility, patient_class, status, updated_at) as the adapter stored it."""
        raise NotImplementedError

    def billing_account_row(self, store: Store, account_number: str) -> tuple[str, str] | None:
        """(patient_key, facility) as the adapter stored it."""
        raise NotImplementedError

    # patients, encounters, billing accounts --------------------------------------------------

    def test_patient_put_and_get(self, store: Store) -> None:
        p = patient("HOSP|1", family_name="DOE", given_name="JANE", birth_date="19800102", sex="F")
        with store.transaction() as tx:
            assert tx.get_patient("HOSP|1") is None
            tx.put_patient(p)
            tx.put_patient(patient("HOSP|2"))
        with store.transaction() as tx:
            assert tx.get_patient("HOSP|1") == p
            assert tx.get_patient("HOSP|2") == patient("HOSP|2")
            assert tx.get_patient("OTHER|1") is None
        assert store.counts()["patients"] == 2

    def test_put_patient_upserts_demographics_and_keeps_identity(self, store: Store) -> None:
        with store.transaction() as tx:
            tx.put_patient(patient("HOSP|1", family_name="DOE", sex="F"))
        with store.transaction() as tx:
            tx.put_patient(
                Patient(
                    key="HOSP|1",
                    mrn="X",
                    authority="Y",
                    token="PA-new",
                    family_name="SMITH",
                    given_name="ANN",
                    birth_date="19800102",
                    sex="F",
                    merged_into="HOSP|9",
                )
            )
        with store.transaction() as tx:
            assert tx.get_patient("HOSP|1") == Patient(
                key="HOSP|1",
                mrn="1",
                authority="HOSP",
                token="PA-1",
                family_name="SMITH",
                given_name="ANN",
                birth_date="19800102",
                sex="F",
                merged_into="HOSP|9",
            )
        assert store.counts()["patients"] == 1

    def test_put_encounter_upserts_status_and_keeps_a_known_class(self, store: Store) -> None:
        with store.transaction() as tx:
            tx.put_encounter("V1", "HOSP|1", "F1", "I", "active", "2024-03-05T10:00")
        assert self.encounter_row(store, "V1") == (
            "HOSP|1",
            "F1",
            "I",
            "active",
            "2024-03-05T10:00",
        )
        with store.transaction() as tx:  # A03 discharge carries no class: keep the known one
            tx.put_encounter("V1", "HOSP|1", "F1", "", "discharged", "2024-03-07T09:00")
        assert self.encounter_row(store, "V1") == (
            "HOSP|1",
            "F1",
            "I",
            "discharged",
            "2024-03-07T09:00",
        )
        with store.transaction() as tx:
            tx.put_encounter("V1", "HOSP|1", "F1", "O", "active", "2024-03-08T09:00")
        assert self.encounter_row(store, "V1") == (
            "HOSP|1",
            "F1",
            "O",
            "active",
            "2024-03-08T09:00",
        )
        assert self.encounter_row(store, "V2") is None

    def test_put_billing_account_upserts_its_patient(self, store: Store) -> None:
        with store.transaction() as tx:
            tx.put_billing_account("A1", "HOSP|1", "F1")
        assert self.billing_account_row(store, "A1") == ("HOSP|1", "F1")
        with store.transaction() as tx:
            tx.put_billing_account("A1", "HOSP|2", "F1")
        assert self.billing_account_row(store, "A1") == ("HOSP|2", "F1")
        assert self.billing_account_row(store, "A2") is None

    def test_get_billing_account_reads_what_put_stored(self, store: Store) -> None:
        with store.transaction() as tx:
            assert tx.get_billing_account("A1") is None
            tx.put_billing_account("A1", "HOSP|1", "F1")
            assert tx.get_billing_account("A1") == BillingAccount("A1", "HOSP|1", "F1")
        with store.transaction() as tx:
            tx.put_billing_account("A1", "HOSP|2", "F9")  # a new owner, the first facility
            tx.put_patient(patient("HOSP|2"))
            tx.put_patient(patient("HOSP|3"))
            tx.merge_patient("HOSP|2", "HOSP|3")
            assert tx.get_billing_account("A1") == BillingAccount("A1", "HOSP|3", "F1")
            assert tx.get_billing_account("A2") is None

    def test_get_billing_account_sees_nothing_of_a_rolled_back_put(self, store: Store) -> None:
        with pytest.raises(Boom), store.transaction() as tx:
            tx.put_billing_account("A1", "HOSP|1", "F1")
            raise Boom
        with store.transaction() as tx:
            assert tx.get_billing_account("A1") is None

    def test_claim_register_is_idempotent_and_finds_the_latest_claim(self, store: Store) -> None:
        first = ClaimRecord("x12/S:1/1/0", "A1", "PAYER", "", Decimal("120.50"), "USD")
        second = ClaimRecord("x12/S:2/1/0", "A1", "PAYER", "ICN9", Decimal("99.00"), "USD")
        other = ClaimRecord("x12/S:2/1/1", "A2", "PAYER", "ICN7", Decimal("10.00"), "USD")
        with store.transaction() as tx:
            assert tx.find_claim("A1") is None
            assert tx.record_claim(first) is True
            assert tx.record_claim(first) is False
            assert tx.record_claim(second) and tx.record_claim(other)
        with store.transaction() as tx:
            assert tx.find_claim("A1") == second
            assert tx.find_claim("A2", "ICN9") == other  # the control number wins
            assert tx.find_claim("NOPE", "ICN9") == second
            assert tx.find_claim("NOPE") is None
            found = tx.find_claim("A1")
            assert found is not None and found.total_charge == Decimal("99.00")

    def test_deposit_records_are_idempotent_matched_in_pairs_and_rolled_back(
        self, store: Store
    ) -> None:
        eft = DepositRecord(
            "x12/S:1/0001/eft",
            "eft",
            "EFT1",
            Decimal("450.00"),
            "USD",
            date(2026, 11, 5),
            "PAYER",
            "x12/S:1",
        )
        bank = DepositRecord(
            "bank/2026-11-06/EFT1/450.00",
            "bank",
            "EFT1",
            Decimal("450.00"),
            "USD",
            date(2026, 11, 6),
            "ACH",
            "bank/f",
        )
        other = DepositRecord(
            "bank/2026-11-06/EFT2/1.00",
            "bank",
            "EFT2",
            Decimal("1.00"),
            "USD",
            date(2026, 11, 6),
            "ACH",
            "bank/f",
        )
        with store.transaction() as tx:
            assert tx.open_deposits("EFT1") == []
            assert tx.record_deposit(eft) is True
            assert tx.record_deposit(eft) is False
            assert tx.record_deposit(bank) and tx.record_deposit(other)
            assert tx.open_deposits("EFT1") == [eft, bank]  # oldest first
        with pytest.raises(Boom), store.transaction() as tx:
            tx.match_deposits(eft.event_id, bank.event_id, "bank/2026-11-06/EFT1/450.00/match")
            raise Boom
        with store.transaction() as tx:
            assert tx.open_deposits("EFT1") == [eft, bank]
            tx.match_deposits(eft.event_id, bank.event_id, "K")
            assert tx.open_deposits("EFT1") == []
        got = store.deposit_records()
        assert [(r.event_id, r.matched_with, r.entry_key) for r in got] == [
            (eft.event_id, bank.event_id, "K"),
            (bank.event_id, eft.event_id, "K"),
            (other.event_id, "", ""),
        ]
        assert got[0].amount == Decimal("450.00") and got[0].on_date == date(2026, 11, 5)

    def test_merge_patient_moves_charges_and_returns_their_count(self, store: Store) -> None:
        with store.transaction() as tx:
            for key in ("HOSP|1", "HOSP|2", "HOSP|3"):
                tx.put_patient(patient(key))
            tx.record_charge(charge_record("ev1", "HOSP|1"))
            tx.record_charge(charge_record("ev2", "HOSP|1"))
            tx.record_charge(charge_record("ev3", "HOSP|2"))
        with store.transaction() as tx:
            assert tx.merge_patient("HOSP|1", "HOSP|2") == 2
            merged = tx.get_patient("HOSP|1")
            assert merged is not None and merged.merged_into == "HOSP|2"
            survivor = tx.get_patient("HOSP|2")
            assert survivor is not None and survivor.merged_into == ""
        with store.transaction() as tx:
            assert tx.merge_patient("HOSP|1", "HOSP|2") == 0  # nothing left to move
            assert tx.merge_patient("HOSP|2", "HOSP|3") == 3  # the moved ones moved with it
        assert store.counts()["charges"] == 3

    def test_merge_patient_moves_encounters_and_billing_accounts(self, store: Store) -> None:
        with store.transaction() as tx:
            tx.put_patient(patient("HOSP|1"))
            tx.put_patient(patient("HOSP|2"))
            tx.put_encounter("V1", "HOSP|1", "F1", "I", "active", "t1")
            tx.put_encounter("V2", "HOSP|2", "F1", "O", "active", "t2")
            tx.put_encounter("V3", "HOSP|3", "F2", "E", "active", "t3")
            tx.put_billing_account("A1", "HOSP|1", "F1")
            tx.put_billing_account("A3", "HOSP|3", "F2")
            assert tx.merge_patient("HOSP|1", "HOSP|2") == 0
        assert self.encounter_row(store, "V1") == ("HOSP|2", "F1", "I", "active", "t1")
        assert self.encounter_row(store, "V2") == ("HOSP|2", "F1", "O", "active", "t2")
        assert self.encounter_row(store, "V3") == ("HOSP|3", "F2", "E", "active", "t3")
        assert self.billing_account_row(store, "A1") == ("HOSP|2", "F1")
        assert self.billing_account_row(store, "A3") == ("HOSP|3", "F2")

    # charges ---------------------------------------------------------------------------------

    def test_record_charge_is_idempotent_on_event_id(self, store: Store) -> None:
        with store.transaction() as tx:
            assert tx.record_charge(charge_record("ev1", "HOSP|1")) is True
            assert tx.record_charge(charge_record("ev2", "HOSP|1")) is True
        with store.transaction() as tx:
            assert tx.record_charge(charge_record("ev1", "HOSP|2", amount="99.00")) is False
        assert store.counts()["charges"] == 2
        with store.transaction() as tx:  # the first record stands: ev1 still belongs to HOSP|1
            assert tx.merge_patient("HOSP|2", "HOSP|3") == 0
            assert tx.merge_patient("HOSP|1", "HOSP|3") == 2
