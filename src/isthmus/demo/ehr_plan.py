"""The plan of the simulated hospital day (demo/ehr_day.py): its patients, their visits and
charge lines, and the events in the order they happen.

`Plan` draws every patient, visit and FT1 line from one seeded `random.Random`, with ids
from counters so they are unique by construction; `Event` is one thing that happens at a
second of the day, which ehr_day renders as one HL7 v2.5.1 message. Pure: no I/O.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal

from isthmus.demo.ehr_segments import (
    CHARGE_CODES,
    FAMILY_NAMES,
    GIVEN_NAMES,
    PROVIDERS,
    STREETS,
    ChargeLine,
    CodeSpec,
    SimPatient,
)

END = 86_340  # last second a visit may still be running (23:59:00)
CURRENCY = "USD"


@dataclass(frozen=True)
class Event:
    """One thing that happens at second `t` of the day (`order` breaks ties): a kind of
    message, its patient, its FT1 lines, the duplicate a merge names, a variant."""

    t: int
    order: int
    kind: str
    patient: SimPatient
    lines: tuple[ChargeLine, ...] = ()
    duplicate: SimPatient | None = None
    variant: str = ""


class Plan:
    """Accumulates events; ids come from counters so they are unique by construction."""

    def __init__(self, rng: random.Random, facilities: tuple[str, ...]) -> None:
        self.rng = rng
        self.facilities = facilities
        self.events: list[Event] = []
        self._patients = 0
        self._txns = 0
        self._by_class: dict[str, tuple[list[CodeSpec], list[int]]] = {}
        for cls in "EOI":
            specs = [s for s in CHARGE_CODES if cls in s.classes]
            self._by_class[cls] = (specs, [s.weight for s in specs])

    def add(
        self,
        t: int,
        kind: str,
        p: SimPatient,
        *,
        lines: tuple[ChargeLine, ...] = (),
        duplicate: SimPatient | None = None,
        variant: str = "",
    ) -> Event:
        ev = Event(t, len(self.events), kind, p, lines, duplicate, variant)
        self.events.append(ev)
        return ev

    def patient(self, day: date, facility: str | None = None, pclass: str = "") -> SimPatient:
        rng, n = self.rng, self._patients
        self._patients += 1
        pclass = pclass or rng.choices("EOI", weights=(35, 40, 25))[0]
        los = {"E": (3600, 21600), "O": (1800, 14400), "I": (14400, 86400)}[pclass]
        arrival = int(rng.triangular(600, 79_200, 39_600))
        return SimPatient(
            facility=facility or rng.choice(self.facilities),
            mrn=f"M{200_001 + n:07d}",
            account=f"A{500_001 + n:08d}",
            visit=f"V{800_001 + n:08d}",
            family=rng.choice(FAMILY_NAMES),
            given=rng.choice(GIVEN_NAMES),
            birth=day - timedelta(days=rng.randint(30, 90 * 365)),
            sex=rng.choice("FM"),
            pclass=pclass,
            room=rng.randint(1, 40),
            street=rng.choice(STREETS),
            provider=rng.choice(PROVIDERS),
            arrival=arrival,
            until=min(arrival + rng.randint(*los), END),
        )

    def line(self, spec: CodeSpec, p: SimPatient) -> ChargeLine:
        self._txns += 1
        qty = self.rng.randint(1, spec.max_qty)
        unit = Decimal(self.rng.randint(spec.low * 100, spec.high * 100)).scaleb(-2)
        return ChargeLine(
            f"T{self._txns:08d}",
            spec,
            "CG",
            qty,
            unit,
            unit * qty,
            CURRENCY,
            self.rng.choice(PROVIDERS) if self.rng.random() < 0.5 else p.provider,
        )

    def charge_lines(self, p: SimPatient) -> tuple[ChargeLine, ...]:
        specs, weights = self._by_class[p.pclass]
        k = self.rng.choices((1, 2, 3), weights=(70, 20, 10))[0]
        return tuple(self.line(s, p) for s in self.rng.choices(specs, weights=weights, k=k))

    def during(self, p: SimPatient) -> int:
        """A second strictly inside the visit: after arrival, before discharge."""
        return self.rng.randint(p.arrival + 1, p.until - 1)
