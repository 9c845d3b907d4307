"""The messages a NATS bus instance holds, and which of them the per-key barrier lets out.

A pulled message is held (`Held`, by stream sequence) until it is acked, nakked or dead.
Per-key order across retries: a held message whose key has an earlier message in the
retry bucket (waiting for its retry, or not back from the broker yet) is not handed out,
nor is any later one of that key; `NatsBus` keeps those alive with in-progress acks so they
do not burn deliveries. `select` is that rule, a pure function of what is held and the
mirrored retry state (`nats_retries`).
"""

from __future__ import annotations

from dataclasses import dataclass

from nats.aio.msg import Msg

from isthmus.bus.nats_retries import Retry


@dataclass
class Held:
    """A message pulled from one partition and not settled yet."""

    msg: Msg
    partition: int
    msg_id: str
    topic: str
    key: str
    delivered: int
    touched: float


def select(
    held: dict[int, Held], retries: dict[str, Retry], partition: int, limit: int, now: float
) -> tuple[list[Held], list[int]]:
    """Up to `limit` held messages of `partition` the barrier lets out, in stream order, and
    the sequences of those it keeps waiting."""
    by_seq = {r.seq: r for r in retries.values()}
    absent: dict[str, int] = {}
    for r in retries.values():
        if r.seq not in held:
            absent[r.key] = min(r.seq, absent.get(r.key, r.seq))
    out: list[Held] = []
    waiting: list[int] = []
    blocked: set[str] = set()
    for seq in sorted(s for s, h in held.items() if h.partition == partition):
        h = held[seq]
        retry = by_seq.get(seq)
        if (
            h.key in blocked
            or absent.get(h.key, seq) < seq
            or (retry is not None and retry.visible_at > now)
        ):
            blocked.add(h.key)
            waiting.append(seq)
        elif len(out) < limit:
            out.append(h)
    return out, waiting
