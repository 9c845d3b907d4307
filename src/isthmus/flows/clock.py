"""The wall clock a flow reads, passed in rather than called (issue 17).

A flow that read the system clock itself could not be run at a chosen instant: its work
items, its holds and its retries carried the time of the test run. The worker passes `now`
to each event's flow; the long-lived objects that stamp what they receive outside the
worker (the MLLP inbox, the FHIR intake, the supply flow's commands) hold a `Clock`. The
system clock is chosen in the composition root (`isthmus.app.SystemClock`); tests pass a
`FixedClock`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


class Clock(Protocol):
    """Unix seconds, now."""

    def now(self) -> float: ...


@dataclass
class FixedClock:
    """A clock that shows `at` until moved (`advance`): tests, replays, a file's own time."""

    at: float

    def now(self) -> float:
        return self.at

    def advance(self, seconds: float) -> float:
        self.at += seconds
        return self.at


__all__ = ["Clock", "FixedClock"]
