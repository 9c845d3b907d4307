"""Claim edits: what an 837 claim must pass before it leaves for the clearinghouse.

A practical depth of 005010X222A1 (837P) and 005010X223A2 (837I), the checks a
clearinghouse front end rejects on (its 999 and 277CA), each failure located by segment
id, position in the set (ST = 1, as IK302 counts) and element:

* envelope: SE01, GE01 and IEA01 counts and control numbers (``check_envelope``); a
  problem with the set, group or interchange fails every claim in it;
* balance: CLM02 = the sum of SV1-02 / SV2-03 line charges (X222A1/X223A2 2300 CLM02 note);
* identifiers: NPI check digit, Luhn over "80840" + the first nine digits (CMS, NPI
  standard, 45 CFR 162.406), on every NM1 with NM108 = XX;
* required loops and elements: 2010AA NM1*85 with NM108 XX (an NPI, required in 005010),
  2010BA NM1*IL with its member id, 2010BB NM1*PR with its payer id, SBR, CLM01/CLM02/CLM05,
  HI with a principal diagnosis (ABK/BK), at least one 2400 LX with SV1 or SV2; for an 837I
  also DTP*434 statement dates and CL1;
* code sets: CLM05-1 two digits (place of service for 837P, facility type for 837I),
  CLM05-2 B (837P) / A (837I), CLM05-3 frequency 1, 7 or 8 (7 and 8 need REF*F8), SV1-01
  qualifier HC/ER/IV/WK, SV2-01 a revenue code of 4 digits, DTP*472 a valid date;
* duplicate: the same patient control number with the same content already submitted
  (``digest`` of the claim's own segments, compared with what the caller has sent).

Pure: the caller passes what it has sent before. Failure texts carry codes and positions,
never names, member ids or diagnoses (no PHI): they go to the ``claim-edits`` queue.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from decimal import Decimal
from typing import Final

import msgspec

from isthmus.formats.x12.elements import ZERO, padded, parse_amount, parse_date, split_composite
from isthmus.formats.x12.envelope import check_envelope
from isthmus.formats.x12.finding import Level
from isthmus.formats.x12.reader import Delimiters, Interchange, read

PROFESSIONAL_PROCEDURE_QUALIFIERS: Final = frozenset({"HC", "ER", "IV", "WK"})
INSTITUTIONAL_PROCEDURE_QUALIFIERS: Final = frozenset({"HC", "HP", "IV", "WK"})
FREQUENCIES: Final = frozenset({"1", "7", "8"})
REPLACEMENTS: Final = frozenset({"7", "8"})
PRINCIPAL_DIAGNOSIS: Final = frozenset({"ABK", "BK"})
NPI_PREFIX: Final = "80840"

# edit codes (stable: the work queue and the tests name them)
ENVELOPE: Final = "envelope"
CHARGE_TOTAL: Final = "charge-total"
NPI_CHECK_DIGIT: Final = "npi-check-digit"
REQUIRED: Final = "required"
CODE_SET: Final = "code-set"
DUPLICATE: Final = "duplicate"


class EditFailure(msgspec.Struct, frozen=True, kw_only=True):
    """One failed edit, where it is: no data copied (no PHI)."""

    code: str
    text: str
    segment_id: str = ""
    position: int = 0  # in the transaction set, ST = 1
    element: int = 0
    component: int = 0
    loop: str = ""

    def __str__(self) -> str:
        where = self.segment_id
        if self.element:
            where += f"{self.element:02d}"
            if self.component:
                where += f"-{self.component}"
        return f"{self.code} at {where or 'envelope'} (position {self.position}): {self.text}"


class ScrubbedClaim(msgspec.Struct, frozen=True, kw_only=True):
    """One 2300 claim, its edits, and the segments the outbound batch is rebuilt from.

    The segment blocks are raw text in the source's delimiters (``delimiters``): ``header``
    from BHT to the first HL (1000A submitter, 1000B receiver), then the claim's 2000A
    billing provider, 2000B subscriber, 2000C patient (empty when the patient is the
    subscriber) and the 2300 claim with its lines."""

    kind: str  # "professional" or "institutional"
    guide: str
    patient_control_number: str
    payer_id: str
    total_charge: Decimal
    frequency: str
    payer_claim_control_number: str
    digest: str
    failures: tuple[EditFailure, ...]
    delimiters: Delimiters
    header: tuple[str, ...]
    billing: tuple[str, ...]
    subscriber: tuple[str, ...]
    patient: tuple[str, ...]
    claim: tuple[str, ...]

    @property
    def clean(self) -> bool:
        return not self.failures


def npi_valid(npi: str) -> bool:
    """Ten digits whose last is the Luhn check digit of "80840" + the first nine."""
    if len(npi) != 10 or not npi.isdigit():
        return False
    digits = NPI_PREFIX + npi[:9]
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = int(ch)
        if i % 2 == 0:  # rightmost of the payload is doubled (the check digit follows it)
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return (10 - total % 10) % 10 == int(npi[9])


def digest(segments: tuple[str, ...] | list[str]) -> str:
    """The content of a claim, for the duplicate edit (sha256 of its segments)."""
    return hashlib.sha256("\x1e".join(segments).encode()).hexdigest()


class _Claim:
    __slots__ = ("at", "failures", "lines", "raw", "refs", "seen")

    def __init__(self, at: int) -> None:
        self.at = at
        self.raw: list[str] = []
        self.failures: list[EditFailure] = []
        self.lines: list[tuple[int, Decimal]] = []
        self.refs: set[str] = set()
        self.seen: set[str] = set()


def scrub(
    data: bytes | str | Interchange, submitted: Mapping[str, str] | None = None
) -> list[ScrubbedClaim]:
    """Every 837 claim of an interchange with the edits it fails.

    ``submitted`` maps a patient control number to the digest of the claim last sent under
    it: the same number with the same digest is a duplicate (a changed claim is not; it
    should be a replacement, frequency 7). Raises X12Error only when the ISA is unusable.
    """
    ic = data if isinstance(data, Interchange) else read(data)
    env = check_envelope(ic)
    sent = submitted or {}
    outer = [
        _envelope_failure(x.segment_id, x.element, x.text)
        for x in env.findings
        if x.level in (Level.INTERCHANGE, Level.GROUP)
    ]
    out: list[ScrubbedClaim] = []
    seen_in_file: dict[str, str] = {}
    for g in env.groups:
        for t in g.transactions:
            if t.id != "837":
                continue
            set_failures = outer + [
                _envelope_failure(x.segment_id, x.element, x.text)
                for x in env.findings
                if x.level is Level.TRANSACTION and t.start <= x.segment_index < max(t.stop, 1)
            ]
            out += _scrub_set(
                ic,
                t.start,
                t.end,
                t.stop,
                t.convention or g.version,
                set_failures,
                sent,
                seen_in_file,
            )
    return out


def _envelope_failure(segment_id: str, element: int, text: str) -> EditFailure:
    return EditFailure(code=ENVELOPE, text=text, segment_id=segment_id, element=element)


def _scrub_set(  # noqa: C901 - one edit per 837 rule, in segment order
    ic: Interchange,
    start: int,
    end: int,
    stop: int,
    guide: str,
    set_failures: list[EditFailure],
    sent: Mapping[str, str],
    seen_in_file: dict[str, str],
) -> list[ScrubbedClaim]:
    raw = ic.raw
    d = ic.delimiters
    es, cs = d.element, d.component
    institutional = "X223" in guide or "X096" in guide
    kind = "institutional" if institutional else "professional"
    last = stop - 1 if end >= 0 else stop
    header: list[str] = []
    blocks: dict[str, list[str]] = {"20": [], "22": [], "23": []}
    found: dict[str, int] = {}  # what the hierarchy above the claim has: segment -> position
    level = ""
    claim: _Claim | None = None
    out: list[ScrubbedClaim] = []
    payer_id = ""

    def fail(
        c: _Claim,
        code: str,
        text: str,
        sid: str,
        pos: int,
        el: int = 0,
        comp: int = 0,
        loop: str = "",
    ) -> None:
        c.failures.append(
            EditFailure(
                code=code,
                text=text,
                segment_id=sid,
                position=pos,
                element=el,
                component=comp,
                loop=loop,
            )
        )

    def finish(c: _Claim) -> None:  # noqa: C901 - the end-of-claim edits, one per rule
        clm = padded(raw[c.at].split(es), 6)
        pos = c.at - start + 1
        total = parse_amount(clm[2]) if clm[2] else None
        for name, sid, loop in (
            ("billing provider", "NM1*85", "2010AA"),
            ("subscriber", "NM1*IL", "2010BA"),
            ("payer", "NM1*PR", "2010BB"),
            ("SBR", "SBR", "2000B"),
        ):
            if sid not in found:
                fail(c, REQUIRED, f"{name} ({sid}, loop {loop}) missing", sid[:3], pos, loop=loop)
        if not clm[1]:
            fail(c, REQUIRED, "patient control number missing", "CLM", pos, 1, loop="2300")
        if total is None:
            fail(
                c,
                REQUIRED if not clm[2] else CODE_SET,
                "total charge missing or invalid",
                "CLM",
                pos,
                2,
                loop="2300",
            )
        c05 = split_composite(clm[5], cs) if clm[5] else []
        c05 += [""] * (3 - len(c05))
        if not (len(c05[0]) == 2 and c05[0].isdigit()):
            fail(c, CODE_SET, "facility code is not 2 digits", "CLM", pos, 5, 1, "2300")
        want = "A" if institutional else "B"
        if c05[1] and c05[1] != want:
            fail(c, CODE_SET, f"facility code qualifier is not {want}", "CLM", pos, 5, 2, "2300")
        if c05[2] not in FREQUENCIES:
            fail(c, CODE_SET, "claim frequency is not 1, 7 or 8", "CLM", pos, 5, 3, "2300")
        elif c05[2] in REPLACEMENTS and "F8" not in c.refs:
            fail(
                c,
                REQUIRED,
                "a replacement or void needs REF*F8 (payer claim control number)",
                "REF",
                pos,
                1,
                loop="2300",
            )
        if "HI" not in c.seen:
            fail(c, REQUIRED, "principal diagnosis (HI ABK/BK) missing", "HI", pos, loop="2300")
        if institutional:
            for sid, what in (("DTP*434", "statement dates"), ("CL1", "institutional claim code")):
                if sid not in c.seen:
                    fail(c, REQUIRED, f"{what} ({sid}) missing", sid[:3], pos, loop="2300")
        if not c.lines:
            fail(c, REQUIRED, "no service line (LX with SV1/SV2)", "LX", pos, loop="2400")
        elif total is not None:
            lines = sum((x for _, x in c.lines), ZERO)
            if lines != total:
                fail(
                    c,
                    CHARGE_TOTAL,
                    f"CLM02 differs from the sum of {len(c.lines)} line charges by {total - lines}",
                    "CLM",
                    pos,
                    2,
                    loop="2300",
                )
        pcn = clm[1]
        dig = digest(c.raw)
        if pcn and (sent.get(pcn) == dig or seen_in_file.get(pcn) == dig):
            fail(
                c,
                DUPLICATE,
                "same patient control number and content already submitted",
                "CLM",
                pos,
                1,
                loop="2300",
            )
        if pcn:
            seen_in_file[pcn] = dig
        out.append(
            ScrubbedClaim(
                kind=kind,
                guide=guide,
                patient_control_number=pcn,
                payer_id=payer_id,
                total_charge=total if total is not None else ZERO,
                frequency=c05[2],
                payer_claim_control_number=_ref(raw, c, es, "F8"),
                digest=dig,
                failures=tuple(set_failures + c.failures),
                delimiters=d,
                header=tuple(header),
                billing=tuple(blocks["20"]),
                subscriber=tuple(blocks["22"]),
                patient=tuple(blocks["23"]),
                claim=tuple(c.raw),
            )
        )

    pending: list[EditFailure] = []  # hierarchy failures, charged to its claims
    line_open = False
    for i in range(start + 1, last):
        s = raw[i]
        e = s.split(es)
        sid = e[0]
        pos = i - start + 1
        if sid == "HL":
            if claim is not None:
                finish(claim)
                claim = None
            level = padded(e, 4)[3]
            if level == "20":
                blocks["20"], blocks["22"], blocks["23"] = [s], [], []
                found, pending, payer_id = {}, [], ""
            elif level == "22":
                blocks["22"], blocks["23"] = [s], []
                found = {k: v for k, v in found.items() if k == "NM1*85"}
                pending = [x for x in pending if x.loop.startswith("2010A")]
                payer_id = ""
            else:
                blocks["23"] = [s]
            continue
        if sid == "CLM":
            if claim is not None:
                finish(claim)
            claim = _Claim(i)
            claim.failures += pending
            claim.raw.append(s)
            line_open = False
            continue
        if claim is None:
            if not level:
                header.append(s)
                continue
            blocks[level if level in blocks else "23"].append(s)
            if sid == "NM1":
                e = padded(e, 10)
                q = e[1]
                if q in ("85", "IL", "PR"):
                    found["NM1*" + q] = pos
                loop = {"85": "2010AA", "IL": "2010BA", "PR": "2010BB"}.get(q, "")
                if q == "PR":
                    payer_id = e[9]
                if q == "85" and e[8] != "XX":
                    pending.append(
                        EditFailure(
                            code=REQUIRED,
                            text="billing provider has no NPI (NM108 XX)",
                            segment_id="NM1",
                            position=pos,
                            element=8,
                            loop=loop,
                        )
                    )
                if q in ("IL", "PR") and not e[9]:
                    pending.append(
                        EditFailure(
                            code=REQUIRED,
                            text="identifier missing",
                            segment_id="NM1",
                            position=pos,
                            element=9,
                            loop=loop,
                        )
                    )
                if e[8] == "XX" and not npi_valid(e[9]):
                    pending.append(
                        EditFailure(
                            code=NPI_CHECK_DIGIT,
                            text="NPI check digit does not match",
                            segment_id="NM1",
                            position=pos,
                            element=9,
                            loop=loop or "2010A",
                        )
                    )
            elif sid == "SBR":
                found["SBR"] = pos
            continue
        claim.raw.append(s)
        if sid == "LX":
            line_open = True
        elif sid in ("SV1", "SV2") and line_open:
            e = padded(e, 4)
            n = 2 if sid == "SV1" else 3
            amt = parse_amount(e[n]) if e[n] else None
            if amt is None:
                fail(
                    claim,
                    REQUIRED if not e[n] else CODE_SET,
                    "line charge missing or invalid",
                    sid,
                    pos,
                    n,
                    loop="2400",
                )
            claim.lines.append((i, amt or ZERO))
            if sid == "SV1":
                q = split_composite(e[1], cs)[0]
                if q not in PROFESSIONAL_PROCEDURE_QUALIFIERS:
                    fail(
                        claim,
                        CODE_SET,
                        "procedure qualifier is not HC, ER, IV or WK",
                        sid,
                        pos,
                        1,
                        1,
                        "2400",
                    )
            else:
                if not (len(e[1]) == 4 and e[1].isdigit()):
                    fail(claim, CODE_SET, "revenue code is not 4 digits", sid, pos, 1, loop="2400")
                if e[2]:
                    q = split_composite(e[2], cs)[0]
                    if q not in INSTITUTIONAL_PROCEDURE_QUALIFIERS:
                        fail(
                            claim,
                            CODE_SET,
                            "procedure qualifier is not HC, HP, IV or WK",
                            sid,
                            pos,
                            2,
                            1,
                            "2400",
                        )
        elif sid == "DTP":
            e = padded(e, 4)
            if e[1] == "434":
                claim.seen.add("DTP*434")
            if e[1] in ("472", "434"):
                for part in e[3].split("-"):
                    if parse_date(part) is None:
                        fail(
                            claim,
                            CODE_SET,
                            "date is not a valid CCYYMMDD",
                            "DTP",
                            pos,
                            3,
                            loop="2400" if line_open else "2300",
                        )
                        break
        elif sid == "HI" and not line_open:
            q = split_composite(padded(e, 2)[1], cs)[0]
            if q in PRINCIPAL_DIAGNOSIS:
                claim.seen.add("HI")
        elif sid == "CL1":
            claim.seen.add("CL1")
        elif sid == "SBR":
            claim.seen.add("2320")  # other payers follow: their REFs are not this claim's
        elif sid == "REF" and not line_open and "2320" not in claim.seen:
            claim.refs.add(padded(e, 2)[1])
        elif sid == "NM1":
            e = padded(e, 10)
            if e[8] == "XX" and not npi_valid(e[9]):
                fail(
                    claim,
                    NPI_CHECK_DIGIT,
                    "NPI check digit does not match",
                    "NM1",
                    pos,
                    9,
                    loop="2420" if line_open else "2310",
                )
    if claim is not None:
        finish(claim)
    return out


def _ref(raw: list[str], c: _Claim, es: str, qualifier: str) -> str:
    for s in c.raw:
        if s.startswith("REF" + es + qualifier + es):
            return s.split(es)[2]
        if s.startswith(("LX" + es, "SBR" + es)):
            break
    return ""
