"""The finance-relevant FHIR R4 resources, as msgspec Structs that decode fast.

FHIR R4 4.0.1 resources (https://hl7.org/fhir/R4/resourcelist.html), reduced to the
elements that carry money, the parties that owe or pay it, and the links between them:

- Administration: Patient (8.1; PHI, kept only for the account), Encounter (8.11),
  Account (15.2).
- Financial: Coverage (13.3), ChargeItem (15.3), Invoice (15.5), PaymentNotice (13.8),
  PaymentReconciliation (13.9). Claim (13.5), ClaimResponse (13.6) and
  ExplanationOfBenefit (13.10) are in `adjudication`; the union of all of them and their
  names (`FinanceResource`, `FINANCE_TYPES`) in `finance_types`.

Unknown JSON members are ignored, so the decoder skips narrative, extensions and clinical
detail at C speed. Choice elements ``[x]`` keep one field per JSON name
(``occurrenceDateTime``, ``occurrencePeriod``) and a property that returns whichever is set.
The ``resourceType`` member is the struct tag, checked when decoding.
"""

from __future__ import annotations

from decimal import Decimal

from isthmus.formats.fhir.datatypes import (
    CodeableConcept,
    Coding,
    FhirStruct,
    HumanName,
    Identifier,
    Money,
    Period,
    Quantity,
    Reference,
)


class Resource(FhirStruct, frozen=True, kw_only=True, tag_field="resourceType"):
    """A FHIR resource: ``resourceType`` is the tag, ``id`` the logical id (R4 2.1.27.5)."""

    id: str | None = None

    @property
    def resource_type(self) -> str:
        return type(self).__name__


# --- Administration -----------------------------------------------------------------------


class Patient(Resource, frozen=True, kw_only=True, tag=True):
    """Patient (R4 8.1). PHI: names and birth date stay with the account, out of the ERP."""

    identifier: tuple[Identifier, ...] = ()
    name: tuple[HumanName, ...] = ()
    birth_date: str | None = None
    gender: str | None = None


class Encounter(Resource, frozen=True, kw_only=True, tag=True):
    """Encounter (R4 8.11): the visit charges hang from; ``class`` is a Coding in R4."""

    identifier: tuple[Identifier, ...] = ()
    status: str | None = None
    class_: Coding | None = None
    subject: Reference | None = None
    period: Period | None = None
    service_provider: Reference | None = None
    account: tuple[Reference, ...] = ()


class AccountCoverage(FhirStruct, frozen=True, kw_only=True):
    """Account.coverage: the insurance billed, in priority order."""

    coverage: Reference | None = None
    priority: int | None = None


class Guarantor(FhirStruct, frozen=True, kw_only=True):
    """Account.guarantor: the party responsible for the balance."""

    party: Reference | None = None
    on_hold: bool | None = None
    period: Period | None = None


class Account(Resource, frozen=True, kw_only=True, tag=True):
    """Account (R4 15.2): the patient billing account charges are posted to."""

    identifier: tuple[Identifier, ...] = ()
    status: str | None = None
    type: CodeableConcept | None = None
    subject: tuple[Reference, ...] = ()
    service_period: Period | None = None
    coverage: tuple[AccountCoverage, ...] = ()
    owner: Reference | None = None
    guarantor: tuple[Guarantor, ...] = ()


# --- Coverage and charges -----------------------------------------------------------------


class CoverageClass(FhirStruct, frozen=True, kw_only=True):
    """Coverage.class: group, plan, rx group..."""

    type: CodeableConcept | None = None
    value: str | None = None
    name: str | None = None


class Coverage(Resource, frozen=True, kw_only=True, tag=True):
    """Coverage (R4 13.3): the insurance plan that pays for the beneficiary."""

    identifier: tuple[Identifier, ...] = ()
    status: str | None = None
    type: CodeableConcept | None = None
    subscriber_id: str | None = None
    beneficiary: Reference | None = None
    period: Period | None = None
    payor: tuple[Reference, ...] = ()
    class_: tuple[CoverageClass, ...] = ()


class ChargeItem(Resource, frozen=True, kw_only=True, tag=True):
    """ChargeItem (R4 15.3): one billable item, the source of a revenue posting."""

    identifier: tuple[Identifier, ...] = ()
    status: str | None = None
    code: CodeableConcept | None = None
    subject: Reference | None = None
    context: Reference | None = None
    occurrence_date_time: str | None = None
    occurrence_period: Period | None = None
    quantity: Quantity | None = None
    factor_override: Decimal | None = None
    price_override: Money | None = None
    override_reason: str | None = None
    enterer: Reference | None = None
    entered_date: str | None = None
    performing_organization: Reference | None = None
    cost_center: Reference | None = None
    account: tuple[Reference, ...] = ()

    @property
    def occurrence(self) -> str | Period | None:
        """ChargeItem.occurrence[x] (dateTime or Period; Timing is not read)."""
        return self.occurrence_date_time or self.occurrence_period


class PriceComponent(FhirStruct, frozen=True, kw_only=True):
    """Invoice.lineItem.priceComponent: base, surcharge, deduction, discount, tax."""

    type: str | None = None
    code: CodeableConcept | None = None
    factor: Decimal | None = None
    amount: Money | None = None


class InvoiceLineItem(FhirStruct, frozen=True, kw_only=True):
    """Invoice.lineItem; chargeItem[x] is a Reference or a CodeableConcept."""

    sequence: int | None = None
    charge_item_reference: Reference | None = None
    charge_item_codeable_concept: CodeableConcept | None = None
    price_component: tuple[PriceComponent, ...] = ()


class Invoice(Resource, frozen=True, kw_only=True, tag=True):
    """Invoice (R4 15.5): what the patient or payer is billed, net and gross."""

    identifier: tuple[Identifier, ...] = ()
    status: str | None = None
    subject: Reference | None = None
    recipient: Reference | None = None
    date: str | None = None
    account: Reference | None = None
    line_item: tuple[InvoiceLineItem, ...] = ()
    total_price_component: tuple[PriceComponent, ...] = ()
    total_net: Money | None = None
    total_gross: Money | None = None


# --- Payments -----------------------------------------------------------------------------


class PaymentNotice(Resource, frozen=True, kw_only=True, tag=True):
    """PaymentNotice (R4 13.8): a payment was made (or is expected) against a request."""

    identifier: tuple[Identifier, ...] = ()
    status: str | None = None
    request: Reference | None = None
    response: Reference | None = None
    created: str | None = None
    provider: Reference | None = None
    payment: Reference | None = None
    payment_date: str | None = None
    payee: Reference | None = None
    recipient: Reference | None = None
    amount: Money | None = None
    payment_status: CodeableConcept | None = None


class ReconciliationDetail(FhirStruct, frozen=True, kw_only=True):
    """PaymentReconciliation.detail: one claim's share of the bulk payment."""

    identifier: Identifier | None = None
    type: CodeableConcept | None = None
    request: Reference | None = None
    submitter: Reference | None = None
    response: Reference | None = None
    date: str | None = None
    payee: Reference | None = None
    amount: Money | None = None


class PaymentReconciliation(Resource, frozen=True, kw_only=True, tag=True):
    """PaymentReconciliation (R4 13.9): a bulk payment (EFT) and the claims it settles."""

    identifier: tuple[Identifier, ...] = ()
    status: str | None = None
    period: Period | None = None
    created: str | None = None
    payment_issuer: Reference | None = None
    request: Reference | None = None
    requestor: Reference | None = None
    outcome: str | None = None
    payment_date: str | None = None
    payment_amount: Money | None = None
    payment_identifier: Identifier | None = None
    detail: tuple[ReconciliationDetail, ...] = ()
