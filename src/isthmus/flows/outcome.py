"""What applying one event came to, as a typed value rather than a bare string (issue 17).

Every flow ended with a word ("posted", "held", "duplicate", ...) that the worker counted,
the routes read (`flows.outbound`) and the store and the metrics show. The words stay what
is stored and shown: each outcome renders its `label`, and the labels are the words the
flows always returned. What changes is that code deciding on an outcome matches a type
(`Held` carries the queue and the reason of its work item, `Refused` why no flow applies)
instead of comparing strings, and mypy sees every case.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Final


@dataclass(frozen=True, slots=True)
class Posted:
    """A journal entry was written."""

    label: ClassVar[str] = "posted"


@dataclass(frozen=True, slots=True)
class Applied:
    """The event changed state (a record, a link, a match) and posted nothing."""

    label: ClassVar[str] = "applied"


@dataclass(frozen=True, slots=True)
class Duplicate:
    """The same fact was applied before (same entry key, same business key): no change."""

    label: ClassVar[str] = "duplicate"


@dataclass(frozen=True, slots=True)
class Held:
    """A work item holds the event, in `queue`, for `reason`, until a fix or a resubmit.
    The queue and the reason are empty when the flow that held it did not say."""

    queue: str = ""
    reason: str = ""
    label: ClassVar[str] = "held"


@dataclass(frozen=True, slots=True)
class Conflict:
    """Other content came for a business key already applied (`flows.identity`)."""

    label: ClassVar[str] = "conflict"


@dataclass(frozen=True, slots=True)
class Reversed:
    """Earlier entries were reversed (payroll posted: `flows.labor`)."""

    label: ClassVar[str] = "reversed"


@dataclass(frozen=True, slots=True)
class Rejected:
    """The event closed a pending request by refusing it (overtime rejected)."""

    label: ClassVar[str] = "rejected"


@dataclass(frozen=True, slots=True)
class Ignored:
    """Accepted and counted, with nothing to do (a response that names no known claim)."""

    reason: str = "unknown"

    @property
    def label(self) -> str:
        return self.reason


@dataclass(frozen=True, slots=True)
class Refused:
    """No flow applies to the event: the worker dead-letters it with `reason`."""

    reason: str
    label: ClassVar[str] = "refused"


Outcome = Posted | Applied | Duplicate | Held | Conflict | Reversed | Rejected | Ignored | Refused

POSTED: Final = Posted()
APPLIED: Final = Applied()
DUPLICATE: Final = Duplicate()
HELD: Final = Held()
CONFLICT: Final = Conflict()
REVERSED: Final = Reversed()
REJECTED: Final = Rejected()

# the shared instances by their word: `of` for any word, `SHARED[word]` on a hot path
# whose words are all among them (the FT1 line's posted / duplicate / held / applied)
SHARED: Final[dict[str, Outcome]] = {
    o.label: o for o in (POSTED, APPLIED, DUPLICATE, HELD, CONFLICT, REVERSED, REJECTED)
}


def of(label: str) -> Outcome:
    """The outcome a flow that still answers in words means: one of the shared instances,
    or `Ignored(label)` for a word of its own (kept as it is shown)."""
    found = SHARED.get(label)
    return found if found is not None else Ignored(label)


def label(outcome: Outcome) -> str:
    """The word stored, counted and shown for `outcome`."""
    return outcome.label


__all__ = [
    "APPLIED",
    "CONFLICT",
    "DUPLICATE",
    "HELD",
    "POSTED",
    "REJECTED",
    "REVERSED",
    "SHARED",
    "Applied",
    "Conflict",
    "Duplicate",
    "Held",
    "Ignored",
    "Outcome",
    "Posted",
    "Refused",
    "Rejected",
    "Reversed",
    "label",
    "of",
]
