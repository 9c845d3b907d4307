"""The inbox aggregate in memory (the fake of ports_inbox.InboxStore): messages kept by
(channel, control id) with the answer each got, the channel states of the `meta` table,
filtered by message_filter and purge_filter as the SQL adapters filter them.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

from isthmus.store import channel_meta
from isthmus.store.memory_state import MemoryStoreBase
from isthmus.store.message_filter import matches
from isthmus.store.ports import (
    HELD,
    Accepted,
    ChannelCount,
    ChannelState,
    Inbound,
    MessageQuery,
    PurgeRule,
    StoredMessage,
    held_ref,
)
from isthmus.store.purge_filter import purge_matches


class MemoryInbox(MemoryStoreBase):
    """The inbox port of the in-memory store (mixin of MemoryStore)."""

    def accept(self, batch: Sequence[Inbound]) -> list[Accepted]:
        out: list[Accepted] = []
        with self._write() as s:
            for m in batch:
                known = s.inbox_keys.get((m.channel, m.control_id))
                if known is not None:
                    first = s.inbox[known]
                    out.append(
                        Accepted(
                            known,
                            True,
                            first.ack_code,
                            first.status,
                            first.error,
                            conflict=bool(m.digest and first.digest and m.digest != first.digest),
                        )
                    )
                    continue
                mid = s.next_id("inbox")
                s.inbox[mid] = StoredMessage(
                    id=mid,
                    channel=m.channel,
                    control_id=m.control_id,
                    received_at=m.received_at,
                    peer=m.peer,
                    message_type=m.message_type,
                    status=m.status,
                    ack_code=m.ack_code,
                    error=m.error,
                    raw=m.raw,
                    events=m.events,
                    published=not m.events,
                    digest=m.digest,
                )
                s.inbox_keys[(m.channel, m.control_id)] = mid
                if m.hold is not None:
                    ref = held_ref(m.channel, m.control_id)
                    self._tx().add_work_item(
                        kind=m.hold.kind,
                        queue=m.hold.queue,
                        key=m.control_id,
                        event_id=ref,
                        correlation_id=ref,
                        detail=m.hold.detail,
                        envelope=b"",
                        now=m.received_at,
                    )
                out.append(Accepted(mid, False, m.ack_code, m.status, m.error))
        return out

    def unpublished(self, limit: int) -> list[StoredMessage]:
        with self._lock:
            return [m for m in self._state.inbox.values() if not m.published and m.status != HELD][
                :limit
            ]

    def release(
        self, channel: str, control_id: str, *, resolution: str, now: float
    ) -> StoredMessage | None:
        with self._write() as s:
            mid = s.inbox_keys.get((channel, control_id))
            if mid is None or s.inbox[mid].status != HELD:
                return None
            s.inbox[mid] = dataclasses.replace(s.inbox[mid], status="accepted")
            self._tx().close_work_items(held_ref(channel, control_id), resolution, now)
            return s.inbox[mid]

    def mark_published(self, ids: Sequence[int]) -> None:
        with self._write() as s:
            for i in ids:
                if i in s.inbox:
                    s.inbox[i] = dataclasses.replace(s.inbox[i], published=True)

    def message(self, message_id: int) -> StoredMessage | None:
        with self._lock:
            return self._state.inbox.get(message_id)

    def message_by_control_id(self, channel: str, control_id: str) -> StoredMessage | None:
        with self._lock:
            known = self._state.inbox_keys.get((channel, control_id))
            return None if known is None else self._state.inbox[known]

    def messages(
        self,
        *,
        since: float | None = None,
        until: float | None = None,
        status: str | None = None,
        limit: int = 1000,
    ) -> list[StoredMessage]:
        with self._lock:
            return [
                m
                for m in self._state.inbox.values()
                if (since is None or m.received_at >= since)
                and (until is None or m.received_at < until)
                and (status is None or m.status == status)
            ][:limit]

    def purge_candidates(
        self, rule: PurgeRule, *, after: int = 0, limit: int = 500
    ) -> list[StoredMessage]:
        with self._lock:
            return [
                m for _, m in sorted(self._state.inbox.items()) if purge_matches(rule, after, m)
            ][:limit]

    def purge_bodies(self, ids: Sequence[int], now: float) -> int:
        done = 0
        with self._write() as s:
            for i in ids:
                m = s.inbox.get(i)
                if m is not None and not m.purged_at:
                    s.inbox[i] = dataclasses.replace(m, raw=b"", purged_at=now)
                    done += 1
        return done

    def message_page(
        self, query: MessageQuery, *, before: int | None = None, limit: int = 50
    ) -> list[StoredMessage]:
        out: list[StoredMessage] = []
        with self._lock:
            for mid in sorted(self._state.inbox, reverse=True):
                if len(out) >= limit:
                    break
                m = self._state.inbox[mid]
                if (before is None or mid < before) and matches(query, m):
                    out.append(m)
        return out

    def message_counts(self, since: float | None = None) -> dict[tuple[str, str, str], int]:
        out: dict[tuple[str, str, str], int] = {}
        with self._lock:
            for m in self._state.inbox.values():
                if since is None or m.received_at >= since:
                    k = (m.channel, m.status, m.ack_code)
                    out[k] = out.get(k, 0) + 1
        return out

    def accepted_events(self, since: float | None = None) -> list[tuple[float, bytes]]:
        with self._lock:
            return [
                (m.received_at, m.events)
                for m in self._state.inbox.values()
                if m.status == "accepted" and (since is None or m.received_at >= since)
            ]

    def inbox_after(self, after: int, limit: int = 10_000) -> list[tuple[int, str, float, bytes]]:
        with self._lock:
            return [
                (i, m.status, m.received_at, m.events)
                for i, m in self._state.inbox.items()
                if i > after
            ][:limit]

    def channel_states(self) -> dict[str, ChannelState]:
        with self._lock:
            return channel_meta.states(self._state.meta.items())

    def set_channel_state(
        self, name: str, state: str, by: str, reason: str, now: float
    ) -> ChannelState:
        out = ChannelState(state, by, reason, now)
        value = channel_meta.encode(out)
        with self._write() as s:
            s.meta[channel_meta.key(name)] = value
        return out

    def channel_counts(self) -> list[ChannelCount]:
        groups: dict[tuple[str, str, bool], tuple[int, float]] = {}
        with self._lock:
            for m in self._state.inbox.values():
                k = (m.channel, m.status, m.published)
                n, last = groups.get(k, (0, 0.0))
                groups[k] = (n + 1, max(last, m.received_at))
        return [ChannelCount(ch, st, pub, n, last) for (ch, st, pub), (n, last) in groups.items()]
