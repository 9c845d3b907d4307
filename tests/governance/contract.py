"""The governance store contract, one suite subclassed per adapter (memory, SQLite, PostgreSQL).

Each adapter's suite overrides the `gov` fixture; everything is checked through the port
(governance.ports.GovernanceStore) only.
"""

from __future__ import annotations

import threading

import pytest

from isthmus.governance import audit, identity
from isthmus.governance.ports import GovernanceStore
from isthmus.governance.rbac import ADMIN, AUDITOR, READ_ONLY

NOW = 1_700_000_000.0


def admin_and_token(name: str = "admin") -> tuple[identity.Principal, identity.Issued]:
    p = identity.principal(name, "user", (ADMIN,), NOW)
    return p, identity.issue(p, (ADMIN,), NOW)


class GovernanceContract:
    @pytest.fixture
    def gov(self) -> GovernanceStore:
        raise NotImplementedError

    def test_initialize_once(self, gov: GovernanceStore) -> None:
        assert not gov.initialized()
        p, issued = admin_and_token()
        assert gov.initialize(p, issued.token)
        assert gov.initialized()
        q, again = admin_and_token("other")
        assert not gov.initialize(q, again.token)
        assert gov.principal("other") is None
        assert gov.token_by_digest(again.token.digest) is None
        assert gov.principal("admin") == p
        assert gov.token_by_digest(identity.digest(issued.clear)) == issued.token

    def test_tokens_are_found_by_digest_only(self, gov: GovernanceStore) -> None:
        p, issued = admin_and_token()
        gov.initialize(p, issued.token)
        svc = identity.principal("erp-sync", "service", (READ_ONLY, AUDITOR), NOW)
        gov.save_principal(svc)
        t = identity.issue(svc, (READ_ONLY,), NOW + 1, expires_days=1, created_by="admin")
        gov.add_token(t.token)
        assert gov.token_by_digest(t.token.digest) == t.token
        assert gov.token_by_digest(t.clear) is None  # the clear token is not a key
        assert [x.id for x in gov.tokens()] == [issued.token.id, t.token.id]
        assert all(x.digest != t.clear and t.clear not in repr(x) for x in gov.tokens())

    def test_save_principal_replaces_roles(self, gov: GovernanceStore) -> None:
        svc = identity.principal("svc", "service", (READ_ONLY,), NOW)
        gov.save_principal(svc)
        gov.save_principal(identity.grant(svc, (AUDITOR,)))
        got = gov.principal("svc")
        assert got is not None and got.roles == (AUDITOR, READ_ONLY)
        assert got.kind == "service" and got.created_at == NOW

    def test_revoke_is_kept_once(self, gov: GovernanceStore) -> None:
        p, issued = admin_and_token()
        gov.initialize(p, issued.token)
        first = gov.revoke_token(issued.token.id, NOW + 5)
        assert first is not None and first.revoked_at == NOW + 5
        again = gov.revoke_token(issued.token.id, NOW + 9)
        assert again is not None and again.revoked_at == NOW + 5
        assert gov.revoke_token("nope", NOW) is None
        found = gov.token_by_digest(issued.token.digest)
        assert found is not None and found.revoked_at == NOW + 5

    def test_audit_chain_appends_and_verifies(self, gov: GovernanceStore) -> None:
        assert gov.audit_head() is None and gov.audit_rows() == []
        rows = [
            audit.record(gov, "admin", "cli dlq replay", f"seq {i}", n=i, note="é")
            for i in range(5)
        ]
        assert [r.seq for r in rows] == [1, 2, 3, 4, 5]
        assert gov.audit_rows() == rows
        assert gov.audit_rows(after=3) == rows[3:]
        assert gov.audit_rows(limit=2) == rows[:2]
        assert gov.audit_head() == (5, rows[-1].hash)
        assert audit.verify(gov.audit_rows(), gov.audit_head()) is None

    def test_concurrent_appends_keep_one_chain(self, gov: GovernanceStore) -> None:
        def write(k: int) -> None:
            for i in range(10):
                audit.record(gov, f"w{k}", "http.denied", str(i), "denied")

        threads = [threading.Thread(target=write, args=(k,)) for k in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        rows = gov.audit_rows()
        assert len(rows) == 40
        assert audit.verify(rows, gov.audit_head()) is None
