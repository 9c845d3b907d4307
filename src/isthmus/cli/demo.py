"""`isthmus demo`: the embedded hub plus a simulated EHR sending a hospital day over MLLP.

After the day, a payer's 835 pays part of the day's claims (one denied): the remittance goes
through the same inbox as `isthmus ingest` and posts cash, contractual allowance and
patient responsibility. Then an overpaid account is refunded: one demo user asks, above
the approval threshold, another approves (segregation of duties), and it posts.

It starts the real listener on a free local port, sends the day (registrations, encounters,
charges, credits, merges, a few malformed, unsupported and unmapped messages) over several
MLLP connections, waits until every event is applied, seals and exports the ERP batches,
and prints a summary: ACK codes, work items, the trial balance, and the batches written.
The day's money (the 835, cards and deposits, the refund) is cli/demo_money.py, its supply
side cli/demo_supply.py, the run against Tryton (`--erp tryton`) cli/demo_erp.py.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import tempfile
import time
from collections.abc import Callable
from dataclasses import replace
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

from isthmus.app import Hub
from isthmus.bus.ports import partition_of
from isthmus.cli.commands import UsageError, render_tb
from isthmus.cli.demo_money import (
    REFUND_ACCOUNT,
    card_day_through_inbox,
    claims_to_pay,
    deposit_summary,
    idle,
    refund_day,
)
from isthmus.cli.demo_supply import supply_day_in_hub, tryton_supply_day
from isthmus.config import Settings
from isthmus.connectors.mllp_client import send_messages
from isthmus.demo import labor_week, supply_day
from isthmus.demo.chart import demo_mappings
from isthmus.demo.ehr_day import expected_totals, hospital_day
from isthmus.demo.remit835 import remittance_835
from isthmus.flows.interchanges import x12_intake
from isthmus.flows.labor_budget import budget_report
from isthmus.flows.labor_intake import timecard_intake
from isthmus.flows.relay import relay_unpublished
from isthmus.formats.hl7v2 import ack_code
from isthmus.observe.views import trial_balance_view
from isthmus.runtime import start


def _say(args: argparse.Namespace, text: str) -> None:
    if not args.json:
        print(text, flush=True)


async def _labor_week(hub: Hub, settings: Settings) -> dict[str, Any]:
    """A week of timecards for ED and LAB through the inbox; the month's labor budget."""
    intake = timecard_intake(
        labor_week.timecards(),
        peer="file:demo-timecards.csv",
        now=time.time(),
        tenant=settings.tenant,
    )
    hub.store.accept([intake.inbound])
    relay_unpublished(hub.store, hub.bus)
    await idle(hub)
    conf = replace(settings.labor, budgets=labor_week.BUDGETS)
    rows = budget_report(hub.store, conf, settings.mappings, f"{labor_week.START:%Y-%m}")
    return {
        "shifts": len(intake.events),
        "budget": [
            {
                "department": r.department,
                "budget": str(r.budget),
                "actual": str(r.actual),
                "used": str(r.used),
                "alert": r.alert,
            }
            for r in rows
        ],
    }


async def _demo(settings: Settings, args: argparse.Namespace) -> dict[str, Any]:
    if not settings.supply:  # the demo's par levels, budgets and service lines
        settings = replace(settings, supply=supply_day.POLICY)
    maps = settings.mappings
    if not (
        maps.include or maps.charge_codes or maps.facility_company or maps.department_cost_center
    ):  # no chart of the site's: the demo's own
        settings = replace(
            settings, mappings=replace(demo_mappings(), transaction_types=maps.transaction_types)
        )
    msgs = hospital_day(messages=args.messages, seed=args.seed)
    expected = expected_totals(msgs)
    hub = Hub.open(settings)
    run = await start(hub, mllp_port=0, export_every_s=3600)
    assert run.mllp is not None
    _say(args, f"hub up: MLLP 127.0.0.1:{run.mllp.port}, data in {settings.data_dir}")
    _say(args, f"simulated EHR: {len(msgs)} messages over {args.connections} connections")
    acks: dict[str, int] = {}
    mismatched = 0
    t0 = time.perf_counter()
    chunk = max(1, len(msgs) // 10)
    try:
        for start_at in range(0, len(msgs), chunk):
            part = msgs[start_at : start_at + chunk]
            keys = [m.patient_key or m.control_id for m in part]
            conns: int = args.connections

            def route(i: int, _payload: bytes, keys: list[str] = keys, conns: int = conns) -> int:
                return partition_of(keys[i], conns)

            report = await send_messages(
                "127.0.0.1",
                run.mllp.port,
                [m.raw for m in part],
                connections=conns,
                window=8,
                route=route,
            )
            for m, ack in zip(part, report.acks, strict=True):
                code = ack_code(ack)[0] if ack else "none"
                acks[code] = acks.get(code, 0) + 1
                mismatched += code != m.expect_ack
            done = start_at + len(part)
            _say(
                args,
                f"  sent {done:>6}/{len(msgs)}  ACKs {acks}  "
                f"{done / (time.perf_counter() - t0):,.0f} msg/s",
            )
        sent_s = time.perf_counter() - t0
        await idle(hub)
        applied_s = time.perf_counter() - t0
        claims = claims_to_pay(msgs)
        remit = remittance_835(claims, day=date(2026, 11, 3), seed=args.seed)
        intake = x12_intake(
            remit, peer="file:demo-payer.835", now=time.time(), tenant=settings.tenant
        )
        hub.store.accept([intake.inbound])
        relay_unpublished(hub.store, hub.bus)
        _say(
            args,
            f"payer 835 ingested: {len(claims)} claims worth "
            f"{sum((c.charged for c in claims), Decimal(0))} charged, "
            f"ack {intake.inbound.ack_code}",
        )
        await idle(hub)
        cards = card_day_through_inbox(hub, settings, msgs, claims, intake.events, args.seed)
        await idle(hub)
        refund = await refund_day(hub, run.mllp.port, settings)
        labor = await _labor_week(hub, settings)
        supply = await (
            tryton_supply_day(hub, settings, lambda m: _say(args, m))
            if getattr(args, "erp", "file") == "tryton"
            else supply_day_in_hub(hub, settings)
        )
    finally:
        await run.stop()  # seals and exports the batches
    counts = hub.store.counts()
    tb = trial_balance_view(hub.store)
    work: dict[str, int] = {}
    for w in hub.store.work_items("open"):
        work[f"{w.queue}/{w.kind}"] = work.get(f"{w.queue}/{w.kind}", 0) + 1
    files = sorted(p.name for p in hub.export_dir.glob("*.*"))

    def balance(account: str) -> Decimal:
        return sum(
            (
                Decimal(r["balance"])
                for r in tb["rows"]
                if r["account"] == account and r["currency"] == "USD"
            ),
            Decimal(0),
        )

    ar = balance(settings.posting.ar_account)
    remitted = sum((c.charged for c in claims[:-1]), Decimal(0))  # the last one is denied
    hub.close()
    return {
        "messages": len(msgs),
        "acks": acks,
        "ack_mismatches": mismatched,
        "send_seconds": round(sent_s, 2),
        "applied_seconds": round(applied_s, 2),
        "store": counts,
        "work_items": work,
        "trial_balance": tb,
        "expected_net_usd": str(
            expected["net"].get("USD", Decimal(0)) - remitted - cards.card_total
        ),
        "remittance": {
            "claims": len(claims),
            "denied": 1,
            "ack": intake.inbound.ack_code,
            "cash_clearing_usd": str(balance("1010")),
            "contractual_usd": str(balance("4900")),
            "patient_responsibility_usd": str(balance("1210")),
        },
        "deposits": deposit_summary(hub, settings, cards),
        "ledger_ar_usd": str(ar),
        "export_files": files,
        "export_dir": str(hub.export_dir),
        "refund": refund,
        "labor": labor,
        "supply": supply,
    }


def run_demo(settings: Settings, args: argparse.Namespace) -> int:
    """`isthmus demo`: run the demo day on a new hub (a temporary data directory unless
    `--data-dir` names an empty one), against Tryton with `--erp tryton`."""
    if args.data_dir is None:
        settings = Settings(
            **{**settings.__dict__, "data_dir": Path(tempfile.mkdtemp(prefix="isthmus-demo-"))}
        )
    elif (settings.data_dir / "store.db").exists():
        raise UsageError(f"{settings.data_dir} already holds a hub; give an empty --data-dir")
    if getattr(args, "erp", "file") == "tryton":
        from isthmus.cli.demo_erp import tryton_demo  # noqa: PLC0415 - test extras only

        return tryton_demo(settings, args, _report)
    return _report(settings, args, lambda _out: True)


def _report(
    settings: Settings, args: argparse.Namespace, erp_check: Callable[[dict[str, Any]], bool]
) -> int:
    out = asyncio.run(_demo(settings, args))
    ok = (
        out["trial_balance"]["balanced"]
        and out["ack_mismatches"] == 0
        and out["expected_net_usd"] == out["ledger_ar_usd"]
    )
    ok = erp_check(out) and ok
    if args.json:
        print(json.dumps(out, indent=2, default=str))
        return 0 if ok else 4
    print()
    print(
        f"messages sent     {out['messages']} in {out['send_seconds']} s; all events "
        f"applied after {out['applied_seconds']} s"
    )
    print(f"ACK codes         {out['acks']} (unexpected: {out['ack_mismatches']})")
    s = out["store"]
    print(
        f"stored            {s['messages']} messages ({s['rejected']} rejected, kept for "
        f"inspection), {s['patients']} patient accounts"
    )
    print(
        f"ledger            {s['charges']} charges posted as {s['journal_entries']} journal "
        f"entries, {s['journal_lines']} lines"
    )
    print(
        "work items        "
        + (", ".join(f"{k}: {v}" for k, v in sorted(out["work_items"].items())) or "none")
    )
    r = out["remittance"]
    print(
        f"payer 835         {r['claims']} claims ({r['denied']} denied), 999 {r['ack']}: "
        f"cash {r['cash_clearing_usd']}, contractual {r['contractual_usd']}, "
        f"to patient {r['patient_responsibility_usd']}"
    )
    dp = out["deposits"]
    print(
        f"card payments     {dp['card_payments']} payments and {dp['refunds']} refund(s) "
        f"by {dp['processor']} (net {dp['card_total']}), fees {dp['fees']}, in "
        f"{len(dp['processor_deposits'])} deposits"
    )
    print(
        f"bank deposits     {dp['matched']} matched ({', '.join(dp['matched_refs'])}); "
        f"unmatched: " + ("; ".join(dp["unmatched"]) or "none") + " (isthmus recon deposits)"
    )
    rf = out["refund"]
    print(
        f"refund            {rf['id']} {rf['amount']} {rf['currency']} to account "
        f"{REFUND_ACCOUNT}: asked by {rf['requested_by']} ({rf['asked']}, above the "
        f"threshold {rf['threshold']}), approved by {rf['decided_by']}, {rf['status']} as "
        f"{rf['entry_key']} (DR A/R, CR refunds payable)"
    )
    lb = out["labor"]
    print(
        f"labor week        {lb['shifts']} shifts (ED, LAB); budget "
        + "; ".join(
            f"{b['department']} {b['actual']} of {b['budget']}" + (" ALERT" if b["alert"] else "")
            for b in lb["budget"]
        )
        + " (isthmus labor budget)"
    )
    sp = out["supply"]
    print(
        f"supply day        {sp['usages']} OR usages; requisitions "
        + ", ".join(f"{r['quantity']} x {r['item']} ({r['status']})" for r in sp["requisitions"])
        + f"; invoices {sp['invoices']}, unmatched {', '.join(sp['unmatched']) or 'none'}; "
        f"open GRNI {sp['open_grni']} (isthmus supply report)"
    )
    if "tryton" in sp:
        t = sp["tryton"]
        print(
            f"Tryton supply     opening purchase {t['opening_purchase']}; requisitions "
            + ", ".join(
                f"{r['number']} ({r['quantity']} x {r['item']}) -> purchase {r['purchase']}"
                for r in t["requisitions"]
            )
            + "; invoices "
            + ", ".join(
                f"{i['number']} (purchase {i['purchase']}) {i['hub']}, {i['state']} in Tryton"
                for i in t["invoices"]
            )
        )
    print(
        "margin            "
        + "; ".join(
            f"{m['service_line']} {m['period']}: revenue {m['revenue']}, supply {m['supply']}, "
            f"margin {m['margin']}"
            for m in sp["margin"]
        )
        + " (isthmus supply margin)"
    )
    print(
        f"A/R 1200 USD      {out['ledger_ar_usd']} (expected {out['expected_net_usd']}: "
        "charges - credits - remitted claims - card payments)"
    )
    print()
    print("trial balance")
    print(render_tb(out["trial_balance"]))
    print()
    if "erp" in out:
        e = out["erp"]
        print(
            f"ERP batches       {s['batches']} sealed, {e['batches_posted']}/{e['batches']} "
            f"posted to Tryton as {e['moves']} moves ({e['url']})"
        )
        print(
            f"recon erp         {e['keys']} account/cost-center keys, "
            + ("zero variance" if e["zero_variance"] else f"VARIANCE {e['absolute_variance']}")
            + f"; Tryton ready in "
            f"{e['install_seconds']} s"
        )
    else:
        print(f"ERP batches       {s['batches']} sealed, files in {out['export_dir']}:")
        for f in out["export_files"]:
            print(f"                  {f}")
    print()
    print(
        "trace any message: isthmus messages show <id> --data-dir "
        + str(Path(out["export_dir"]).parent.parent)
    )
    print("RESULT: " + ("OK, balanced" if ok else "PROBLEM: see above"))
    return 0 if ok else 4
