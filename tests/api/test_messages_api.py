"""`GET /api/v1/messages` (issue 15): the CLI's page over HTTP, with its RBAC.

The same filters and cursor as `isthmus messages list` (observe/message_list.py), as query
parameters; a malformed one is a 400 naming the field. The permission table is
governance.rbac (every role x route: tests/governance/test_rbac_matrix.py).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from isthmus.app import Hub
from isthmus.config import load_settings
from isthmus.flows.file_intake import take_file
from isthmus.governance import identity, rbac
from tests.api.fhir_call import call
from tests.flows.helpers import adt, charge

NOW = 1_700_000_000.0


@dataclass
class Site:
    hub: Hub
    tokens: dict[str, str]  # role -> clear token

    def get(self, query: str = "", role: str = rbac.ENGINEER) -> Any:
        return call(
            self.hub,
            "GET",
            "/api/v1/messages" + query,
            token=self.tokens[role],
            media="application/json",
        )


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    hub = Hub.open(load_settings(None, data_dir=tmp_path_factory.mktemp("messages")))
    try:
        gov = hub.governance
        admin = identity.principal("root", "user", (rbac.ADMIN,), NOW)
        issued = identity.issue(admin, (rbac.ADMIN,), NOW)
        assert gov.initialize(admin, issued.token)
        tokens = {rbac.ADMIN: issued.clear}
        for role in rbac.ROLES[1:]:
            p = identity.principal(f"svc-{role}", "service", (role,), NOW)
            gov.save_principal(p)
            minted = identity.issue(p, (role,), NOW)
            gov.add_token(minted.token)
            tokens[role] = minted.clear
        for i, raw in enumerate(
            (
                adt("A1", "M1"),
                charge("C1", "M1"),
                adt("A2", "M2"),
                b"MSH|^~\\&|EHR|NORTH|ISTHMUS|HUB|2026||DFT^P03|BAD|P|2.5\r",
            )
        ):
            take_file(hub.store, hub.settings, raw, f"m{i}.hl7", time.time())
        yield Site(hub, tokens)
    finally:
        hub.close()


def _ids(body: dict[str, Any]) -> list[str]:
    return [m["control_id"] for m in body["messages"]]


def test_a_page_newest_first_then_the_next(site: Site) -> None:
    r = site.get()
    assert r.status_code == 200
    body = r.json()
    assert set(body) == {"messages", "next", "next_url"} and body["next"] is None
    assert _ids(body) == ["EHR^NORTH:BAD", "EHR^NORTH:A2", "EHR^NORTH:C1", "EHR^NORTH:A1"]
    assert "raw" not in body["messages"][0] and "M1" not in r.text  # no PHI
    first = site.get("?limit=3").json()
    rest = site.get(f"?limit=3&cursor={first['next']}").json()
    assert _ids(first) + _ids(rest) == _ids(body) and rest["next"] is None


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("?status=rejected", ["EHR^NORTH:BAD"]),
        ("?type=ADT", ["EHR^NORTH:A2", "EHR^NORTH:A1"]),
        ("?type=DFT%5EP03&status=accepted", ["EHR^NORTH:C1"]),
        ("?sender=EHR%5ENORTH&control_id=A1", ["EHR^NORTH:A1"]),
        ("?channel=x12", []),
        (
            "?since=2000-01-01T00:00:00Z&until=2999-01-01",
            ["EHR^NORTH:BAD", "EHR^NORTH:A2", "EHR^NORTH:C1", "EHR^NORTH:A1"],
        ),
    ],
)
def test_filters(site: Site, query: str, expected: list[str]) -> None:
    r = site.get(query)
    assert r.status_code == 200 and _ids(r.json()) == expected


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("?cursor=bm9wZQ", "cursor"),
        ("?limit=0", "limit"),
        ("?limit=x", "limit"),
        ("?since=yesterday", "since"),
        ("?until=13/13/2026", "until"),
    ],
)
def test_a_malformed_parameter_is_a_400_naming_it(site: Site, query: str, field: str) -> None:
    r = site.get(query)
    assert r.status_code == 400 and r.json()["field"] == field and r.json()["error"]


def test_who_may_list_messages(site: Site) -> None:
    allowed = rbac.PERMISSIONS["GET /api/v1/messages"]
    for role in rbac.ROLES:
        assert site.get(role=role).status_code == (200 if role in allowed else 403), role
    assert rbac.READ_ONLY not in allowed and rbac.FINANCE not in allowed
