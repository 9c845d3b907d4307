"""The generic REST ERP adapter: the ERP port's contract against a real local HTTP ERP (the
stub in rest_stub.py), then what is particular to REST: the status-code mapping, the
look-up before a retry (a lost answer posts once), the token and idempotency headers, the
move template (configurable, no PHI), and the hub posting through [erp] kind = "rest"."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from tests.connectors.erp.contract import ErpContract, batch, charges
from tests.connectors.erp.rest_stub import TOKEN, StubServer

from isthmus.app import Hub
from isthmus.cli.main import run
from isthmus.config import ConfigError, load_settings
from isthmus.connectors.erp_ports import ErpPort, expected_balances, move_specs
from isthmus.connectors.erp_rest import RestErp
from isthmus.flows.export import ErpRejected, ErpUnavailable


class TestRestErp(ErpContract):
    @pytest.fixture
    def erp(self, base: str) -> Iterator[ErpPort]:
        erp = RestErp(base, TOKEN, timeout_s=5)
        try:
            yield erp
        finally:
            erp.close()

    def close_period(self, erp: ErpPort, period: str) -> None:
        assert isinstance(erp, RestErp)
        httpx.post(f"{erp.base}/periods/{period}/close").raise_for_status()


def test_5xx_is_retry_later_4xx_is_rejected_with_the_erps_message(base: str) -> None:
    erp = RestErp(base, TOKEN, timeout_s=5)
    try:
        httpx.post(f"{base}/outage/1").raise_for_status()
        with pytest.raises(ErpUnavailable, match="503"):
            erp.post_batch(batch(n=4))
        with pytest.raises(ErpRejected, match="account 4999 does not exist"):
            erp.post_batch(batch(n=4, account="4999"))
    finally:
        erp.close()
    wrong = RestErp(base, "not-the-token", timeout_s=5)
    try:
        with pytest.raises(ErpRejected, match=r"HTTP 401.*bad token"):
            wrong.master_data()
    finally:
        wrong.close()
    down = RestErp("http://127.0.0.1:9/x", TOKEN, timeout_s=2)
    try:
        with pytest.raises(ErpUnavailable, match="unreachable"):
            down.post_batch(batch(n=2))
    finally:
        down.close()


class LoseAnswer(httpx.BaseTransport):
    """The ERP processes the first POST, but its answer is lost (a timeout)."""

    def __init__(self) -> None:
        self.inner, self.fired = httpx.HTTPTransport(), False

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        response = self.inner.handle_request(request)
        if not self.fired and request.method == "POST":
            self.fired = True
            response.read()
            response.close()
            raise httpx.ReadTimeout("answer lost", request=request)
        return response

    def close(self) -> None:
        self.inner.close()


def test_retry_after_a_lost_answer_posts_once(stub: StubServer, base: str) -> None:
    transport = LoseAnswer()
    erp = RestErp(base, TOKEN, timeout_s=5, transport=transport)
    try:
        b = batch(n=12)
        with pytest.raises(ErpUnavailable, match="in time"):
            erp.post_batch(b)
        refs = {s.reference for s in move_specs(b)}
        assert len(erp.find_posted(b.batch_id)) == 1  # the first move made it
        again = erp.post_batch(b)
        assert len(again.existing) == 1 and set(again.posted) | set(again.existing) == refs
        assert erp.balances() == expected_balances([b])
        assert stub.stub.tenant(base.rsplit("/", 1)[1]).posts == len(refs)  # none twice
    finally:
        erp.close()


def test_a_configured_template_and_endpoints(stub: StubServer, base: str) -> None:
    """Another ERP's shape: the amount signed, the cost center under another name."""
    template = """{"reference": {{ move.reference|tojson }}, "date": {{ move.date|tojson }},
      "lines": [{% for x in lines %}{"account": {{ x.account|tojson }},
        "cost_center": {{ x.cost_center|tojson }}, "debit": {{ x.debit|tojson }},
        "credit": {{ x.credit|tojson }}, "svc": {{ x.service_line|tojson }}}
        {{ "," if not loop.last }}{% endfor %}]}"""
    erp = RestErp(
        base,
        TOKEN,
        move_template=template,
        endpoints={"lookup": "GET /moves?prefix={prefix}&batch={batch_id}"},
    )
    try:
        b = batch(n=6, policy="detailed")
        body = json.loads(erp.render(move_specs(b)[0]))
        assert set(body) == {"reference", "date", "lines"}
        text = json.dumps(body)
        for phi in ("DOE", "JANE", "19800101", "HOSPMRN"):
            assert phi not in text
        erp.post_batch(b)
        assert erp.balances("2026-11") == expected_balances([b], "2026-11")
    finally:
        erp.close()
    with pytest.raises(ConfigError, match=r"erp\.templates\.move"):
        RestErp(base, TOKEN, move_template="{{ unclosed")
    with pytest.raises(ConfigError, match=r"erp\.endpoints\.post"):
        RestErp(base, TOKEN, endpoints={"post": "/moves"})
    bad = RestErp(base, TOKEN, move_template='{"x": {{ move.nothing }}}')
    try:
        with pytest.raises(ErpRejected, match=r"erp\.templates\.move"):
            bad.post_batch(batch(n=2))
    finally:
        bad.close()


def test_hub_posts_through_rest_and_reconciles(
    tmp_path: Path, base: str, capsys: pytest.CaptureFixture[str]
) -> None:
    token = tmp_path / "erp.token"
    token.write_text(TOKEN + "\n")
    cfg = tmp_path / "isthmus.toml"
    cfg.write_text(
        f'[erp]\nkind = "rest"\nurl = "{base}"\ntoken_file = "{token}"\n'
        'idempotency_header = "Idempotency-Key"\n'
        '[erp.endpoints]\nbalances = "GET /balances?period={period}"\n'
    )
    data = tmp_path / "data"
    h = Hub.open(load_settings(cfg, data_dir=data))
    try:
        with h.store.transaction() as tx:
            for e in charges(16, prefix="rest"):
                tx.insert_entry(e)
        assert h.export() == (1, 1)
    finally:
        h.close()
    args = ["--data-dir", str(data), "--config", str(cfg), "--json"]
    assert run(["recon", "erp", *args]) == 0
    assert json.loads(capsys.readouterr().out)["zero_variance"]
    assert run(["erp", "drift", *args]) == 0
    assert json.loads(capsys.readouterr().out)["drift"] == []
    missing = tmp_path / "missing.toml"
    missing.write_text(
        f'[erp]\nkind = "rest"\nurl = "{base}"\ntoken_file = "{tmp_path / "nope"}"\n'
    )
    assert run(["recon", "erp", "--data-dir", str(data), "--config", str(missing)]) == 2
    assert "nope" in capsys.readouterr().err
