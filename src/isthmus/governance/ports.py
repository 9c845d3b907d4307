"""The governance storage port: principals, API token digests and the audit trail.

Adapters live in store/ (memory_governance.py, sqlite_governance.py,
postgres_governance.py) and pass tests/governance/contract.py. They hold no connection
between calls, so a port needs no close(). Failures to reach the database leave as
`isthmus.errors.StorageUnavailable`.
"""

from __future__ import annotations

from typing import Protocol

from isthmus.governance.audit import AuditEvent, AuditRow
from isthmus.governance.identity import Principal, Token


class GovernanceStore(Protocol):
    """The governance storage port (see the module docstring)."""

    def initialized(self) -> bool:
        """True once `initialize` succeeded; it never becomes false again."""
        ...

    def initialize(self, admin: Principal, token: Token) -> bool:
        """Store the first admin and its token and mark the hub initialized, atomically;
        False (and nothing stored) when it already is."""
        ...

    def save_principal(self, principal: Principal) -> None:
        """Insert the principal, or replace the roles of the one with that name."""
        ...

    def principal(self, name: str) -> Principal | None: ...

    def add_token(self, token: Token) -> None: ...

    def token_by_digest(self, digest: str) -> Token | None: ...

    def tokens(self) -> list[Token]: ...

    def revoke_token(self, token_id: str, at: float) -> Token | None:
        """Mark the token revoked (once: a second call keeps the first time); the token,
        or None when there is no such id."""
        ...

    def append_audit(self, event: AuditEvent) -> AuditRow:
        """Seal (audit.seal) and append the event after the current head, atomically."""
        ...

    def audit_rows(self, *, after: int = 0, limit: int | None = None) -> list[AuditRow]:
        """Rows with seq > after, in sequence order."""
        ...

    def audit_head(self) -> tuple[int, str] | None:
        """The last sequence number and hash, kept apart from the rows."""
        ...
