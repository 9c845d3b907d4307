"""FHIR R4 (4.0.1) for the finance path: fast decoding, checks, full validation, Bundles.

- :mod:`.resources` and :mod:`.datatypes`: msgspec Structs covering only the finance
  elements of Patient, Encounter, Account, Coverage, ChargeItem, Invoice, Claim,
  ClaimResponse, ExplanationOfBenefit, PaymentNotice and PaymentReconciliation.
- :mod:`.decode`: ``decode_resource`` and ``decode_bundle`` (hot path, raise FhirError).
- :mod:`.checks`: finance checks returning FhirError lists (hot path).
- :mod:`.validate`: ``validate_full`` with fhir.resources' R4B models (on demand).
- :mod:`.bundle`: transaction/batch processing rules (order, ids, references).
- :mod:`.outcome`: FhirError and the OperationOutcome sent back to the client.

Pure: no I/O. Amounts are Decimal, decoded from the JSON text exactly.
"""

from isthmus.formats.fhir.adjudication import Claim, ClaimResponse, ExplanationOfBenefit
from isthmus.formats.fhir.bundle import (
    Step,
    TransactionPlan,
    conditional_queries,
    plan_transaction,
    resolve_raw,
    resolve_references,
)
from isthmus.formats.fhir.checks import (
    check_money,
    check_reference,
    check_required,
    check_resource,
)
from isthmus.formats.fhir.currency import MINOR_UNITS, is_iso4217
from isthmus.formats.fhir.datatypes import (
    CodeableConcept,
    Coding,
    HumanName,
    Identifier,
    Money,
    Period,
    Quantity,
    Reference,
)
from isthmus.formats.fhir.decode import (
    Bundle,
    BundleEntry,
    BundleRequest,
    decode_as,
    decode_bundle,
    decode_resource,
    resource_type_of,
)
from isthmus.formats.fhir.finance_types import FINANCE_TYPES, FinanceResource
from isthmus.formats.fhir.outcome import ISSUE_TYPES, FhirError, operation_outcome
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
from isthmus.formats.fhir.validate import validate_full

__all__ = [
    "FINANCE_TYPES",
    "ISSUE_TYPES",
    "MINOR_UNITS",
    "Account",
    "Bundle",
    "BundleEntry",
    "BundleRequest",
    "ChargeItem",
    "Claim",
    "ClaimResponse",
    "CodeableConcept",
    "Coding",
    "Coverage",
    "Encounter",
    "ExplanationOfBenefit",
    "FhirError",
    "FinanceResource",
    "HumanName",
    "Identifier",
    "Invoice",
    "Money",
    "Patient",
    "PaymentNotice",
    "PaymentReconciliation",
    "Period",
    "Quantity",
    "Reference",
    "Resource",
    "Step",
    "TransactionPlan",
    "check_money",
    "check_reference",
    "check_required",
    "check_resource",
    "conditional_queries",
    "decode_as",
    "decode_bundle",
    "decode_resource",
    "is_iso4217",
    "operation_outcome",
    "plan_transaction",
    "resolve_raw",
    "resolve_references",
    "resource_type_of",
    "validate_full",
]
