"""Timecards through the watched drop folder (connectors/folder.py): a JSON export accrues,
the same export dropped again accrues nothing more, a bad one goes to failed/ with the
field at fault and posts nothing."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path

from isthmus.app import Hub
from isthmus.config import load_settings
from isthmus.connectors.folder import DropFolder
from isthmus.flows.file_intake import FileIntake
from tests.chart import demo_config


def _wages(hub: Hub) -> Decimal:
    return sum(
        (x.debit - x.credit for e in hub.store.entries() for x in e.lines if x.account == "5100"),
        Decimal(0),
    )


def test_timecards_through_the_drop_folder(tmp_path: Path) -> None:
    hub = Hub.open(load_settings(demo_config(tmp_path), data_dir=tmp_path / "hub", env={}))
    try:
        intake = FileIntake(hub.store, hub.bus, hub.settings)
        folder = DropFolder(tmp_path / "drop", intake, hub.settings, quiet_s=0.0)
        week = json.dumps(
            {
                "timecards": [
                    {
                        "shift_id": "J1",
                        "employee_id": "E1",
                        "department": "ED",
                        "work_date": "2026-01-05",
                        "regular_hours": 8,
                        "employee_name": "Jane Roe",
                    },
                    {
                        "shift_id": "J2",
                        "employee_id": "E1",
                        "department": "ED",
                        "work_date": "2026-01-06",
                        "regular_hours": 4,
                    },
                ]
            }
        ).encode()
        (folder.inbound / "week.json").write_bytes(week)
        folder.run_once()  # sees the size
        [rep] = folder.run_once()  # takes it
        assert rep["refused"] == 0 and "done" in rep["moved_to"]
        hub.worker().drain()
        assert _wages(hub) == Decimal("540.00")
        (folder.inbound / "week-again.json").write_bytes(week)
        folder.run_once()
        [again] = folder.run_once()
        assert again["refused"] == 0
        hub.worker().drain()
        assert _wages(hub) == Decimal("540.00")
        bad = week.replace(b'"regular_hours": 4', b'"regular_hours": "four"')
        (folder.inbound / "bad.json").write_bytes(bad)
        folder.run_once()
        [refused] = folder.run_once()
        assert refused["refused"] == 1 and "failed" in refused["moved_to"]
        error = Path(refused["moved_to"] + ".error.txt").read_text()
        assert "regular_hours" in error
        hub.worker().drain()
        assert _wages(hub) == Decimal("540.00")
    finally:
        hub.close()
