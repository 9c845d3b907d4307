"""Synthetic people, charge tables and HL7 v2.5.1 segment builders for the simulated EHR day.

Everything a message of `ehr_day` contains comes from here: fixed lists of invented names
(so no real person can appear), a price table for the demonstration charge codes of
`isthmus.demo.chart`, and one small function per segment. Field numbers follow
HL7 v2.5.1: chapter 2 (MSH, control), chapter 3 (EVN, PID, PV1, MRG, patient administration),
chapter 6 (FT1, financial management), chapter 7 (OBR/OBX) and chapter 10 (SCH/AIS).

Values never contain the separators `|^~\\&`; `field()` refuses any that would, rather than
escaping them, so every generated message stays trivially round-trippable.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import Decimal

VERSION = "2.5.1"
_FORBIDDEN = frozenset("|^~\\&\r\n")

# Invented surnames and common given names: no combination names a real patient or clinician.
FAMILY_NAMES = (
    "ALDERWICK",
    "BRAMBLETON",
    "CASTELLANE",
    "DUNMORROW",
    "ELLSWORTHY",
    "FENWICKE",
    "GARLANDER",
    "HOLLISTONE",
    "IVERSBY",
    "JARDINELL",
    "KESTRELL",
    "LANGMEADE",
    "MARLOWBY",
    "NORCROFT",
    "OAKHURSTE",
    "PELLINGHAM",
    "QUINLOWE",
    "RADCLEVE",
    "SEDGEWORTH",
    "THORNBRIDGE",
)
GIVEN_NAMES = (
    "ALEX",
    "BLAIR",
    "CASEY",
    "DANA",
    "EMERY",
    "FINLEY",
    "GRAY",
    "HARPER",
    "IVY",
    "JORDAN",
    "KAI",
    "LOGAN",
    "MORGAN",
    "NOEL",
    "OAKLEY",
    "PARKER",
    "QUINN",
    "REESE",
    "SAGE",
    "TAYLOR",
)
STREETS = ("1 HARBOR WAY", "22 ELM ROW", "305 MILL LANE", "48 CANAL STREET", "9 RIDGE ROAD")
# Fictitious providers; the ten digits are not issued NPIs.
PROVIDERS = (
    ("1000000001", "VANTERPOOL", "ROBIN"),
    ("1000000002", "ESKERDALE", "JAMIE"),
    ("1000000003", "HALVERSTON", "SKYLER"),
    ("1000000004", "MIREBROOK", "AVERY"),
    ("1000000005", "TOLLENBERG", "CAMERON"),
    ("1000000006", "WESTRAVEN", "DREW"),
)
DEPARTMENTS = {
    "Imaging": ("RAD", "RADIOLOGY"),
    "Laboratory": ("LAB", "LABORATORY"),
    "Emergency": ("ED", "EMERGENCY DEPARTMENT"),
    "Pharmacy": ("PHARM", "PHARMACY"),
    "Surgery": ("SURG", "SURGERY"),
    "Cardiology": ("CARD", "CARDIOLOGY"),
}


@dataclass(frozen=True)
class CodeSpec:
    """One chargeable item: price range per unit, and which patient classes receive it."""

    code: str
    description: str
    system: str  # coding system of FT1-7.3: CPT or HCPCS
    service_line: str  # as in demo/chart.py; decides the FT1-13 department
    low: int
    high: int
    max_qty: int
    classes: str  # PV1-2 patient classes (HL7 table 0004) that may receive it
    weight: int

    @property
    def department(self) -> tuple[str, str]:
        return DEPARTMENTS[self.service_line]


# The mapped demonstration codes (demo/chart.py maps procedure codes only).
CHARGE_CODES = (
    CodeSpec("71045", "XR CHEST 1 VIEW", "CPT", "Imaging", 150, 350, 1, "EOI", 6),
    CodeSpec("71046", "XR CHEST 2 VIEWS", "CPT", "Imaging", 180, 450, 1, "EOI", 5),
    CodeSpec("74177", "CT ABD PELVIS W CONTRAST", "CPT", "Imaging", 900, 1500, 1, "EOI", 2),
    CodeSpec("70450", "CT HEAD WO CONTRAST", "CPT", "Imaging", 600, 1200, 1, "EOI", 2),
    CodeSpec("80053", "COMPREHENSIVE METABOLIC PANEL", "CPT", "Laboratory", 40, 200, 1, "EOI", 12),
    CodeSpec("85025", "CBC W AUTO DIFF", "CPT", "Laboratory", 20, 90, 1, "EOI", 12),
    CodeSpec("81001", "URINALYSIS AUTO W SCOPE", "CPT", "Laboratory", 20, 60, 1, "EOI", 6),
    CodeSpec("84443", "THYROID STIMULATING HORMONE", "CPT", "Laboratory", 40, 150, 1, "OI", 4),
    CodeSpec("99281", "ED VISIT LEVEL 1", "CPT", "Emergency", 150, 300, 1, "E", 2),
    CodeSpec("99283", "ED VISIT LEVEL 3", "CPT", "Emergency", 400, 900, 1, "E", 4),
    CodeSpec("99285", "ED VISIT LEVEL 5", "CPT", "Emergency", 1200, 3000, 1, "E", 2),
    CodeSpec("99011", "ED SPECIAL SERVICE", "CPT", "Emergency", 50, 250, 1, "E", 2),
    CodeSpec("J1100", "DEXAMETHASONE SODIUM PHOS 1 MG", "HCPCS", "Pharmacy", 5, 40, 10, "EOI", 6),
    CodeSpec("J2405", "ONDANSETRON HCL 1 MG", "HCPCS", "Pharmacy", 5, 30, 8, "EI", 5),
    CodeSpec("J0696", "CEFTRIAXONE SODIUM 250 MG", "HCPCS", "Pharmacy", 20, 80, 4, "EI", 4),
    CodeSpec("27447", "TOTAL KNEE ARTHROPLASTY", "CPT", "Surgery", 18000, 40000, 1, "I", 1),
    CodeSpec("47562", "LAPAROSCOPIC CHOLECYSTECTOMY", "CPT", "Surgery", 5000, 15000, 1, "I", 1),
    CodeSpec("93000", "ECG ROUTINE 12 LEAD", "CPT", "Cardiology", 50, 250, 1, "EOI", 5),
    CodeSpec("93306", "TTE COMPLETE W DOPPLER", "CPT", "Cardiology", 800, 2500, 1, "OI", 2),
)
UNMAPPED_CODE = CodeSpec("Z9999", "UNLISTED SUPPLY", "HCPCS", "Pharmacy", 10, 500, 1, "EOI", 0)


@dataclass(frozen=True)
class SimPatient:
    """A synthetic patient with one visit at one facility."""

    facility: str
    mrn: str
    account: str
    visit: str
    family: str
    given: str
    birth: date
    sex: str
    pclass: str  # PV1-2: E emergency, O outpatient, I inpatient (HL7 table 0004)
    room: int
    street: str
    provider: tuple[str, str, str]
    arrival: int  # seconds after midnight of the arrival (A04/A01)
    until: int  # seconds after midnight of the discharge, or the end of the simulated visit

    @property
    def auth(self) -> str:
        return f"{self.facility}MRN"

    @property
    def key(self) -> str:
        return f"{self.auth}|{self.mrn}"


@dataclass(frozen=True)
class ChargeLine:
    """One FT1 segment: a charge (CG) or a credit (CD), amounts positive, in `currency`."""

    txn_id: str
    spec: CodeSpec
    ttype: str  # FT1-6, HL7 table 0017: CG charge, CD credit
    quantity: int
    unit: Decimal
    extended: Decimal
    currency: str
    provider: tuple[str, str, str]


def field(value: str) -> str:
    """Return `value` unchanged, refusing any HL7 separator (generated data never needs one)."""
    if not _FORBIDDEN.isdisjoint(value):
        raise ValueError(f"separator character in generated value {value!r}")
    return value


def segment(name: str, fields: dict[int, str]) -> str:
    """Build `name|f1|f2...` from a sparse field-number map (numbers as in the standard)."""
    out = [""] * (max(fields, default=0) + 1)
    out[0] = name
    for number, value in fields.items():
        out[number] = value
    return "|".join(out)


def timestamp(day: date, seconds: int) -> str:
    """HL7 DTM YYYYMMDDHHMMSS for `seconds` after midnight of `day`."""
    h, rest = divmod(seconds, 3600)
    return f"{day:%Y%m%d}{h:02d}{rest // 60:02d}{rest % 60:02d}"


def msh(facility: str, ts: str, msg_type: str, control_id: str, version: str = VERSION) -> str:
    """MSH (HL7 2.5.1 section 2.15.9): MSH-4 facility, MSH-7 time, MSH-9/10/11/12."""
    return "MSH|^~\\&|" + "|".join(
        ("SIMEHR", facility, "ISTHMUS", "HUB", ts, "", msg_type, control_id, "P", version)
    )


def evn(code: str, ts: str) -> str:
    """EVN (HL7 v2.5.1 section 3.4.1): EVN-1 event type code, EVN-2 recorded date/time."""
    return segment("EVN", {1: code, 2: ts})


def cx(ident: str, authority: str, id_type: str) -> str:
    """A CX identifier (HL7 v2.5.1 chapter 2A, CX data type): CX-1 id, CX-4 assigning authority,
    CX-5 identifier
    type code (e.g. MR)."""
    return f"{field(ident)}^^^{field(authority)}^{id_type}"


def xcn(provider: tuple[str, str, str]) -> str:
    """An XCN provider (HL7 v2.5.1 chapter 2A, XCN data type): XCN-1 id (the NPI here), XCN-2
    family name, XCN-3
    given name."""
    npi, family, given = provider
    return f"{npi}^{family}^{given}"


def pid(p: SimPatient, *, updated: bool = False, mrn_field: str | None = None) -> str:
    """PID: 3 identifier (MR), 5 name, 7 birth, 8 sex, 11 address, 13 phone, 18 account."""
    phone = f"555-{(int(p.mrn[-4:]) + (7 if updated else 0)) % 100:04d}"
    street = STREETS[(STREETS.index(p.street) + 1) % len(STREETS)] if updated else p.street
    return segment(
        "PID",
        {
            1: "1",
            3: cx(p.mrn, p.auth, "MR") if mrn_field is None else mrn_field,
            5: f"{field(p.family)}^{field(p.given)}^^^^^L",
            7: f"{p.birth:%Y%m%d}",
            8: p.sex,
            11: f"{street}^^ISTHMUS CITY^WI^53700^USA",
            13: phone,
            18: cx(p.account, p.facility, "AN"),
        },
    )


def location(p: SimPatient) -> str:
    """PV1-3 (PL): point of care ^ room ^ bed ^ facility (HD)."""
    unit = {"E": "ED", "O": "OPC", "I": "4W"}[p.pclass]
    return f"{unit}^{p.room}^A^{field(p.facility)}"


def pv1(p: SimPatient, admit_ts: str, *, discharge_ts: str = "") -> str:
    """PV1: 2 class, 3 location, 4 admission type, 7 attending, 10 service, 19 visit number."""
    fields = {
        1: "1",
        2: p.pclass,
        3: location(p),
        4: {"E": "E", "O": "R", "I": "U"}[p.pclass],
        7: xcn(p.provider),
        10: {"E": "EME", "O": "MED", "I": "MED"}[p.pclass],
        19: cx(p.visit, p.facility, "VN"),
        44: admit_ts,
    }
    if discharge_ts:
        fields[36] = "01"  # discharge disposition (user table 0112): home
        fields[45] = discharge_ts
    return segment("PV1", fields)


def ft1(
    set_id: int, line: ChargeLine, day: date, *, date_field: str = "", amount_field: str = ""
) -> str:
    """FT1 (HL7 2.5.1 section 6.5.1); FT1-11/12 are CP whose MO is amount&currency."""
    spec = line.spec
    dept, dept_name = spec.department
    return segment(
        "FT1",
        {
            1: str(set_id),
            2: field(line.txn_id),
            4: date_field or f"{day:%Y%m%d}",
            5: f"{day:%Y%m%d}",
            6: line.ttype,
            7: f"{field(spec.code)}^{spec.description}^{spec.system}",
            10: str(line.quantity),
            11: amount_field or f"{line.extended}&{line.currency}",
            12: f"{line.unit}&{line.currency}",
            13: f"{dept}^{dept_name}",
            20: xcn(line.provider),
        },
    )


def mrg(dup: SimPatient) -> str:
    """MRG: 1 prior patient identifier list, 3 prior account number, 5 prior visit."""
    return segment(
        "MRG",
        {
            1: cx(dup.mrn, dup.auth, "MR"),
            3: cx(dup.account, dup.facility, "AN"),
            5: cx(dup.visit, dup.facility, "VN"),
        },
    )


def oru_body(p: SimPatient, ts: str, order: str) -> list[str]:
    """ORU^R01 result (chapter 7): PID, OBR, OBX. The hub routes it nowhere: unsupported."""
    return [
        pid(p),
        segment("OBR", {1: "1", 3: f"{order}^SIMLAB", 4: "2345-7^GLUCOSE^LN", 7: ts}),
        segment(
            "OBX",
            {
                1: "1",
                2: "NM",
                3: "2345-7^GLUCOSE^LN",
                5: "98",
                6: "mg/dL",
                7: "70-99",
                8: "N",
                11: "F",
            },
        ),
    ]


def siu_body(p: SimPatient, ts: str, appt: str) -> list[str]:
    """SIU^S12 new appointment (chapter 10): SCH, PID, RGS, AIS."""
    return [
        segment(
            "SCH",
            {
                1: f"{appt}^SIMEHR",
                2: f"{appt}^SIMEHR",
                7: "FOLLOWUP^FOLLOW UP",
                11: f"^^30^{ts}",
                25: "Booked",
            },
        ),
        pid(p),
        segment("RGS", {1: "1"}),
        segment("AIS", {1: "1", 3: "99213^OFFICE VISIT^CPT", 4: ts}),
    ]
