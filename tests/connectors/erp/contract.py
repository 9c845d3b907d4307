"""The ERP port's contract, subclassed per adapter (the in-memory fake, Tryton).

A subclass provides the `erp` fixture (a fresh ERP holding the hub's chart: 1200, 4100-4600,
cost centers CC-4100...CC-4600, periods of 2026) and `close_period(erp, period)`.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest
from tests.connectors.erp.conftest import unique

from isthmus.connectors.erp_ports import ErpPort, expected_balances, move_specs
from isthmus.flows.export import ErpRejected
from isthmus.ledger.batch import JournalBatch, build_batch
from isthmus.ledger.journal import Dimensions, JournalEntry, cr, dr

REVENUE = {"4100": "CC-4100", "4200": "CC-4200", "4300": "CC-4300", "4600": "CC-4600"}


def charges(
    n: int,
    *,
    prefix: str = "",
    days: tuple[int, ...] = (2, 3),
    month: int = 11,
    account: str | None = None,
    companies: tuple[str, ...] = ("C100", "C200"),
) -> list[JournalEntry]:
    """n balanced charge entries: DR 1200 / CR revenue, cost center on both lines."""
    out = []
    accounts = sorted(REVENUE)
    for i in range(n):
        acct = account or accounts[i % len(accounts)]
        cc = REVENUE.get(acct, "CC-4100")
        day = date(2026, month, days[i % len(days)])
        dims = Dimensions(
            company=companies[i % len(companies)],
            cost_center=cc,
            service_line="Imaging",
            account_token=f"tok{i % 5}",
        )
        amount = Decimal(f"{17 + (i * 7) % 90}.{i % 100:02d}")
        lines = (dr("1200", amount, "USD", dims), cr(acct, amount, "USD", dims))
        if i % 6 == 5:  # a credit (reversal-like) now and then
            lines = (cr("1200", amount, "USD", dims), dr(acct, amount, "USD", dims))
        out.append(
            JournalEntry(
                entry_key=f"{prefix}e{i}",
                posted_on=day,
                period=day.strftime("%Y-%m"),
                channel="mllp",
                memo="charge",
                lines=lines,
                correlation_id=f"mllp/{prefix}{i}",
                causation_id=f"{prefix}ev{i}",
            )
        )
    return out


def batch(policy: str = "summary", **kw: object) -> JournalBatch:
    bid = unique("JB-t-")
    return build_batch(
        bid,
        charges(prefix=bid, **kw),
        policy=policy,  # type: ignore[arg-type]
        channel="mllp",
    )


class ErpContract:
    """Run against every adapter of the ERP port."""

    def close_period(self, erp: ErpPort, period: str) -> None:
        raise NotImplementedError

    @pytest.mark.parametrize("policy", ["summary", "detailed"])
    def test_post_and_read_back(self, erp: ErpPort, policy: str) -> None:
        b = batch(policy, n=30)
        result = erp.post_batch(b)
        refs = {s.reference for s in move_specs(b)}
        assert set(result.posted) == refs and not result.existing
        assert result.lines == len(b.lines)
        assert erp.find_posted(b.batch_id) == refs
        assert erp.balances("2026-11") == expected_balances([b], "2026-11")
        assert erp.balances("2026-10") == {}

    def test_summary_and_detailed_of_the_same_charges_agree(self, erp: ErpPort) -> None:
        s = batch("summary", n=24)
        d = build_batch(
            unique("JB-d-"), charges(prefix="d", n=24), policy="detailed", channel="mllp"
        )
        assert len(d.lines) > len(s.lines)
        erp.post_batch(s)
        once = erp.balances("2026-11")
        erp.post_batch(d)
        twice = erp.balances("2026-11")
        assert twice == {k: 2 * v for k, v in once.items()}

    def test_posting_again_is_a_no_op(self, erp: ErpPort) -> None:
        b = batch(n=12)
        first = erp.post_batch(b)
        again = erp.post_batch(b)
        assert again.posted == () and set(again.existing) == set(first.posted)
        assert erp.balances() == expected_balances([b])

    def test_unknown_account_is_rejected_and_nothing_posts(self, erp: ErpPort) -> None:
        b = batch(n=6, account="4999")
        with pytest.raises(ErpRejected, match="4999"):
            erp.post_batch(b)
        assert erp.find_posted(b.batch_id) == set()
        assert erp.balances() == {}

    def test_closed_period_is_rejected_with_the_erp_message(self, erp: ErpPort) -> None:
        self.close_period(erp, "2026-10")
        b = batch(n=4, month=10)
        with pytest.raises(ErpRejected) as info:
            erp.post_batch(b)
        assert info.value.reason
        assert erp.find_posted(b.batch_id) == set()
        ok = batch(n=4, month=11)  # the next period still takes postings
        erp.post_batch(ok)
        assert erp.balances() == expected_balances([ok])

    def test_master_data(self, erp: ErpPort) -> None:
        md = erp.master_data()
        assert {"1200", "4100", "4600", "1000", "2100"} <= set(md.accounts)
        assert {f"CC-{n}" for n in (4100, 4200, 4300, 4400, 4500, 4600)} <= set(md.cost_centers)
