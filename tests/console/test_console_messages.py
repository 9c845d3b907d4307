"""The console's Messages page (issue 15): newest first, filtered as the CLI and the API
filter (observe/message_list.py), and paged with an "Older messages" link that carries the
filters and the next cursor. Over ASGI, no browser."""

from __future__ import annotations

import html
import re
import time
from collections.abc import Iterator

import pytest

from isthmus.app import Hub
from isthmus.flows.file_intake import take_file
from isthmus.governance import rbac
from tests.console.site import Site
from tests.console.test_console_http import Browser
from tests.flows.helpers import adt

EXTRA = 105  # more than a page (100)


@pytest.fixture(scope="module")
def hub(site: Site) -> Iterator[Hub]:
    h = Hub.open(site.settings())
    try:
        for i in range(EXTRA):
            take_file(h.store, h.settings, adt(f"PG{i:03}", f"9{i:03}"), f"pg{i}.hl7", time.time())
        yield h
    finally:
        h.close()


def _rows(page: str) -> list[str]:
    body = page.split('<table id="results">', 1)[1].split("</table>", 1)[0]
    return re.findall(r'<tr class="[a-z]+"><td><a href="[^"]+">(\d+)</a>', body)


def _older(page: str) -> str | None:
    found = re.search(r'<a id="next" href="([^"]+)">Older messages</a>', page)
    return html.unescape(found.group(1)) if found else None


def test_messages_are_newest_first_and_paged(hub: Hub, site: Site) -> None:
    b = Browser(hub)
    assert b.sign_in(site.tokens[rbac.ENGINEER]).status_code == 303
    first = b.request("GET", "/console/messages")
    assert first.status_code == 200
    ids = [int(i) for i in _rows(first.text)]
    assert len(ids) == 100 and ids == sorted(ids, reverse=True)
    older = _older(first.text)
    assert older and "cursor=" in older
    second = b.request("GET", older)
    more = [int(i) for i in _rows(second.text)]
    total = len(hub.store.messages(limit=100_000))
    assert len(ids) + len(more) == total and max(more) < min(ids)  # no repeat, no gap
    assert _older(second.text) is None  # the last page


def test_filters_stay_with_the_older_link(hub: Hub, site: Site) -> None:
    b = Browser(hub)
    b.sign_in(site.tokens[rbac.REVENUE])
    first = b.request("GET", "/console/messages?type=ADT&sender=EHR%5ENORTH&status=accepted")
    older = _older(first.text)
    assert older and "type=ADT" in older and "sender=EHR%5ENORTH" in older
    page = b.request("GET", older).text
    assert _rows(page) and "DFT^P03" not in page.split('<table id="results">', 1)[1]
    assert b.request("GET", "/console/messages?channel=x12").text.count("no message matches") == 1


def test_a_forged_cursor_is_named_not_a_crash(hub: Hub, site: Site) -> None:
    b = Browser(hub)
    b.sign_in(site.tokens[rbac.AUDITOR])
    r = b.request("GET", "/console/messages?cursor=forged")
    assert r.status_code == 400 and "cursor" in r.text
