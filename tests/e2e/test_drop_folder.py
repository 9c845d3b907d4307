"""`isthmus serve` watches <data_dir>/drop: a payer's 835 dropped there posts, once, and only
when complete (a writer that pauses mid-file is waited for); a symlink is refused unread.

Run with ISTHMUS_STORE=postgresql (the scale-out pass), the hub runs on PostgreSQL and NATS
too, in a schema and stream of its own, dropped afterwards.
"""

from __future__ import annotations

import asyncio
import json
import os
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from isthmus.demo.remit835 import ClaimToPay, remittance_835
from tests.e2e.conftest import ServeFactory
from tests.e2e.helpers import isthmus

DEADLINE_S = 60.0  # generous: the watcher passes every 2 s on a busy 2-core machine


@pytest.fixture
def mode_env() -> Iterator[dict[str, str]]:
    """The store and bus of this test pass for the hub and the CLI: nothing to add when
    embedded; on PostgreSQL + NATS, a schema and a stream of this test's own, dropped once
    the hub has stopped (so a test names this fixture before `serve_factory`)."""
    if os.environ.get("ISTHMUS_STORE") != "postgresql":
        yield {}
        return
    tag = uuid.uuid4().hex[:10]
    env = {
        k: os.environ[k]
        for k in ("ISTHMUS_STORE", "ISTHMUS_BUS", "ISTHMUS_PG_DSN", "ISTHMUS_NATS_URL")
        if os.environ.get(k)
    }
    env |= {"ISTHMUS_PG_SCHEMA": f"drop_{tag}", "ISTHMUS_NATS_STREAM": f"DROP{tag.upper()}"}
    try:
        yield env
    finally:
        import psycopg  # noqa: PLC0415 - scale-out pass only

        from tests.e2e.scaleout import drop_streams  # noqa: PLC0415

        asyncio.run(drop_streams(env["ISTHMUS_NATS_STREAM"]))
        with psycopg.connect(env["ISTHMUS_PG_DSN"], autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA IF EXISTS "{env["ISTHMUS_PG_SCHEMA"]}" CASCADE')


def wait_for(condition: Callable[[], bool], what: str, timeout: float = DEADLINE_S) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"within {timeout} s: {what}"
        time.sleep(0.1)


def workitems(data_dir: Path, env: dict[str, str]) -> Any:
    res = isthmus("workitems", "list", "--json", data_dir=data_dir, env=env)
    assert res.returncode == 0, res.stderr
    return json.loads(res.stdout)


def remit(control: int) -> bytes:
    return remittance_835(
        [ClaimToPay("NOSUCH1", Decimal("100.00")), ClaimToPay("NOSUCH2", Decimal("40.00"))],
        day=date(2026, 11, 3),
        seed=1,
        control=control,
    )


def quick(tmp_path: Path) -> Path:
    """A config with a short quiet period, so that files written in place go quickly."""
    config = tmp_path / "isthmus.toml"
    config.write_text("[reliability]\ndrop_quiet_period_s = 1.0\n")
    return config


def test_a_dropped_835_is_taken_and_moved_to_done(
    mode_env: dict[str, str], serve_factory: ServeFactory, tmp_path: Path
) -> None:
    hub = serve_factory(config=quick(tmp_path), env=mode_env)
    drop = hub.data_dir / "drop"
    raw = remit(4242)
    (drop / "inbound" / ".payer.835.part").write_bytes(raw)  # an upload in flight
    (drop / "inbound" / ".payer.835.part").rename(drop / "inbound" / "payer.835")
    wait_for((drop / "done" / "payer.835").exists, "the drop folder takes the file")
    hub.wait_idle()
    ack = hub.data_dir / "outbound" / "x12" / "000004242.999"
    assert ack.exists() and b"IK5*A" in ack.read_bytes()
    # unknown accounts: the payment waits as unapplied cash, one work item per claim
    items = workitems(hub.data_dir, mode_env)
    assert sorted(w["kind"] for w in items) == ["denial", "unapplied_cash"]
    (drop / "inbound" / "again.835").write_bytes(raw)  # dropped twice: nothing new
    wait_for((drop / "done" / "again.835").exists, "the drop folder takes the copy")
    hub.wait_idle()
    assert workitems(hub.data_dir, mode_env) == items


def test_a_writer_that_pauses_mid_file_is_waited_for_and_a_symlink_refused(
    mode_env: dict[str, str], serve_factory: ServeFactory, tmp_path: Path
) -> None:
    hub = serve_factory(config=quick(tmp_path), env=mode_env)
    drop = hub.data_dir / "drop"
    passwd = (os.stat("/etc/passwd").st_mtime_ns, Path("/etc/passwd").read_bytes())
    whole = remit(4343)
    with (drop / "inbound" / "slow.835").open("wb") as writer:
        writer.write(whole[: len(whole) // 2])  # the writer pauses here, its file open
        writer.flush()
        (drop / "inbound" / "passwd.835").symlink_to("/etc/passwd")
        (drop / "inbound" / "quick.835").write_bytes(remit(4344))
        # quick.835, written after the first half of slow.835, is taken once settled:
        # slow.835 has been as quiet as long, and must still be waiting
        wait_for((drop / "done" / "quick.835").exists, "a settled file beside is taken")
        wait_for((drop / "failed" / "passwd.835.error.txt").exists, "the link is refused")
        assert (drop / "inbound" / "slow.835").exists()
        assert not any((drop / "processing").iterdir())
        writer.write(whole[len(whole) // 2 :])  # and goes on
    wait_for((drop / "done" / "slow.835").exists, "the whole file is taken once closed")
    assert (drop / "done" / "slow.835").read_bytes() == whole
    assert not (drop / "failed" / "slow.835").exists()
    ack = hub.data_dir / "outbound" / "x12" / "000004343.999"
    assert ack.exists() and b"IK5*A" in ack.read_bytes()
    assert (drop / "failed" / "passwd.835").is_symlink()
    assert "symbolic link" in (drop / "failed" / "passwd.835.error.txt").read_text()
    assert (os.stat("/etc/passwd").st_mtime_ns, Path("/etc/passwd").read_bytes()) == passwd
    hub.wait_idle()
