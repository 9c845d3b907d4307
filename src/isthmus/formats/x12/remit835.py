"""835 (005010X221A1) transaction sets to canonical remittances, with their balancing.

Reads the segments of each ST*835 of an interchange in one pass (``remit835_set``),
tracking the loop as the guide defines it (section 2.4): header (BPR, TRN, CUR, REF*EV,
DTM*405), 1000A payer (N1*PR, REF), 1000B payee (N1*PE, REF*TJ/PQ), 2000 header number
(LX), 2100 claim (CLP, CAS, NM1*QC/IL, MIA, MOA, REF, DTM, AMT), 2110 service line (SVC,
DTM, CAS, REF, AMT, LQ*HE) and the summary PLB. Segments the guide defines but the hub
does not need (N2, N3, N4, PER, QTY, RDM, TS2, TS3) are skipped; any other is a finding
(IK304 code 2).

Element errors (an amount that is not a number, a bad date, a missing CLP01) are
findings of level ELEMENT with their IK403 code; the value is taken as zero (or None)
(``remit835_elements``). Balancing (section 1.10.2.1) is in ``balancing.py``, applied as
each claim and line is closed (``remit835_claims``).

Speed (docs/benchmarks.md): one pass. :func:`parse_835` splits each segment once and
feeds the control segments to the envelope checks (``envelope.EnvelopeCheck``) while it
reads the sets, instead of walking the interchange twice; a claim or a service line is
built as soon as the next one starts, with no intermediate objects. Amounts and dates
are parsed once per distinct text in a set (fee schedules and service dates repeat; the
``Decimal`` from text is the costliest step left), balancing sums each line's CAS once.
The findings come out in the order the checks are listed in: the reading of the set, then
its claims' and lines' amounts, then the BPR, the balancing, BPR16. :func:`remittances`
does the same over any iterable of segments (``stream.py`` feeds it a file block by block).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from itertools import repeat

from isthmus.formats.x12.envelope import EnvelopeCheck, TransactionSpan, check_envelope
from isthmus.formats.x12.reader import Interchange, read
from isthmus.formats.x12.remit835_set import CLOSING, Row, read_set
from isthmus.formats.x12.remittance import Remittance, RemittanceBatch


def remittances(
    segments: Iterable[str], es: str, cs: str, chk: EnvelopeCheck
) -> Iterator[Remittance]:
    """Every 835 of an interchange, one at a time, from its segments (the ISA first, as
    texts without their terminators), feeding the envelope checks ``chk`` as it goes.
    Once exhausted, ``chk.finish`` gives the envelope findings."""
    rows = enumerate(map(str.split, segments, repeat(es)))
    nxt = next(rows, None)  # the ISA, read by the caller
    nxt = next(rows, None)
    icn = chk.control_number
    while nxt is not None:
        i, e = nxt
        sid = e[0]
        if sid in CLOSING or sid[:3] in ("ISA", "IEA"):
            chk.control(i, e)
            tx, group = chk.tx, chk.group
            if sid == "ST" and tx is not None and tx.start == i and group is not None:
                if tx.id == "835":
                    rem, nxt = read_set(rows, tx, group.control, group.version, es, cs, icn, chk)
                    yield rem
                    del rem  # the caller holds it as long as it needs
                else:
                    nxt = _skip_set(rows, chk)
                continue
        elif chk.tx is None:
            chk.other(i, sid)
        nxt = next(rows, None)


def _skip_set(rows: Iterator[Row], chk: EnvelopeCheck) -> Row | None:
    """Pass over the body of a set that is not an 835, up to the segment that ends it."""
    for i, e in rows:
        sid = e[0]
        if sid in CLOSING:
            return i, e
        if sid[:3] in ("ISA", "IEA"):
            chk.control(i, e)
    return None


def read_remittance(
    ic: Interchange, span: TransactionSpan, group_control: str = "", version: str = ""
) -> Remittance:
    """One 835 transaction set (``span`` from :func:`check_envelope`) as a Remittance."""
    es, cs = ic.delimiters.element, ic.delimiters.component
    first = span.start + 1
    body = ic.raw[first : span.stop - 1 if span.end >= 0 else span.stop]
    rows = enumerate(map(str.split, body, repeat(es)), first)
    return read_set(rows, span, group_control, version, es, cs, ic.control_number, None)[0]


def parse_835(data: bytes | str | Interchange) -> RemittanceBatch:
    """Every 835 transaction set of an interchange, with envelope and balancing findings.

    Raises :class:`~isthmus.formats.x12.errors.X12Error` only when the ISA is unusable.
    """
    ic = data if isinstance(data, Interchange) else read(data)
    d = ic.delimiters
    chk = EnvelopeCheck(ic.isa)
    out = list(remittances(ic.raw, d.element, d.component, chk))
    raw = ic.raw
    env = chk.finish(len(raw), raw[-1].split(d.element, 1)[0], ic.unterminated)
    findings = env.findings
    for rem in out:
        findings.extend(rem.findings)
    return RemittanceBatch(
        interchange_control=ic.control_number, remittances=tuple(out), findings=tuple(findings)
    )


__all__ = ["check_envelope", "parse_835", "read_remittance", "remittances"]
