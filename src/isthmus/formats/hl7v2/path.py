"""Field paths such as ``PID-3(2).1`` or ``FT1(2)-11.1``: HL7's own way to name a value.

The notation follows HL7 v2.5.1 chapter 2 (2.5.5, "PID-3" for a field, "PID-3.1" for a
component) with the conventions of HAPI's Terser: a segment occurrence in parentheses after
the segment ID, a field repetition in parentheses after the field number, and a missing
component or subcomponent meaning the first one. A path therefore always names one primitive
value: ``PID-3`` is ``PID-3(1).1.1``.
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import NamedTuple

_PATH = re.compile(r"([A-Z][A-Z0-9]{2})(?:\((\d+)\))?-(\d+)(?:\((\d+)\))?(?:\.(\d+)(?:\.(\d+))?)?")


class FieldPath(NamedTuple):
    """A parsed field path, every part 1-based and explicit (occurrence, repetition,
    component and subcomponent default to 1)."""

    segment: str
    occurrence: int
    field: int
    repetition: int
    component: int
    subcomponent: int


@lru_cache(maxsize=1024)
def parse_path(path: str) -> FieldPath:
    """Read a path; a path that does not follow the notation is a programming error."""
    m = _PATH.fullmatch(path.strip())
    if m is None:
        raise ValueError(f"not an HL7 field path: {path!r} (expected e.g. 'PID-3(2).1.1')")
    seg, occ, fld, rep, comp, sub = m.groups()
    return FieldPath(
        seg,
        int(occ) if occ else 1,
        int(fld),
        int(rep) if rep else 1,
        int(comp) if comp else 1,
        int(sub) if sub else 1,
    )
