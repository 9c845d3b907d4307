"""The drop folder takes a file only when it is complete (issue 14, item 6): a writer that
pauses is waited for, a file held open is left alone, a `.part` renamed into place is taken
at once, in-flight names never; links, FIFOs and hard links are refused unread into
failed/ with the reason; any file name is taken and reported."""

from __future__ import annotations

import json
import os
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from isthmus.bus.memory import MemoryBus
from isthmus.config import ConfigError, load_settings
from isthmus.connectors.folder import DropFolder, fitted, leaves, shown
from isthmus.connectors.settled import inode, open_for_writing
from isthmus.demo.remit835 import ClaimToPay, remittance_835
from isthmus.flows.file_intake import FileIntake
from isthmus.store.sqlite import SqliteStore


class Clock:
    """The folder's monotonic clock, moved by hand."""

    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


@pytest.fixture
def rig(tmp_path: Path) -> Any:
    made: list[SqliteStore] = []

    def make(quiet_s: float = 0.0, **kwargs: Any) -> tuple[DropFolder, SqliteStore]:
        settings = load_settings(None, data_dir=tmp_path / "data", env={})
        store = SqliteStore(tmp_path / f"store{len(made)}.db")
        made.append(store)
        folder = DropFolder(
            tmp_path / "drop",
            FileIntake(store, MemoryBus(partitions=2), settings),
            settings,
            quiet_s=quiet_s,
            **kwargs,
        )
        return folder, store

    yield make
    for store in made:
        store.close()


def remit(seed: int) -> bytes:
    return remittance_835(
        [ClaimToPay("A1", Decimal("100.00")), ClaimToPay("A2", Decimal("50.00"))],
        day=date(2026, 11, 3),
        seed=seed,
        control=700 + seed,
    )


def passes(folder: DropFolder, n: int) -> list[dict[str, Any]]:
    return [r for _ in range(n) for r in folder.run_once()]


def reason(failed: Path, name: str) -> str:
    rows = json.loads((failed / f"{name}.error.txt").read_text())
    return " ".join(r["error"] for r in rows)


def test_a_writer_that_pauses_is_waited_for_over_the_quiet_period(rig: Any) -> None:
    clock = Clock()
    folder, store = rig(quiet_s=5.0, clock=clock)
    whole, f = remit(1), folder.inbound / "payer.835"
    f.write_bytes(whole[:200])  # the writer pauses (its file closed) ...
    assert passes(folder, 2) == []
    clock.t += 3
    assert folder.run_once() == []  # stable for 3 s of 5: not yet
    with f.open("ab") as w:  # ... and goes on
        w.write(whole[200:])
    assert folder.run_once() == []  # changed: the quiet period starts again
    clock.t += 4.9
    assert folder.run_once() == []
    clock.t += 0.2
    [report] = folder.run_once()
    assert report["refused"] == 0
    assert (folder.done / "payer.835").read_bytes() == whole
    [msg] = store.messages()
    assert msg.raw == whole  # taken once, whole


def test_a_file_open_for_writing_is_not_moved_until_closed(rig: Any) -> None:
    folder, store = rig()  # no quiet period: only the open descriptor holds it back
    whole, f = remit(2), folder.inbound / "payer.835"
    with f.open("wb") as w:
        w.write(whole[:300])
        w.flush()
        assert passes(folder, 3) == []
        assert f.exists() and not any(folder.processing.iterdir())
        w.write(whole[300:])
    reports = passes(folder, 2)
    assert [r["refused"] for r in reports] == [0]
    assert (folder.done / "payer.835").read_bytes() == whole
    assert [m.raw for m in store.messages()] == [whole]


def test_a_part_renamed_into_place_is_taken_at_once_and_in_flight_names_never(rig: Any) -> None:
    clock = Clock()
    folder, store = rig(quiet_s=3600.0, clock=clock)
    whole = remit(3)
    part = folder.inbound / "payer.835.part"
    part.write_bytes(whole[:100])
    assert folder.run_once() == []
    part.write_bytes(whole)
    for name in ("later.835~", ".hidden.835", "upload.tmp", "x.835.filepart"):
        (folder.inbound / name).write_bytes(remit(4))
    assert folder.run_once() == []
    part.rename(folder.inbound / "payer.835")  # the sender says: complete
    [report] = folder.run_once()  # no quiet period to wait
    assert report["file"] == "payer.835" and report["refused"] == 0
    assert (folder.done / "payer.835").read_bytes() == whole
    clock.t += 10_000
    assert passes(folder, 2) == []
    assert sorted(os.listdir(folder.inbound)) == [
        ".hidden.835",
        "later.835~",
        "upload.tmp",
        "x.835.filepart",
    ]
    assert len(store.messages()) == 1


def test_a_symlink_is_refused_unread_whatever_it_points_to(rig: Any, tmp_path: Path) -> None:
    folder, store = rig()
    outside = tmp_path / "elsewhere.835"
    outside.write_bytes(remit(5))  # a valid remittance outside the folder
    before = (os.stat("/etc/passwd").st_mtime_ns, Path("/etc/passwd").read_bytes())
    (folder.inbound / "passwd.835").symlink_to("/etc/passwd")
    (folder.inbound / "remit.835").symlink_to(outside)
    reports = folder.run_once()  # refused at first sight: nothing to wait for
    assert sorted(r["file"] for r in reports) == ["passwd.835", "remit.835"]
    assert all(r["refused"] == 1 for r in reports)
    for name in ("passwd.835", "remit.835"):
        assert (folder.failed / name).is_symlink()  # the link itself, moved
        assert "symbolic link" in reason(folder.failed, name)
    assert os.readlink(folder.failed / "passwd.835") == "/etc/passwd"
    assert (os.stat("/etc/passwd").st_mtime_ns, Path("/etc/passwd").read_bytes()) == before
    assert outside.read_bytes() == remit(5)
    assert store.messages() == []  # neither target was taken
    assert not any(folder.inbound.iterdir()) and not any(folder.processing.iterdir())


def test_a_refusal_never_writes_through_a_link_already_in_failed(rig: Any, tmp_path: Path) -> None:
    folder, _ = rig()
    target = tmp_path / "written-through"
    (folder.inbound / "x.835.error.txt").symlink_to(target)
    [first] = folder.run_once()  # the link, refused into failed/x.835.error.txt
    os.mkfifo(folder.inbound / "x.835")
    [second] = folder.run_once()  # its error file must not land on that link
    assert not target.exists() and (folder.failed / "x.835.error.txt").is_symlink()
    moved = Path(second["moved_to"])
    assert moved.name.startswith("x-") and "FIFO" in reason(folder.failed, moved.name)
    assert first["moved_to"] != second["moved_to"]


def test_a_fifo_and_a_hard_link_are_refused_unread(rig: Any, tmp_path: Path) -> None:
    folder, store = rig()
    os.mkfifo(folder.inbound / "pipe.835")  # opening it would block the watcher
    outside = tmp_path / "elsewhere.835"
    outside.write_bytes(remit(6))
    os.link(outside, folder.inbound / "linked.835")
    reports = passes(folder, 2)
    assert sorted(r["file"] for r in reports) == ["linked.835", "pipe.835"]
    assert "FIFO" in reason(folder.failed, "pipe.835")
    assert "hard links" in reason(folder.failed, "linked.835")
    assert store.messages() == []


def test_any_file_name_is_taken_moved_and_reported(rig: Any) -> None:
    folder, store = rig()
    inbound = os.fsencode(folder.inbound)
    names = {
        b"caf\xe9 remit \xff.835": remit(7),  # not UTF-8, spaces
        "r\u00e9sum\u00e9 \u2603.835".encode(): remit(8),
        b"line\nbreak.835": remit(9),
        b"L" * 251 + b".835": remit(10),  # NAME_MAX: no room for .error.txt
        b"junk \xfe" + b"J" * 240 + b".txt": b"not a healthcare file",
    }
    for raw_name, body in names.items():
        with open(os.path.join(inbound, raw_name), "wb") as f:
            f.write(body)
    reports = {r["file"]: r for r in passes(folder, 2)}
    assert set(reports) == {
        "caf\\xe9 remit \\xff.835",
        "r\u00e9sum\u00e9 \u2603.835",
        "line\\nbreak.835",
        "L" * 251 + ".835",
        "junk \\xfe" + "J" * 240 + ".txt",
    }
    for label in reports:
        label.encode("utf-8")  # shown as valid UTF-8: stored, logged and printed as is
    done = set(os.listdir(os.fsencode(folder.done)))
    assert done == {n for n in names if not n.startswith(b"junk")}  # under their own bytes
    for raw_name in done:
        with open(os.path.join(os.fsencode(folder.done), raw_name), "rb") as f:
            assert f.read() == names[raw_name]
    [kept, error] = sorted(os.listdir(os.fsencode(folder.failed)), key=len)
    assert error == kept + b".error.txt" and len(error) <= 255
    assert "neither X12" in reason(folder.failed, os.fsdecode(kept))
    assert len(store.messages()) == 4
    assert {m.peer for m in store.messages()} == {
        f"file:{x}" for x in reports if not x.startswith("junk")
    }


def test_a_file_changed_while_it_was_taken_goes_to_failed_saying_so(
    rig: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A writer the watcher cannot see (another user's) goes on after the move."""
    folder, _ = rig()
    inner = folder._intake

    class TakeThenGrow:
        def take(self, path: Path, name: str, now: float) -> list[dict[str, Any]]:
            rows = inner.take(path, name, now)
            with path.open("ab") as w:
                w.write(b"more\n")
            return rows

        def relay(self) -> int:
            return inner.relay()

    monkeypatch.setattr(folder, "_intake", TakeThenGrow())
    (folder.inbound / "payer.835").write_bytes(remit(11))
    [report] = passes(folder, 2)
    assert report["refused"] == 1 and not (folder.done / "payer.835").exists()
    assert "changed while it was being taken" in reason(folder.failed, "payer.835")


def test_where_open_files_cannot_be_seen_the_quiet_period_alone_decides(
    rig: Any, tmp_path: Path
) -> None:
    blind = tmp_path / "no-proc"
    clock = Clock()
    folder, _ = rig(quiet_s=2.0, clock=clock, proc=blind)
    f = folder.inbound / "payer.835"
    f.write_bytes(remit(12))
    assert open_for_writing({inode(f.stat())}, blind) is None
    assert folder.run_once() == []
    clock.t += 2
    [report] = folder.run_once()
    assert report["refused"] == 0


def test_open_files_are_seen_in_proc_for_writing_only(tmp_path: Path) -> None:
    if not Path("/proc/self/fd").is_dir():
        pytest.skip("no /proc on this system")
    w_path, r_path = tmp_path / "w", tmp_path / "r"
    r_path.write_bytes(b"x")
    with w_path.open("wb"), r_path.open("rb"):
        w, r = inode(w_path.stat()), inode(r_path.stat())
        assert open_for_writing({w, r}) == {w}
    assert open_for_writing({w, r}) == set()


def test_names_are_shown_escaped_and_fitted_under_name_max() -> None:
    assert shown(os.fsdecode(b"a\xff b\x1b.835")) == "a\\xff b\\x1b.835"
    long = os.fsdecode(b"\xc3\xa9" * 130 + b".835")  # 264 bytes, cut mid-character
    short = os.fsencode(fitted(long))
    assert len(short) + len(".error.txt") <= 255 and short.endswith(b".835")
    assert fitted(long) != fitted(long[:-5] + ".835")  # the hash of the whole name
    assert all(leaves(n) for n in ("..", ".", "", "a/b", "/etc/passwd", "a\0b"))
    assert not leaves("..payer.835")


def test_the_quiet_period_is_a_checked_setting(tmp_path: Path) -> None:
    def load(text: str) -> float:
        (tmp_path / "isthmus.toml").write_text(f"[reliability]\n{text}\n")
        s = load_settings(tmp_path / "isthmus.toml", data_dir=tmp_path, env={})
        return s.reliability.drop_quiet_period_s

    assert load("") == 5.0
    assert load("drop_quiet_period_s = 0.5") == 0.5
    for bad in ("-1", '"5"', "true", "nan"):
        with pytest.raises(ConfigError, match="drop_quiet_period_s"):
            load(f"drop_quiet_period_s = {bad}")
