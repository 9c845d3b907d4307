"""Large X12 files through the file intake: streamed a transaction set at a time (each set
an interchange of its own, with its own 999), memory bounded by a set, not by the file;
taken whole as before when the interchange's own envelope is in error."""

from __future__ import annotations

import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import pytest

from isthmus.config import load_settings
from isthmus.flows import file_intake
from isthmus.flows.file_intake import take_file
from isthmus.store.sqlite import SqliteStore
from tests.formats.x12.x12_corpus import synthetic_835


def write(path: Path, sets: int, claims: int) -> Path:
    with path.open("wb") as f:
        for block in synthetic_835(sets, claims):
            f.write(block)
    return path


def test_a_large_file_is_taken_a_set_at_a_time(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(file_intake, "STREAM_OVER", 1000)
    settings = load_settings(None, data_dir=tmp_path / "data", env={})
    store = SqliteStore(tmp_path / "store.db")
    path = write(tmp_path / "big.835", 3, 5)
    rows = take_file(store, settings, path, path.name, 1_800_000_000.0)
    assert [r["control_id"] for r in rows] == [
        "SENDER:000000123/7/0001",
        "SENDER:000000123/7/0002",
        "SENDER:000000123/7/0003",
    ]
    assert {(r["status"], r["ack"], r["claims"]) for r in rows} == {("accepted", "999-A", 5)}
    assert all(
        Path(r["ack_file"]).name == f"000000123-7-000{n}.999" for n, r in enumerate(rows, start=1)
    )
    whole = take_file(
        SqliteStore(tmp_path / "whole.db"),
        load_settings(None, data_dir=tmp_path / "whole", env={}),
        path.read_bytes(),
        path.name,
        1_800_000_000.0,
    )
    assert sum(Decimal(r["paid"]) for r in rows) == Decimal(whole[0]["paid"])
    again = take_file(store, settings, path, path.name, 1_800_000_001.0)
    assert [r["duplicate"] for r in again] == [True, True, True]


def test_an_envelope_error_takes_the_file_whole(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(file_intake, "STREAM_OVER", 1000)
    settings = load_settings(None, data_dir=tmp_path / "data", env={})
    path = write(tmp_path / "big.835", 2, 3)
    path.write_bytes(path.read_bytes().replace(b"GE*2*7~", b"GE*5*7~"))  # GE01 miscounts
    [row] = take_file(SqliteStore(tmp_path / "store.db"), settings, path, path.name, 1.0)
    assert row["control_id"] == "SENDER:000000123"
    assert any("GE01" in x for x in row["findings"])


CHILD = """
import resource, sys, time
from pathlib import Path
from isthmus.config import load_settings
from isthmus.flows.file_intake import take_file
from isthmus.store.sqlite import SqliteStore
tmp = Path(sys.argv[1])
settings = load_settings(None, data_dir=tmp / "data", env={})
store = SqliteStore(tmp / "store.db")
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
rows = take_file(store, settings, tmp / "big.835", "big.835", time.time())
assert all(r["status"] == "accepted" for r in rows), rows[:1]
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(len(rows), sum(r["claims"] for r in rows), base, peak)
"""


@pytest.mark.slow
def test_a_large_file_is_ingested_in_bounded_memory(tmp_path: Path) -> None:
    path = write(tmp_path / "big.835", 400, 200)  # 80,000 claims, about 20 MB
    size = path.stat().st_size
    assert size > file_intake.STREAM_OVER
    out = subprocess.run(
        [sys.executable, "-c", CHILD, str(tmp_path)],
        check=True,
        capture_output=True,
        text=True,
        timeout=280,
    ).stdout.split()
    sets, claims, base, peak = map(int, out)
    assert (sets, claims) == (400, 80_000)
    grown = (peak - base) * 1024  # ru_maxrss is in KiB
    # a whole read holds the file's bytes, its text and every segment at once (several
    # times its size); streamed, the process grows by about one set's worth
    assert grown < size / 2, f"grew {grown} bytes for a {size}-byte file"
