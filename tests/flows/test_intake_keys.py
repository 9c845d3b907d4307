"""The workforce and supply intakes build their envelopes through `flows.intake` and set
the business key of the facts they carry: a worked shift by its shift id (the webhook and a
timecard file agree), a payroll run by its id, a supply usage by the application's usage
id."""

from __future__ import annotations

import json

import msgspec

from isthmus.flows.intake import correlation_of
from isthmus.flows.labor_intake import timecard_intake, webhook_intake
from isthmus.flows.supply_intake import usage_intake
from isthmus.model.envelope import Envelope

_envs = msgspec.json.Decoder(list[Envelope])
SHIFT = {
    "shift_id": "J1",
    "employee_id": "E1",
    "department": "ED",
    "work_date": "2026-01-05",
    "regular_hours": 8,
}


def test_a_shift_has_one_business_key_by_webhook_or_timecard() -> None:
    hook = webhook_intake(
        json.dumps({"type": "ShiftWorked", **SHIFT}).encode(), peer="t", now=0.0, tenant="default"
    )
    card = timecard_intake(
        json.dumps({"timecards": [SHIFT]}).encode(), peer="t", now=0.0, tenant="default"
    )
    (h,) = _envs.decode(hook.inbound.events)
    (c,) = _envs.decode(card.inbound.events)
    assert h.business_key == c.business_key == "shift|J1"
    assert h.event_id == c.event_id == "workforce:shift:J1"
    assert h.correlation_id == correlation_of("workforce", hook.inbound.control_id)


def test_a_payroll_run_is_keyed_by_its_id_other_workforce_events_by_their_id() -> None:
    body = {
        "events": [
            {
                "type": "PayrollPosted",
                "payroll_id": "P7",
                "pay_period_end": "2026-01-10",
                "posted_on": "2026-01-12",
            },
            {
                "type": "OvertimeRequested",
                "request_id": "R1",
                "employee_id": "E1",
                "shift_id": "J1",
                "work_date": "2026-01-05",
                "hours": 2,
            },
        ]
    }
    hook = webhook_intake(json.dumps(body).encode(), peer="t", now=0.0, tenant="default")
    assert hook.error == ""
    keys = {e.type: e.business_key for e in _envs.decode(hook.inbound.events)}
    assert keys == {"PayrollPosted": "payroll|P7", "OvertimeRequested": ""}


def test_a_supply_usage_is_keyed_by_its_usage_id() -> None:
    raw = b"usage_id,item,location,quantity,used_on\nU1,STENT-01,OR,1,2026-11-02\n"
    intake = usage_intake(raw, peer="t", now=0.0, tenant="default")
    (env,) = _envs.decode(intake.inbound.events)
    assert env.business_key == "usage|U1"
    assert env.type == "SupplyConsumed" and env.key == "supply/STENT-01|OR"
    assert env.correlation_id == correlation_of("supply", intake.inbound.control_id)
