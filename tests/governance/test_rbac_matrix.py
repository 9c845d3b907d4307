"""Every HTTP route × every role, and every CLI command × every role.

The routes come from `build_app(hub)` itself (`app.routes`) and the commands from the CLI's
own parser, so a new route or command without an entry in governance.rbac fails here.
Runs through `Hub.open`, so on the embedded adapters and, in the second CI pass, on
PostgreSQL + NATS.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from starlette.routing import Route

from isthmus.api.http import build_app
from isthmus.app import Hub
from isthmus.cli import gate as cli_gate
from isthmus.cli.main import parser
from isthmus.config import load_settings
from isthmus.flows.hl7_inbound import classify
from isthmus.flows.relay import relay_unpublished
from isthmus.governance import identity, rbac
from isthmus.governance.ports import GovernanceStore

NOW = 1_700_000_000.0


@dataclasses.dataclass
class Site:
    hub: Hub
    tokens: dict[str, str]  # role -> clear token


def _mint(gov: GovernanceStore, name: str, roles: tuple[str, ...], **kw: float) -> str:
    p = identity.principal(name, "service", roles, NOW)
    gov.save_principal(p)
    issued = identity.issue(p, roles, NOW, **kw)  # type: ignore[arg-type]
    gov.add_token(issued.token)
    return issued.clear


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    hub = Hub.open(load_settings(None, data_dir=tmp_path_factory.mktemp("rbac")))
    try:
        gov = hub.governance
        admin = identity.principal("root", "user", (rbac.ADMIN,), NOW)
        issued = identity.issue(admin, (rbac.ADMIN,), NOW)
        assert gov.initialize(admin, issued.token)
        tokens = {rbac.ADMIN: issued.clear}
        for role in rbac.ROLES[1:]:
            tokens[role] = _mint(gov, f"svc-{role}", (role,))
        yield Site(hub, tokens)
    finally:
        hub.close()


def _routes(hub: Hub) -> list[tuple[str, str]]:
    app = build_app(hub)
    out = []
    for r in app.routes:
        assert isinstance(r, Route), f"{r!r}: only plain routes are covered by the matrix"
        for method in sorted(r.methods or ()):
            out.append((method, r.path))
    return out


def _call(
    hub: Hub,
    method: str,
    path: str,
    token: str | None = None,
    client: tuple[str, int] = ("127.0.0.1", 50000),
) -> httpx.Response:
    async def go() -> httpx.Response:
        transport = httpx.ASGITransport(app=build_app(hub), client=client)
        async with httpx.AsyncClient(transport=transport, base_url="http://hub") as c:
            headers = {"Authorization": f"Bearer {token}"} if token else {}
            return await c.request(method, path.replace("{ref:path}", "mllp/NOPE"), headers=headers)

    return asyncio.run(go())


def test_every_route_has_a_permission(site: Site) -> None:
    routes = _routes(site.hub)
    assert ("GET", "/health") in routes and len(routes) >= 10
    assert ("GET", "/api/v1/messages") in routes  # issue 15: in the matrix below too
    assert rbac.PERMISSIONS["GET /api/v1/messages"] == frozenset(
        {rbac.ADMIN, rbac.ENGINEER, rbac.REVENUE, rbac.AUDITOR}
    )
    missing = [
        f"{m} {p}"
        for m, p in routes
        if rbac.http_action(m, p) not in rbac.PERMISSIONS
        and rbac.http_action(m, p) not in rbac.PUBLIC
    ]
    assert not missing, f"routes without an rbac.PERMISSIONS entry: {missing}"


def _reason(r: httpx.Response) -> str:
    doc = r.json()
    if doc.get("resourceType") == "OperationOutcome":
        return str(doc["issue"][0]["diagnostics"])
    return str(doc["reason"])


def test_route_role_matrix(site: Site) -> None:
    for method, path in _routes(site.hub):
        action = rbac.http_action(method, path)
        if action in rbac.PUBLIC:
            assert _call(site.hub, method, path).status_code == 200, action
            continue
        r = _call(site.hub, method, path)
        assert r.status_code == 401, (action, r.status_code)
        if method == "GET":  # problem+json; an OperationOutcome under /fhir (api/problems.py)
            assert "missing bearer token" in _reason(r)
        for role in rbac.ROLES:
            r = _call(site.hub, method, path, site.tokens[role])
            if role in rbac.PERMISSIONS[action]:
                fhir = path.startswith("/fhir")  # an empty FHIR body is a 400 outcome
                bodied = fhir or (
                    method == "POST"
                    and path.startswith(("/api/v1/refunds", "/api/v1/workforce", "/api/v1/supply"))
                )
                assert r.status_code in ((200, 400, 404) if bodied else (200, 404)), (
                    action,
                    role,
                    r.status_code,
                )
                if r.status_code == 404 and method != "HEAD":
                    assert (
                        r.json()["resourceType"] == "OperationOutcome"
                        if fhir
                        else r.json()["error"] == "not found"
                    )
            else:
                assert r.status_code == 403, (action, role, r.status_code)
                if method == "GET":
                    assert role in _reason(r) and (
                        path.startswith("/fhir") or r.json()["error"] == "forbidden"
                    )


@pytest.mark.parametrize("kind", ["garbage", "expired", "revoked", "scheme", "demoted"])
def test_bad_tokens_are_401_and_never_echoed(site: Site, kind: str) -> None:
    gov = site.hub.governance
    header_token = None
    if kind == "garbage":
        header_token = "isth_deadbeef0000_" + "A" * 43
    elif kind == "expired":
        header_token = _mint(gov, f"old-{kind}", (rbac.ADMIN,), expires_days=1)
    elif kind == "revoked":
        header_token = _mint(gov, f"gone-{kind}", (rbac.ADMIN,))
        t = gov.token_by_digest(identity.digest(header_token))
        assert t is not None and gov.revoke_token(t.id, NOW)
    elif kind == "demoted":
        header_token = _mint(gov, f"demoted-{kind}", (rbac.AUDITOR,))
        p = gov.principal(f"demoted-{kind}")
        assert p is not None
        gov.save_principal(dataclasses.replace(p, roles=(rbac.READ_ONLY,)))

    async def go() -> httpx.Response:
        transport = httpx.ASGITransport(app=build_app(site.hub))
        async with httpx.AsyncClient(transport=transport, base_url="http://hub") as c:
            auth = (
                f"Basic {site.tokens[rbac.ADMIN]}" if kind == "scheme" else f"Bearer {header_token}"
            )
            return await c.get("/metrics", headers={"Authorization": auth})

    r = asyncio.run(go())
    assert r.status_code == 401
    assert r.headers["www-authenticate"].startswith("Bearer")
    reason = r.json()["reason"]
    assert reason in (
        "invalid token",
        "token expired",
        "token revoked",
        "token has no role its principal still holds",
        "missing bearer token (Authorization: Bearer <token>)",
    )
    assert (header_token or "x" * 50) not in r.text and site.tokens[rbac.ADMIN] not in r.text
    if kind == "expired":
        assert reason == "token expired"  # issued at NOW (2023), a day long
    if kind == "revoked":
        assert reason == "token revoked"


def test_unknown_paths_are_401_unauthenticated_and_404_authenticated(site: Site) -> None:
    assert _call(site.hub, "GET", "/api/v1/secret").status_code == 401
    assert _call(site.hub, "GET", "/api/v1/secret", site.tokens[rbac.READ_ONLY]).status_code == 404
    assert _call(site.hub, "POST", "/metrics").status_code == 401
    assert _call(site.hub, "POST", "/metrics", site.tokens[rbac.READ_ONLY]).status_code == 405


def test_denials_are_audited(site: Site) -> None:
    before = site.hub.governance.audit_head()
    _call(site.hub, "GET", "/api/v1/ledger/trial-balance", site.tokens[rbac.ENGINEER])
    rows = site.hub.governance.audit_rows(after=before[0] if before else 0)
    assert rows and rows[-1].event.action == "http.denied"
    assert rows[-1].event.actor == f"svc-{rbac.ENGINEER}" and rows[-1].event.outcome == "denied"
    assert site.tokens[rbac.ENGINEER] not in rows[-1].event.detail


def test_before_init_only_loopback_reads(tmp_path: Path) -> None:
    hub = Hub.open(load_settings(None, data_dir=tmp_path))
    try:
        assert _call(hub, "GET", "/metrics").status_code == 200
        remote = _call(hub, "GET", "/metrics", client=("203.0.113.9", 4000))
        assert remote.status_code == 401 and "not initialized" in remote.json()["reason"]
        assert _call(hub, "GET", "/health", client=("203.0.113.9", 4000)).status_code == 200
    finally:
        hub.close()


# --- strict FHIR bodies and work items (issue 16, items 7 and 8) -------------------------

STRICT_BAD = {  # a birth date that is not a date, and the same element sent twice
    "date": b'{"resourceType": "Patient", "id": "rbac-p", "birthDate": "1942-08-17X"}',
    "twice": b'{"resourceType": "Patient", "id": "rbac-p", "birthDate": "1942-08-17", '
    b'"birthDate": "1990-01-01"}',
}


def _send(hub: Hub, method: str, path: str, token: str | None, body: bytes) -> httpx.Response:
    async def go() -> httpx.Response:
        transport = httpx.ASGITransport(app=build_app(hub), client=("127.0.0.1", 50000))
        async with httpx.AsyncClient(transport=transport, base_url="http://hub") as c:
            headers = {"Content-Type": "application/fhir+json"}
            if token:
                headers["Authorization"] = f"Bearer {token}"
            return await c.request(method, path, content=body, headers=headers)

    return asyncio.run(go())


@pytest.mark.parametrize("kind", sorted(STRICT_BAD))
def test_fhir_bodies_are_judged_after_the_role_and_refused_for_every_writer(
    site: Site, kind: str
) -> None:
    """A caller that may not write gets 401/403 before the body is read (no oracle); every
    role that may write gets the strictness refusal, naming the element, not the value."""
    raw = STRICT_BAD[kind]
    bundle = (
        b'{"resourceType": "Bundle", "type": "transaction", "entry": [{"resource": '
        + raw
        + b', "request": {"method": "PUT", "url": "Patient/rbac-p"}}]}'
    )
    writes = [
        ("POST", "/fhir/{type}", "/fhir/Patient", raw),
        ("PUT", "/fhir/{type}/{id}", "/fhir/Patient/rbac-p", raw),
        ("POST", "/fhir", "/fhir", bundle),
    ]
    for method, route, path, body in writes:
        action = rbac.http_action(method, route)
        assert _send(site.hub, method, path, None, body).status_code == 401
        for role in rbac.ROLES:
            r = _send(site.hub, method, path, site.tokens[role], body)
            if role not in rbac.PERMISSIONS[action]:
                assert r.status_code == 403, (action, role, r.status_code)
                continue
            assert r.status_code == (422 if kind == "date" else 400), (action, role, r.text)
            [issue] = r.json()["issue"]
            assert issue["expression"][0].endswith("birthDate"), issue
            assert "1942" not in r.text and "1990" not in r.text
    assert site.hub.store.message_by_control_id("fhir", "Patient/rbac-p") is None


def test_every_role_reads_work_items_without_a_misplaced_name(site: Site) -> None:
    """`GET /api/v1/workitems` is open to every role: a name typed into FT1-6 is there as a
    digest only (formats/hl7v2/code_display.py)."""
    name = "SMITHSON, JANE Q"
    msg = "\r".join(
        [
            "MSH|^~\\&|EHR|NORTH|ISTHMUS|HUB|20261102101500||DFT^P03^DFT_P03|RBAC-W1|P|2.5.1",
            "EVN|P03|20261102101500",
            "PID|1||RW1^^^HOSPMRN^MR||DOE^JANE||19800101|F",
            "PV1|1|O|OPC^1^A^NORTH|R||||||MED|||||||||VRW1^^^NORTH^VN",
            f"FT1|1|TW1||20261102|20261102|{name}|80053^TEST^CPT|||1|100.00&USD|100.00&USD",
        ]
    ).encode()
    hub = site.hub
    inbound, _ = classify(msg, channel="mllp", peer="t", now=NOW, tenant="default", currency="USD")
    hub.store.accept([inbound])
    relay_unpublished(hub.store, hub.bus)
    hub.worker().drain()
    items = [w for w in hub.store.work_items("open") if w.kind == "unmapped_transaction_type"]
    assert items, [w.kind for w in hub.store.work_items("open")]
    for role in rbac.ROLES:
        r = _call(hub, "GET", "/api/v1/workitems", site.tokens[role])
        assert r.status_code == 200, role
        assert "unmapped_transaction_type" in r.text
        assert "SMITHSON" not in r.text and "sha256" in r.text, role


# --- CLI ----------------------------------------------------------------------------------


def _cli_actions() -> list[tuple[str, str | None]]:
    ap = parser()
    sub = next(a for a in ap._actions if isinstance(a, argparse._SubParsersAction))
    out: list[tuple[str, str | None]] = []
    for name, p in sub.choices.items():
        act = next((a for a in p._actions if a.dest == "action" and a.choices), None)
        out += [(name, str(c)) for c in act.choices] if act else [(name, None)]
    return out


def test_every_cli_command_is_classified() -> None:
    actions = [rbac.cli_action(c, a) for c, a in _cli_actions()]
    assert "cli dlq replay" in actions and "cli tokens revoke" in actions
    missing = [a for a in actions if a not in rbac.PERMISSIONS and a not in rbac.LOCAL]
    assert not missing, f"CLI commands in neither rbac.PERMISSIONS nor rbac.LOCAL: {missing}"


def test_cli_role_matrix(site: Site, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ISTHMUS_TOKEN", raising=False)
    settings = site.hub.settings
    for cmd, act in _cli_actions():
        action = rbac.cli_action(cmd, act)
        args = argparse.Namespace(cmd=cmd, action=act, token=None)
        if action in rbac.LOCAL:
            assert cli_gate.guard(settings, args).action == action
            continue
        with pytest.raises(cli_gate.Unauthorized, match="needs a token"):
            cli_gate.guard(settings, args)
        for role in rbac.ROLES:
            args.token = site.tokens[role]
            if role in rbac.PERMISSIONS[action]:
                gate = cli_gate.guard(settings, args)
                assert gate.actor in ("root", f"svc-{role}")
            else:
                with pytest.raises(cli_gate.Unauthorized, match="may not"):
                    cli_gate.guard(settings, args)
