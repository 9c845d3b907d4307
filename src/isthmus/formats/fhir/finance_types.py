"""The FHIR resource types the hub decodes on its fast path: their union and their names.

`FinanceResource` is the union of the finance-relevant resources (`resources`,
`adjudication`), what `decode.decode_resource` returns; `FINANCE_TYPES` maps each FHIR
name (the ``resourceType`` tag) to its struct, for the decoders and for the FHIR API's
writable types.
"""

from __future__ import annotations

from isthmus.formats.fhir.adjudication import Claim, ClaimResponse, ExplanationOfBenefit
from isthmus.formats.fhir.resources import (
    Account,
    ChargeItem,
    Coverage,
    Encounter,
    Invoice,
    Patient,
    PaymentNotice,
    PaymentReconciliation,
    Resource,
)

FinanceResource = (
    Patient
    | Encounter
    | Account
    | Coverage
    | ChargeItem
    | Invoice
    | Claim
    | ClaimResponse
    | ExplanationOfBenefit
    | PaymentNotice
    | PaymentReconciliation
)

#: The resource types decoded on the fast path, by FHIR name.
FINANCE_TYPES: dict[str, type[Resource]] = {
    cls.__name__: cls
    for cls in (
        Patient,
        Encounter,
        Account,
        Coverage,
        ChargeItem,
        Invoice,
        Claim,
        ClaimResponse,
        ExplanationOfBenefit,
        PaymentNotice,
        PaymentReconciliation,
    )
}
