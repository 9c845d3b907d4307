"""In-memory governance store: the fake of governance.ports.GovernanceStore for fast tests."""

from __future__ import annotations

import dataclasses
import threading

from isthmus.governance.audit import AuditEvent, AuditRow, seal
from isthmus.governance.identity import Principal, Token


class MemoryGovernance:
    """The governance store in memory: principals, tokens and the audit chain, under one
    lock."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._initialized = False
        self._principals: dict[str, Principal] = {}
        self._tokens: dict[str, Token] = {}
        self.rows: list[AuditRow] = []  # public so tests can tamper with them
        self.head: tuple[int, str] | None = None

    def initialized(self) -> bool:
        return self._initialized

    def initialize(self, admin: Principal, token: Token) -> bool:
        with self._lock:
            if self._initialized:
                return False
            self._principals[admin.name] = admin
            self._add(token)
            self._initialized = True
            return True

    def save_principal(self, principal: Principal) -> None:
        with self._lock:
            old = self._principals.get(principal.name)
            self._principals[principal.name] = (
                principal if old is None else dataclasses.replace(old, roles=principal.roles)
            )

    def principal(self, name: str) -> Principal | None:
        return self._principals.get(name)

    def add_token(self, token: Token) -> None:
        with self._lock:
            self._add(token)

    def _add(self, token: Token) -> None:
        if token.id in self._tokens or any(t.digest == token.digest for t in self._tokens.values()):
            raise ValueError(f"token {token.id} exists already")
        self._tokens[token.id] = token

    def token_by_digest(self, digest: str) -> Token | None:
        return next((t for t in self._tokens.values() if t.digest == digest), None)

    def tokens(self) -> list[Token]:
        return sorted(self._tokens.values(), key=lambda t: (t.created_at, t.id))

    def revoke_token(self, token_id: str, at: float) -> Token | None:
        with self._lock:
            t = self._tokens.get(token_id)
            if t is None:
                return None
            if t.revoked_at is None:
                t = self._tokens[token_id] = dataclasses.replace(t, revoked_at=at)
            return t

    def append_audit(self, event: AuditEvent) -> AuditRow:
        with self._lock:
            row = seal(self.head, event)
            self.rows.append(row)
            self.head = (row.seq, row.hash)
            return row

    def audit_rows(self, *, after: int = 0, limit: int | None = None) -> list[AuditRow]:
        rows = [r for r in self.rows if r.seq > after]
        return rows if limit is None else rows[:limit]

    def audit_head(self) -> tuple[int, str] | None:
        return self.head
