"""The workforce webhook over real HTTP (uvicorn on a free port, httpx): events are stored
before the answer, a redelivery changes nothing, a bad body is a 400 naming the field, and
the shifts end as balanced accruals; an approval posts the held overtime."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn

from isthmus.api.http import build_app
from isthmus.app import Hub
from isthmus.config import load_settings
from isthmus.flows.relay import relay_unpublished
from isthmus.governance import identity, rbac
from isthmus.ledger.journal import validate_entry
from tests.chart import demo_config
from tests.e2e.helpers import HOST, free_port

NOW = 1_700_000_000.0


class _Site:
    def __init__(self, hub: Hub, url: str, tokens: dict[str, str]) -> None:
        self.hub, self.url, self.tokens = hub, url, tokens

    def post(self, body: Any, role: str = rbac.ENGINEER) -> httpx.Response:
        return httpx.post(
            f"{self.url}/api/v1/workforce/events",
            json=body,
            timeout=15,
            headers={"Authorization": f"Bearer {self.tokens[role]}"},
        )

    def apply(self) -> int:
        assert relay_unpublished(self.hub.store, self.hub.bus) == 0  # published on arrival
        return self.hub.worker().drain()


@pytest.fixture
def site(tmp_path: Path) -> Iterator[_Site]:
    hub = Hub.open(load_settings(demo_config(tmp_path), data_dir=tmp_path / "hub", env={}))
    gov = hub.governance
    admin = identity.principal("root", "user", (rbac.ADMIN,), NOW)
    issued = identity.issue(admin, (rbac.ADMIN,), NOW)
    assert gov.initialize(admin, issued.token)
    tokens = {rbac.ADMIN: issued.clear}
    for role in (rbac.ENGINEER, rbac.FINANCE):
        p = identity.principal(f"svc-{role}", "service", (role,), NOW)
        gov.save_principal(p)
        t = identity.issue(p, (role,), NOW)
        gov.add_token(t.token)
        tokens[role] = t.clear
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(build_app(hub), host=HOST, port=port, log_level="warning", lifespan="off")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 15
    while not server.started:
        assert time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.02)
    try:
        yield _Site(hub, f"http://{HOST}:{port}", tokens)
    finally:
        server.should_exit = True
        thread.join(10)
        hub.close()


def _shift(sid: str, day: str, **hours: str) -> dict[str, Any]:
    return {
        "type": "ShiftWorked",
        "shift_id": sid,
        "employee_id": "E100",
        "employee_name": "Jane Roe",
        "department": "ED",
        "work_date": day,
        **hours,
    }


def _labor_lines(hub: Hub) -> dict[str, Decimal]:
    out: dict[str, Decimal] = {}
    for e in hub.store.entries():
        assert validate_entry(e) == []
        for x in e.lines:
            out[x.account] = out.get(x.account, Decimal(0)) + x.debit - x.credit
    return out


def test_webhook_to_balanced_accruals(site: _Site) -> None:
    body = {
        "events": [
            _shift("W1", "2026-01-05", regular_hours="8"),
            _shift("W2", "2026-01-06", regular_hours="8", overtime_hours="2"),
        ]
    }
    r = site.post(body)
    assert r.status_code == 202, r.text
    assert r.json()["events"] == ["workforce:shift:W1", "workforce:shift:W2"]
    again = site.post(body)
    assert (again.status_code, again.json()["duplicate"]) == (200, True)
    assert site.apply() == 2
    lines = _labor_lines(site.hub)
    assert lines == {"5100": Decimal("720.00"), "2300": Decimal("-720.00")}
    [item] = [w for w in site.hub.store.work_items("open")]
    assert (item.queue, item.kind) == ("workforce", "unapproved_overtime")
    # the approval, sent twice, posts the held overtime once and closes the item
    ok = {
        "type": "OvertimeApproved",
        "request_id": "R1",
        "shift_id": "W2",
        "employee_id": "E100",
        "department": "ED",
        "work_date": "2026-01-06",
        "hours": "2",
        "approver": "M7",
    }
    assert site.post(ok).status_code == 202
    assert site.post({"events": [ok]}).status_code == 202  # other bytes, same event
    site.apply()
    lines = _labor_lines(site.hub)
    assert lines == {
        "5100": Decimal("720.00"),
        "5110": Decimal("135.00"),
        "2300": Decimal("-855.00"),
    }
    assert site.hub.store.work_items("open") == []
    assert all("Roe" not in e.memo for e in site.hub.store.entries())


def test_webhook_refusals(site: _Site) -> None:
    r = site.post(
        {
            "type": "ShiftWorked",
            "shift_id": "W1",
            "employee_id": "E1",
            "work_date": "2026-01-05",
            "regular_hours": "25",
        }
    )
    assert r.status_code == 400
    assert (r.json()["field"], r.json()["error"]) == ("regular_hours", "invalid workforce event")
    kept = site.hub.store.message(r.json()["message_id"])
    assert kept is not None and kept.status == "rejected"
    assert site.post({"type": "Nope"}).json()["field"] == "type"
    assert (
        site.post(_shift("W9", "2026-01-05", regular_hours="8"), role=rbac.FINANCE).status_code
        == 403
    )
    assert site.apply() == 0


def test_credential_and_transfer_events_are_remembered(site: _Site) -> None:
    def shift(sid: str, emp: str, day: str) -> dict[str, Any]:
        dept = {"department": "ED"} if emp == "E7" else {}  # E8: by the transfer
        return {
            "type": "ShiftWorked",
            "shift_id": sid,
            "employee_id": emp,
            "work_date": day,
            "regular_hours": "8",
            **dept,
        }

    expired = {
        "type": "CredentialExpired",
        "employee_id": "E7",
        "credential": "RN",
        "expires_on": "2026-01-04",
    }
    moved = {
        "type": "EmployeeTransferred",
        "employee_id": "E8",
        "from_department": "ED",
        "to_department": "LAB",
        "effective_on": "2026-01-06",
    }
    assert site.post({"events": [expired, moved]}).status_code == 202
    site.apply()
    assert (
        site.post(
            {
                "events": [
                    shift("C1", "E7", "2026-01-05"),
                    shift("T1", "E8", "2026-01-05"),
                    shift("T2", "E8", "2026-01-06"),
                ]
            }
        ).status_code
        == 202
    )
    site.apply()
    queues = sorted((w.queue, w.kind, w.event_id) for w in site.hub.store.work_items("open"))
    assert queues == [
        ("compliance", "expired_credential", "workforce:CredentialExpired:E7:RN:2026-01-04"),
        ("compliance", "expired_credential", "workforce:shift:C1"),
    ]
    by_cc: dict[str, Decimal] = {}
    for e in site.hub.store.entries():
        for x in e.lines:
            if x.account == "5100":
                by_cc[x.dims.cost_center] = by_cc.get(x.dims.cost_center, Decimal(0)) + x.debit
    assert by_cc == {"CC-4300": Decimal("360.00"), "CC-4200": Decimal("360.00")}
    # renewed: a later expiry of the same credential lets the next shift post
    renewed = {
        "type": "CredentialExpiring",
        "employee_id": "E7",
        "credential": "RN",
        "expires_on": "2028-01-04",
    }
    assert site.post(renewed).status_code == 202
    assert site.post(shift("C2", "E7", "2026-01-07")).status_code == 202
    site.apply()
    keys = {e.entry_key for e in site.hub.store.entries()}
    assert "labor:accrual:workforce:shift:C2" in keys
    assert "labor:accrual:workforce:shift:C1" not in keys


def test_payroll_posted_reverses_the_pay_period_once(site: _Site) -> None:
    body = {
        "events": [
            _shift("P1", "2026-01-05", regular_hours="8"),
            _shift("P2", "2026-01-20", regular_hours="4"),
        ]
    }  # next pay period
    assert site.post(body).status_code == 202
    site.apply()
    payroll = {
        "type": "PayrollPosted",
        "payroll_id": "PR-1",
        "pay_period_end": "2026-01-17",
        "posted_on": "2026-01-21",
    }
    assert site.post(payroll).status_code == 202
    assert site.post({"events": [payroll]}).status_code == 202  # a resend: same event id
    site.apply()
    reversals = [e for e in site.hub.store.entries() if e.reverses is not None]
    assert [(e.reverses, e.posted_on.isoformat()) for e in reversals] == [
        ("labor:accrual:workforce:shift:P1", "2026-01-21")
    ]
    # P1 accrued and reversed; P2 (pay period ending 31 Jan) still accrued
    assert _labor_lines(site.hub) == {"5100": Decimal("180.00"), "2300": Decimal("-180.00")}
    bad = site.post({**payroll, "payroll_id": " "})
    assert (bad.status_code, bad.json()["field"]) == (400, "payroll_id")
