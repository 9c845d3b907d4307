"""Group commit: many connections' messages stored in one transaction, each ACKed after it.

A durable ACK costs a commit (an fsync). One writer thread takes every message queued
while the last commit ran and stores them together (`Store.accept`), then hands each
caller its own result; a second thread relays the committed events to the bus
(`flows.relay`), lingering a moment so that one publish carries several commits. A failed
commit answers every caller in it with the error (they NAK, the senders keep their
messages); a failed relay is retried until it goes through, and healed at the next start.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable, Sequence
from functools import partial

from isthmus.bus.ports import Bus
from isthmus.flows.inbox import settle
from isthmus.flows.intake import REUSE_WINDOW_S
from isthmus.flows.relay import publications, relay_unpublished
from isthmus.store.ports import Accepted, Inbound, Store

log = logging.getLogger("isthmus.flows.inbox")  # the name its log lines always had


class GroupCommitWriter:
    """One thread stores queued messages in batches (one commit, many ACKs); a second thread
    relays the committed events to the bus, so the next group commit never waits for it."""

    def __init__(
        self,
        store: Store,
        bus: Bus,
        *,
        max_batch: int = 512,
        reuse_window_s: float = REUSE_WINDOW_S,
        linger_s: float = 0.05,
    ) -> None:
        self._store, self._bus, self._max = store, bus, max_batch
        self._linger_s = linger_s
        self._settle = partial(settle, store, window_s=reuse_window_s)
        self._q: queue.SimpleQueue[
            tuple[Inbound, Callable[[Accepted | Exception], None]] | None
        ] = queue.SimpleQueue()
        self._relay_q: queue.SimpleQueue[list[tuple[int, bytes]] | None] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name="inbox-writer", daemon=True)
        self._relay = threading.Thread(target=self._run_relay, name="inbox-relay", daemon=True)
        self.commits = 0
        self.stored = 0

    def start(self) -> None:
        relay_unpublished(self._store, self._bus)
        self._thread.start()
        self._relay.start()

    def submit(self, item: Inbound, done: Callable[[Accepted | Exception], None]) -> None:
        self._q.put((item, done))

    def stop(self) -> None:
        self._q.put(None)
        self._thread.join(timeout=30)
        self._relay_q.put(None)
        self._relay.join(timeout=30)

    def _run(self) -> None:
        stopping = False
        while not stopping:
            first = self._q.get()
            if first is None:
                return
            batch = [first]
            while len(batch) < self._max:
                try:
                    nxt = self._q.get_nowait()
                except queue.Empty:
                    break
                if nxt is None:
                    stopping = True
                    break
                batch.append(nxt)
            self._commit(batch)

    def _commit(
        self, batch: Sequence[tuple[Inbound, Callable[[Accepted | Exception], None]]]
    ) -> None:
        try:
            stored = self._store.accept([b[0] for b in batch])
        except Exception as exc:  # noqa: BLE001 - every caller must get its NAK
            log.error("inbox commit failed for %d messages: %s", len(batch), exc)
            for _, done in batch:
                done(exc)
            return
        settled = self._settle([b[0] for b in batch], stored)
        self.commits += 1
        self.stored += len(batch)
        for (_, done), (_, res) in zip(batch, settled, strict=True):
            done(res)
        fresh = [
            (r.message_id, m.events)
            for m, r in settled
            if isinstance(r, Accepted) and not r.duplicate and m.events
        ]
        if fresh:
            self._relay_q.put(fresh)

    def _run_relay(self) -> None:
        while True:
            first = self._relay_q.get()
            if first is None:
                return
            # linger a moment so that one publish and one mark_published (two commits, two
            # fsyncs) carry many group commits: on one connection a message at a time,
            # relaying each commit on its own took as many fsyncs as the ACKs themselves
            time.sleep(self._linger_s)
            items = list(first)
            while len(items) < 4 * self._max:
                try:
                    nxt = self._relay_q.get_nowait()
                except queue.Empty:
                    break
                if nxt is None:
                    self._relay_q.put(None)
                    break
                items += nxt
            self._relay_until_done(items)

    def _relay_until_done(self, items: list[tuple[int, bytes]]) -> None:
        """Publish, then mark published; on failure wait and try again (publish is
        idempotent on the event id), so an ACKed message never waits for a restart."""
        delay = 0.05
        while True:
            try:
                self._bus.publish([p for _, events in items for p in publications(events)])
                self._store.mark_published([mid for mid, _ in items])
                return
            except Exception as exc:  # noqa: BLE001 - retried; also healed at next start
                log.warning("relay to bus failed, retrying in %.2fs: %s", delay, exc)
                time.sleep(delay)
                delay = min(delay * 2, 5.0)


__all__ = ["GroupCommitWriter"]
