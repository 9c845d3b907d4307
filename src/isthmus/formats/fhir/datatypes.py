"""FHIR R4 data types reduced to what finance reads: Money, Quantity, Reference, Period...

FHIR R4 4.0.1 section 2.24 (Data Types, https://hl7.org/fhir/R4/datatypes.html) and 2.3
(References, https://hl7.org/fhir/R4/references.html). Each type keeps only the elements a
posting, a claim or a reconciliation needs; everything else in the JSON (extensions, ids,
narrative) is skipped by the decoder. Element names are the FHIR JSON names, written in
snake_case here (``rename="camel"``); ``class`` becomes ``class_``.

JSON numbers decode to :class:`decimal.Decimal` exactly as written (``135.57`` stays
``Decimal("135.57")``), so no amount ever passes through a float (R4 2.24.0.1, decimal).
Dates and instants stay strings: FHIR allows partial dates ("2014", "2014-08").
"""

from __future__ import annotations

from decimal import Decimal

import msgspec


class FhirStruct(
    msgspec.Struct, frozen=True, kw_only=True, rename="camel", omit_defaults=True, gc=False
):
    """Base of every decoded FHIR element: immutable, unknown JSON members ignored."""


class Money(FhirStruct, frozen=True, kw_only=True):
    """Money (R4 2.24.0.14): an amount with its ISO 4217 currency."""

    value: Decimal | None = None
    currency: str | None = None


class Quantity(FhirStruct, frozen=True, kw_only=True):
    """Quantity (R4 2.24.0.12), e.g. ChargeItem.quantity or Claim.item.quantity."""

    value: Decimal | None = None
    unit: str | None = None
    system: str | None = None
    code: str | None = None


class Coding(FhirStruct, frozen=True, kw_only=True):
    """Coding (R4 2.24.0.8)."""

    system: str | None = None
    version: str | None = None
    code: str | None = None
    display: str | None = None


class CodeableConcept(FhirStruct, frozen=True, kw_only=True):
    """CodeableConcept (R4 2.24.0.7)."""

    coding: tuple[Coding, ...] = ()
    text: str | None = None

    def code_in(self, system: str | None = None) -> str | None:
        """The first code, optionally of one code system."""
        for c in self.coding:
            if system is None or c.system == system:
                return c.code
        return None


class Identifier(FhirStruct, frozen=True, kw_only=True):
    """Identifier (R4 2.24.0.10): a business identifier (MRN, claim number, EFT trace)."""

    use: str | None = None
    type: CodeableConcept | None = None
    system: str | None = None
    value: str | None = None


class Reference(FhirStruct, frozen=True, kw_only=True):
    """Reference (R4 2.3.0): a literal ``reference``, a logical ``identifier``, or both."""

    reference: str | None = None
    type: str | None = None
    identifier: Identifier | None = None
    display: str | None = None


class Period(FhirStruct, frozen=True, kw_only=True):
    """Period (R4 2.24.0.11): start and end dateTimes, either may be missing."""

    start: str | None = None
    end: str | None = None


class HumanName(FhirStruct, frozen=True, kw_only=True):
    """HumanName (R4 2.24.0.16). PHI: kept on the Patient for the account, never posted."""

    use: str | None = None
    text: str | None = None
    family: str | None = None
    given: tuple[str, ...] = ()
    prefix: tuple[str, ...] = ()
    suffix: tuple[str, ...] = ()
