"""Message builders for the merge and move tests (ADT A41..A51 and the lines around them):
every message names its patient (PID-3), billing account (PID-18) and visit (PV1-19), so a
test states which identifiers move where."""

from __future__ import annotations

from decimal import Decimal

from isthmus.flows import lineage
from isthmus.store.ports import Store
from tests.flows.helpers import AUTH, DAY, ft1, hl7, pv1

WHEN = f"{DAY}101500"


def header(cid: str, mtype: str, when: str = WHEN, facility: str = "NORTH") -> str:
    return f"MSH|^~\\&|EHR|{facility}|ISTHMUS|HUB|{when}||{mtype}|{cid}|P|2.5.1"


def line(
    cid: str,
    mrn: str,
    account: str,
    visit: str,
    amount: str = "100.00",
    *,
    ttype: str = "CG",
    currency: str = "USD",
    dept: str = "LAB",
    auth: str = AUTH,
) -> bytes:
    """A DFT^P03 with one FT1 line on `account` / `visit`."""
    ft = ft1(1, "T" + cid, amount=amount, ttype=ttype, dept=dept)
    if currency != "USD":
        ft = ft.replace("&USD", f"&{currency}")
    return hl7(
        header(cid, "DFT^P03^DFT_P03"),
        f"EVN|P03|{WHEN}",
        person(mrn, account, auth),
        pv1(visit),
        ft,
    )


def opened(cid: str, mrn: str, account: str, visit: str, facility: str = "NORTH") -> bytes:
    """A BAR^P01 opening `account` at `facility`."""
    return hl7(
        header(cid, "BAR^P01^BAR_P01", facility=facility),
        f"EVN|P01|{WHEN}",
        person(mrn, account),
        pv1(visit, facility=facility),
    )


def person(mrn: str, account: str = "", auth: str = AUTH) -> str:
    """A PID with PID-18 `account` (empty: none)."""
    return f"PID|1||{mrn}^^^{auth}^MR||DOE^JANE^^^^^L||19800101|F||||||||||" + (
        f"{account}^^^NORTH^AN" if account else ""
    )


def move(
    cid: str,
    trigger: str,
    mrn: str,
    *,
    account: str = "",
    visit: str = "",
    prior_mrn: str = "",
    prior_account: str = "",
    prior_visit: str = "",
    when: str = WHEN,
) -> bytes:
    """An ADT move message: PID-3/PID-18/PV1-19 the survivor, MRG-1/3/5 the prior."""
    mrg1 = f"{prior_mrn}^^^{AUTH}^MR" if prior_mrn else ""
    return hl7(
        header(cid, f"ADT^{trigger}^ADT_A39", when),
        f"EVN|{trigger}|{when}",
        person(mrn, account),
        pv1(visit) if visit else "PV1|1|I",
        f"MRG|{mrg1}||{prior_account}||{prior_visit}",
    )


def cells(store: Store, account: str) -> dict[str, Decimal]:
    """Visit -> A/R attributed to it on `account` (all currencies, all patients)."""
    with store.transaction() as tx:
        held = lineage.load_account(tx, account).cells
    out: dict[str, Decimal] = {}
    for c in held:
        out[c.visit] = out.get(c.visit, Decimal(0)) + c.amount
    return out
