"""The inbox aggregate's port: messages as listeners hand them in, with the answer each
got, and the inbox reads (ports.py states the contract; sql_inbox.py and memory_inbox.py
keep it). A channel's pause/resume state lives beside the inbox, in the `meta` table.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

HELD = "held"


def held_ref(channel: str, control_id: str) -> str:
    """The event id and correlation id of a held message's work item: the message's own
    correlation id, `<channel>/<control id>` (as `flows.intake.correlation_of` names it)."""
    return f"{channel}/{control_id}"


@dataclass(frozen=True, slots=True)
class Hold:
    """Why a message is held back from the bus: the work item that opens with it."""

    kind: str
    queue: str
    detail: str  # what a person must look at; never PHI


@dataclass(frozen=True, slots=True)
class Inbound:
    """A message as a listener hands it to the inbox, with the answer it will get."""

    channel: str
    control_id: str
    raw: bytes
    received_at: float
    peer: str
    message_type: str
    status: str  # "accepted" | "rejected"
    ack_code: str  # AA | AE | AR
    error: str
    events: bytes  # encoded envelopes (msgspec JSON array), empty when rejected
    digest: str = ""  # content digest; the same control id with another digest is a conflict
    hold: Hold | None = None  # status "held": kept, its events wait for `Store.release`


@dataclass(frozen=True, slots=True)
class ChannelState:
    """A channel's operating state (issue 18) as the store keeps it, in the `meta` table
    under `channel:<name>`: every process of a site reads it, so a pause given in one takes
    effect in all. `state` is "running" or "paused"; who set it, why and when."""

    state: str
    by: str = ""
    reason: str = ""
    at: float = 0.0


@dataclass(frozen=True, slots=True)
class ChannelCount:
    """Inbox messages of one (channel, status, published) group and the latest one's time:
    one row of `Store.channel_counts`, what the channel list sums (flows/channels.py)."""

    channel: str
    status: str
    published: bool
    count: int
    last_received_at: float


@dataclass(frozen=True, slots=True)
class Accepted:
    """The inbox's answer to one inbound message: its id, whether it was known already (same
    channel and control id), the answer stored with it, and whether the control id is taken
    by other content (nothing stored)."""

    message_id: int
    duplicate: bool
    ack_code: str
    status: str
    error: str
    conflict: bool = False  # control id already taken by different content: nothing stored


@dataclass(frozen=True, slots=True)
class StoredMessage:
    """One inbox row: a message as received, its answer (ack code, status, error), the
    events parsed from it, and whether they reached the bus."""

    id: int
    channel: str
    control_id: str
    received_at: float
    peer: str
    message_type: str
    status: str
    ack_code: str
    error: str
    raw: bytes
    events: bytes
    published: bool
    digest: str = ""
    purged_at: float = 0.0  # retention blanked the body then (0: kept); flows/retention.py


@dataclass(frozen=True, slots=True)
class PurgeRule:
    """Which message bodies retention blanks (flows/retention.py decides the rules).

    Those received before `before` whose body is still there, on `channel` (None: every
    channel but `others`), with status `ignored` (`ignored` True) or any other status but
    `held` (a held message waits for a person); an accepted one only once its events are
    published, so nothing still on its way is touched."""

    before: float
    ignored: bool
    channel: str | None = None
    others: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class MessageQuery:
    """Filters of `Store.message_page`; None: any. `message_type` "ADT" matches every ADT
    event ("ADT^A01", ...), "ADT^A01" that one. `sender` is the part of the inbox identity
    before its first ":" (MSH-3.1^MSH-4.1); `control_id` matches the whole identity or the
    part after that ":" (MSH-10)."""

    status: str | None = None
    channel: str | None = None
    message_type: str | None = None
    sender: str | None = None
    control_id: str | None = None
    since: float | None = None  # received at or after
    until: float | None = None  # received before
    # a FHIR resource's versions: control id `<type>/<id>` or `<type>/<id>/_history/<vid>`
    history_of: str | None = None


class InboxStore(Protocol):
    """The inbox: take messages, relay their events, release held ones, read, page, count
    and purge them, and keep each channel's state."""

    def accept(self, batch: Sequence[Inbound]) -> list[Accepted]: ...

    def unpublished(self, limit: int) -> list[StoredMessage]:
        """Committed messages whose events never reached the bus, oldest first; held
        messages are not among them until released."""
        ...

    def release(
        self, channel: str, control_id: str, *, resolution: str, now: float
    ) -> StoredMessage | None:
        """A held message becomes accepted (its events then go out as unpublished ones) and
        its work item is resolved with `resolution`, in one transaction. None (no change)
        when the message is not held: unknown, or released already."""
        ...

    def mark_published(self, ids: Sequence[int]) -> None: ...

    def message(self, message_id: int) -> StoredMessage | None: ...

    def message_by_control_id(self, channel: str, control_id: str) -> StoredMessage | None: ...

    def messages(
        self,
        *,
        since: float | None = None,
        until: float | None = None,
        status: str | None = None,
        limit: int = 1000,
    ) -> list[StoredMessage]: ...

    def purge_candidates(
        self, rule: PurgeRule, *, after: int = 0, limit: int = 500
    ) -> list[StoredMessage]:
        """Messages `rule` covers, by id above `after`, oldest first."""
        ...

    def purge_bodies(self, ids: Sequence[int], now: float) -> int:
        """Blank the raw body of each message and mark it purged at `now`; the row (identity,
        digest, status, its events: lineage) stays, and ids already purged are left as they
        are. One transaction; returns how many were purged."""
        ...

    def message_page(
        self, query: MessageQuery, *, before: int | None = None, limit: int = 50
    ) -> list[StoredMessage]:
        """Messages matching every filter of `query`, newest first (by id), those with an id
        below `before` when given: the next page starts before the last id of this one."""
        ...

    def message_counts(self, since: float | None = None) -> dict[tuple[str, str, str], int]:
        """Inbox messages per (channel, status, ack code), those received at or after
        `since` when it is given (metrics and alert windows)."""
        ...

    def accepted_events(self, since: float | None = None) -> list[tuple[float, bytes]]:
        """(received_at, encoded events) of every accepted message, in inbox order, those
        received at or after `since` when given: what the KPIs read, without raw bytes."""
        ...

    def inbox_after(self, after: int, limit: int = 10_000) -> list[tuple[int, str, float, bytes]]:
        """(message id, status, received_at, encoded events) of inbox messages with an id
        above `after`, by id, only as far as every message below is committed (no id still
        in flight can come in under the last one): the analytics feed's watermark."""
        ...

    def channel_states(self) -> dict[str, ChannelState]:
        """The state of every channel ever paused or resumed, by name (the `meta` table);
        a channel not in it is running."""
        ...

    def set_channel_state(
        self, name: str, state: str, by: str, reason: str, now: float
    ) -> ChannelState:
        """Record a channel's state ("running" or "paused"), who set it and why; returns
        what was recorded."""
        ...

    def channel_counts(self) -> list[ChannelCount]:
        """Inbox messages per (channel, status, published) with the latest received time:
        one grouped query, what the channel list and its counters read."""
        ...
