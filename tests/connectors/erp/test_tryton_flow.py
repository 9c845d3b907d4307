"""The hub against a real Tryton: HL7 charges -> ledger -> sealed batches -> outbox ->
posted Tryton moves, read back and reconciled to zero variance; idempotent retry after a
timeout that hides a processed call; a closed Tryton period becomes a finance-gl work item
with Tryton's message and posts after the period is reopened and the item resubmitted;
the CLI (`isthmus recon erp`) over the composition root with an [erp] table."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from tests.connectors.erp.conftest import TrytonPool
from tests.connectors.erp.contract import batch, charges
from tests.connectors.erp.test_outbox import T0, charge_day
from tests.flows.helpers import Rig

from isthmus.app import Hub
from isthmus.cli.main import run
from isthmus.config import load_settings
from isthmus.connectors.erp_ports import ErpBatchSink, expected_balances, move_specs
from isthmus.connectors.erp_tryton import TrytonErp
from isthmus.flows.export import Dispatcher, ErpUnavailable, resubmit_rejected, seal_batches
from isthmus.flows.retry import RetryPolicy
from isthmus.recon.erp import reconcile

pytestmark = pytest.mark.service


class LoseAnswer(httpx.BaseTransport):
    """Forwards every call to the server, but for the first call of `method` it drops the
    answer and raises a timeout, as a network cut after the server committed would."""

    def __init__(self, method: str) -> None:
        self.method, self.inner, self.fired = method, httpx.HTTPTransport(), False

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        response = self.inner.handle_request(request)
        if not self.fired and f'"method": "{self.method}"' in request.content.decode():
            self.fired = True
            response.read()
            raise httpx.ReadTimeout("answer lost", request=request)
        return response


@pytest.mark.parametrize("lost", ["model.account.move.post", "model.account.move.create"])
def test_retry_after_a_lost_answer_posts_once(
    tryton_pool: TrytonPool, tryton_db: str, lost: str
) -> None:
    transport = LoseAnswer(lost)
    erp = TrytonErp(tryton_pool.rpc(tryton_db, transport=transport), journal="HUB")
    try:
        b = batch("summary", n=20)
        with pytest.raises(ErpUnavailable, match="in time"):
            erp.post_batch(b)
        assert transport.fired
        refs = {s.reference for s in move_specs(b)}
        # what exists after the timeout: all posted (post was lost) or none (create was)
        assert erp.find_posted(b.batch_id) == (refs if lost.endswith("post") else set())
        again = erp.post_batch(b)
        assert set(again.posted) | set(again.existing) == refs
        assert erp.find_posted(b.batch_id) == refs
        assert erp.balances() == expected_balances([b])  # once, cost centers included
    finally:
        erp.close()


@pytest.mark.parametrize("policy", ["summary", "detailed"])
def test_hub_to_tryton_reconciles_to_zero(rig: Rig, tryton: TrytonErp, policy: str) -> None:
    for tag in ("d1", "d2"):
        charge_day(rig, tag, n=9)
    batches = seal_batches(rig.store, policy_of=lambda _c: policy, now=T0)
    Dispatcher(rig.store, ErpBatchSink(tryton), RetryPolicy()).run_once(T0)
    assert {o.status for o in rig.store.outbox_items()} == {"sent"}
    assert tryton.balances() == expected_balances(batches)
    report = reconcile(rig.store, tryton, "2026-11")
    assert report["zero_variance"], report["rows"]
    assert {c["state"] for c in report["batches"]} == {"posted"}


def test_closed_period_work_item_then_reopen_and_resubmit(rig: Rig, tryton: TrytonErp) -> None:
    [pid] = tryton.rpc.model("account.period", "search", [("name", "=", "2026-11")], 0, 1, None)
    tryton.rpc.model("account.period", "close", [pid])
    charge_day(rig, "cp")
    seal_batches(rig.store, policy_of=lambda _c: "summary", now=T0)
    d = Dispatcher(rig.store, ErpBatchSink(tryton), RetryPolicy())
    d.run_once(T0)
    [item] = rig.store.work_items("open")
    assert (item.kind, item.queue) == ("erp_rejected", "finance-gl")
    assert item.detail.startswith("UserError"), item.detail  # Tryton's own words
    assert not reconcile(rig.store, tryton)["zero_variance"]

    tryton.rpc.model("account.period", "reopen", [pid])
    resubmit_rejected(rig.store, item.event_id, T0 + 1)
    rig.store.set_work_item_status(item.id, "resubmitted", "period reopened", T0 + 1)
    assert d.run_once(T0 + 2) == 1
    assert rig.store.work_item(item.id).status == "resolved"  # type: ignore[union-attr]
    assert reconcile(rig.store, tryton)["zero_variance"]


@pytest.fixture
def hub(tmp_path: Path, tryton_pool: TrytonPool, tryton_db: str) -> Iterator[Path]:
    pw = tmp_path / "tryton.pass"
    pw.write_text(tryton_pool.site.password)
    cfg = tmp_path / "isthmus.toml"
    cfg.write_text(
        f'[erp]\nkind = "tryton"\nurl = "{tryton_pool.server.url}"\n'
        f'database = "{tryton_db}"\npassword_file = "{pw}"\njournal = "HUB"\n'
    )
    yield cfg


def test_cli_recon_erp(tmp_path: Path, hub: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = tmp_path / "data"
    settings = load_settings(hub, data_dir=data)
    h = Hub.open(settings)
    try:
        with h.store.transaction() as tx:
            for e in charges(16, prefix="cli"):
                tx.insert_entry(e)
        made, sent = h.export()  # the composition root picks the Tryton sink
        assert (made, sent) == (1, 1)
    finally:
        h.close()
    args = ["--data-dir", str(data), "--config", str(hub), "--json"]
    assert run(["recon", "erp", "--period", "2026-11", *args]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["zero_variance"] and report["rows"]
    assert run(["erp", "master-data", *args]) == 0
    md = json.loads(capsys.readouterr().out)
    assert md["drift"] == {"cost_centers_missing": [], "accounts_missing": []}


def test_drafts_posted_by_a_stale_request_count_as_posted(
    tryton_pool: TrytonPool, tryton_db: str
) -> None:
    """A try's `post` was queued at Tryton when it timed out; the retry finds its drafts,
    and that stale post lands between the retry's look-up and its delete: the delete is
    refused, the moves count as posted, nothing posts twice and nothing is rejected."""
    erp = TrytonErp(tryton_pool.rpc(tryton_db), journal="HUB")
    try:
        b = batch("summary", n=10)
        erp._load()
        drafts = erp.rpc.model(
            "account.move", "create", [erp._move_values(s) for s in move_specs(b)]
        )
        real = erp.rpc.model

        def model(name: str, method: str, *args: object, **kw: object) -> object:
            if (name, method) == ("account.move", "delete"):
                real("account.move", "post", drafts)  # the stale post gets there first
            return real(name, method, *args, **kw)  # type: ignore[arg-type]

        erp.rpc.model = model  # type: ignore[method-assign]
        result = erp.post_batch(b)
        refs = {s.reference for s in move_specs(b)}
        assert result.posted == () and set(result.existing) == refs
        assert erp.find_posted(b.batch_id) == refs
        assert erp.balances() == expected_balances([b])
    finally:
        erp.close()
