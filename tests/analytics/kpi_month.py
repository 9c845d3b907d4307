"""A generated month for the KPI comparisons (tests/analytics/test_kpis_from_facts.py,
bench/bench_kpis.py): each simulated hospital day taken through `isthmus ingest --apply`
with the payer's 835 for part of its accounts (one claim denied, CO-50), then sealed and
delivered to the file ERP (`isthmus ledger export`) on every other day, so the month ends
with charges posted, charges waiting, claims paid and denied."""

from __future__ import annotations

import contextlib
import io
from datetime import date, timedelta
from pathlib import Path

from isthmus.cli.demo_money import claims_to_pay
from isthmus.cli.main import run
from isthmus.demo.ehr_day import hospital_day
from isthmus.demo.remit835 import remittance_835


def month_days(first: date, count: int) -> list[date]:
    return [first + timedelta(days=i) for i in range(count)]


def _cli(*argv: str) -> int:
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        return run([*argv, "--json"])


def add_day(data: Path, conf: Path, day: date, messages: int = 120) -> None:
    """One day in: its HL7, its 835, and (on even ordinals) the ERP export."""
    site = ("--data-dir", str(data), "--config", str(conf))
    msgs = hospital_day(
        messages=messages,
        seed=day.toordinal(),
        day=day,
        malformed=0,
        unmapped=1,
        unsupported=1,
        control_prefix=f"M{day:%m%d}",
    )
    hl7 = data.parent / f"day-{day.isoformat()}.hl7"
    hl7.parent.mkdir(parents=True, exist_ok=True)
    # each day's FT1 transaction ids of its own (the generator numbers them from 1 a day):
    # the same id twice would be a business-key conflict, held, not a charge of the month
    tag = f"|T{day:%m%d}".encode()
    hl7.write_bytes(b"".join(m.raw.replace(b"|T0000", tag) for m in msgs))
    assert _cli("ingest", str(hl7), "--apply", *site) in (0, 1)
    x12 = data.parent / f"day-{day.isoformat()}.835"
    x12.write_bytes(
        remittance_835(claims_to_pay(msgs), day=day, seed=day.toordinal(), control=day.toordinal())
    )
    assert _cli("ingest", str(x12), "--apply", *site) in (0, 1)
    if day.toordinal() % 2 == 0:
        assert _cli("ledger", "export", *site) == 0
