"""Property (issue 14): whatever a day's feed goes through (resends of the same event,
re-envelopes of the same business fact under new event ids, replays of everything seen so
far, worker restarts over the same store), the ledger ends equal to one clean pass.

A generated day: HL7 charges (keyed by sender + FT1-2), card payments in one or two
processor deposits (keyed by processor + transaction id; some on unknown accounts, held),
and the bank credits of those deposits (matched). The accounts are opened first, in both
runs. Journal entries are compared by what they post (date, period, channel, memo, lines);
their lineage ids may name a re-envelope when it overtook a replayed original.
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal
from pathlib import Path

import msgspec
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from isthmus.flows.hl7_inbound import classify
from isthmus.flows.intake import envelopes
from isthmus.flows.settlement_intake import csv_intake
from isthmus.ledger.journal import JournalEntry
from isthmus.model import Charge
from isthmus.model.envelope import Envelope, KeyedEvent
from tests.flows.helpers import bar, charge
from tests.flows.identity_rig import NOW, GateRig, open_store, reenveloped
from tests.flows.settlement.files import bank_csv, settlement_csv

MRNS = ("P1", "P2", "P3")
_envs = msgspec.json.Decoder(list[Envelope])


def _charges(rows: Sequence[tuple[int, int]]) -> list[Envelope]:
    out: list[Envelope] = []
    for n, (who, cents) in enumerate(rows):
        inbound, _ = classify(
            charge(f"C{n}", MRNS[who], amount=f"{Decimal(cents) / 100:.2f}"),
            channel="mllp",
            peer="test",
            now=NOW,
            tenant="default",
            currency="USD",
        )
        first = _envs.decode(inbound.events)
        keyed = [
            KeyedEvent(
                e.event_id,
                e.key,
                e.payload,
                e.business_key
                or (
                    f"hl7|EHR^NORTH|{e.payload.transaction_id}"
                    if isinstance(e.payload, Charge)
                    else ""
                ),
            )
            for e in first
        ]
        out += envelopes(
            keyed,
            channel="mllp",
            control_id=first[0].source.control_id,
            occurred=first[0].occurred_at,
            recorded=first[0].recorded_at,
            tenant="default",
        )
    return out


def _money(payments: Sequence[tuple[int, int, int]], banked: bool) -> list[Envelope]:
    if not payments:
        return []
    rows = [
        (
            f"D{dep}",
            f"T{n}",
            "payment" if cents > 0 else "refund",
            f"A{MRNS[who]}" if who < len(MRNS) else "A-UNKNOWN",
            f"{Decimal(cents) / 100:.2f}",
            "0.00",
        )
        for n, (who, cents, dep) in enumerate(payments)
    ]
    raw = settlement_csv(rows)
    out = _envs.decode(
        csv_intake(raw, kind="settlement", peer="t", now=NOW, tenant="default").inbound.events
    )
    if banked:
        nets: dict[str, Decimal] = {}
        for dep, _t, _k, _a, gross, _f in rows:
            nets[dep] = nets.get(dep, Decimal(0)) + Decimal(gross)
        credits = [("2026-11-05", f"{v:.2f}", d, "card") for d, v in nets.items() if v > 0]
        if credits:
            out += _envs.decode(
                csv_intake(
                    bank_csv(credits), kind="bank", peer="t", now=NOW, tenant="default"
                ).inbound.events
            )
    return out


def _posted(rig: GateRig) -> list[tuple[object, ...]]:
    def what(e: JournalEntry) -> tuple[object, ...]:
        return (e.posted_on, e.period, e.channel, e.memo, e.lines)

    return sorted((what(e) for e in rig.store.entries()), key=repr)


def _opened(rig: GateRig) -> None:
    rig.hl7([bar(f"B{i}", m) for i, m in enumerate(MRNS)])
    rig.drain()


OPS = st.lists(
    st.one_of(
        st.tuples(st.just("resend"), st.integers(0, 1000)),
        st.tuples(st.just("reenvelope"), st.integers(0, 1000)),
        st.tuples(st.just("replay"), st.just(0)),
        st.tuples(st.just("restart"), st.just(0)),
        st.tuples(st.just("drain"), st.just(0)),
    ),
    max_size=4,
)


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    charges=st.lists(st.tuples(st.integers(0, 2), st.integers(1, 90_000)), max_size=5),
    payments=st.lists(
        st.tuples(st.integers(0, 3), st.integers(-5_000, 60_000).filter(bool), st.integers(0, 1)),
        max_size=6,
    ),
    banked=st.booleans(),
    data=st.data(),
)
def test_any_resends_reenvelopes_replays_and_restarts_leave_one_clean_pass(
    tmp_path: Path,
    charges: list[tuple[int, int]],
    payments: list[tuple[int, int, int]],
    banked: bool,
    data: st.DataObject,
) -> None:
    feed = _charges(charges) + _money(payments, banked)
    with open_store("memory", tmp_path) as clean_store:
        clean = GateRig(clean_store)
        _opened(clean)
        clean.publish(feed)
        clean.drain()
        expected_entries, expected_tb = _posted(clean), clean.ledger()[1]
        expected_keys = sorted(e.entry_key for e in clean_store.entries())
    with open_store("memory", tmp_path) as store:
        rig = GateRig(store)
        _opened(rig)
        reenveloped_any = False
        for i, env in enumerate(feed):
            rig.publish([env])
            for op, n in data.draw(OPS, label=f"after event {i}"):
                seen = feed[: i + 1]
                pick = seen[n % len(seen)]
                if op == "resend":
                    rig.publish([pick], again=True)
                elif op == "reenvelope" and pick.business_key:
                    rig.publish([reenveloped(pick, f"r{i}-{n}")])
                    reenveloped_any = True
                elif op == "replay":
                    rig.publish(seen, again=True)
                elif op == "restart":
                    rig.restart()
                elif op == "drain":
                    rig.drain()
        rig.drain()
        rig.restart()
        rig.publish(feed, again=True)  # and a last replay of the whole day
        rig.drain()
        assert _posted(rig) == expected_entries
        assert rig.ledger()[1] == expected_tb
        if not reenveloped_any:
            assert sorted(e.entry_key for e in store.entries()) == expected_keys
        assert "conflict" not in rig.outcomes()
