"""The money side of `isthmus demo`'s day: the payer's 835, card payments and bank
deposits, and a refund decided by two people.

The payer pays part of the day's claims (`claims_to_pay`, one denied); card payments land
on accounts the payer did not pay, with the processor's and the bank's deposits (the 835's
EFT among them), all through the inbox like `isthmus ingest`; an overpaid account is
refunded above the approval threshold (segregation of duties). `idle` waits until the hub
has applied all it was sent: every step of the day waits on it.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from datetime import date
from decimal import Decimal
from typing import Any

from isthmus.app import Hub
from isthmus.config import Settings
from isthmus.connectors.mllp_client import send_messages
from isthmus.demo.deposits import CardDay, card_day
from isthmus.demo.ehr_day import SimMessage
from isthmus.demo.remit835 import ClaimToPay
from isthmus.flows.refund_request import Actor
from isthmus.flows.relay import relay_unpublished
from isthmus.flows.settlement_intake import csv_intake
from isthmus.formats.hl7v2 import parse_message
from isthmus.formats.settlement import BANK, SETTLEMENT
from isthmus.governance import rbac
from isthmus.model import RemittancePaid
from isthmus.model.envelope import KeyedEvent
from isthmus.recon.deposits import deposit_report


async def idle(hub: Hub) -> None:
    """Return once every event sent so far is published and applied."""
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


def card_day_through_inbox(
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


def deposit_summary(hub: Hub, settings: Settings, cards: CardDay) -> dict[str, Any]:
    """`isthmus recon deposits` on the demo day, as of 2026-11-05, with the processor's totals."""
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


async def refund_day(hub: Hub, port: int, settings: Settings) -> dict[str, Any]:
    """The credit arrives over MLLP; rc.dana (revenue cycle) asks for the refund, above
    the approval threshold, and fin.omar (finance, another person) approves it: it posts
    DR A/R / CR refunds payable (flows/refunds.py). A/R nets to zero on the account."""
    await send_messages("127.0.0.1", port, refund_messages(date(2026, 11, 3)), connections=1)
    await idle(hub)
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
