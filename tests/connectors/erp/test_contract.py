"""The ERP contract against the in-memory fake and against a real Tryton (trytond 8.2), on
SQLite and on PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal

import msgspec
import pytest
from tests.connectors.erp.conftest import TrytonPool, cost_centers
from tests.connectors.erp.contract import ErpContract

from isthmus.connectors.erp_ports import ErpPort, MemoryErp, MoveSpec, move_specs
from isthmus.connectors.erp_tryton import TrytonErp
from isthmus.connectors.erp_tryton_setup import CHART
from isthmus.flows.export import ErpRejected


class TestMemoryErp(ErpContract):
    @pytest.fixture
    def erp(self) -> Iterator[ErpPort]:
        yield MemoryErp(
            accounts={c: n for c, (n, _k) in CHART.items()}, cost_centers=cost_centers()
        )

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
        from tests.connectors.erp.contract import batch  # noqa: PLC0415

        assert isinstance(erp, TrytonErp)
        erp.post_batch(batch("detailed", n=20))
        by_account: dict[str, object] = {}
        for (acct, _cc), amount in erp.balances("2026-11").items():
            by_account[acct] = by_account.get(acct, 0) + amount  # type: ignore[operator]
        assert erp.account_totals("2026-11") == by_account


@pytest.mark.service
@pytest.mark.timeout(900)  # the first test builds the PostgreSQL template (~100 s)
class TestTrytonOnPostgresql(TestTrytonErp):
    """The same contract on trytond's PostgreSQL backend, where Tryton itself refuses an
    unbalanced move; the hub refuses it first."""

    @pytest.fixture
    def erp(self, tryton_pg_pool: TrytonPool) -> Iterator[ErpPort]:
        erp = TrytonErp(tryton_pg_pool.rpc(tryton_pg_pool.take()), journal="HUB")
        try:
            yield erp
        finally:
            erp.close()

    def test_unbalanced_move_is_refused_by_us_first_and_by_tryton(self, erp: ErpPort) -> None:
        from tests.connectors.erp.contract import batch  # noqa: PLC0415

        assert isinstance(erp, TrytonErp)
        erp.post_batch(batch(n=2))  # loads Tryton's ids (accounts, periods...)
        good = batch(n=4, days=(2,), companies=("C100",))
        at = next(i for i, x in enumerate(good.lines) if x.debit)
        skewed = msgspec.structs.replace(
            good.lines[at], debit=good.lines[at].debit + Decimal("0.01")
        )
        lines = (*good.lines[:at], skewed, *good.lines[at + 1 :])
        bad = msgspec.structs.replace(good, lines=lines)
        calls = erp.rpc.calls
        with pytest.raises(ErpRejected, match="does not balance"):
            erp.post_batch(bad)
        assert erp.rpc.calls == calls  # refused before anything left the hub
        # bypassing our check, Tryton on PostgreSQL refuses it too; nothing is posted
        [spec] = move_specs(good)
        unbalanced = MoveSpec(
            spec.reference, spec.posted_on, spec.period, spec.company, spec.currency, lines
        )
        with pytest.raises(ErpRejected) as info:
            ids = erp.rpc.model("account.move", "create", [erp._move_values(unbalanced)])
            erp.rpc.model("account.move", "post", ids)
        assert info.value.reason.startswith("UserError"), info.value.reason
        assert erp.find_posted(good.batch_id) == set()
