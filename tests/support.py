"""Waiting on a condition instead of on the clock, for every test that waits.

A fixed `sleep` stands for a condition ("the broker redelivered it", "the server is up");
on a busy machine the condition comes later than the sleep guessed and the test fails at
random (issue 22). `wait_until` polls the condition itself with a generous deadline, so a
fast machine waits no longer than it must and a slow one still passes; when the deadline
does pass, the failure names what was awaited and the last value seen.
"""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, TypeVar

if TYPE_CHECKING:
    from isthmus.app import Hub

T = TypeVar("T")

DEADLINE_S = 30.0  # generous: a condition that should hold in ~1 s still passes under load


class WaitTimeout(AssertionError):
    """The awaited condition did not hold within the deadline."""


def wait_until(
    predicate: Callable[[], T], *, timeout: float = DEADLINE_S, what: str, every_s: float = 0.05
) -> T:
    """Poll `predicate` until it returns a truthy value and return that value; raise
    WaitTimeout naming `what` (and the last value) after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise WaitTimeout(f"waited {timeout:g} s for {what}; last value: {value!r}")
        time.sleep(every_s)


async def await_until(
    predicate: Callable[[], T], *, timeout: float = DEADLINE_S, what: str, every_s: float = 0.05
) -> T:
    """`wait_until` inside a running event loop: the loop keeps running between polls."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise WaitTimeout(f"waited {timeout:g} s for {what}; last value: {value!r}")
        await asyncio.sleep(every_s)


def listening(host: str, port: int) -> bool:
    """Something accepts TCP connections on host:port."""
    try:
        with socket.create_connection((host, port), timeout=1.0):
            return True
    except OSError:
        return False


def settled(hub: Hub) -> bool:
    """Everything the hub took is relayed to the bus and applied (nothing pending)."""
    return not (hub.store.counts()["unpublished"] or hub.bus.pending())
