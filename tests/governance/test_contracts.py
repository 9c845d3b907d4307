"""Event contracts: the committed baseline still holds, and what counts as a break."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import msgspec
import pytest

from isthmus.cli.main import run
from isthmus.governance import contracts

BASELINE = Path(__file__).resolve().parents[2] / "contracts" / "events.v1.json"


def test_the_model_keeps_the_committed_contracts(capsys: pytest.CaptureFixture[str]) -> None:
    """A breaking change to an event (or the envelope) fails here, so it fails CI."""
    assert BASELINE.exists(), "run `isthmus contracts update` and commit the baseline"
    assert run(["contracts", "check", "--baseline", str(BASELINE), "--json"]) == 0, (
        capsys.readouterr().out
    )


def test_the_baseline_covers_every_event_type() -> None:
    assert set(json.loads(BASELINE.read_text())["events"]) >= {
        "Charge",
        "PatientRegistered",
        "AccountsMerged",
    }
    assert set(contracts.current()["events"]) == set(contracts.event_types())


# --- synthetic models ---------------------------------------------------------------------


class Paid(msgspec.Struct, tag=True, kw_only=True):
    account: str
    amount: int
    memo: str = ""


class PaidRemoved(msgspec.Struct, tag="Paid", kw_only=True):
    account: str
    memo: str = ""


class PaidRetyped(msgspec.Struct, tag="Paid", kw_only=True):
    account: str
    amount: str
    memo: str = ""


class PaidRequired(msgspec.Struct, tag="Paid", kw_only=True):
    account: str
    amount: int
    memo: str = ""
    payer: str


class PaidOptional(msgspec.Struct, tag="Paid", kw_only=True):
    """New docs are not a change either."""

    account: str
    amount: int
    memo: str = ""
    payer: str = ""
    note: str | None = None


class PaidNullable(msgspec.Struct, tag="Paid", kw_only=True):
    account: str
    amount: int | None
    memo: str = ""


class PaidMemoRequired(msgspec.Struct, tag="Paid", kw_only=True):
    account: str
    amount: int
    memo: str


class Refunded(msgspec.Struct, tag=True, kw_only=True):
    account: str


class Env(msgspec.Struct, kw_only=True):
    payload: Paid


class EnvUnion(msgspec.Struct, kw_only=True):
    payload: Paid | Refunded


def doc(*events: Any, envelope: Any = Env) -> dict[str, Any]:
    schemas = {"Refunded" if e is Refunded else "Paid": msgspec.json.schema(e) for e in events}
    return {
        "format": contracts.FORMAT,
        "version": 1,
        "envelope": msgspec.json.schema(envelope),
        "events": schemas,
    }


def kinds(old: dict[str, Any], new: dict[str, Any]) -> list[tuple[str, bool]]:
    return [(c.what, c.breaking) for c in contracts.changes(old, new)]


@pytest.mark.parametrize(
    ("new", "what"),
    [
        (PaidRemoved, "field removed"),
        (PaidRetyped, "type changed from integer to string"),
        (PaidRequired, "new required field"),
        (PaidNullable, "type widened"),
        (PaidMemoRequired, "optional field became required"),
    ],
)
def test_breaking_changes(new: Any, what: str) -> None:
    found = contracts.breaking(doc(Paid), doc(new))
    assert found and any(what in c.what for c in found), found


def test_additive_changes_pass() -> None:
    assert contracts.changes(doc(Paid), doc(Paid)) == []
    assert kinds(doc(Paid), doc(PaidOptional)) == [("optional field added", False)] * 2
    added = contracts.changes(doc(Paid), doc(Paid, Refunded, envelope=EnvUnion))
    assert added and not any(c.breaking for c in added)
    assert {c.what for c in added} == {"event type added", "union member tag:Refunded added"}


def test_removing_an_event_type_breaks() -> None:
    found = contracts.breaking(doc(Paid, Refunded, envelope=EnvUnion), doc(Paid))
    assert {c.what for c in found} == {"event type removed", "union member tag:Refunded removed"}


def test_enum_values() -> None:
    old = {"type": "string", "enum": ["a", "b"]}
    base: dict[str, Any] = {"format": contracts.FORMAT, "envelope": {}, "events": {"E": old}}
    grown = copy.deepcopy(base)
    grown["events"]["E"]["enum"].append("c")
    shrunk = copy.deepcopy(base)
    shrunk["events"]["E"]["enum"].remove("b")
    assert not contracts.breaking(base, grown)
    assert contracts.breaking(base, shrunk)


def test_check_and_update_commands(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "events.v1.json"
    assert run(["contracts", "check", "--baseline", str(path)]) == 2  # no baseline yet
    assert run(["contracts", "update", "--baseline", str(path)]) == 0
    assert run(["contracts", "check", "--baseline", str(path)]) == 0
    broken = json.loads(path.read_text())
    broken["events"]["Charge"]["$defs"]["Charge"]["properties"]["retired_field"] = {
        "type": "string"
    }
    path.write_text(json.dumps(broken))
    capsys.readouterr()
    assert run(["contracts", "check", "--baseline", str(path)]) == 4
    assert "Charge.retired_field: field removed" in capsys.readouterr().out
