"""835s held at intake because they do not balance: what is held, and releasing one.

`flows.interchanges.x12_intake` holds an interchange whose 835 claims or BPR do not balance
(005010X221A1 section 1.10.2.1): it is stored with status "held" and its events, none of
which reach the bus, and an `unbalanced_remittance` work item in queue `cash-posting`
names the imbalance (`Store.accept` with a `Hold`, one transaction). Nothing of it posts
until a person decides it may: `release` moves it to "accepted" and resolves its work item
with who released it and why, in one transaction (`Store.release`); the caller then relays
its events like any committed message's (`flows.relay.relay_unpublished`), and the worker
posts them through the business-key gate (`flows.identity`), so a release can never post a
payment that another envelope posted already. The shell writes the audit row (who, why).

Errors are `HoldError`s named for the operator, each with the exit code of README's
Commands section: 2 a missing reason, 3 no such interchange, 4 not held (released
already, never held, or rejected).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final

from isthmus.errors import ConflictError
from isthmus.flows.interchanges import HOLD_KIND
from isthmus.flows.relay import publications
from isthmus.formats.x12.events import CHANNEL
from isthmus.store.ports import HELD, Store, StoredMessage, held_ref

PREFIX: Final = f"{CHANNEL}/"


class HoldError(ConflictError, ValueError):
    """The release cannot be done as asked; `exit_code` as README's Commands section."""

    def __init__(self, message: str, exit_code: int) -> None:
        super().__init__(message)
        self.exit_code = exit_code


@dataclass(frozen=True, slots=True)
class Released:
    """What releasing a held X12 interchange did: its message, the events that may now post, who
    released it and why."""

    message_id: int
    control_id: str
    events: int  # events that may now post
    released_by: str
    reason: str


def find(store: Store, ref: str) -> StoredMessage | None:
    """The X12 interchange named by its control id (`<ISA06>:<ISA13>`, with a streamed
    set's `/<GS06>/<ST02>`), its correlation id (`x12/...`) or its inbox id."""
    ref = ref.strip()
    found = store.message_by_control_id(CHANNEL, ref.removeprefix(PREFIX))
    if found is None and ref.isdigit():
        m = store.message(int(ref))
        found = m if m is not None and m.channel == CHANNEL else None
    return found


def view(store: Store, m: StoredMessage) -> dict[str, Any]:
    """One held (or formerly held) interchange as the CLI and its JSON show it."""
    items = [
        w for w in store.work_items_for(held_ref(m.channel, m.control_id)) if w.kind == HOLD_KIND
    ]
    item = items[-1] if items else None
    return {
        "message_id": m.id,
        "control_id": m.control_id,
        "status": m.status,
        "ack": m.ack_code,
        "received_at": m.received_at,
        "work_item": item.id if item else None,
        "work_item_status": item.status if item else "",
        "detail": item.detail if item else m.error.split("|")[-1],
        "resolution": item.resolution if item else "",
    }


def held(store: Store, limit: int = 1000) -> list[dict[str, Any]]:
    """The X12 interchanges on hold, oldest first."""
    return [
        view(store, m) for m in store.messages(status=HELD, limit=limit) if m.channel == CHANNEL
    ]


def release(store: Store, ref: str, *, actor: str, reason: str, now: float) -> Released:
    """Release a held interchange: its events may post, its work item is resolved."""
    why = " ".join(reason.split())
    if not why:
        raise HoldError(
            "a release needs a reason (--reason TEXT): it goes to the audit "
            "trail and the work item",
            2,
        )
    m = find(store, ref)
    if m is None:
        raise HoldError(f"no X12 interchange {ref!r}", 3)
    if m.status != HELD:
        raise HoldError(
            f"interchange {m.control_id} is {m.status}, not held: nothing to release", 4
        )
    done = store.release(CHANNEL, m.control_id, resolution=f"released by {actor}: {why}", now=now)
    if done is None:  # someone released it between our read and our write
        raise HoldError(f"interchange {m.control_id} was released already", 4)
    return Released(
        done.id, done.control_id, len(publications(done.events)) if done.events else 0, actor, why
    )
