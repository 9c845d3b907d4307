"""Issue 19 item 7, FHIR search paging (hl7.org/fhir/R4/search.html#count, http.html#paging):
`_count` bounds a searchset page (default 50, at most 500 as the v1 lists), `self` and,
while matches remain, a `next` link (absolute, the same search with an opaque `_cursor`);
following `next` shows every match exactly once, in order, a match created meanwhile
included; `total` stays the number of matches; a cursor the hub did not give out for
that search is a 400 OperationOutcome naming `_cursor`.

In process over ASGI (httpx); fhirclient follows the links against `serve` in
tests/api/test_fhir_versions.py.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from fhirclient.models.bundle import Bundle as FcBundle

from isthmus.api.http import build_app
from isthmus.app import Hub
from isthmus.observe import cursor
from tests.api.admin_hub import admin_hub

NOW = 1_700_000_000.0
MEDIA = "application/fhir+json"
BASE = "http://hub.test/fhir"


@pytest.fixture
def site(tmp_path: Path) -> Iterator[tuple[Hub, str]]:
    with admin_hub(tmp_path / "data") as found:
        yield found


def _call(site: tuple[Hub, str], method: str, url: str, body: Any = None) -> httpx.Response:
    hub, token = site

    async def go() -> httpx.Response:
        transport = httpx.ASGITransport(app=build_app(hub, {}), client=("127.0.0.1", 50000))
        async with httpx.AsyncClient(transport=transport, base_url="http://hub.test") as c:
            return await c.request(
                method,
                url,
                json=body,
                headers={"Authorization": f"Bearer {token}", "Content-Type": MEDIA},
            )

    return asyncio.run(go())


def _account(aid: str, patient: str = "p1") -> dict[str, Any]:
    return {
        "resourceType": "Account",
        "id": aid,
        "status": "active",
        "identifier": [{"value": f"ACC-{aid}"}],
        "subject": [{"reference": f"Patient/{patient}"}],
    }


def _put_accounts(site: tuple[Hub, str], ids: list[str], patient: str = "p1") -> None:
    batch = {
        "resourceType": "Bundle",
        "type": "batch",
        "entry": [
            {"resource": _account(a, patient), "request": {"method": "PUT", "url": f"Account/{a}"}}
            for a in ids
        ],
    }
    r = _call(site, "POST", "/fhir", batch)
    assert r.status_code == 200, r.text
    assert all(e["response"]["status"].startswith("201") for e in r.json()["entry"]), r.text


def _links(bundle: dict[str, Any]) -> dict[str, str]:
    return {link["relation"]: link["url"] for link in bundle["link"]}


def _walk(site: tuple[Hub, str], first: str) -> tuple[list[str], list[dict[str, Any]]]:
    """Follow `next` from `first` to the end: (the ids shown, in order; every page)."""
    ids: list[str] = []
    pages: list[dict[str, Any]] = []
    url: str | None = first
    while url is not None:
        r = _call(site, "GET", url)
        assert r.status_code == 200, r.text
        page = r.json()
        pages.append(page)
        ids += [e["resource"]["id"] for e in page["entry"]]
        url = _links(page).get("next")
        assert len(pages) < 50, "the next links do not end"
    return ids, pages


ACCOUNTS = [f"a{i:02d}" for i in range(7)]


def test_next_links_show_every_match_once_in_order(site: tuple[Hub, str]) -> None:
    _put_accounts(site, ACCOUNTS)
    _put_accounts(site, ["other"], patient="p2")  # not a match of the search below
    ids, pages = _walk(site, "/fhir/Account?patient=Patient/p1&_count=3&foo=bar")
    assert ids == ACCOUNTS
    assert [len(p["entry"]) for p in pages] == [3, 3, 1]
    assert all(p["total"] == 7 and p["type"] == "searchset" for p in pages)
    first, second, last = (_links(p) for p in pages)
    assert first["self"] == f"{BASE}/Account?patient=Patient/p1&_count=3"
    assert "next" not in last
    # absolute, the same search (the ignored parameter left out), an opaque cursor
    nxt = urlsplit(first["next"])
    assert f"{nxt.scheme}://{nxt.netloc}{nxt.path}" == f"{BASE}/Account"
    query = parse_qs(nxt.query)
    assert query["patient"] == ["Patient/p1"] and query["_count"] == ["3"]
    assert "foo" not in query and query["_cursor"][0]
    assert second["self"] == first["next"]  # a page's self is the link that led to it
    # the FHIR model reads it as a Bundle with its links
    assert [lk.relation for lk in FcBundle(pages[0]).link] == ["self", "next"]


def test_a_match_created_between_pages_is_shown_once(site: tuple[Hub, str]) -> None:
    _put_accounts(site, ACCOUNTS[:4])
    first = _call(site, "GET", "/fhir/Account?_count=2").json()
    _put_accounts(site, ["late"])
    ids = [e["resource"]["id"] for e in first["entry"]]
    rest, pages = _walk(site, _links(first)["next"])
    assert ids + rest == [*ACCOUNTS[:4], "late"]
    assert pages[-1]["total"] == 5


def test_default_page_is_50_and_a_page_holds_at_most_500(site: tuple[Hub, str]) -> None:
    many = [f"m{i:03d}" for i in range(cursor.DEFAULT_LIMIT + 5)]
    _put_accounts(site, many)
    page = _call(site, "GET", "/fhir/Account").json()
    assert len(page["entry"]) == cursor.DEFAULT_LIMIT == 50 and page["total"] == 55
    assert parse_qs(urlsplit(_links(page)["next"]).query)["_count"] == ["50"]
    ids, _ = _walk(site, "/fhir/Account")
    assert ids == many
    # a server may return fewer than asked (search.html#count): the self link says so
    big = _call(site, "GET", "/fhir/Account?_count=100000").json()
    assert _links(big)["self"] == f"{BASE}/Account?_count={cursor.MAX_LIMIT}"
    assert len(big["entry"]) == 55 and "next" not in _links(big)
    # _total=none pages the same, without the total
    ids, pages = _walk(site, "/fhir/Account?_total=none&_count=20")
    assert ids == many and len(pages) == 3 and all("total" not in p for p in pages)
    # _count=0: the total alone, no entry and no next page
    count = _call(site, "GET", "/fhir/Account?_count=0").json()
    assert count["total"] == 55 and count["entry"] == [] and "next" not in _links(count)


@pytest.mark.parametrize(
    "bad", ["garbage", cursor.encode("messages.1", 5), cursor.encode("fhir-Account.1", "x")]
)
def test_a_cursor_the_hub_did_not_give_for_this_search_is_400(
    site: tuple[Hub, str], bad: str
) -> None:
    _put_accounts(site, ACCOUNTS[:3])
    r = _call(site, "GET", f"/fhir/Account?_cursor={bad}&_count=1")
    assert r.status_code == 400 and r.headers["content-type"].startswith(MEDIA)
    [issue] = r.json()["issue"]
    assert issue["expression"] == ["_cursor"] and issue["code"] == "value"
    assert bad not in issue["diagnostics"]  # the value is not echoed


def test_one_types_cursor_is_refused_by_another_types_search(site: tuple[Hub, str]) -> None:
    _put_accounts(site, ACCOUNTS[:3])
    nxt = _links(_call(site, "GET", "/fhir/Account?_count=1").json())["next"]
    token = parse_qs(urlsplit(nxt).query)["_cursor"][0]
    r = _call(site, "GET", f"/fhir/ExplanationOfBenefit?_cursor={token}")
    assert r.status_code == 400 and r.json()["issue"][0]["expression"] == ["_cursor"]
    # repeated: refused like any repeated search parameter
    r = _call(site, "GET", f"/fhir/Account?_cursor={token}&_cursor={token}")
    assert r.status_code == 400 and r.json()["issue"][0]["expression"] == ["_cursor"]
    for bad in ("ten", "²", "1.5"):
        r = _call(site, "GET", f"/fhir/Account?_count={bad}")
        assert r.status_code == 400 and r.json()["issue"][0]["expression"] == ["_count"]
