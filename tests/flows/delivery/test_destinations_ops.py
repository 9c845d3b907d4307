"""Operations on destinations (issue 18): `isthmus destinations` and its resend (by id and
as a filtered set), `GET /api/v1/destinations`, `POST /api/v1/deliveries/{id}/resend` and
the console's Destinations page: roles, the audit trail, the same idempotency key."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from isthmus.app import Hub
from isthmus.cli.main import run
from isthmus.config import load_settings
from isthmus.flows.delivery import DeliveryEngine, work_item_ref
from isthmus.governance import identity, rbac
from isthmus.ports.destination import Answer, DestinationRejected
from isthmus.store.ports import DeliveryQuery
from tests.api.fhir_call import call
from tests.api.test_channels_api import Browser
from tests.flows.delivery.test_delivery import Fake, queue

CONFIG = """
[destinations.portal]
kind = "webhook"
url = "https://user:pw@portal.example.org:8443/hooks?x=1"
[destinations.drop]
kind = "file"
path = "{folder}"
"""


@pytest.fixture
def site(tmp_path: Path) -> Iterator[tuple[Hub, dict[str, str], Path, Path]]:
    conf = tmp_path / "isthmus.toml"
    conf.write_text(CONFIG.format(folder=tmp_path / "out"))
    data = tmp_path / "data"
    hub = Hub.open(load_settings(conf, data_dir=data))
    try:
        now = time.time()
        tokens = {}
        for name, role in (
            ("root", rbac.ADMIN),
            ("eng", rbac.ENGINEER),
            ("reader", rbac.READ_ONLY),
        ):
            p = identity.principal(name, "user", (role,), now)
            issued = identity.issue(p, (role,), now)
            if name == "root":
                assert hub.governance.initialize(p, issued.token)
            else:
                hub.governance.save_principal(p)
                hub.governance.add_token(issued.token)
            tokens[name] = issued.clear
        queue(hub.store, "portal", "A", "B", "C", now=now)
        engine = DeliveryEngine(
            hub.store,
            Fake(lambda i: DestinationRejected(Answer("422", "Unprocessable Entity"))),
            hub.settings.destinations["portal"],
        )
        assert engine.run_once(now).dead == 3
        yield hub, tokens, conf, data
    finally:
        hub.close()


def test_api_lists_destinations_and_resends_with_roles_and_audit(
    site: tuple[Hub, dict[str, str], Path, Path],
) -> None:
    hub, tokens, _, _ = site
    r = call(hub, "GET", "/api/v1/destinations", token=tokens["reader"])
    assert r.status_code == 200
    rows = {d["name"]: d for d in r.json()["destinations"]}
    assert (rows["portal"]["dead"], rows["portal"]["last_answer"]) == (3, "422")
    assert rows["portal"]["address"] == "https://portal.example.org:8443/hooks?x=1"  # no pw
    assert (rows["drop"]["kind"], rows["drop"]["pending"]) == ("file", 0)
    assert [d["event_type"] for d in r.json()["recent"]] == ["PaymentPosted"] * 3
    first = min(d["id"] for d in r.json()["recent"])
    assert (
        call(
            hub, "POST", f"/api/v1/deliveries/{first}/resend", None, token=tokens["reader"]
        ).status_code
        == 403
    )
    r = call(hub, "POST", f"/api/v1/deliveries/{first}/resend", None, token=tokens["eng"])
    assert r.status_code == 200 and r.json() == {"resent": [first]}
    last = hub.governance.audit_rows()[-1].event
    assert (last.action, last.actor, last.target, last.outcome) == (
        "deliveries.resend",
        "eng",
        str(first),
        "ok",
    )
    assert hub.store.work_items_for(work_item_ref(first))[0].status == "resubmitted"
    r = call(hub, "POST", f"/api/v1/deliveries/{first}/resend", None, token=tokens["eng"])
    assert r.status_code == 409  # pending already
    assert hub.governance.audit_rows()[-1].event.outcome == "failed"


def test_cli_lists_and_resends_by_id_and_in_bulk(
    site: tuple[Hub, dict[str, str], Path, Path],
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    hub, tokens, conf, data = site
    common = ["--config", str(conf), "--data-dir", str(data)]
    assert run(["destinations", *common, "--json"]) == 0
    rows = {r["name"]: r for r in json.loads(capsys.readouterr().out)}
    assert rows["portal"]["dead"] == 3 and rows["portal"]["state"] == "closed"
    assert run(["destinations", *common]) == 0
    assert "portal" in capsys.readouterr().out
    ids = [d.id for d in hub.store.deliveries(DeliveryQuery(status="dead"))]
    assert run(["destinations", "resend", str(ids[0]), *common]) == 2  # no token: refused
    monkeypatch.setenv("ISTHMUS_TOKEN", tokens["reader"])
    assert run(["destinations", "resend", str(ids[0]), *common]) == 2  # read-only: refused
    monkeypatch.setenv("ISTHMUS_TOKEN", tokens["eng"])
    capsys.readouterr()
    assert run(["destinations", "resend", str(ids[0]), *common, "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["resent"] == [ids[0]]
    assert run(["destinations", "resend", "--destination", "nope", *common]) == 2
    assert (
        run(
            [
                "destinations",
                "resend",
                "--destination",
                "portal",
                "--status",
                "dead",
                "--since",
                "2000-01-01T00:00:00+00:00",
                *common,
                "--json",
            ]
        )
        == 0
    )
    assert json.loads(capsys.readouterr().out)["resent"] == ids[1:]
    assert {d.status for d in hub.store.deliveries()} == {"pending"}
    audit = [
        (e.event.action, e.event.actor, e.event.outcome)
        for e in hub.governance.audit_rows()
        if "destinations" in e.event.action
    ]
    assert ("cli destinations resend", "eng", "ok") in audit
    assert ("cli destinations resend", "reader", "denied") in audit


def test_console_destinations_page_resends_a_dead_delivery(
    site: tuple[Hub, dict[str, str], Path, Path],
) -> None:
    hub, tokens, _, _ = site
    reader = Browser(hub)
    reader.sign_in(tokens["reader"])
    page = reader.request("GET", "/console/destinations")
    assert page.status_code == 200 and 'id="destination-portal"' in page.text
    assert 'href="/console/destinations"' in page.text  # in the navigation
    assert "/resend" not in page.text  # no button for a reader
    eng = Browser(hub)
    eng.sign_in(tokens["eng"])
    page = eng.request("GET", "/console/destinations").text
    dead = hub.store.deliveries(DeliveryQuery(status="dead"))[0].id
    assert f'action="/console/deliveries/{dead}/resend"' in page
    csrf = re.search(r'name="csrf" value="([^"]+)"', page)
    assert csrf
    assert (
        eng.request(
            "POST", f"/console/deliveries/{dead}/resend", data={"csrf": "forged"}
        ).status_code
        == 403
    )
    r = eng.request("POST", f"/console/deliveries/{dead}/resend", data={"csrf": csrf.group(1)})
    assert r.status_code == 303
    assert hub.store.deliveries(DeliveryQuery(ids=(dead,)))[0].status == "pending"
    last = hub.governance.audit_rows()[-1].event
    assert (last.action, last.outcome) == ("console.deliveries.resend", "ok")
