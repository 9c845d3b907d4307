"""The console's Claims pages over ASGI (issue 20): claims by state with their ages, and
one claim's timeline; who may read them."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from isthmus.app import Hub
from isthmus.connectors.claim_files import FileSender
from isthmus.flows import claim_submission
from isthmus.governance import rbac
from tests.console.site import Site, build
from tests.console.test_console_http import Browser
from tests.flows.claims.claim_files import institutional


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Site:
    return build(tmp_path_factory.mktemp("console") / "data")


@pytest.fixture(scope="module")
def hub(site: Site, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Hub]:
    h = Hub.open(site.settings())
    try:
        claim_submission.submit_837(
            h.store,
            institutional(),
            settings=h.settings.claims,
            sender=FileSender(Path(tmp_path_factory.mktemp("out"))),
            now=time.time() - 3 * 86400,
            source="console-test",
        )
        yield h
    finally:
        h.close()


def test_claims_by_state_and_timeline(hub: Hub, site: Site) -> None:
    b = Browser(hub)
    b.sign_in(site.tokens[rbac.REVENUE])
    r = b.request("GET", "/console/claims")
    assert r.status_code == 200
    assert '<a href="/console/claims?state=submitted">submitted</a></td><td class="n">2<' in r.text
    assert "756048Q" in r.text and ">3.0<" in r.text  # age in days
    r = b.request("GET", "/console/claims/756049Q")
    assert r.status_code == 200
    for step in ("created", "edits_passed", "submitted"):
        assert f"<td>{step}</td>" in r.text
    assert b.request("GET", "/console/claims/NOPE").status_code == 404
    other = Browser(hub)
    other.sign_in(site.tokens[rbac.ENGINEER])
    assert other.request("GET", "/console/claims").status_code == 403
