"""837P and 837I claims to claim register entries, enough to match their remittances.

Follows 005010X222A2 (professional) and 005010X223A3 (institutional), and reads their
004010 predecessors X098A1 and X096A1, whose loops are the same for what is read here:

* 2000A billing provider HL (HL03 = 20), 2010AA NM1*85 (NPI when NM108 = XX, EIN when
  24) and REF*EI (TIN);
* 2000B subscriber HL (HL03 = 22), SBR (SBR01 payer responsibility, SBR09 claim filing
  indicator), 2010BA NM1*IL subscriber, 2010BB NM1*PR payer;
* 2000C patient HL (HL03 = 23), 2010CA NM1*QC; without it the patient is the subscriber;
* 2300 CLM (CLM01 patient control number, CLM02 total charge, CLM05 facility code and
  claim frequency), REF*F8 payer claim control number (corrected claims), REF*D9
  clearinghouse trace, REF*EA medical record number; loops 2310/2320/2330 (other
  providers, other payers, whose REF*F8 is not this claim's) are skipped;
* 2400 LX with SV1 (professional) or SV2 (institutional), DTP*472 and REF*6R.

A remittance matches a claim by CLP01 = CLM01 and, for corrections, CLP07 = REF*F8.
The total charge must equal the sum of the line charges (CHARGE_UNBALANCED otherwise).
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Final

import msgspec

from isthmus.formats.x12 import finding as f
from isthmus.formats.x12.elements import (
    ZERO,
    Procedure,
    padded,
    parse_amount,
    parse_date,
    procedure,
)
from isthmus.formats.x12.envelope import TransactionSpan, check_envelope
from isthmus.formats.x12.finding import Finding, Level
from isthmus.formats.x12.reader import Interchange, read
from isthmus.formats.x12.remittance import Party, Person, party_from_nm1, person_from_nm1

PROFESSIONAL: Final = "professional"
INSTITUTIONAL: Final = "institutional"
_KIND_BY_GUIDE: Final = {
    "X222": PROFESSIONAL,
    "X098": PROFESSIONAL,
    "X223": INSTITUTIONAL,
    "X096": INSTITUTIONAL,
}


class ClaimLine(msgspec.Struct, frozen=True, kw_only=True):
    """Loop 2400: LX01 line number, SV1-1/SV2-2 procedure, SV1-2/SV2-3 charge, units,
    SV2-1 revenue code, DTP*472 service date(s), REF*6R line item control number."""

    number: str
    procedure: Procedure
    charge: Decimal
    units: Decimal | None = None
    unit_basis: str = ""
    revenue_code: str = ""
    service_date: date | None = None
    service_end: date | None = None
    control_number: str = ""


class ClaimEntry(msgspec.Struct, frozen=True, kw_only=True):
    """One 2300 claim with what surrounds it in the HL hierarchy."""

    kind: str  # "professional" or "institutional"
    version: str  # GS08 / ST03
    interchange_control: str
    transaction_control: str
    billing_provider: Party
    subscriber: Person
    patient: Person
    payer: Party
    payer_responsibility: str = ""  # SBR01: P primary, S secondary, T tertiary
    filing_indicator: str = ""  # SBR09
    patient_control_number: str  # CLM01
    total_charge: Decimal  # CLM02
    facility_code: str = ""  # CLM05-1 (place of service / type of bill)
    frequency: str = ""  # CLM05-3: 1 original, 7 replacement, 8 void
    payer_claim_control_number: str = ""  # REF*F8
    clearinghouse_trace: str = ""  # REF*D9
    medical_record: str = ""  # REF*EA
    lines: tuple[ClaimLine, ...] = ()


class ClaimBatch(msgspec.Struct, frozen=True, kw_only=True):
    """The claims of an 837 interchange (ISA13), and the findings of its envelope and sets."""

    interchange_control: str
    claims: tuple[ClaimEntry, ...]
    findings: tuple[Finding, ...]


_NOBODY: Final = Person(last="")
_NOPARTY: Final = Party(name="")


class _State:
    __slots__ = (
        "billing",
        "claim",
        "claim_at",
        "filing",
        "findings",
        "lines",
        "loop",
        "patient",
        "payer",
        "refs",
        "responsibility",
        "subscriber",
        "tin",
    )

    def __init__(self) -> None:
        self.billing: list[str] | None = None
        self.tin = ""
        self.subscriber = _NOBODY
        self.patient: Person | None = None
        self.payer = _NOPARTY
        self.responsibility = ""
        self.filing = ""
        self.claim: list[str] | None = None
        self.claim_at = -1
        self.refs: dict[str, str] = {}
        self.lines: list[dict[str, object]] = []
        self.loop = ""
        self.findings: list[Finding] = []


def read_claims(ic: Interchange, span: TransactionSpan, version: str = "") -> list[ClaimEntry]:
    """The claims of one 837 transaction set, appending findings to ``findings``."""
    return _read(ic, span, version, [])


def _read(  # noqa: C901 - one branch per 837 segment, in loop order
    ic: Interchange, span: TransactionSpan, version: str, findings: list[Finding]
) -> list[ClaimEntry]:
    raw = ic.raw
    es = ic.delimiters.element
    cs = ic.delimiters.component
    version = span.convention or version
    kind = next((k for g, k in _KIND_BY_GUIDE.items() if g in version), "")
    st = _State()
    out: list[ClaimEntry] = []

    def money(e: list[str], n: int, i: int) -> Decimal:
        v = e[n] if n < len(e) else ""
        d = parse_amount(v) if v else None
        if d is None:
            code = f.IK4_INVALID_CHARACTER if v else f.IK4_REQUIRED_MISSING
            findings.append(
                Finding(
                    level=Level.ELEMENT,
                    code=code,
                    text="amount is not valid",
                    segment_index=i,
                    segment_id=e[0],
                    loop=st.loop,
                    position=i - span.start + 1,
                    element=n,
                    value=v,
                )
            )
            return ZERO
        return d

    def flush() -> None:
        if st.claim is None:
            return
        c = st.claim
        lines = tuple(ClaimLine(**ln) for ln in st.lines)  # type: ignore[arg-type]
        kind_ = kind or (INSTITUTIONAL if any(x.revenue_code for x in lines) else PROFESSIONAL)
        clm05 = c[5].split(cs) if c[5] else []
        entry = ClaimEntry(
            kind=kind_,
            version=version,
            interchange_control=ic.control_number,
            transaction_control=span.control,
            billing_provider=party_from_nm1(st.billing, st.tin) if st.billing else _NOPARTY,
            subscriber=st.subscriber,
            patient=st.patient or st.subscriber,
            payer=st.payer,
            payer_responsibility=st.responsibility,
            filing_indicator=st.filing,
            patient_control_number=c[1],
            total_charge=money(c, 2, st.claim_at),
            facility_code=clm05[0] if clm05 else "",
            frequency=clm05[2] if len(clm05) > 2 else "",
            payer_claim_control_number=st.refs.get("F8", ""),
            clearinghouse_trace=st.refs.get("D9", ""),
            medical_record=st.refs.get("EA", ""),
            lines=lines,
        )
        out.append(entry)
        total = sum((x.charge for x in lines), ZERO)
        if lines and total != entry.total_charge:
            diff = entry.total_charge - total
            findings.append(
                Finding(
                    level=Level.BALANCE,
                    code=f.CHARGE_UNBALANCED,
                    text=f"CLM02 {entry.total_charge} != sum of line charges {total}",
                    segment_index=st.claim_at,
                    segment_id="CLM",
                    loop="2300",
                    position=st.claim_at - span.start + 1,
                    difference=diff,
                )
            )
        st.claim = None
        st.lines = []
        st.refs = {}

    stop = span.stop - 1 if span.end >= 0 else span.stop
    line: dict[str, object] | None = None
    for i in range(span.start + 1, stop):
        e = raw[i].split(es)
        sid = e[0]
        if sid == "LX":
            line = {"number": e[1] if len(e) > 1 else ""}
            st.lines.append(line)
            st.loop = "2400"
        elif sid in ("SV1", "SV2"):
            if line is None:
                continue
            e = padded(e, 6)
            if sid == "SV1":
                line.update(
                    procedure=procedure(e[1], cs),
                    charge=money(e, 2, i),
                    unit_basis=e[3],
                    units=parse_amount(e[4]) if e[4] else None,
                )
            else:
                line.update(
                    revenue_code=e[1],
                    procedure=procedure(e[2], cs) if e[2] else Procedure("", ""),
                    charge=money(e, 3, i),
                    unit_basis=e[4],
                    units=parse_amount(e[5]) if e[5] else None,
                )
        elif sid == "DTP" and line is not None and st.loop == "2400" and e[1] == "472":
            v = padded(e, 4)[3].split("-")
            line["service_date"] = parse_date(v[0])
            line["service_end"] = parse_date(v[1]) if len(v) > 1 else None
        elif sid == "REF":
            e = padded(e, 3)
            if st.loop == "2300":
                st.refs.setdefault(e[1], e[2])
            elif st.loop == "2400" and line is not None and e[1] == "6R":
                line["control_number"] = e[2]
            elif st.loop == "2010AA" and e[1] in ("EI", "SY"):
                st.tin = e[2]
        elif sid == "CLM":
            flush()
            st.claim, st.claim_at, st.loop, line = padded(e, 6), i, "2300", None
        elif sid == "NM1":
            q = e[1] if len(e) > 1 else ""
            if st.claim is not None:
                st.loop = "2420" if st.loop in ("2400", "2420") else "2310"
            elif q == "85":
                st.billing, st.tin, st.loop = e, "", "2010AA"
            elif q == "IL":
                st.subscriber, st.loop = person_from_nm1(e), "2010BA"
            elif q == "PR":
                st.payer, st.loop = party_from_nm1(e), "2010BB"
            elif q == "QC":
                st.patient, st.loop = person_from_nm1(e), "2010CA"
            else:
                st.loop = "1000" if st.billing is None else "2010"
        elif sid == "HL":
            flush()
            level = e[3] if len(e) > 3 else ""
            line = None
            st.loop = {"20": "2000A", "22": "2000B", "23": "2000C"}.get(level, "2000")
            if level == "20":
                st.billing, st.tin = None, ""
            elif level == "22":
                st.subscriber, st.patient, st.payer = _NOBODY, None, _NOPARTY
            elif level == "23":
                st.patient = None
        elif sid == "SBR":
            if st.claim is not None:
                st.loop = "2320"
            else:
                e = padded(e, 10)
                st.responsibility, st.filing = e[1], e[9]
        elif sid in ("SVD", "LIN"):
            st.loop = "2430"
    flush()
    for ln_ in out:
        for x in ln_.lines:
            if not x.procedure.code and not x.revenue_code:
                findings.append(
                    Finding(
                        level=Level.ELEMENT,
                        code=f.IK4_REQUIRED_MISSING,
                        text=f"line {x.number} has no procedure",
                        segment_id="SV1",
                        loop="2400",
                    )
                )
    return out


def parse_837(data: bytes | str | Interchange) -> ClaimBatch:
    """Every claim of every 837 transaction set of an interchange, with findings.

    Raises :class:`~isthmus.formats.x12.errors.X12Error` only when the ISA is unusable.
    """
    ic = data if isinstance(data, Interchange) else read(data)
    env = check_envelope(ic)
    findings = list(env.findings)
    claims: list[ClaimEntry] = []
    for g in env.groups:
        for t in g.transactions:
            if t.id == "837":
                claims.extend(_read(ic, t, g.version, findings))
    return ClaimBatch(
        interchange_control=ic.control_number, claims=tuple(claims), findings=tuple(findings)
    )
