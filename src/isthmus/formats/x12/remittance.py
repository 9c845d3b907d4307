"""Canonical remittance: what an 835 says about money, as immutable typed values.

Follows the 005010X221A1 Health Care Claim Payment/Advice implementation guide:
header BPR/TRN/CUR/REF/DTM (section 2.4, table 1), loops 1000A payer and 1000B payee (N1,
REF), 2000 header number (LX), 2100 claim payment information (CLP, CAS, NM1, MIA, MOA,
REF, DTM, AMT), 2110 service payment information (SVC, DTM, CAS, REF, AMT, LQ) and the
summary PLB provider adjustment. Code lists quoted in the docstrings are the guide's.

Amounts are ``Decimal`` in the remittance currency (CUR02, "USD" by default); signs are
as sent, so a reversal (CLP02 = 22) carries negative amounts. These structs live inside
``formats/x12`` on purpose: the finance events built from them belong to ``isthmus.model``.
They are positional (not ``kw_only``): msgspec builds a struct from positional arguments
about fifteen times faster than from keywords, and the 835 reader builds many.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Final

import msgspec

from isthmus.formats.x12.elements import Procedure, padded
from isthmus.formats.x12.finding import Finding

# CLP02 claim status codes (005010X221A1, 2100 CLP02).
CLAIM_STATUS: Final[dict[str, str]] = {
    "1": "Processed as Primary",
    "2": "Processed as Secondary",
    "3": "Processed as Tertiary",
    "4": "Denied",
    "19": "Processed as Primary, Forwarded to Additional Payer(s)",
    "20": "Processed as Secondary, Forwarded to Additional Payer(s)",
    "21": "Processed as Tertiary, Forwarded to Additional Payer(s)",
    "22": "Reversal of Previous Payment",
    "23": "Not Our Claim, Forwarded to Additional Payer(s)",
    "25": "Predetermination Pricing Only - No Payment",
}
# CAS01 claim adjustment group codes (CR is 004010 only, still seen in the wild).
ADJUSTMENT_GROUPS: Final[dict[str, str]] = {
    "CO": "Contractual Obligations",
    "CR": "Corrections and Reversals",
    "OA": "Other Adjustments",
    "PI": "Payor Initiated Reductions",
    "PR": "Patient Responsibility",
}
REVERSAL: Final = "22"


class Reference(msgspec.Struct, frozen=True, gc=False):
    """A REF segment: REF01 qualifier, REF02 value."""

    qualifier: str
    value: str


class DateValue(msgspec.Struct, frozen=True, gc=False):
    """A DTM segment: DTM01 qualifier (405 production, 232/233 claim period, 050
    received, 472 service, 150/151 service period), DTM02 date (None when invalid)."""

    qualifier: str
    date: date | None


class AmountValue(msgspec.Struct, frozen=True, gc=False):
    """An AMT segment: AMT01 qualifier (AU coverage, B6 allowed, I interest, ...),
    AMT02 amount."""

    qualifier: str
    amount: Decimal


class Adjustment(msgspec.Struct, frozen=True, gc=False):
    """One CAS triplet: CAS01 group code, CASnn reason (CARC), amount, quantity."""

    group: str
    reason: str
    amount: Decimal
    quantity: Decimal | None = None


class Party(msgspec.Struct, frozen=True, gc=False):
    """Payer (1000A, N1*PR) or payee (1000B, N1*PE). ``npi`` is N104 when N103 is XX,
    ``tin`` N104 when N103 is FI or REF*TJ."""

    name: str
    id_qualifier: str = ""
    id: str = ""
    npi: str = ""
    tin: str = ""
    references: tuple[Reference, ...] = ()


class Person(msgspec.Struct, frozen=True, gc=False):
    """An NM1 person: NM103 last name, NM104 first, NM105 middle, NM108/NM109 id."""

    last: str
    first: str = ""
    middle: str = ""
    id_qualifier: str = ""
    id: str = ""


def person_from_nm1(e: list[str]) -> Person:
    """An NM1 segment's elements (NM101 at index 1) as a Person."""
    e = padded(e, 10)
    return Person(e[3], e[4], e[5], e[8], e[9])


def party_from_nm1(e: list[str], tin: str = "") -> Party:
    """An NM1 organization as a Party: NM109 is its NPI when NM108 is XX, its TIN when 24
    or FI (or `tin`, from a REF, when given)."""
    e = padded(e, 10)
    q, ident = e[8], e[9]
    return Party(
        name=e[3],
        id_qualifier=q,
        id=ident,
        npi=ident if q == "XX" else "",
        tin=tin or (ident if q in ("24", "FI") else ""),
    )


def party_from_n1(e: list[str], refs: list[Reference]) -> Party:
    """An N1 segment's elements and the REFs of its loop as a Party."""
    e = e + [""] * (5 - len(e))
    q, ident = e[3], e[4]
    tin = ident if q == "FI" else next((r.value for r in refs if r.qualifier == "TJ"), "")
    npi = ident if q == "XX" else ""
    return Party(e[2], q, ident, npi, tin, tuple(refs))


class ServiceLine(msgspec.Struct, frozen=True, gc=False):
    """Loop 2110: SVC01 procedure, SVC02 charge, SVC03 paid, SVC04 revenue code
    (NUBC), SVC05 units paid, SVC06 submitted procedure when different, and the line's
    adjustments (CAS), remark codes (LQ*HE, RARC), dates, references and amounts."""

    procedure: Procedure
    charge: Decimal
    paid: Decimal
    revenue_code: str = ""
    units: Decimal | None = None
    original_procedure: Procedure | None = None
    adjustments: tuple[Adjustment, ...] = ()
    remarks: tuple[str, ...] = ()
    dates: tuple[DateValue, ...] = ()
    references: tuple[Reference, ...] = ()
    amounts: tuple[AmountValue, ...] = ()
    control_number: str = ""  # REF*6R, the line item control number of the 837

    @property
    def allowed(self) -> Decimal | None:
        """AMT*B6, the allowed amount, when sent."""
        return next((a.amount for a in self.amounts if a.qualifier == "B6"), None)


class Claim(msgspec.Struct, frozen=True, gc=False):
    """Loop 2100: CLP01 patient control number (the 837 CLM01), CLP02 status, CLP03
    charge, CLP04 paid, CLP05 patient responsibility, CLP06 claim filing indicator,
    CLP07 payer claim control number, CLP08 facility type, CLP09 frequency."""

    patient_control_number: str
    status: str
    charge: Decimal
    paid: Decimal
    patient_responsibility: Decimal | None = None
    filing_indicator: str = ""
    payer_claim_control_number: str = ""
    facility_type: str = ""
    frequency: str = ""
    patient: Person | None = None
    insured: Person | None = None
    adjustments: tuple[Adjustment, ...] = ()
    service_lines: tuple[ServiceLine, ...] = ()
    remarks: tuple[str, ...] = ()  # MOA/MIA remark codes (RARC)
    dates: tuple[DateValue, ...] = ()
    references: tuple[Reference, ...] = ()
    amounts: tuple[AmountValue, ...] = ()

    @property
    def is_reversal(self) -> bool:
        return self.status == REVERSAL

    def all_adjustments(self) -> tuple[Adjustment, ...]:
        """Claim-level adjustments followed by those of every service line."""
        out = list(self.adjustments)
        for line in self.service_lines:
            out.extend(line.adjustments)
        return tuple(out)


class ProviderAdjustment(msgspec.Struct, frozen=True, gc=False):
    """One PLB adjustment: PLB01 provider id, PLB02 fiscal period date, PLB03-1 reason
    (e.g. WO overpayment recovery, L6 interest, CS), PLB03-2 reference, PLB04 amount.
    A positive amount reduces the payment."""

    provider_id: str
    fiscal_period: date | None
    reason: str
    reference: str
    amount: Decimal


class Remittance(msgspec.Struct, frozen=True, gc=False):
    """One 835 transaction set. ``findings`` are those of this set: its balancing
    (005010X221A1 section 1.10.2.1) and the element errors met while reading it."""

    control_number: str  # ST02
    interchange_control: str  # ISA13
    group_control: str  # GS06
    version: str  # GS08 (or ST03)
    handling_code: str  # BPR01: C payment+advice, H advice only, I remittance info, P prenote
    amount: Decimal  # BPR02 total actual provider payment
    credit_debit: str  # BPR03: C credit, D debit
    method: str  # BPR04: ACH, BOP, CHK, FWT, NON
    payment_format: str = ""  # BPR05: CCP, CTX
    payment_date: date | None = None  # BPR16
    trace_type: str = ""  # TRN01
    trace_number: str = ""  # TRN02, check or EFT trace number
    payer_id: str = ""  # TRN03, originating company identifier
    currency: str = "USD"  # CUR02
    production_date: date | None = None  # DTM*405
    receiver_id: str = ""  # REF*EV
    payer: Party | None = None
    payee: Party | None = None
    claims: tuple[Claim, ...] = ()
    provider_adjustments: tuple[ProviderAdjustment, ...] = ()
    findings: tuple[Finding, ...] = ()

    @property
    def balanced(self) -> bool:
        return not self.findings

    def total_paid(self) -> Decimal:
        """Sum of CLP04."""
        return sum((c.paid for c in self.claims), Decimal(0))


class RemittanceBatch(msgspec.Struct, frozen=True, kw_only=True, gc=False):
    """Every 835 of one interchange, and every finding (envelope ones included)."""

    interchange_control: str
    remittances: tuple[Remittance, ...]
    findings: tuple[Finding, ...]
