"""Fault test (issue 5, done-when): Tryton goes away for a minute mid-stream; nothing is lost,
and after recovery the hub ledger and Tryton reconcile to zero variance.

A real trytond (a copy of the session's template) and the hub in this process: the MLLP
listener, the workers and the ERP export loop ([erp] kind = "tryton", a round every 2 s),
while a simulated EHR keeps sending registrations and charges. Two faults, in order:
1. the server hangs (SIGSTOP) just as an `account.move.post` request reaches it: the hub
   times out; the server resumes 6 s later with that post and the hub's retries queued:
   whichever runs first, the batch ends up posted once (the retry's look-up finds the moves
   posted, or deletes the drafts and makes them again, the stale post then finding none);
2. the server is killed (SIGKILL) and stays down for ISTHMUS_FAULT_OUTAGE_S (60 s): the
   outbox grows, the breaker opens, `isthmus status` shows both and exits 4. The server is
   restarted on the same port; the outbox drains in order.
Then: every charge was ACKed and is in the ledger, no outbox row is dead, every move is in
Tryton once (source references unique), and `isthmus recon erp --json` exits 0 with zero
variance.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import signal
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from tests.chart import DEMO_CHART
from tests.connectors.erp.conftest import TEMPLATE
from tests.flows.helpers import adt, charge

from isthmus.app import Hub
from isthmus.cli.main import run as cli
from isthmus.config import load_settings
from isthmus.connectors.erp_ports import PostResult, move_specs
from isthmus.connectors.erp_rpc import TrytonRpc
from isthmus.connectors.erp_tryton import TrytonErp
from isthmus.connectors.erp_tryton_server import TrytonServer, TrytonSite
from isthmus.connectors.erp_tryton_setup import copy_database
from isthmus.connectors.mllp_client import send_messages
from isthmus.formats.hl7v2 import ack_code
from isthmus.ledger.batch import JournalBatch
from isthmus.ledger.batch_codec import POSTING_FORMATS
from isthmus.recon.erp import _batch
from isthmus.runtime import start

pytestmark = [
    pytest.mark.slow,
    pytest.mark.service,
    # Once per suite run, in the embedded pass: what is under test is the ERP side (outbox,
    # breaker, Tryton), which the scale-out pass would only repeat two minutes longer.
    pytest.mark.skipif(
        os.environ.get("ISTHMUS_STORE") == "postgresql",
        reason="embedded pass only (the ERP side does not change)",
    ),
]

OUTAGE_S = float(os.environ.get("ISTHMUS_FAULT_OUTAGE_S", "60"))
STALL_S = 6.0


class Ehr:
    """Sends one registration and three charges per second until stopped."""

    def __init__(self, port: int) -> None:
        self.port, self.acks, self.charges = port, {}, 0
        self.stopped = asyncio.Event()
        self._n = itertools.count()

    async def run(self) -> None:
        while not self.stopped.is_set():
            n = next(self._n)
            mrn = f"F{n:05d}"
            msgs = [adt(f"fa{n}", mrn)] + [
                charge(
                    f"fc{n}x{i}",
                    mrn,
                    amount=f"{20 + n % 50}.{i}5",
                    code=("71045", "80053", "99283")[i],
                    dept=("RAD", "LAB", "ED")[i],
                )
                for i in range(3)
            ]
            report = await send_messages("127.0.0.1", self.port, msgs, timeout_s=30)
            for ack in report.acks:
                code = ack_code(ack)[0] if ack else "none"
                self.acks[code] = self.acks.get(code, 0) + 1
            self.charges += 3
            await asyncio.sleep(1.0)


def _status(data: Path, cfg: Path, capsys: pytest.CaptureFixture[str]) -> tuple[int, Any]:
    code = cli(["status", "--data-dir", str(data), "--config", str(cfg), "--json"])
    return code, json.loads(capsys.readouterr().out)


def _pending(hub: Hub) -> int:
    """Batches waiting in the outbox (one posting row each)."""
    return sum(1 for o in hub.store.outbox_items("pending") if o.fmt in POSTING_FORMATS)


async def _until(cond: Any, timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not await asyncio.to_thread(cond):
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s:.0f} s waiting for {what}")
        await asyncio.sleep(0.5)


@pytest.mark.timeout(600)
def test_tryton_down_for_a_minute_mid_stream(
    tmp_path: Path,
    tryton_template: TrytonSite,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    site = TrytonSite(tmp_path / "tryton", tryton_template.bin_dir)
    site.data_dir.mkdir()
    copy_database(site, TEMPLATE, "outage", source=tryton_template.data_dir)
    server = TrytonServer(site, ["outage"])
    server.start()
    pw = tmp_path / "tryton.pass"
    pw.write_text(site.password)
    cfg = tmp_path / "isthmus.toml"
    cfg.write_text(
        DEMO_CHART + "[reliability]\nbackoff_base_s = 0.2\nbackoff_max_s = 2.0\n"
        f'[erp]\nkind = "tryton"\nurl = "{server.url}"\ndatabase = "outage"\n'
        f'password_file = "{pw}"\njournal = "HUB"\ntimeout_s = 2.0\nretry_max_s = 2.0\n'
        "breaker_cooldown_s = 3.0\nmaster_data_every_s = 0\n"
    )
    data = tmp_path / "data"
    settings = load_settings(cfg, data_dir=data)

    # the hang: SIGSTOP the server as an account.move.post request reaches it (once)
    hang: dict[str, Any] = {"armed": False, "fired": False, "delivered_before": 0}
    real_post = TrytonRpc._post

    def post(self: TrytonRpc, method: str, params: list[Any], *, auth: bool = True) -> Any:
        if hang["armed"] and not hang["fired"] and method == "model.account.move.post":
            hang["fired"], hang["delivered_before"] = True, len(results)
            assert server.proc is not None
            pid = server.proc.pid
            os.kill(pid, signal.SIGSTOP)
            threading.Timer(STALL_S, os.kill, (pid, signal.SIGCONT)).start()
        return real_post(self, method, params, auth=auth)

    results: list[PostResult] = []
    real_batch = TrytonErp.post_batch

    def post_batch(self: TrytonErp, batch: JournalBatch) -> PostResult:
        result = real_batch(self, batch)
        results.append(result)
        return result

    monkeypatch.setattr(TrytonRpc, "_post", post)
    monkeypatch.setattr(TrytonErp, "post_batch", post_batch)

    async def scenario() -> dict[str, Any]:
        seen: dict[str, Any] = {}
        hub = Hub.open(settings)
        running = await start(hub, role="all", mllp_port=0, export_every_s=2.0)
        assert running.mllp is not None and running.dispatcher is not None
        ehr = Ehr(running.mllp.port)
        stream = asyncio.create_task(ehr.run())
        try:
            await _until(lambda: len(results) >= 2, 60, "the first batches in Tryton")
            # fault 1: a hang while posting
            hang["armed"] = True
            await _until(lambda: hang["fired"], 60, "an account.move.post to hang")
            await _until(
                lambda: len(results) > hang["delivered_before"],
                60,
                "the hung batch to be delivered by a retry",
            )
            # its moves were found posted (the hung post ran first) or the drafts it left
            # were made again (the retry ran first); either way once (checked at the end)
            seen["after_hang"] = results[hang["delivered_before"]]
            # fault 2: the server dies and stays down
            assert server.proc is not None
            server.proc.kill()
            server.proc.wait()
            server.proc = None
            t_down = time.monotonic()
            await asyncio.sleep(4)
            seen["pending_early"] = await asyncio.to_thread(_pending, hub)
            await asyncio.sleep(max(0.0, OUTAGE_S - (time.monotonic() - t_down) - 2))
            seen["pending_late"] = await asyncio.to_thread(_pending, hub)
            seen["breaker"] = running.dispatcher.breaker.state
            seen["status"] = await asyncio.to_thread(_status, data, cfg, capsys)
            await asyncio.sleep(max(0.0, OUTAGE_S - (time.monotonic() - t_down)))
            await asyncio.to_thread(server.start)  # same port, same database
            t_up = time.monotonic()
            seen["down_s"] = t_up - t_down
            await asyncio.sleep(3)  # charges keep coming after recovery
            ehr.stopped.set()
            await stream
            await _until(
                lambda: (
                    _pending(hub) == 0
                    and not hub.store.unbatched_channels()
                    and not hub.bus.pending()
                ),
                120,
                "the outbox to drain",
            )
            seen["drain_s"] = time.monotonic() - t_up
            seen["breaker_after"] = running.dispatcher.breaker.state
        finally:
            ehr.stopped.set()
            if not stream.done():
                stream.cancel()
            await running.stop()
            seen["charges"], seen["acks"] = ehr.charges, ehr.acks
            seen["entries"] = len(hub.store.entries(limit=1_000_000))
            seen["dead"] = hub.store.outbox_items("dead")
            seen["batches"] = [
                _batch.decode(b)
                for bid, *_ in hub.store.batches()
                if (b := hub.store.batch_body(bid)) is not None
            ]
            hub.close()
        return seen

    try:
        seen = asyncio.run(scenario())
        monkeypatch.undo()
        # nothing lost on the way in
        assert set(seen["acks"]) == {"AA"}, seen["acks"]
        assert seen["entries"] == seen["charges"] > 0
        # the hang: the retry delivered the batch, whoever got to Tryton first
        hung: PostResult = seen["after_hang"]
        assert len(hung.posted) + len(hung.existing) >= 1
        # the outage: the outbox grew, the breaker opened, status said so
        assert seen["down_s"] >= OUTAGE_S - 1
        assert seen["pending_late"] > seen["pending_early"] >= 1, seen
        assert seen["breaker"] == "open"
        code, status = seen["status"]
        assert code == 4
        assert status["erp_outbox"]["breaker"] == "open"
        assert status["erp_outbox"]["failing"] >= 1
        assert status["erp_outbox"]["pending"] >= seen["pending_late"]
        assert "unreachable" in status["erp_outbox"]["last_error"]
        assert seen["breaker_after"] == "closed" and seen["dead"] == []
        # every move once, in outbox order
        rpc = server.rpc("outage")
        try:
            moves = rpc.model(
                "account.move",
                "search_read",
                [],
                0,
                None,
                [("id", "ASC")],
                ["description", "state"],
            )
        finally:
            rpc.close()
        refs = [m["description"] for m in moves]
        assert len(refs) == len(set(refs)), "a move was posted twice"
        assert {m["state"] for m in moves} == {"posted"}
        batches: list[JournalBatch] = seen["batches"]
        assert set(refs) == {s.reference for b in batches for s in move_specs(b)}
        order = list(dict.fromkeys(r.split(":")[1] for r in refs))
        assert order == [b.batch_id for b in batches]
        # the ledger and Tryton agree
        assert cli(["recon", "erp", "--data-dir", str(data), "--config", str(cfg), "--json"]) == 0
        report = json.loads(capsys.readouterr().out)
        assert report["zero_variance"] and report["rows"], report
        assert {c["state"] for c in report["batches"]} == {"posted"}
        assert cli(["status", "--data-dir", str(data), "--config", str(cfg)]) == 0
        print(
            f"hang: {len(hung.existing)} moves found posted, {len(hung.posted)} made "
            f"again; outage {seen['down_s']:.0f} s: outbox {seen['pending_early']} -> "
            f"{seen['pending_late']} batches; drained {seen['drain_s']:.1f} s after the "
            f"restart; {seen['charges']} charges"
        )
    finally:
        server.stop()
