"""`isthmus demo`: the embedded hub plus a simulated EHR sending a hospital day over MLLP.

After the day, a payer's 835 pays part of the day's claims (one denied): the remittance goes
through the same inbox as `isthmus ingest` and posts cash, contractual allowance and
patient responsibility. Then an overpaid account is refunded: one demo user asks, above
the approval threshold, another approves (segregation of duties), and it posts.

It starts the real listener on a free local port, sends the day (registrations, encounters,
charges, credits, merges, a few malformed, unsupported and unmapped messages) over several
MLLP connections, waits until every event is applied, seals and exports the ERP batches,
and prints a summary: ACK codes, work items, the trial balance, and the batches written.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import replace
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from isthmus.app import Hub
from isthmus.bus.ports import partition_of
from isthmus.cli.commands import render_tb
from isthmus.config import Settings
from isthmus.connectors.mllp_client import send_messages
from isthmus.demo import labor_week, supply_day
from isthmus.demo.chart import demo_mappings
from isthmus.demo.deposits import CardDay, card_day
from isthmus.demo.ehr_day import SimMessage, expected_totals, hospital_day
from isthmus.demo.remit835 import ClaimToPay, remittance_835
from isthmus.flows.files import x12_intake
from isthmus.flows.inbox import relay_unpublished
from isthmus.flows.labor import budget_report
from isthmus.flows.labor_intake import timecard_intake
from isthmus.flows.refunds import Actor
from isthmus.flows.settlement_intake import csv_intake
from isthmus.flows.supply_intake import usage_intake
from isthmus.flows.supply_state import policy_from_table
from isthmus.formats.hl7v2 import ack_code, parse_message
from isthmus.formats.settlement import BANK, SETTLEMENT
from isthmus.governance import rbac
from isthmus.model import RemittancePaid
from isthmus.model.envelope import KeyedEvent
from isthmus.observe.views import trial_balance_view
from isthmus.recon.deposits import deposit_report
from isthmus.recon.supply import service_line_margin, supply_report
from isthmus.runtime import start


def _say(args: argparse.Namespace, text: str) -> None:
    if not args.json:
        print(text, flush=True)


async def _idle(hub: Hub) -> None:
    while hub.store.counts()["unpublished"] or hub.bus.pending():
        await asyncio.sleep(0.05)


def claims_to_pay(msgs: list[SimMessage], share: float = 0.4) -> list[ClaimToPay]:
    """Billing accounts the payer pays: charged, no credit, not merged; every other one up
    to `share` of them, the last one denied."""
    charged: dict[str, Decimal] = {}
    skip: set[str] = set()
    for m in msgs:
        if m.kind not in ("charge", "credit", "merge"):
            continue
        account = parse_message(m.raw).get("PID-18.1")
        if m.kind == "charge":
            charged[account] = charged.get(account, Decimal(0)) + m.amount
        else:
            skip.add(account)
    accounts = sorted(a for a in charged if a and a not in skip)
    step = max(1, round(1 / share))
    return [ClaimToPay(a, charged[a]) for a in accounts[::step]]


def _card_day(
    hub: Hub,
    settings: Settings,
    msgs: list[SimMessage],
    claims: list[ClaimToPay],
    events: Sequence[KeyedEvent],
    seed: int,
) -> CardDay:
    """Card payments on accounts the payer did not pay, and the bank's deposits (the 835
    EFT among them), through the inbox like `isthmus ingest`."""
    paid = {c.account_number for c in claims}
    eft = next(k.event for k in events if isinstance(k.event, RemittancePaid))
    cards = card_day(
        [c for c in claims_to_pay(msgs, share=1.0) if c.account_number not in paid],
        day=date(2026, 11, 3),
        eft_trace=eft.trace_number,
        eft_amount=eft.amount,
        seed=seed,
    )
    for kind, raw, name in (
        (SETTLEMENT, cards.settlement, "demopay-settlement.csv"),
        (BANK, cards.bank, "bank-deposits.csv"),
    ):
        hub.store.accept(
            [
                csv_intake(
                    raw, kind=kind, peer=f"file:{name}", now=time.time(), tenant=settings.tenant
                ).inbound
            ]
        )
    relay_unpublished(hub.store, hub.bus)
    return cards


def _deposit_summary(hub: Hub, settings: Settings, cards: CardDay) -> dict[str, Any]:
    d = deposit_report(
        hub.store.deposit_records(),
        as_of=date(2026, 11, 5),
        limit_days=settings.settlement.match_limit_days,
    )
    unmatched = [
        f"{x['title']}: "
        + ", ".join(
            f"{b} days {c['count']} ({' '.join(f'{v} {k}' for k, v in c['total'].items())})"
            for b, c in x["aging"].items()
            if c["count"]
        )
        for x in d["unmatched"].values()
        if x["items"]
    ]
    text = cards.settlement.decode()
    return {
        "processor": "DemoPay",
        "card_payments": text.count(",payment,"),
        "refunds": text.count(",refund,"),
        "card_total": str(cards.card_total),
        "fees": str(
            sum((Decimal(line.split(",")[8]) for line in text.splitlines()[1:]), Decimal(0))
        ),
        "processor_deposits": [list(x) for x in cards.deposits],
        "matched": len(d["matched"]),
        "matched_refs": [f"{m['side']} {m['reference']} {m['amount']}" for m in d["matched"]],
        "unmatched": unmatched,
        "over_limit": d["over_limit"],
        "report": d,
    }


# A patient who overpaid: a billing account left in credit, refunded above the threshold.
REFUND_ACCOUNT, REFUND_AMOUNT = "DEMORF0001", Decimal("800.00")


def refund_messages(day: date) -> list[bytes]:
    """BAR^P01 opening account DEMORF0001, then DFT^P03 crediting an over-billed visit
    (FT1-6 CD, 800.00 USD) after the patient paid: the account's A/R is a credit."""
    ts = f"{day:%Y%m%d}120000"
    fields = {
        1: "1",
        3: "DEMORF01^^^NORTHMRN^MR",
        5: "OVERPAID^PAT",
        7: "19700101",
        8: "U",
        18: f"{REFUND_ACCOUNT}^^^NORTH^AN",
    }
    pid = "|".join(["PID", *(fields.get(i, "") for i in range(1, 19))])
    pv1 = "PV1|1|O|OPC^1^A^NORTH|R|||||||||||||||DEMORFV1^^^NORTH^VN"
    bar = [
        f"MSH|^~\\&|SIMEHR|NORTH|ISTHMUS|HUB|{ts}||BAR^P01^BAR_P01|DEMO-RF-BAR|P|2.5.1",
        f"EVN|P01|{ts}",
        pid,
        pv1,
    ]
    dft = [
        f"MSH|^~\\&|SIMEHR|NORTH|ISTHMUS|HUB|{ts}||DFT^P03^DFT_P03|DEMO-RF-CD|P|2.5.1",
        f"EVN|P03|{ts}",
        pid,
        pv1,
        f"FT1|1|DEMO-RF-CD1||{day:%Y%m%d}|{day:%Y%m%d}|CD|99283^ED VISIT^CPT|||1|"
        f"{REFUND_AMOUNT}&USD|{REFUND_AMOUNT}&USD|ED^EMERGENCY",
    ]
    return [("\r".join(m) + "\r").encode() for m in (bar, dft)]


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
    await _idle(hub)
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


async def _usage_day(hub: Hub, settings: Settings) -> int:
    """The OR cabinet's usage CSV through the inbox, applied; the usages it held."""
    intake = usage_intake(
        supply_day.usage_csv(),
        peer="file:demo-or-usage.csv",
        now=time.time(),
        tenant=settings.tenant,
    )
    hub.store.accept([intake.inbound])
    relay_unpublished(hub.store, hub.bus)
    await _idle(hub)
    return intake.events


def _supply_summary(hub: Hub, settings: Settings, as_of: date) -> dict[str, Any]:
    """`isthmus supply report` and the margin of the demo's service lines."""
    flow = hub.processor.supply
    assert flow is not None
    policy, limit = policy_from_table(settings.supply)
    report = supply_report(flow.snapshot(), policy, as_of=as_of, limit_days=limit)
    revenue = {m.revenue_account for m in settings.mappings.charge_codes.values()}
    margin = [
        r
        for r in service_line_margin(
            hub.store.entries(), revenue_accounts=revenue, supply_expense_account="6200"
        )
        if r["service_line"] in ("Surgery", "Cardiology")
    ]
    return {
        "requisitions": report["requisitions"],
        "below_par": report["stock_out_risk"],
        "unmatched": [x["invoice"] for x in report["unmatched"]["items"]],
        "open_grni": report["open_grni_total"],
        "margin": margin,
    }


async def _supply_day(hub: Hub, settings: Settings) -> dict[str, Any]:
    """PO-1001 received, the OR's usage through the inbox (stock crosses its reorder points,
    requisitions), the supplier's invoices three-way matched; the report and the margin."""
    flow = hub.processor.supply
    assert flow is not None
    with hub.store.transaction() as tx:
        flow.sync(
            tx, orders=list(supply_day.ORDERS), receipts=list(supply_day.RECEIPTS), invoices=[]
        )
    usages = await _usage_day(hub, settings)
    with hub.store.transaction() as tx:
        invoices = flow.sync(tx, orders=[], receipts=[], invoices=list(supply_day.INVOICES)).counts
    return {
        "usages": usages,
        "invoices": invoices,
        **_supply_summary(hub, settings, as_of=date(2026, 11, 5)),
    }


async def _tryton_supply_day(
    hub: Hub, settings: Settings, args: argparse.Namespace
) -> dict[str, Any]:
    """The same day through Tryton (demo/supply_tryton.py): opening stock bought and
    received there, the OR's usage through the inbox, the requisitions sent, the buyer's
    steps, the receipts, one invoice matched and posted in Tryton, one held."""
    from isthmus.demo.supply_tryton import TrytonSupplyDay  # noqa: PLC0415 - --erp tryton

    flow = hub.processor.supply
    assert flow is not None
    day = TrytonSupplyDay.open(settings.erp, flow, lambda m: _say(args, f"  {m}"))
    try:
        opening = await asyncio.to_thread(day.opening_stock)
        usages = await _usage_day(hub, settings)
        tryton = await asyncio.to_thread(day.procure)
    finally:
        day.close()
    return {
        "usages": usages,
        "invoices": tryton.pop("invoice_lines"),
        "tryton": {"opening_purchase": opening, **tryton},
        **_supply_summary(hub, settings, as_of=datetime.now(UTC).date()),
    }


async def _refund_day(hub: Hub, port: int, settings: Settings) -> dict[str, Any]:
    """The credit arrives over MLLP; rc.dana (revenue cycle) asks for the refund, above
    the approval threshold, and fin.omar (finance, another person) approves it: it posts
    DR A/R / CR refunds payable (flows/refunds.py). A/R nets to zero on the account."""
    await send_messages("127.0.0.1", port, refund_messages(date(2026, 11, 3)), connections=1)
    await _idle(hub)
    desk = hub.refunds()
    asked = await asyncio.to_thread(
        desk.request,
        account=REFUND_ACCOUNT,
        amount=REFUND_AMOUNT,
        currency="USD",
        reason="patient overpaid an ED visit",
        idempotency_key="demo-refund-1",
        requested_by=Actor("rc.dana", frozenset({rbac.REVENUE})),
    )
    done = asked.refund
    if done.status == "pending":  # above the threshold: a second person decides
        done = (
            await asyncio.to_thread(
                desk.approve,
                done.id,
                approver=Actor("fin.omar", frozenset({rbac.FINANCE})),
                note="EOB and payment checked",
            )
        ).refund
    return {
        "id": done.id,
        "amount": str(done.amount),
        "currency": done.currency,
        "threshold": str(settings.refunds.approval_threshold),
        "asked": asked.refund.status,
        "requested_by": done.requested_by,
        "decided_by": done.decided_by,
        "status": done.status,
        "entry_key": done.entry_key,
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
        await _idle(hub)
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
        await _idle(hub)
        cards = _card_day(hub, settings, msgs, claims, intake.events, args.seed)
        await _idle(hub)
        refund = await _refund_day(hub, run.mllp.port, settings)
        labor = await _labor_week(hub, settings)
        supply = await (
            _tryton_supply_day(hub, settings, args)
            if getattr(args, "erp", "file") == "tryton"
            else _supply_day(hub, settings)
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
        "deposits": _deposit_summary(hub, settings, cards),
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
        print(
            f"isthmus: {settings.data_dir} already holds a hub; give an empty --data-dir",
            file=sys.stderr,
        )
        return 2
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
