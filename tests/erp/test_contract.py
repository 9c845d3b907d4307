"""The ERP contract against the in-memory fake and against a real Tryton (trytond 8.2)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from isthmus.connectors.erp_ports import ErpPort, MemoryErp
from isthmus.connectors.erp_tryton import TrytonErp
from isthmus.connectors.erp_tryton_setup import CHART
from tests.erp.conftest import cost_centers
from tests.erp.contract import ErpContract


class TestMemoryErp(ErpContract):
    @pytest.fixture
    def erp(self) -> Iterator[ErpPort]:
        yield MemoryErp(accounts={c: n for c, (n, _k) in CHART.items()},
                        cost_centers=cost_centers())

    def close_period(self, erp: ErpPort, period: str) -> None:
        assert isinstance(erp, MemoryErp)
        erp.closed_periods.add(period)


@pytest.mark.service
class TestTrytonErp(ErpContract):
    @pytest.fixture
    def erp(self, tryton: TrytonErp) -> Iterator[ErpPort]:
        yield tryton

    def close_period(self, erp: ErpPort, period: str) -> None:
        assert isinstance(erp, TrytonErp)
        [pid] = erp.rpc.model("account.period", "search", [("name", "=", period)], 0, 1, None)
        erp.rpc.model("account.period", "close", [pid])

    def test_closed_period_is_rejected_with_the_erp_message(self, erp: ErpPort) -> None:
        super().test_closed_period_is_rejected_with_the_erp_message(erp)

    def test_account_totals_agree_with_line_balances(self, erp: ErpPort) -> None:
        from tests.erp.contract import batch  # noqa: PLC0415

        assert isinstance(erp, TrytonErp)
        erp.post_batch(batch("detailed", n=20))
        by_account: dict[str, object] = {}
        for (acct, _cc), amount in erp.balances("2026-11").items():
            by_account[acct] = by_account.get(acct, 0) + amount  # type: ignore[operator]
        assert erp.account_totals("2026-11") == by_account
