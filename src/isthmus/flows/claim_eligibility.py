"""Eligibility: a 270 built from an account's coverage, the 271 kept on the account.

Issue 20. :func:`request_eligibility` asks, for each billing account, its first plan's payer
(IN1-3/IN1-4 as `flows.visits` keeps them from IN1 or FHIR Coverage) about the account's
patient (name and birth date from the patient register; the member id from the caller,
IN1-36 / Coverage.subscriberId, else the account number), builds one 270
(`formats.x12.eligibility.build_270`, 005010X279A1) with a trace (TRN02) per account, and
sends it through the claim sender. The trace -> account map is kept in flow state.

:func:`apply_271` reads the answers: active/inactive, plan, co-payment, deductible and
out-of-pocket remaining (`EligibilityResponse.summary`) are kept on the account (flow state
``eligibility:<account>``, shown by :func:`eligibility_of`); an answer ``inactive`` for an
account with a scheduled encounter (the caller names those: pre-admits, appointments)
opens an ``eligibility_inactive`` work item in queue ``registration``, so the coverage is
fixed before the visit. A rejected inquiry (AAA) is kept with its reason code. A 271 in
the drop folder or taken by `isthmus ingest` arrives as `EligibilityReported` events
(`formats.x12.responses`) that `flows.processor` routes to :func:`on_eligibility`; the
accounts with a scheduled encounter are then those named when the 270 was sent.
Issue 17: :func:`eligibility_facts` reads, :func:`decide_eligibility` decides without the
store, `flows.decision.apply` writes.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final, NamedTuple

from isthmus.config import ClaimSettings
from isthmus.flows.account_state import load_account
from isthmus.flows.claim_submission import X12Sender, next_controls
from isthmus.flows.decision import Decision, SaveState, WorkItem, Write, apply
from isthmus.flows.outcome import APPLIED
from isthmus.formats.x12 import check_envelope, read
from isthmus.formats.x12.eligibility import EligibilityRequest, build_270
from isthmus.formats.x12.remittance import Party, Person
from isthmus.formats.x12.responses import response_events
from isthmus.model import EligibilityReported
from isthmus.store.ports import Store, Tx

QUEUE: Final = "registration"
KIND: Final = "eligibility_inactive"
_TRACE: Final = "claims/270/"
_KEPT: Final = "eligibility:"
_SCHEDULED: Final = "claims/270-scheduled/"
_APPLIED: Final = "claims/applied/"


@dataclass(frozen=True)
class Asked:
    """What `request_eligibility` did: the sender's reference for its 270 ("" when none was
    sent), each trace's account, the accounts skipped and why."""

    sent: str  # the sender's reference
    traces: dict[str, str]  # trace -> account
    skipped: dict[str, str]  # account -> why (no coverage, no patient)


def request_eligibility(
    store: Store,
    accounts: Collection[str],
    *,
    settings: ClaimSettings,
    sender: X12Sender,
    provider: Party,
    now: float,
    member_ids: Mapping[str, str] | None = None,
    scheduled: Collection[str] = (),
) -> Asked:
    """One 270 for the accounts that have a plan and a known patient. ``scheduled``: the
    accounts with a scheduled encounter, kept with the trace so that an inactive 271,
    however it arrives, opens a registration work item."""
    asks: list[EligibilityRequest] = []
    traces: dict[str, str] = {}
    skipped: dict[str, str] = {}
    with store.transaction() as tx:
        for number in accounts:
            acct = tx.get_billing_account(number)
            plans = load_account(tx, number).plans
            patient = tx.get_patient(acct.patient_key) if acct else None
            if not plans or patient is None:
                skipped[number] = "no coverage recorded" if patient else "no patient known"
                continue
            plan = plans[0]
            trace = f"{number}-{int(now)}"
            asks.append(
                EligibilityRequest(
                    transaction_control="",
                    trace=trace,
                    payer=Party(
                        name=plan.payer_name or plan.payer_id, id_qualifier="PI", id=plan.payer_id
                    ),
                    provider=provider,
                    subscriber=Person(
                        last=patient.family_name,
                        first=patient.given_name,
                        id_qualifier="MI",
                        id=(member_ids or {}).get(number, number),
                    ),
                    plan_date=datetime.fromtimestamp(now, UTC).date(),
                )
            )
            traces[trace] = number
        if not asks:
            return Asked("", {}, skipped)
        first = next_controls(tx)
        text = build_270(
            asks,
            sender=settings.sender_id,
            receiver=settings.receiver_id,
            interchange_control=first,
            group_control=first,
            at=datetime.fromtimestamp(now, UTC),
            usage=settings.usage,
        )
        ref = sender.send(name=f"270-{first:09d}.x12", kind="270", body=text.encode())
        for trace, number in traces.items():
            tx.save_state(_TRACE + trace, number.encode())
            if number in scheduled:
                tx.save_state(_SCHEDULED + trace, b"1")
    return Asked(ref, traces, skipped)


class EligibilityFacts(NamedTuple):
    """What the store knows about one 271 answer: whether it is applied for the first time,
    the flow state that marks it applied ("" for a direct call), the account its trace
    names ("" for none of ours) and whether that account was scheduled when the 270 left."""

    first: bool = True
    mark: str = ""
    account: str = ""
    scheduled: bool = False


def eligibility_facts(tx: Tx, ev: EligibilityReported, event_id: str = "") -> EligibilityFacts:
    """Read what `decide_eligibility` needs (nothing more for a redelivery)."""
    mark = _APPLIED + event_id if event_id else ""
    if mark and tx.load_state(mark):
        return EligibilityFacts(False, mark)
    raw = tx.load_state(_TRACE + ev.trace) if ev.trace else None
    if not raw:
        return EligibilityFacts(True, mark)
    return EligibilityFacts(True, mark, raw.decode(), bool(tx.load_state(_SCHEDULED + ev.trace)))


def decide_eligibility(
    ev: EligibilityReported,
    facts: EligibilityFacts,
    *,
    source: str,
    now: float,
    scheduled: Collection[str] | None = None,
) -> tuple[str, Decision]:
    """One 271 answer kept on the account its trace names, decided without the store; its
    status ("" when the trace is none of ours) and the decision. ``scheduled``: the
    accounts with a scheduled encounter (None: those named when the 270 was sent)."""
    if not facts.first:
        return "", Decision(APPLIED)
    writes: list[Write] = [SaveState(facts.mark, b"1")] if facts.mark else []
    number = facts.account
    if not number:
        return "", Decision(APPLIED, writes=tuple(writes))
    is_scheduled = facts.scheduled if scheduled is None else number in scheduled
    kept: dict[str, Any] = {
        "status": ev.status,
        "plan": ev.plan,
        "payer": ev.payer_id,
        "copay": str(ev.copay) if ev.copay is not None else "",
        "deductible_remaining": ""
        if ev.deductible_remaining is None
        else str(ev.deductible_remaining),
        "out_of_pocket_remaining": ""
        if ev.out_of_pocket_remaining is None
        else str(ev.out_of_pocket_remaining),
        "rejections": list(ev.rejections),
        "at": now,
        "source": source,
    }
    writes.append(SaveState(_KEPT + number, json.dumps(kept).encode()))
    items: tuple[WorkItem, ...] = ()
    if ev.status == "inactive" and is_scheduled:
        items = (
            WorkItem(
                KIND,
                QUEUE,
                number,
                f"eligibility/{number}/{ev.trace}",
                f"eligibility/{number}",
                f"271 from payer {ev.payer_id}: coverage inactive for "
                f"account {number} with a scheduled encounter; "
                "update the coverage before the visit",
            ),
        )
    return ev.status, Decision(APPLIED, open=items, writes=tuple(writes))


def on_eligibility(
    tx: Tx,
    ev: EligibilityReported,
    *,
    now: float,
    source: str,
    scheduled: Collection[str] | None = None,
    event_id: str = "",
) -> str:
    """Keep one 271 answer on the account its trace names (`eligibility_facts`,
    `decide_eligibility`, applied at `now`); its status, "" when the trace is none of
    ours."""
    facts = eligibility_facts(tx, ev, event_id)
    status, decision = decide_eligibility(ev, facts, source=source, now=now, scheduled=scheduled)
    apply(tx, decision, now)
    return status


def apply_271(
    store: Store,
    data: bytes | str,
    *,
    now: float,
    source: str,
    scheduled: Collection[str] | None = None,
) -> dict[str, str]:
    """Keep each answer on its account; account -> status ("active", "inactive", ...). A
    direct call; the intake routes the same events through :func:`on_eligibility`."""
    out: dict[str, str] = {}
    ic = read(data)
    kinds = [t.id for g in check_envelope(ic).groups for t in g.transactions]
    with store.transaction() as tx:
        for k in response_events(ic, kinds, interchange_id="direct"):
            if isinstance(k.event, EligibilityReported):
                raw = tx.load_state(_TRACE + k.event.trace)
                status = on_eligibility(tx, k.event, now=now, source=source, scheduled=scheduled)
                if raw and status:
                    out[raw.decode()] = status
    return out


def eligibility_of(store: Store, account_number: str) -> dict[str, Any]:
    """What the last 271 said of an account ({} when none came)."""
    with store.transaction() as tx:
        raw = tx.load_state(_KEPT + account_number)
    got: dict[str, Any] = json.loads(raw) if raw else {}
    return got
