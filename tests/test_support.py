"""The test suite's own helpers for waiting and for ports (issue 22): a wait names what it
waited for when it gives up, and a chosen port is one no outgoing connection can take."""

from __future__ import annotations

import itertools
import socket

import pytest

from tests.e2e.helpers import HOST, ephemeral_range, free_port
from tests.support import WaitTimeout, wait_until


def test_wait_until_returns_the_first_truthy_value() -> None:
    calls = itertools.count(1)
    assert wait_until(
        lambda: [n for n in [next(calls)] if n >= 3], what="a third poll", every_s=0.001
    ) == [3]


def test_wait_until_names_what_it_waited_for_and_the_last_value() -> None:
    with pytest.raises(
        WaitTimeout,
        match=r"waited 0.05 s for the broker's redelivery; "
        r"last value: \[\]",
    ):
        wait_until(lambda: [], timeout=0.05, what="the broker's redelivery")


def test_free_ports_are_outside_theephemeral_range_and_bindable() -> None:
    low, high = ephemeral_range()
    for _ in range(50):
        port = free_port()
        assert not low <= port <= high, port
        with socket.socket() as s:
            s.bind((HOST, port))
