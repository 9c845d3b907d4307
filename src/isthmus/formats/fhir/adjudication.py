"""FHIR R4 claims and their adjudication: Claim, ClaimResponse, ExplanationOfBenefit.

The three resources of the claim's life (FHIR R4 4.0.1 Financial module: Claim 13.5,
ClaimResponse 13.6, ExplanationOfBenefit 13.10), reduced like the others of
`resources` to the elements that carry money and the links between them: the items
billed, their adjudication (submitted, eligible, benefit, copay...), the totals and the
payment. Unknown JSON members are ignored; ``resourceType`` is the struct tag.
"""

from __future__ import annotations

from decimal import Decimal

from isthmus.formats.fhir.datatypes import (
    CodeableConcept,
    FhirStruct,
    Identifier,
    Money,
    Period,
    Quantity,
    Reference,
)
from isthmus.formats.fhir.resources import Resource


class Adjudication(FhirStruct, frozen=True, kw_only=True):
    """Claim adjudication (submitted, eligible, benefit, copay...): amount or value."""

    category: CodeableConcept | None = None
    reason: CodeableConcept | None = None
    amount: Money | None = None
    value: Decimal | None = None


class Insurance(FhirStruct, frozen=True, kw_only=True):
    """Claim.insurance / ExplanationOfBenefit.insurance: the coverage billed."""

    sequence: int | None = None
    focal: bool | None = None
    coverage: Reference | None = None


class ClaimItem(FhirStruct, frozen=True, kw_only=True):
    """Claim.item; serviced[x] is a date or a Period."""

    sequence: int | None = None
    product_or_service: CodeableConcept | None = None
    serviced_date: str | None = None
    serviced_period: Period | None = None
    quantity: Quantity | None = None
    unit_price: Money | None = None
    factor: Decimal | None = None
    net: Money | None = None
    encounter: tuple[Reference, ...] = ()

    @property
    def serviced(self) -> str | Period | None:
        return self.serviced_date or self.serviced_period


class Claim(Resource, frozen=True, kw_only=True, tag=True):
    """Claim (R4 13.5): what the provider bills the insurer, in total and per item."""

    identifier: tuple[Identifier, ...] = ()
    status: str | None = None
    type: CodeableConcept | None = None
    use: str | None = None
    patient: Reference | None = None
    billable_period: Period | None = None
    created: str | None = None
    insurer: Reference | None = None
    provider: Reference | None = None
    priority: CodeableConcept | None = None
    insurance: tuple[Insurance, ...] = ()
    item: tuple[ClaimItem, ...] = ()
    total: Money | None = None


class Total(FhirStruct, frozen=True, kw_only=True):
    """ClaimResponse.total / ExplanationOfBenefit.total: one adjudication category."""

    category: CodeableConcept | None = None
    amount: Money | None = None


class Payment(FhirStruct, frozen=True, kw_only=True):
    """ClaimResponse.payment / ExplanationOfBenefit.payment: what the payer pays."""

    type: CodeableConcept | None = None
    adjustment: Money | None = None
    adjustment_reason: CodeableConcept | None = None
    date: str | None = None
    amount: Money | None = None
    identifier: Identifier | None = None


class ResponseItem(FhirStruct, frozen=True, kw_only=True):
    """ClaimResponse.item: adjudication of the claim item ``itemSequence``."""

    item_sequence: int | None = None
    adjudication: tuple[Adjudication, ...] = ()


class ProcessingError(FhirStruct, frozen=True, kw_only=True):
    """ClaimResponse.error: why the claim (or one item of it) could not be adjudicated."""

    item_sequence: int | None = None
    code: CodeableConcept | None = None


class ClaimResponse(Resource, frozen=True, kw_only=True, tag=True):
    """ClaimResponse (R4 13.6): the insurer's adjudication of a Claim."""

    identifier: tuple[Identifier, ...] = ()
    status: str | None = None
    type: CodeableConcept | None = None
    use: str | None = None
    patient: Reference | None = None
    created: str | None = None
    insurer: Reference | None = None
    requestor: Reference | None = None
    request: Reference | None = None
    outcome: str | None = None
    item: tuple[ResponseItem, ...] = ()
    total: tuple[Total, ...] = ()
    payment: Payment | None = None
    error: tuple[ProcessingError, ...] = ()


class EobItem(FhirStruct, frozen=True, kw_only=True):
    """ExplanationOfBenefit.item with its adjudications."""

    sequence: int | None = None
    product_or_service: CodeableConcept | None = None
    serviced_date: str | None = None
    serviced_period: Period | None = None
    quantity: Quantity | None = None
    unit_price: Money | None = None
    factor: Decimal | None = None
    net: Money | None = None
    encounter: tuple[Reference, ...] = ()
    adjudication: tuple[Adjudication, ...] = ()

    @property
    def serviced(self) -> str | Period | None:
        return self.serviced_date or self.serviced_period


class ExplanationOfBenefit(Resource, frozen=True, kw_only=True, tag=True):
    """ExplanationOfBenefit (R4 13.10): claim, adjudication and payment in one resource."""

    identifier: tuple[Identifier, ...] = ()
    status: str | None = None
    type: CodeableConcept | None = None
    use: str | None = None
    patient: Reference | None = None
    created: str | None = None
    insurer: Reference | None = None
    provider: Reference | None = None
    facility: Reference | None = None
    claim: Reference | None = None
    claim_response: Reference | None = None
    outcome: str | None = None
    insurance: tuple[Insurance, ...] = ()
    item: tuple[EobItem, ...] = ()
    total: tuple[Total, ...] = ()
    payment: Payment | None = None
