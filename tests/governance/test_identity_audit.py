"""Pure decisions: tokens and their refusals, the permission table, the hash chain."""

from __future__ import annotations

import dataclasses

import pytest
from hypothesis import given
from hypothesis import strategies as st

from isthmus.governance import audit, identity, rbac
from isthmus.store.memory_governance import MemoryGovernance

NOW = 1_700_000_000.0


def test_a_token_is_random_and_stored_as_its_digest() -> None:
    p = identity.principal("ana", "user", (rbac.REVENUE, rbac.READ_ONLY), NOW)
    a, b = (identity.issue(p, (rbac.REVENUE,), NOW) for _ in range(2))
    assert a.clear != b.clear and a.token.id != b.token.id
    assert a.clear.startswith(f"{identity.PREFIX}{a.token.id}_") and len(a.clear) > 50
    assert a.token.digest == identity.digest(a.clear) and a.clear not in repr(a.token)


def test_scopes_are_a_subset_of_the_principals_roles() -> None:
    p = identity.principal("ana", "user", (rbac.READ_ONLY,), NOW)
    with pytest.raises(identity.IdentityError, match="does not hold"):
        identity.issue(p, (rbac.ADMIN,), NOW)
    with pytest.raises(identity.IdentityError, match="unknown role"):
        identity.principal("x", "user", ("root",), NOW)
    with pytest.raises(identity.IdentityError, match="name"):
        identity.principal("a b", "user", (rbac.ADMIN,), NOW)


def test_refusals() -> None:
    p = identity.principal("ana", "user", (rbac.AUDITOR,), NOW)
    t = identity.issue(p, (rbac.AUDITOR,), NOW, expires_days=1).token
    assert identity.refusal(t, p, NOW + 10) is None
    assert identity.refusal(t, p, NOW + identity.DAY_S) == "token expired"
    assert identity.refusal(dataclasses.replace(t, revoked_at=NOW), p, NOW) == "token revoked"
    assert identity.refusal(None, None, NOW) == "invalid token"
    demoted = dataclasses.replace(p, roles=(rbac.READ_ONLY,))
    assert identity.refusal(t, demoted, NOW) is not None  # scopes it no longer holds


@pytest.mark.parametrize(
    ("header", "token"),
    [
        ("Bearer abc", "abc"),
        ("bearer  abc ", "abc"),
        (None, None),
        ("", None),
        ("Basic abc", None),
        ("Bearer", None),
        ("Bearer a b", None),
        ("abc", None),
    ],
)
def test_bearer_header(header: str | None, token: str | None) -> None:
    assert identity.bearer(header) == token


def test_permission_table_is_deny_by_default() -> None:
    assert not rbac.decide("GET /nowhere", rbac.ROLES).allowed
    assert not rbac.decide("cli backup", ()).allowed
    assert rbac.decide("cli backup", (rbac.ADMIN,)).allowed
    assert set(rbac.PERMISSIONS).isdisjoint(rbac.LOCAL)
    assert all(rbac.ADMIN in roles for roles in rbac.PERMISSIONS.values())
    assert all(roles <= rbac.EVERYONE for roles in rbac.PERMISSIONS.values())
    assert rbac.http_action("head", "/metrics") == "GET /metrics"


events = st.builds(
    audit.event,
    st.text(max_size=8),
    st.sampled_from(["a", "b"]),
    st.text(max_size=8),
    st.sampled_from(audit.OUTCOMES),
)


@given(st.lists(events, min_size=1, max_size=12), st.data())
def test_any_single_edit_or_deletion_is_caught(
    evs: list[audit.AuditEvent], data: st.DataObject
) -> None:
    log = MemoryGovernance()
    for e in evs:
        log.append_audit(e)
    assert audit.verify(log.rows, log.head) is None
    i = data.draw(st.integers(0, len(evs) - 1))
    rows = list(log.rows)
    if data.draw(st.booleans()):
        del rows[i]
    else:
        r = rows[i]
        rows[i] = dataclasses.replace(
            r, event=dataclasses.replace(r.event, actor=r.event.actor + "x")
        )
    fault = audit.verify(rows, log.head)
    assert fault is not None and fault.seq == i + 1


def test_empty_chain_verifies_and_head_without_rows_does_not() -> None:
    assert audit.verify([], None) is None
    assert audit.verify([], (3, "f" * 64)) is not None
    with pytest.raises(ValueError, match="outcome"):
        audit.event("a", "b", outcome="maybe")
