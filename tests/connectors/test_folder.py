"""Watched drop folder: atomic pickup, done/failed, idempotent on content, crash leftovers."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

from isthmus.bus.memory import MemoryBus
from isthmus.config import load_settings
from isthmus.connectors.folder import DropFolder
from isthmus.demo.remit835 import ClaimToPay, remittance_835
from isthmus.flows.file_intake import FileIntake
from isthmus.store.sqlite import SqliteStore


def make(tmp_path: Path, **kwargs: Any) -> tuple[DropFolder, SqliteStore, MemoryBus]:
    """A folder with no quiet period (two passes settle a file) unless told otherwise."""
    settings = load_settings(None, data_dir=tmp_path / "data", env={})
    store, bus = SqliteStore(tmp_path / "store.db"), MemoryBus(partitions=2)
    kwargs.setdefault("quiet_s", 0.0)
    return (
        DropFolder(tmp_path / "drop", FileIntake(store, bus, settings), settings, **kwargs),
        store,
        bus,
    )


def remit(seed: int) -> bytes:
    return remittance_835(
        [ClaimToPay("A1", Decimal("100.00")), ClaimToPay("A2", Decimal("50.00"))],
        day=date(2026, 11, 3),
        seed=seed,
        control=900 + seed,
    )


def test_a_settled_file_is_taken_once_and_moved_to_done(tmp_path: Path) -> None:
    folder, store, bus = make(tmp_path)
    try:
        (folder.inbound / "payer.835").write_bytes(remit(1))
        assert folder.run_once() == []  # first sight: size not yet known to be stable
        [report] = folder.run_once()
        assert report["refused"] == 0 and (folder.done / "payer.835").exists()
        assert not any(folder.inbound.iterdir()) and not any(folder.processing.iterdir())
        assert bus.pending() == 3  # a ClaimRemitted per claim + the EFT, relayed to the bus
        (folder.inbound / "again.835").write_bytes(remit(1))  # the same bytes, new name
        folder.run_once()
        folder.run_once()
        assert (folder.done / "again.835").exists()
        assert len(store.messages()) == 1 and bus.pending() == 3  # nothing new
        ack = tmp_path / "data" / "outbound" / "x12" / "000000901.999"
        assert ack.exists() and b"IK5*A" in ack.read_bytes()
    finally:
        store.close()


def test_a_growing_or_in_flight_file_waits(tmp_path: Path) -> None:
    folder, store, _ = make(tmp_path)
    try:
        f = folder.inbound / "big.835"
        f.write_bytes(remit(2)[:100])
        (folder.inbound / "upload.835.part").write_bytes(b"ISA")
        folder.run_once()
        f.write_bytes(remit(2))  # still growing
        assert folder.run_once() == []
        [report] = folder.run_once()
        assert report["file"] == "big.835"
        assert (folder.inbound / "upload.835.part").exists()  # never taken
    finally:
        store.close()


def test_garbage_goes_to_failed_with_the_reason(tmp_path: Path) -> None:
    folder, store, _ = make(tmp_path)
    try:
        (folder.inbound / "junk.txt").write_bytes(b"not a healthcare file")
        folder.run_once()
        [report] = folder.run_once()
        assert report["refused"] == 1
        assert (folder.failed / "junk.txt").exists()
        reason = (folder.failed / "junk.txt.error.txt").read_text()
        assert "neither X12" in reason
    finally:
        store.close()


def test_leftovers_of_a_crash_in_processing_are_taken_at_start(tmp_path: Path) -> None:
    folder, store, bus = make(tmp_path)
    try:
        (folder.processing / "crashed.835").write_bytes(remit(3))
        [report] = folder.run_once()
        assert report["refused"] == 0 and (folder.done / "crashed.835").exists()
        assert bus.pending() == 3  # two claims and the EFT
    finally:
        store.close()
