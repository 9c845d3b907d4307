"""Patient data on disk is the hub's user's alone, whatever the umask (issue 16: store.db
and bus.db were 0644 in a 0755 directory; `isthmus backup` copied governance.db as 0644).

Embedded mode only: these are the SQLite files, the token key and the ERP file drop.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from isthmus.app import Hub
from isthmus.bus.ports import Publish
from isthmus.cli.main import run
from isthmus.config import load_settings
from isthmus.connectors.erp_file import ErpFileSink
from isthmus.ledger import batch_codec
from isthmus.ledger.batch import build_batch
from isthmus.ledger.batch_file import batch_to_csv
from isthmus.maintenance import backup_embedded
from isthmus.store.sqlite_connection import connect
from tests.ledger.builders import make_charge, post

CSV_BATCH = batch_to_csv(
    build_batch("B-1", [post(make_charge())], policy="summary", channel="c")
).encode()  # an ERP file, as exported

pytestmark = pytest.mark.skipif(
    os.environ.get("ISTHMUS_STORE") == "postgresql" or os.environ.get("ISTHMUS_BUS") == "nats",
    reason="the embedded SQLite files",
)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture(params=[0o022, 0o000], ids=["umask022", "umask000"])
def umask(request: pytest.FixtureRequest) -> Iterator[int]:
    old = os.umask(request.param)
    try:
        yield request.param
    finally:
        os.umask(old)


def test_hub_files_are_private_whatever_the_umask(tmp_path: Path, umask: int) -> None:
    data = tmp_path / "site" / "data"
    hub = Hub.open(load_settings(None, data_dir=data, env={}))
    try:
        hub.bus.publish([Publish("e/1", "finance", "k1", b"{}")])  # WAL and SHM in use
        hub.store.counts()
        assert hub.governance.initialized() is False
        wal_files = [
            data / f"{db}{side}" for db in ("store.db", "bus.db") for side in ("-wal", "-shm")
        ]
        assert all(p.exists() for p in wal_files)
        assert mode(data) == 0o700
        for p in (
            data / "store.db",
            data / "bus.db",
            data / "governance.db",
            data / "token.key",
            *wal_files,
        ):
            assert mode(p) == 0o600, p.name
        ErpFileSink(hub.export_dir).deliver(batch_codec.decode("csv", CSV_BATCH))
        exported = hub.export_dir / "B-1.csv"
        assert exported.read_bytes() == CSV_BATCH
        assert mode(exported) == 0o600
        assert mode(hub.export_dir) == 0o700 and mode(data / "exports") == 0o700
        written = backup_embedded(data, tmp_path / "backup")
    finally:
        hub.close()
    assert {p.name for p in written} == {"store.db", "bus.db", "governance.db", "token.key"}
    assert mode(tmp_path / "backup") == 0o700
    for p in (tmp_path / "backup").iterdir():
        assert mode(p) == 0o600, p.name


def test_isthmus_backup_writes_owner_only_files(
    tmp_path: Path, umask: int, capsys: pytest.CaptureFixture[str]
) -> None:
    data = tmp_path / "data"
    assert run(["migrate", "--data-dir", str(data)]) == 0
    assert run(["audit", "list", "--data-dir", str(data)]) == 0  # governance.db exists
    assert run(["backup", "--data-dir", str(data), "--to", str(tmp_path / "bk")]) == 0
    capsys.readouterr()
    copied = sorted((tmp_path / "bk").iterdir())
    assert "governance.db" in {p.name for p in copied}
    assert [(p.name, mode(p)) for p in copied] == [(p.name, 0o600) for p in copied]


def test_a_database_left_world_readable_is_narrowed_when_opened(tmp_path: Path) -> None:
    db = tmp_path / "store.db"
    first = connect(db)  # keeps the -wal and -shm files there
    try:
        first.execute("CREATE TABLE t (x)")
        sides = [tmp_path / "store.db-wal", tmp_path / "store.db-shm"]
        for p in (db, *sides):
            os.chmod(p, 0o644)  # as an older release left them
        connect(db).close()
        assert [mode(p) for p in (db, *sides)] == [0o600] * 3
    finally:
        first.close()
