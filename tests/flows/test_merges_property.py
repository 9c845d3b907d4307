"""Property (issue 15): a generated feed of FT1 lines and ADT merges and moves (A41, A42,
A44, A45, A47, A49, A50) ends with the same ledger whether each message is sent once, or
sent again under a new control id and then everything is replayed; the ledger balances;
and what the lineage records attribute to the accounts is, token by token, exactly the
A/R the ledger holds (a move reclassifies what it relabels, no more, no less)."""

from __future__ import annotations

import tempfile
from collections.abc import Sequence
from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from isthmus.flows import lineage
from isthmus.ledger.journal import JournalEntry
from isthmus.store.ports import Store
from tests.flows.helpers import AR
from tests.flows.identity_rig import GateRig, open_store
from tests.flows.merges_rig import line, move

MRNS = ("PA1", "PA2", "PA3")
ACCOUNTS = ("AX", "AY", "AZ")
VISITS = ("VX", "VY", "VZ")
TRIGGERS = ("A41", "A42", "A44", "A45", "A47", "A49", "A50")

charge_op = st.tuples(
    st.just("line"),
    st.integers(0, 2),
    st.integers(0, 2),
    st.integers(0, 2),
    st.integers(-3000, 20000),
)
move_op = st.tuples(
    st.sampled_from(TRIGGERS),
    st.integers(0, 2),
    st.integers(0, 2),
    st.integers(0, 2),
    st.integers(0, 2),
)
feeds = st.lists(st.one_of(charge_op, move_op), min_size=1, max_size=14)


def _messages(feed: Sequence[tuple[str, int, int, int, int]]) -> list[bytes]:
    out: list[bytes] = []
    for n, (op, a, b, c, d) in enumerate(feed):
        if op == "line":
            amount = f"{d / 100:.2f}"
            kind = "CG" if d >= 0 else "PY"
            out.append(line(f"C{n}", MRNS[a], ACCOUNTS[b], VISITS[c], amount, ttype=kind))
            continue
        when = f"202611{3 + n // 10:02d}{n % 10:02d}0000"
        prior = {
            "A41": dict(prior_account=ACCOUNTS[b]),
            "A49": dict(prior_account=ACCOUNTS[b]),
            "A44": dict(prior_account=ACCOUNTS[b]),
            "A42": dict(prior_visit=VISITS[b]),
            "A50": dict(prior_visit=VISITS[b]),
            "A45": dict(prior_account=ACCOUNTS[b], prior_visit=VISITS[c]),
            "A47": {},
        }[op]
        visit = VISITS[c] if op in ("A45",) else VISITS[d] if op in ("A42", "A50") else ""
        out.append(
            move(
                f"M{n}",
                op,
                MRNS[a],
                account=ACCOUNTS[d],
                visit=visit,
                prior_mrn=MRNS[(a + 1 + c) % 3],
                when=when,
                **prior,
            )
        )
    return out


def _attributed(store: Store) -> dict[str, Decimal]:
    """Token -> what the lineage records say the accounts hold on it (every line of the
    feed names an account, so this is all of A/R)."""
    out: dict[str, Decimal] = {}
    with store.transaction() as tx:
        for account in ACCOUNTS:
            for c in lineage.load_account(tx, account).cells:
                p = tx.get_patient(lineage.live_key(tx, c.patient_key))
                assert p is not None
                out[p.token] = out.get(p.token, Decimal(0)) + c.amount
    return {t: v for t, v in out.items() if v}


def _receivable(store: Store) -> dict[str, Decimal]:
    out: dict[str, Decimal] = {}
    for ln in store.journal_lines():
        if ln.account == AR and ln.dims.account_token:
            t = ln.dims.account_token
            out[t] = out.get(t, Decimal(0)) + ln.debit - ln.credit
    return {t: v for t, v in out.items() if v}


def _run(kind: str, raws: list[bytes], *, again: bool) -> tuple[list[JournalEntry], object]:
    with tempfile.TemporaryDirectory() as tmp, open_store(kind, Path(tmp)) as store:
        rig = GateRig(store)
        seen = []
        for raw in raws:
            sent = [raw]
            if again:  # the same message under a new control id (MSH-10)
                cid = raw.split(b"|")[9]
                sent.append(raw.replace(b"|" + cid + b"|", b"|" + cid + b"-again|", 1))
            seen += rig.hl7(sent)
            rig.drain()
        if again:  # and a replay of everything, as after a restore
            rig.publish(seen, again=True)
            rig.drain()
        entries, trial = rig.ledger()
        assert trial.balanced
        assert _attributed(store) == _receivable(store)
        for e in entries:  # every entry balances per currency and nothing was edited
            assert sum(ln.debit - ln.credit for ln in e.lines) == 0
        return entries, trial


def _same(kind: str, feed: list[tuple[str, int, int, int, int]]) -> None:
    raws = _messages(feed)
    clean = _run(kind, raws, again=False)
    noisy = _run(kind, raws, again=True)
    assert noisy[1] == clean[1]
    assert [(e.entry_key, e.lines) for e in noisy[0]] == [(e.entry_key, e.lines) for e in clean[0]]


@pytest.mark.parametrize("kind", ["memory", "sqlite"])
@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(feed=feeds)
def test_resends_and_replays_of_moves_equal_one_clean_pass(
    kind: str, feed: list[tuple[str, int, int, int, int]]
) -> None:
    _same(kind, feed)


@settings(max_examples=5, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(feed=feeds)
def test_resends_and_replays_of_moves_on_postgresql(
    feed: list[tuple[str, int, int, int, int]],
) -> None:
    _same("postgresql", feed)
