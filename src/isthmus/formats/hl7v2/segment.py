"""A segment, split into fields only when one of them is read.

HL7 v2.5.1 chapter 2, 2.5.2 (segments), 2.5.3 (fields) and 2.5.4 (delimiters). Fields are
numbered from 1 after the segment ID. In the header segments (MSH, BHS, FHS) field 1 is the
field separator itself and field 2 the encoding characters (2.14.9.1, 2.14.9.2), so MSH-3
is the sending application as the standard numbers it.

Laziness is the point: the hub reads a handful of fields per message (MSH-9, MSH-10, PID-3,
FT1-*), so a segment is split into fields at the first read, and repetitions, components
and subcomponents are split, and escape sequences replaced, only for the value asked for.
"""

from __future__ import annotations

from isthmus.formats.hl7v2.encoding import HEADER_SEGMENTS, EncodingChars
from isthmus.formats.hl7v2.escape import unescape


class Segment:
    """One segment of a message. ``raw`` is its text as received (escaped)."""

    __slots__ = ("_enc", "_fields", "name", "raw")

    def __init__(self, raw: str, encoding: EncodingChars) -> None:
        self.raw = raw
        self.name = raw[:3]
        self._enc = encoding
        self._fields: list[str] | None = None

    @property
    def encoding(self) -> EncodingChars:
        return self._enc

    def _split(self) -> list[str]:
        fs = self._enc.field
        parts = self.raw.split(fs)
        if self.name in HEADER_SEGMENTS:
            parts.insert(1, fs)
        self._fields = parts
        return parts

    def __len__(self) -> int:
        """Number of fields present, the segment ID excluded."""
        return len(self._fields or self._split()) - 1

    def __repr__(self) -> str:
        return f"Segment({self.raw!r})"

    def field(self, n: int) -> str:
        """Raw (still escaped) field ``n``; "" when absent."""
        f = self._fields or self._split()
        return f[n] if 0 < n < len(f) else ""

    def fields(self) -> list[str]:
        """All raw fields, field 1 first."""
        return (self._fields or self._split())[1:]

    def repetitions(self, field: int) -> list[str]:
        """Raw repetitions of a field; [] when the field is empty or absent."""
        v = self.field(field)
        if not v:
            return []
        if field <= 2 and self.name in HEADER_SEGMENTS:
            return [v]
        return v.split(self._enc.repetition)

    def _repetition(self, field: int, repetition: int) -> str:
        v = self.field(field)
        if not v:
            return ""
        if field <= 2 and self.name in HEADER_SEGMENTS:
            return v if repetition == 1 else ""
        rs = self._enc.repetition
        if rs in v:
            reps = v.split(rs)
            return reps[repetition - 1] if 0 < repetition <= len(reps) else ""
        return v if repetition == 1 else ""

    def components(self, field: int, repetition: int = 1) -> list[str]:
        """Unescaped components of one repetition; [] when it is empty.

        A component that holds subcomponents is returned whole (subcomponent separators
        included); read those with :meth:`subcomponents` or :meth:`value`.
        """
        v = self._repetition(field, repetition)
        if not v:
            return []
        enc = self._enc
        if field <= 2 and self.name in HEADER_SEGMENTS:
            return [v]
        esc = enc.escape
        return [unescape(c, enc) if esc in c else c for c in v.split(enc.component)]

    def subcomponents(self, field: int, component: int = 1, repetition: int = 1) -> list[str]:
        """Unescaped subcomponents of one component; [] when it is empty."""
        v = self._repetition(field, repetition)
        if not v:
            return []
        enc = self._enc
        if field <= 2 and self.name in HEADER_SEGMENTS:
            return [v] if component == 1 else []
        cs = enc.component
        if cs in v:
            comps = v.split(cs)
            if not 0 < component <= len(comps):
                return []
            v = comps[component - 1]
        elif component != 1:
            return []
        if not v:
            return []
        esc = enc.escape
        return [unescape(s, enc) if esc in s else s for s in v.split(enc.subcomponent)]

    def tree(self, field: int) -> list[list[list[str]]]:
        """The whole field broken out: repetitions, components, subcomponents, unescaped.

        ``tree(n)[r - 1][c - 1][s - 1] == value(n, c, s, r)``; [] when the field is empty.
        """
        f = self._fields or self._split()
        if not 0 < field < len(f):
            return []
        v = f[field]
        if not v:
            return []
        if field <= 2 and self.name in HEADER_SEGMENTS:
            return [[[v]]]
        enc = self._enc
        rs, cs, ss, esc = enc.repetition, enc.component, enc.subcomponent, enc.escape
        if rs not in v and cs not in v and ss not in v:
            return [[[unescape(v, enc) if esc in v else v]]]
        out: list[list[list[str]]] = []
        for rep in v.split(rs):
            comps: list[list[str]] = []
            for comp in rep.split(cs):
                subs = comp.split(ss) if ss in comp else [comp]
                if esc in comp:
                    subs = [unescape(x, enc) if esc in x else x for x in subs]
                comps.append(subs)
            out.append(comps)
        return out

    def breakout(self) -> list[list[list[list[str]]]]:
        """Every field as :meth:`tree` returns it: ``breakout()[n - 1] == tree(n)``.

        One call for the whole segment, for consumers that read everything (a full
        conversion); consumers that read a few values should use :meth:`value`.
        """
        f = self._fields or self._split()
        enc = self._enc
        rs, cs, ss, esc = enc.repetition, enc.component, enc.subcomponent, enc.escape
        out: list[list[list[list[str]]]] = []
        add = out.append
        start = 1
        if self.name in HEADER_SEGMENTS:
            out.extend([[[v]]] if v else [] for v in f[1:3])
            start = 3
        if rs not in self.raw and ss not in self.raw and esc not in self.raw:
            # the common case: no repetitions, subcomponents or escapes anywhere
            out.extend([[[c] for c in v.split(cs)]] if v else [] for v in f[start:])
            return out
        for v in f[start:]:
            if not v:
                add([])
            elif esc in v:
                add(
                    [
                        [[unescape(x, enc) for x in c.split(ss)] for c in r.split(cs)]
                        for r in v.split(rs)
                    ]
                )
            elif ss in v:
                add([[c.split(ss) for c in r.split(cs)] for r in v.split(rs)])
            elif rs in v:
                add([[[c] for c in r.split(cs)] for r in v.split(rs)])
            elif cs in v:
                add([[[c] for c in v.split(cs)]])
            else:
                add([[[v]]])
        return out

    def value(
        self, field: int, component: int = 1, subcomponent: int = 1, repetition: int = 1
    ) -> str:
        """One primitive value, unescaped; "" when absent. All positions are 1-based."""
        f = self._fields or self._split()
        if not 0 < field < len(f):
            return ""
        v = f[field]
        if not v:
            return ""
        if field <= 2 and self.name in HEADER_SEGMENTS:
            return v if component == 1 and subcomponent == 1 and repetition == 1 else ""
        enc = self._enc
        sep = enc.repetition
        if sep in v:
            parts = v.split(sep)
            if not 0 < repetition <= len(parts):
                return ""
            v = parts[repetition - 1]
        elif repetition != 1:
            return ""
        sep = enc.component
        if sep in v:
            parts = v.split(sep)
            if not 0 < component <= len(parts):
                return ""
            v = parts[component - 1]
        elif component != 1:
            return ""
        sep = enc.subcomponent
        if sep in v:
            parts = v.split(sep)
            if not 0 < subcomponent <= len(parts):
                return ""
            v = parts[subcomponent - 1]
        elif subcomponent != 1:
            return ""
        return unescape(v, enc) if enc.escape in v else v
