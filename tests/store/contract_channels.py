"""The store contract for channel states and counters (issue 18), mixed into every
adapter's suite beside StoreContract: pause/resume lives in the `meta` table, so every
process of a site sees it; the counters are one grouped query over the inbox."""

from __future__ import annotations

import pytest

from isthmus.store.ports import ChannelState, Store
from tests.store.contract import inbound


class ChannelContract:
    def test_no_channel_has_a_state_until_one_is_set(self, store: Store) -> None:
        assert store.channel_states() == {}

    def test_set_channel_state_is_read_back_with_who_and_why(self, store: Store) -> None:
        got = store.set_channel_state("lab", "paused", "alice", "lab system upgrade", 10.5)
        assert got == ChannelState("paused", "alice", "lab system upgrade", 10.5)
        assert store.channel_states() == {"lab": got}
        store.set_channel_state("lab", "running", "bob", "", 20.0)
        store.set_channel_state("adt", "paused", "bob", "", 21.0)
        states = store.channel_states()
        assert states["lab"] == ChannelState("running", "bob", "", 20.0)
        assert states["adt"].state == "paused"
        assert set(states) == {"lab", "adt"}

    def test_an_unknown_state_is_refused(self, store: Store) -> None:
        with pytest.raises(ValueError, match="running or paused"):
            store.set_channel_state("lab", "stopped", "alice", "", 1.0)
        assert store.channel_states() == {}

    def test_channel_counts_group_by_channel_status_and_published(self, store: Store) -> None:
        store.accept(
            [
                inbound("1", channel="lab", received_at=100.0),
                inbound("2", channel="lab", received_at=300.0),
                inbound(
                    "3",
                    channel="lab",
                    status="rejected",
                    ack_code="AR",
                    events=b"",
                    received_at=200.0,
                ),
                inbound("4", channel="adt", status="ignored", events=b"", received_at=50.0),
            ]
        )
        first = next(m for m in store.unpublished(10) if m.control_id == "1")
        store.mark_published([first.id])
        rows = {
            (c.channel, c.status, c.published): (c.count, c.last_received_at)
            for c in store.channel_counts()
        }
        assert rows[("lab", "accepted", True)] == (1, 100.0)
        assert rows[("lab", "accepted", False)] == (1, 300.0)
        assert rows[("lab", "rejected", True)] == (1, 200.0)  # nothing to relay
        assert rows[("adt", "ignored", True)] == (1, 50.0)
        assert len(rows) == 4
