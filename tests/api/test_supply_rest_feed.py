"""POST /api/v1/supply/usage (issue 8): the departmental usage CSV over HTTP, through
`build_app(hub)`, the inbox, the worker and the supply flow, with a real httpx client.

Stock goes down once per usage id (DR 6200 / CR 1300) whatever is resent or replayed; bad
bodies are answered with the row and column at fault and kept as rejected.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import pytest

from isthmus.flows.file_intake import take_file
from tests.api.test_supply_fhir_api import Site, open_site

URL = "/api/v1/supply/usage"
CSV = "text/csv"
HEAD = "usage_id,item,location,quantity,used_on,department,lot,patient_name\n"
USAGE = (
    HEAD + "U1,STENT-01,OR,1,2026-03-02,OR,L1,Jane Doe\n"
    "U2,STENT-01,OR,1,2026-03-02,OR,L2,Jane Doe\n"
).encode()
# one entry per usage, 1 x 12.50 each: DR 6200 (the OR's cost center) / CR 1300
TWO_USAGES = [("1300", Decimal(0), Decimal("12.50"), "")] * 2 + [
    ("6200", Decimal("12.50"), Decimal(0), "CC-OR")
] * 2


@pytest.fixture
def site(tmp_path: Path) -> Iterator[Site]:
    yield from open_site(tmp_path)


def post(
    site: Site, body: bytes, *, media: str = CSV, token: str | None = "admin"
) -> tuple[int, dict[str, object]]:
    r = site.call("POST", URL, raw=body, media=media, token=token)
    # an answer is JSON; a refusal RFC 9457 problem+json (api/problems.py)
    assert r.headers["content-type"].startswith(
        "application/json" if r.status_code < 400 else "application/problem+json"
    )
    return r.status_code, r.json()


def test_usage_csv_takes_stock_once(site: Site) -> None:
    code, body = post(site, USAGE)
    assert (code, body["usages"], body["duplicate"]) == (202, 2, False)
    assert site.on_hand() == Decimal(4)
    assert site.postings() == TWO_USAGES
    assert all(e.correlation_id.startswith("supply/sha256:") for e in site.usage_entries())
    code, again = post(site, USAGE)  # the same body: a duplicate, nothing changes
    assert (code, again["duplicate"], again["message_id"]) == (200, True, body["message_id"])
    # the same usages in another body (another export of the same lines): stored, taken once
    code, _ = post(site, USAGE.replace(b"patient_name", b"note"))
    assert code == 202
    site.replay_all()
    assert site.on_hand() == Decimal(4)
    assert site.postings() == TWO_USAGES
    assert "Jane" not in str(site.usage_entries())


def test_same_file_in_the_drop_folder_is_a_duplicate(site: Site, tmp_path: Path) -> None:
    assert post(site, USAGE)[0] == 202
    drop = tmp_path / "usage.csv"
    drop.write_bytes(USAGE)
    [row] = take_file(site.hub.store, site.hub.settings, drop, "usage.csv", time.time())
    assert (row["format"], row["duplicate"]) == ("supply-usage", True)
    assert site.on_hand() == Decimal(4)


def test_rows_at_fault_are_a_422_naming_row_and_column_and_kept(site: Site) -> None:
    bad = (
        HEAD + "U1,STENT-01,OR,1,2026-03-02,OR,L1,x\n"
        "U2,STENT-01,OR,-1,2026-03-02,OR,L2,x\n"
        "U3,STENT-01,OR,1,2026-13-45,OR,L3,x\n"
    ).encode()
    code, body = post(site, bad)
    assert code == 422
    assert (body["field"], body["row"]) == ("quantity", 3)
    findings = body["findings"]
    assert isinstance(findings, list)
    assert [(f["row"], f["column"]) for f in findings] == [(3, "quantity"), (4, "used_on")]
    [kept] = site.hub.store.messages(status="rejected")
    assert (kept.channel, kept.id, kept.raw) == ("supply", body["message_id"], bad)
    assert site.on_hand() == Decimal(6)  # a file with any finding posts nothing


@pytest.mark.parametrize(
    ("data", "field"),
    [
        (b"usage_id,item,location,quantity\nU1,STENT-01,OR,1\n", "used_on"),
        (b"", ""),
        (HEAD.encode(), ""),
    ],
)
def test_not_a_usage_file_is_a_400_and_kept(site: Site, data: bytes, field: str) -> None:
    code, body = post(site, data)
    assert code == 400
    assert body["field"] == field and int(str(body["row"])) <= 1
    assert [m.id for m in site.hub.store.messages(status="rejected")] == [body["message_id"]]


def test_body_that_is_not_csv_is_a_415_and_not_read(site: Site) -> None:
    code, body = post(site, USAGE, media="application/json")
    assert (code, body["field"]) == (415, "Content-Type")
    assert post(site, USAGE, media="text/csv; charset=utf-8")[0] == 202
    assert site.hub.store.messages(status="rejected") == []


def test_unmapped_department_holds_the_usage(site: Site) -> None:
    data = (HEAD + "U9,STENT-01,OR,1,2026-03-02,ONCOLOGY,L9,x\n").encode()
    assert post(site, data)[0] == 202
    assert site.on_hand() == Decimal(6)
    held = [w for w in site.hub.store.work_items("open") if w.kind == "unmapped_department"]
    assert len(held) == 1 and "ONCOLOGY" in str(held[0].detail)


def test_posting_usage_needs_a_feed_role(site: Site) -> None:
    assert post(site, USAGE, token="reader")[0] == 403
    assert post(site, USAGE, token=None)[0] == 401
    assert site.hub.store.messages() == []
