"""Strict FHIR inputs (issue 16, item 8): a date that is not a FHIR R4 date and a JSON member
sent twice are refused with an OperationOutcome on every /fhir write route (create, update,
transaction, batch) and in FHIR files (`isthmus ingest`, the drop folder), naming the
element and never its value; over `[limits]` the answer is 413/400 naming the limit."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from isthmus.api.ownership import SystemOfRecord
from isthmus.app import Hub
from isthmus.config import load_settings
from isthmus.connectors.folder import DropFolder
from isthmus.flows.file_intake import FileIntake
from tests.api.test_fhir_api import Site, _issues, _site
from tests.chart import demo_config

BAD = "1942-08-17X"  # the issue's birth date: a date with something after it


@pytest.fixture
def site(tmp_path: Path) -> Iterator[Site]:
    yield from _site(tmp_path / "hub")


def patient(pid: str = "p1", **over: Any) -> dict[str, Any]:
    return {
        "resourceType": "Patient",
        "id": pid,
        "identifier": [{"system": "urn:oid:1.2.3", "value": f"MRN-{pid}"}],
        "birthDate": "1942-08-17",
        **over,
    }


def delivery(did: str = "d1", **over: Any) -> dict[str, Any]:
    return {
        "resourceType": "SupplyDelivery",
        "id": did,
        "status": "in-progress",
        "occurrenceDateTime": "2026-11-02T10:00:00Z",
        **over,
    }


def _writes(doc: dict[str, Any]) -> dict[str, Callable[[Site, bytes], httpx.Response]]:
    """Every /fhir write route, each carrying the resource `doc` (as raw bytes)."""
    rtype, rid = doc["resourceType"], doc["id"]

    def bundle(kind: str) -> Callable[[Site, bytes], httpx.Response]:
        def go(s: Site, raw: bytes) -> httpx.Response:
            request = json.dumps({"method": "PUT", "url": f"{rtype}/{rid}"}).encode()
            text = (
                b'{"resourceType": "Bundle", "type": "'
                + kind.encode()
                + b'", "entry": [{"resource": '
                + raw
                + b', "request": '
                + request
                + b"}]}"
            )
            return s.call("POST", "/fhir", raw=text)

        return go

    return {
        "create": lambda s, raw: s.call("POST", f"/fhir/{rtype}", raw=raw),
        "update": lambda s, raw: s.call("PUT", f"/fhir/{rtype}/{rid}", raw=raw),
        "transaction": bundle("transaction"),
        "batch": bundle("batch"),
    }


def _outcome(r: httpx.Response) -> list[dict[str, Any]]:
    """The issues, from the response or, for a batch, from its one entry."""
    body = r.json()
    if body.get("resourceType") == "Bundle":
        [entry] = body["entry"]
        assert entry["response"]["status"][:3] in ("400", "422"), entry
        return list(entry["response"]["outcome"]["issue"])
    return _issues(r)


ROUTES = ("create", "update", "transaction", "batch")
DATES = [  # (resource, where the bad value goes, the element named)
    (patient(birthDate=BAD), "Patient.birthDate"),
    (patient(birthDate="1942-02-30"), "Patient.birthDate"),  # no such day
    (patient(deceasedDateTime="2020-01-01T10:00:00"), "Patient.deceasedDateTime"),  # no zone
    (patient(meta={"lastUpdated": "2026-11-02"}), "Patient.meta.lastUpdated"),  # instant
    (
        patient(identifier=[{"value": "M1", "period": {"start": "19420817"}}]),
        "Patient.identifier[0].period.start",
    ),
    (delivery(occurrenceDateTime="2026-11-02 10:00"), "SupplyDelivery.occurrenceDateTime"),
]


@pytest.mark.parametrize("route", ROUTES)
@pytest.mark.parametrize(("doc", "element"), DATES)
def test_a_date_that_is_not_a_fhir_date_is_refused_naming_the_element(
    site: Site, route: str, doc: dict[str, Any], element: str
) -> None:
    raw = json.dumps(doc).encode()
    r = _writes(doc)[route](site, raw)
    assert r.status_code in (200, 422), r.text  # a batch answers 200, its entry 422
    issues = _outcome(r)
    where = [x for i in issues for x in i.get("expression", [])]
    assert any(w.endswith(element.split(".", 1)[1]) for w in where), issues
    assert {i["code"] for i in issues} == {"value"}
    shown = json.dumps(issues)
    for value in _dates_in(doc):
        assert value not in shown, shown  # the element, never the value
    assert (
        site.hub.store.message_by_control_id("fhir", f"{doc['resourceType']}/{doc['id']}") is None
    )
    kept = [
        m
        for m in site.hub.store.messages(status="rejected", limit=100)
        if m.control_id.startswith(f"{doc['resourceType']}/{doc['id']}#")
    ]
    assert len(kept) == (0 if route == "transaction" else 1), route  # kept to inspect
    if route == "batch":
        assert r.json()["resourceType"] == "Bundle"  # a batch answers per entry


def _dates_in(doc: Any) -> list[str]:
    out: list[str] = []
    if isinstance(doc, dict):
        for k, v in doc.items():
            if isinstance(v, str) and k not in ("resourceType", "id", "status", "system"):
                out.append(v)
            out += _dates_in(v)
    elif isinstance(doc, list):
        for v in doc:
            out += _dates_in(v)
    return out


@pytest.mark.parametrize("route", ROUTES)
def test_valid_dates_of_every_form_pass(site: Site, route: str) -> None:
    doc = patient(
        f"ok-{route}",
        birthDate="1942-08",
        deceasedDateTime="2020-02-29T23:59:60.5+14:00",
        meta={"lastUpdated": "2026-11-02T10:00:00Z"},
        identifier=[{"value": "M1", "period": {"start": "1942", "end": "2026-11"}}],
    )
    r = _writes(doc)[route](site, json.dumps(doc).encode())
    assert r.status_code in (200, 201), r.text
    if route == "batch":
        assert r.json()["entry"][0]["response"]["status"].startswith("20"), r.text


@pytest.mark.parametrize("route", ROUTES)
def test_a_member_sent_twice_is_refused_naming_the_element(site: Site, route: str) -> None:
    doc = patient("twice")
    raw = json.dumps(doc).encode()
    assert raw.endswith(b"}")
    raw = raw[:-1] + b', "birthDate": "1990-01-01"}'  # readers disagree on which counts
    r = _writes(doc)[route](site, raw)
    assert r.status_code in (200, 400), r.text
    issues = _outcome(r)
    assert [i["code"] for i in issues] == ["structure"], issues
    [where] = issues[0]["expression"]
    assert where.endswith("birthDate") and where.split(".")[0] in ("Patient", "Bundle")
    assert "1990" not in json.dumps(issues) and "1942" not in json.dumps(issues)
    assert site.hub.store.message_by_control_id("fhir", "Patient/twice") is None


def test_a_repeated_member_deep_in_a_bundle_is_named_by_its_path(site: Site) -> None:
    raw = (
        b'{"resourceType": "Bundle", "type": "transaction", "entry": [{"resource": '
        b'{"resourceType": "Encounter", "id": "e1", "status": "finished", "class": '
        b'{"code": "AMB"}, "period": {"start": "2026-11-02", "start": "2026-11-03"}}, '
        b'"request": {"method": "PUT", "url": "Encounter/e1"}}]}'
    )
    r = site.call("POST", "/fhir", raw=raw)
    assert r.status_code == 400
    [issue] = _issues(r)
    assert issue["expression"] == ["Bundle.entry[0].resource.period.start"]


def test_a_bad_date_in_a_resource_kept_for_inspection_on_create(site: Site) -> None:
    r = site.call("PUT", "/fhir/Patient/kept", patient("kept", birthDate=BAD))
    assert r.status_code == 422
    rejected = [
        m
        for m in site.hub.store.messages(status="rejected", limit=100)
        if m.control_id.startswith("Patient/kept#")
    ]
    assert len(rejected) == 1 and "Patient.birthDate" in rejected[0].error
    assert BAD not in rejected[0].error


@pytest.mark.parametrize("owners", ["", '[ownership]\npatient = "root"\n'])
def test_fhir_bodies_are_read_within_the_limits(tmp_path: Path, owners: str) -> None:
    """Also through the system-of-record check, which reads the body first (api/ownership.py;
    the admin token's principal is `root`)."""
    config = tmp_path / "site.toml"
    config.write_text(
        demo_config(tmp_path).read_text()
        + owners
        + "\n[limits]\nmax_body_bytes = 4096\nmax_json_depth = 8\n"
    )
    for s in _site(tmp_path / "hub", config):
        big = patient("big", text={"status": "generated", "div": "x" * 5000})
        r = s.call("POST", "/fhir/Patient", big)
        assert r.status_code == 413
        [issue] = _issues(r)
        assert issue["code"] == "too-long" and "max_body_bytes" in issue["diagnostics"]
        deep: Any = "x"
        for _ in range(10):
            deep = {"extension": [{"url": "u", "valueString": "v", "x": deep}]}
        r = s.call("PUT", "/fhir/Patient/deep", patient("deep", **deep))
        assert r.status_code == 400
        [issue] = _issues(r)
        assert "max_json_depth" in issue["diagnostics"]
        assert s.call("PUT", "/fhir/Patient/ok", patient("ok")).status_code == 201


def _bundle_file(path: Path, *resources: dict[str, Any], raw: bytes | None = None) -> Path:
    path.write_bytes(
        raw
        or json.dumps(
            {
                "resourceType": "Bundle",
                "type": "collection",
                "entry": [{"resource": r} for r in resources],
            }
        ).encode()
    )
    return path


def test_fhir_files_are_strict_too(tmp_path: Path) -> None:
    hub = Hub.open(load_settings(demo_config(tmp_path), data_dir=tmp_path / "hub"))
    try:
        folder = DropFolder(
            tmp_path / "drop",
            FileIntake(hub.store, hub.bus, hub.settings),
            hub.settings,
            quiet_s=0.0,
        )
        _bundle_file(folder.inbound / "date.json", patient("f1", birthDate=BAD))
        twice = json.dumps(patient("f2")).encode()[:-1] + b', "birthDate": "1990-01-01"}'
        _bundle_file(folder.inbound / "twice.json", raw=twice)
        _bundle_file(folder.inbound / "good.json", patient("f3"))
        folder.run_once(0.0)
        folder.run_once(1.0)
        assert (folder.done / "good.json").exists()
        for name, element in (
            ("date.json", "Bundle.entry[0].resource.birthDate"),
            ("twice.json", "Patient.birthDate"),
        ):
            assert (folder.failed / name).exists(), name
            text = (folder.failed / f"{name}.error.txt").read_text()
            assert element in text, text
            assert BAD not in text and "1990" not in text and "1942" not in text, text
        assert hub.store.message_by_control_id("fhir", "Patient/f1") is None
        assert hub.store.message_by_control_id("fhir", "Patient/f3") is not None
    finally:
        hub.close()


def test_the_system_of_record_check_stops_reading_at_the_limit(tmp_path: Path) -> None:
    """With [ownership], the body is read before the routes see it: that read stops at
    `max_body_bytes` too (413), instead of holding whatever a writer streams."""
    hub = Hub.open(load_settings(demo_config(tmp_path), data_dir=tmp_path / "hub"))
    try:
        reached: list[str] = []

        async def app(scope: Any, receive: Any, send: Any) -> None:
            reached.append("app")

        mw = SystemOfRecord(
            app,
            owners={"patient": ("EPIC",)},
            store=hub.store,
            governance=hub.governance,
            max_body_bytes=4096,
        )
        pulled, sent = [0], []

        async def receive() -> dict[str, Any]:
            pulled[0] += 1
            return {"type": "http.request", "body": b"x" * 1024, "more_body": True}

        async def send(message: dict[str, Any]) -> None:
            sent.append(message)

        scope = {
            "type": "http",
            "method": "POST",
            "path": "/fhir/Patient",
            "headers": [],
            "state": {"principal": "root"},
        }
        asyncio.run(mw(scope, receive, send))
        assert sent[0]["status"] == 413 and pulled[0] == 5 and not reached
        assert b"max_body_bytes" in sent[1]["body"]
    finally:
        hub.close()
