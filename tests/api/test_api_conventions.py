"""Issue 19 item 7, the v1 API's conventions, through `build_app(hub)` over ASGI:
- every list route pages with one cursor: `limit`, `next`, `next_url` and a `Link` header,
  no row twice and none left out (work items past the old silent 1,000 cap too);
- every time in an answer is ISO 8601 (`received_at` was a Unix float);
- every answer carries `X-Request-Id` (the caller's when sane), bound in the logs;
- one access record per request, without query values (they can be PHI);
- a W3C `traceparent` makes the request's span a child of the caller's.

Runs on the embedded adapters, and on PostgreSQL when ISTHMUS_STORE=postgresql.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Iterator
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from isthmus.api.http import build_app
from isthmus.app import Hub
from isthmus.config import load_settings
from isthmus.governance import identity, rbac
from isthmus.observe import access, cursor, logs, tracing
from isthmus.store.memory import MemoryStore
from isthmus.store.ports import Inbound, RefundRecord

NOW = 1_700_000_000.0
WORK_ITEMS = 1_203  # past the 1,000 the route used to stop at, without a word


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Hub, str]]:
    hub = Hub.open(load_settings(None, data_dir=tmp_path_factory.mktemp("conventions")))
    try:
        admin = identity.principal("root", "user", (rbac.ADMIN,), NOW)
        issued = identity.issue(admin, (rbac.ADMIN,), time.time())
        assert hub.governance.initialize(admin, issued.token)
        with hub.store.transaction() as tx:
            for i in range(WORK_ITEMS):
                tx.add_work_item(
                    kind="unmapped_code",
                    queue="revenue-integrity",
                    key=f"k{i}",
                    event_id=f"ev-{i}",
                    correlation_id=f"c/{i}",
                    detail=f"item {i}",
                    envelope=b"",
                    now=NOW + i,
                )
            for i in range(7):
                assert tx.add_refund(
                    RefundRecord(
                        id=f"RF-{i:03d}",
                        idempotency_key=f"idem-{i}",
                        account_number="",
                        account_token=f"tok{i}",
                        company="C100",
                        amount=Decimal("10.00"),
                        currency="USD",
                        reason="overpaid",
                        status="pending" if i % 2 else "rejected",
                        requested_by="alice",
                        requested_at=NOW + i,
                    )
                )
        hub.store.accept(
            [
                Inbound(
                    "mllp",
                    f"EHR^NORTH:M{i}",
                    b"MSH|x",
                    NOW + i + 0.125,
                    "127.0.0.1:1",
                    "ADT^A01",
                    "accepted",
                    "AA",
                    "",
                    b"",
                )
                for i in range(5)
            ]
        )
        yield hub, issued.clear
    finally:
        hub.close()


def _get(
    site: tuple[Hub, str],
    path: str,
    headers: dict[str, str] | None = None,
    client: str = "127.0.0.1",
) -> httpx.Response:
    hub, token = site

    async def go() -> httpx.Response:
        transport = httpx.ASGITransport(app=build_app(hub, {}), client=(client, 50000))
        async with httpx.AsyncClient(transport=transport, base_url="http://hub.test") as c:
            return await c.get(
                path, headers={"Authorization": f"Bearer {token}", **(headers or {})}
            )

    return asyncio.run(go())


def _walk(site: tuple[Hub, str], first: str, rows: str) -> tuple[list[Any], int]:
    """Follow `next_url` from `first` to the last page: every row, and the page count."""
    out: list[Any] = []
    url: str | None = first
    pages = 0
    while url:
        r = _get(site, url.removeprefix("http://hub.test"))
        assert r.status_code == 200, r.text
        body = r.json()
        assert set(body) == {rows, "next", "next_url"}
        out += body[rows]
        pages += 1
        url = body["next_url"]
        if url is None:
            assert body["next"] is None and "link" not in r.headers
        else:
            assert url.startswith("http://hub.test/") and f"cursor={body['next']}" in url
            assert r.headers["link"] == f'<{url}>; rel="next"'
    return out, pages


def test_workitems_page_past_the_old_silent_cap(site: tuple[Hub, str]) -> None:
    rows, pages = _walk(site, "/api/v1/workitems?status=open&limit=500", "workitems")
    assert pages == 3  # 500 + 500 + 203
    assert [w["event_id"] for w in rows] == [f"ev-{i}" for i in range(WORK_ITEMS)]
    first = rows[0]
    assert datetime.fromisoformat(first["created_at"]).timestamp() == NOW
    # the filters ride along in next_url; the default page is 50
    assert len(_get(site, "/api/v1/workitems").json()["workitems"]) == 50
    assert _get(site, "/api/v1/workitems?status=resolved").json() == {
        "workitems": [],
        "next": None,
        "next_url": None,
    }


def test_refunds_page_with_their_filter(site: tuple[Hub, str]) -> None:
    rows, pages = _walk(site, "/api/v1/refunds?limit=2", "refunds")
    assert pages == 4 and [r["id"] for r in rows] == [f"RF-{i:03d}" for i in range(7)]
    pending, _ = _walk(site, "/api/v1/refunds?status=pending&limit=1", "refunds")
    assert [r["id"] for r in pending] == ["RF-001", "RF-003", "RF-005"]
    assert datetime.fromisoformat(rows[0]["requested_at"]).timestamp() == NOW


def test_messages_page_and_times_are_iso_8601(site: tuple[Hub, str]) -> None:
    rows, pages = _walk(site, "/api/v1/messages?channel=mllp&limit=2", "messages")
    assert pages == 3 and [m["control_id"] for m in rows] == [
        f"EHR^NORTH:M{i}" for i in range(4, -1, -1)
    ]
    assert rows[-1]["received_at"] == "2023-11-14T22:13:20.125+00:00"
    one = _get(site, f"/api/v1/messages/{rows[0]['id']}").json()["message"]
    assert datetime.fromisoformat(one["received_at"]).timestamp() == NOW + 4.125


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("limit=0", "limit"),
        ("limit=501", "limit"),
        ("limit=x", "limit"),
        ("cursor=bm9wZQ", "cursor"),
        ("cursor=%%%", "cursor"),
    ],
)
def test_a_bad_limit_or_cursor_is_400_naming_it(
    site: tuple[Hub, str], query: str, field: str
) -> None:
    for route in ("workitems", "refunds", "messages"):
        r = _get(site, f"/api/v1/{route}?{query}")
        assert r.status_code == 400 and r.json()["field"] == field, (route, r.text)


def test_a_cursor_of_one_list_is_refused_by_another(site: tuple[Hub, str]) -> None:
    page = _get(site, "/api/v1/messages?limit=1").json()
    r = _get(site, f"/api/v1/workitems?cursor={page['next']}")
    assert r.status_code == 400 and r.json()["field"] == "cursor"


def test_store_keyset_paging_in_memory() -> None:
    store = MemoryStore()
    with store.transaction() as tx:
        for i in range(5):
            tx.add_work_item(
                kind="k",
                queue="q",
                key=f"k{i}",
                event_id=f"e{i}",
                correlation_id="c",
                detail="",
                envelope=b"",
                now=NOW,
            )
    ids = [w.id for w in store.work_items()]
    assert [w.id for w in store.work_items(after=ids[1], limit=2)] == ids[2:4]
    assert store.refunds(after="RF-unknown") == []


def test_every_answer_has_a_request_id(site: tuple[Hub, str]) -> None:
    mine = _get(site, "/api/v1/status", {"X-Request-Id": "lb-7f3a.22:9"})
    assert mine.headers["x-request-id"] == "lb-7f3a.22:9"
    made = {_get(site, "/api/v1/status").headers["x-request-id"] for _ in range(3)}
    assert len(made) == 3 and all(len(x) == 32 for x in made)
    # an id that could smuggle text into the logs is replaced, not echoed
    for bad in ("a b", "x" * 129, "id\\n", "<script>", "a/b"):
        r = _get(site, "/api/v1/status", {"X-Request-Id": bad})
        assert r.headers["x-request-id"] != bad and len(r.headers["x-request-id"]) == 32
    # refusals and unknown routes too
    assert "x-request-id" in _get(site, "/api/v1/status", {"Authorization": "Bearer nope"}).headers
    assert "x-request-id" in _get(site, "/api/v1/nothing-here").headers


def test_one_access_record_per_request_without_query_values(
    site: tuple[Hub, str], caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO, logger="isthmus.access"):
        _get(
            site,
            "/fhir/Account?identifier=MRN-77-SECRET&patient=Patient/p1",
            {"X-Request-Id": "req-42"},
            client="198.51.100.7",
        )
        _get(site, "/api/v1/status", {"Authorization": "Bearer nope"})
    records = [r for r in caplog.records if r.name == "isthmus.access"]
    assert len(records) == 2
    text = records[0].getMessage()
    assert "MRN-77-SECRET" not in text and "Patient/p1" not in text
    assert "GET /fhir/Account?identifier&patient 200" in text
    assert "request_id=req-42" in text and "client=198.51.100.7" in text
    assert " 401 " in records[1].getMessage()
    # as JSON: the fields apart, with the bound request id
    line = json.loads(logs.JsonFormatter().format(records[0]))
    assert {k: line[k] for k in ("method", "path", "status", "client")} == {
        "method": "GET",
        "path": "/fhir/Account?identifier&patient",
        "status": 200,
        "client": "198.51.100.7",
    }
    assert isinstance(line["duration_ms"], float)


def test_the_request_id_is_bound_for_every_record_of_the_request() -> None:
    with logs.bound(request="req-9", trace="ab" * 16):
        rec = logging.LogRecord("isthmus.flows", logging.WARNING, __file__, 1, "x", (), None)
        line = json.loads(logs.JsonFormatter().format(rec))
        text = logs.TextFormatter().format(rec)
    assert line["request_id"] == "req-9" and line["trace_id"] == "ab" * 16
    assert "[req req-9]" in text
    assert "request_id" not in logs.current_ids()


def test_loggable_path_keeps_names_only() -> None:
    assert (
        access.loggable_path("/api/v1/messages", b"control_id=MSG1&since=2025-01-01")
        == "/api/v1/messages?control_id&since"
    )
    assert access.loggable_path("/x", b"") == "/x"
    assert access.loggable_path("/x", b"na%20me=Smith&na%20me=Jones") == "/x?na?me"


@pytest.fixture
def spans() -> Iterator[InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracing.install(provider)
    try:
        yield exporter
    finally:
        tracing.install(None)


def test_an_incoming_traceparent_is_the_parent_of_the_request_span(
    site: tuple[Hub, str], spans: InMemorySpanExporter
) -> None:
    # the W3C Trace Context example (section 3.2.2.3)
    header = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
    r = _get(site, "/api/v1/status", {"traceparent": header})
    assert r.status_code == 200
    [span] = [s for s in spans.get_finished_spans() if s.name.startswith("GET ")]
    assert span.context.trace_id == 0x4BF92F3577B34DA6A3CE929D0E0E4736
    assert span.parent is not None and span.parent.span_id == 0x00F067AA0BA902B7
    assert span.attributes is not None
    assert span.attributes["http.response.status_code"] == 200
    assert span.attributes["isthmus.request_id"] == r.headers["x-request-id"]
    # a malformed one is not joined: the request starts its own trace
    spans.clear()
    _get(site, "/api/v1/status", {"traceparent": "00-" + "0" * 32 + "-00f067aa0ba902b7-01"})
    [own] = spans.get_finished_spans()
    assert own.parent is None and own.context.trace_id != 0


@pytest.mark.parametrize(
    "header",
    [
        "",
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7",
        "ff-" + "a" * 32 + "-" + "b" * 16 + "-01",
        "00-" + "A" * 32 + "-" + "b" * 16 + "-01",
        "00-" + "a" * 32 + "-" + "0" * 16 + "-01",
        "00-" + "a" * 32 + "-" + "b" * 16 + "-01-extra",
    ],
)
def test_malformed_traceparents_are_ignored(header: str) -> None:
    assert tracing.remote_parent(header) is None


def test_a_future_traceparent_version_is_read_for_its_first_fields() -> None:
    p = tracing.remote_parent("cc-" + "a" * 32 + "-" + "b" * 16 + "-01-what-comes-next")
    assert p is not None and p.trace_id == int("a" * 32, 16) and p.is_remote


def test_cursor_codec_round_trips_and_refuses_other_tags() -> None:
    c = cursor.encode("w1", 42)
    assert cursor.decode_int("w1", c) == 42
    with pytest.raises(cursor.BadCursor):
        cursor.decode("r1", c)
    shown, nxt = cursor.cut([1, 2, 3], 2, "t", lambda x: x)
    assert shown == [1, 2] and nxt is not None and cursor.decode("t", nxt) == "2"
    assert cursor.cut([1, 2], 2, "t", lambda x: x) == ([1, 2], None)


def test_no_float_times_left_in_the_v1_answers(site: tuple[Hub, str], tmp_path: Path) -> None:
    """Every *_at field of the v1 list answers is an ISO 8601 string."""
    for route, rows in (
        ("workitems", "workitems"),
        ("refunds", "refunds"),
        ("messages", "messages"),
    ):
        for row in _get(site, f"/api/v1/{route}?limit=3").json()[rows]:
            for k, v in row.items():
                if k.endswith("_at") and v:
                    assert isinstance(v, str) and datetime.fromisoformat(v).tzinfo, (k, v)
