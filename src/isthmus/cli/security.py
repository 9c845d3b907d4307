"""`isthmus init`, `tokens`, `audit`, `contracts`, and the gate in front of admin commands.

The gate: once the hub is initialized, a command that changes state (governance.rbac
PERMISSIONS, `cli ...` entries) needs `--token` or ISTHMUS_TOKEN with a role allowed to run
it; without one it stops with exit 2 and one line saying why. Read commands stay open to
whoever can read the data directory. Before `isthmus init` every command is open (a fresh
data directory is only reachable through the filesystem). State-changing commands, and
`messages show --raw` (PHI), are written to the audit trail either way, with their outcome.
"""

from __future__ import annotations

import argparse
import getpass
import json
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from isthmus.app import Hub, open_governance
from isthmus.cli.commands import NotFound, Result, UsageError, _table
from isthmus.config import Settings
from isthmus.errors import PolicyRefused
from isthmus.governance import audit, contracts, identity, rbac
from isthmus.governance.ports import GovernanceStore

COMMANDS = ("init", "tokens", "audit", "contracts")
BASELINE = Path("contracts") / f"events.v{contracts.VERSION}.json"


class Unauthorized(PolicyRefused, UsageError):
    """No token, a bad one, or a role that may not run the command; exit 2."""

    http_status, exit_code = 403, 2


def add_parsers(sub: Any, add: Callable[[str, str], argparse.ArgumentParser]) -> None:
    """Add `init`, `tokens`, `audit` and `contracts` to the parser, and `--token` to every
    command that lacks it."""
    i = add("init", "create the first admin and print its token, once")
    i.add_argument("--name", default="admin", help="the admin principal's name")
    t = add("tokens", "API tokens: create, list, revoke (admin)")
    t.add_argument("action", choices=["create", "list", "revoke"])
    t.add_argument("id", nargs="?", help="token id (revoke)")
    t.add_argument("--principal", help="user or service account the token is for")
    t.add_argument(
        "--role",
        action="append",
        default=[],
        choices=rbac.ROLES,
        help="a role the token carries (repeat for several)",
    )
    t.add_argument(
        "--service", action="store_true", help="a new principal is a service account, not a user"
    )
    t.add_argument(
        "--expires-days",
        type=float,
        default=90.0,
        help="lifetime in days (default 90; 0: never expires)",
    )
    a = add("audit", "the audit trail: list the last events, or verify the hash chain")
    a.add_argument("action", choices=["list", "verify"])
    a.add_argument("--limit", type=int, default=50)
    c = add("contracts", "event contracts: check the model against the baseline, or update it")
    c.add_argument("action", choices=["check", "update"])
    c.add_argument(
        "--baseline",
        type=Path,
        default=None,
        help="the baseline file (default: check against the one packaged with "
        f"this release; update writes {BASELINE})",
    )
    for p in sub.choices.values():
        if "--token" not in p._option_string_actions:
            p.add_argument(
                "--token",
                help="API token for commands that change state "
                "(ISTHMUS_TOKEN; prefer the variable, argv is visible to ps)",
            )


def _local_user() -> str:
    try:
        return f"local:{getpass.getuser()}"
    except (KeyError, OSError):
        return f"local:uid{os.getuid()}"


def action_of(args: argparse.Namespace) -> str:
    """The permission table's name of the command: `cli <cmd>` or `cli <cmd> <action>`. A
    command without sub-actions may still carry `action` as a default (`migrate` sets it
    to its own name): that names no sub-action."""
    sub = getattr(args, "action", None)
    return rbac.cli_action(args.cmd, sub if isinstance(sub, str) and sub != args.cmd else None)


@dataclass
class Gate:
    """Who runs this command, and the audit log its outcome goes to."""

    settings: Settings
    action: str
    actor: str
    audited: bool
    _gov: GovernanceStore | None = field(default=None, repr=False)

    @property
    def gov(self) -> GovernanceStore:
        if self._gov is None:
            self._gov = open_governance(self.settings)
        return self._gov

    def record(self, outcome: str = "ok", target: str = "", **detail: Any) -> None:
        audit.record(self.gov, self.actor, self.action, target, outcome, **detail)

    def run(
        self,
        handler: Callable[[Hub, argparse.Namespace], Result],
        hub: Hub,
        args: argparse.Namespace,
    ) -> Result:
        """Run a command handler; audit it (with its outcome) when it is audited."""
        if not self.audited:
            return handler(hub, args)
        try:
            data, text, code = handler(hub, args)
        except (NotFound, UsageError) as exc:
            self.record("failed", _target(args), error=str(exc))
            raise
        self.record(
            "ok" if code == 0 else "failed",
            _target(args),
            exit=code,
            result=data if isinstance(data, dict) else None,
        )
        return data, text, code


def _target(args: argparse.Namespace) -> str:
    for name in ("id", "ref", "correlation"):
        value = getattr(args, name, None)
        if value:
            return str(value)
    seqs = getattr(args, "seqs", None)
    if seqs:
        return "dead letters " + ",".join(map(str, seqs))
    if getattr(args, "all", False):
        return "all dead letters"
    if getattr(args, "since", None) or getattr(args, "until", None):
        return f"{args.since or ''}..{args.until or ''}"
    return str(getattr(args, "to", "") or "")


def guard(settings: Settings, args: argparse.Namespace) -> Gate:
    """Authorize the command before it runs; raise Unauthorized (exit 2) if it may not."""
    action = action_of(args)
    raw = args.cmd == "messages" and getattr(args, "raw", False)
    audited = (action in rbac.PERMISSIONS and action != "cli tokens list") or raw
    gate = Gate(settings, action, _local_user(), audited)
    if action in rbac.LOCAL:
        return gate
    if not gate.gov.initialized():
        return gate
    clear = getattr(args, "token", None) or os.environ.get("ISTHMUS_TOKEN")
    if not clear:
        gate.record("denied", _target(args), reason="no token")
        raise Unauthorized(
            f"{action.removeprefix('cli ')} needs a token: --token or "
            "ISTHMUS_TOKEN (this hub is initialized)"
        )
    token = gate.gov.token_by_digest(identity.digest(clear))
    holder = gate.gov.principal(token.principal) if token is not None else None
    refused = identity.refusal(token, holder, time.time())
    if refused is not None or token is None or holder is None:
        if holder is not None:
            gate.actor = holder.name  # whose token it was (revoked, expired)
        gate.record("denied", _target(args), reason=refused or "invalid token")
        raise Unauthorized(f"{action.removeprefix('cli ')}: {refused or 'invalid token'}")
    gate.actor = holder.name
    decision = rbac.decide(action, identity.effective_roles(token, holder))
    if not decision.allowed:
        gate.record("denied", _target(args), reason=decision.reason, token_id=token.id)
        raise Unauthorized(f"{holder.name}: {decision.reason}")
    return gate


# --- init, tokens, audit, contracts --------------------------------------------------------


def dispatch(settings: Settings, args: argparse.Namespace, gate: Gate) -> Result:
    """Run `contracts`, `init`, `audit` or `tokens`, as the caller the gate names."""
    if args.cmd == "contracts":
        return _contracts(args)
    if args.cmd == "init":
        return _init(gate, args)
    if args.cmd == "audit":
        return _audit(gate.gov, args)
    return _tokens(gate, args)


def _init(gate: Gate, args: argparse.Namespace) -> Result:
    now = time.time()
    try:
        admin = identity.principal(args.name, "user", (rbac.ADMIN,), now)
    except identity.IdentityError as exc:
        raise UsageError(str(exc)) from exc
    issued = identity.issue(admin, (rbac.ADMIN,), now, created_by="isthmus init")
    if not gate.gov.initialize(admin, issued.token):
        gate.record("failed", admin.name, reason="already initialized")
        raise UsageError(
            "this hub is initialized already; an admin can create tokens "
            "with `isthmus tokens create`"
        )
    gate.record("ok", admin.name, token_id=issued.token.id)
    d = {
        "principal": admin.name,
        "roles": list(admin.roles),
        "token_id": issued.token.id,
        "token": issued.clear,
    }
    return (
        d,
        lambda x: (
            f"admin {x['principal']} created. Its token is shown this once; keep "
            f"it in a secret store:\n\n  {x['token']}\n\n(token id "
            f"{x['token_id']}; use it as ISTHMUS_TOKEN or Authorization: "
            "Bearer)"
        ),
        0,
    )


def _when(ts: float | None) -> str:
    return "" if ts is None else datetime.fromtimestamp(ts, UTC).isoformat(timespec="seconds")


def _tokens(gate: Gate, args: argparse.Namespace) -> Result:
    gov = gate.gov
    if not gov.initialized():
        raise UsageError("this hub is not initialized: run `isthmus init` first")
    now = time.time()
    if args.action == "list":
        data = [
            {
                "id": t.id,
                "principal": t.principal,
                "scopes": list(t.scopes),
                "created_at": _when(t.created_at),
                "expires_at": _when(t.expires_at),
                "status": identity.refusal(t, gov.principal(t.principal), now) or "active",
                "created_by": t.created_by,
            }
            for t in gov.tokens()
        ]
        return (
            data,
            lambda d: _table(
                [
                    [x["id"], x["principal"], ",".join(x["scopes"]), x["status"], x["expires_at"]]
                    for x in d
                ],
                ["id", "principal", "scopes", "status", "expires"],
            ),
            0,
        )
    if args.action == "revoke":
        if not args.id:
            raise UsageError("tokens revoke needs a token id (see `isthmus tokens list`)")
        target = next((t for t in gov.tokens() if t.id == args.id), None)
        if target is None:
            raise NotFound(f"no token {args.id}")
        others = [
            t
            for t in gov.tokens()
            if t.id != args.id
            and rbac.ADMIN in t.scopes
            and identity.refusal(t, gov.principal(t.principal), now) is None
        ]
        if rbac.ADMIN in target.scopes and not others:
            raise UsageError(
                f"token {args.id} is the last admin token: create another "
                "admin token before revoking it"
            )
        t = gov.revoke_token(args.id, now)
        gate.record("ok", args.id, principal=target.principal)
        return (
            {"id": args.id, "revoked_at": _when(t.revoked_at if t else now)},
            lambda d: f"token {d['id']} revoked",
            0,
        )
    if not args.principal or not args.role:
        raise UsageError("tokens create needs --principal NAME and at least one --role")
    roles = tuple(args.role)
    try:
        found = gov.principal(args.principal)
        p = (
            identity.grant(found, roles)
            if found
            else identity.principal(
                args.principal, "service" if args.service else "user", roles, now
            )
        )
        issued = identity.issue(
            p, roles, now, created_by=gate.actor, expires_days=args.expires_days or None
        )
    except identity.IdentityError as exc:
        raise UsageError(str(exc)) from exc
    gov.save_principal(p)
    gov.add_token(issued.token)
    gate.record(
        "ok",
        p.name,
        token_id=issued.token.id,
        scopes=list(issued.token.scopes),
        expires_at=_when(issued.token.expires_at),
    )
    d = {
        "principal": p.name,
        "kind": p.kind,
        "token_id": issued.token.id,
        "scopes": list(issued.token.scopes),
        "expires_at": _when(issued.token.expires_at),
        "token": issued.clear,
    }
    return (
        d,
        lambda x: (
            f"token {x['token_id']} for {x['principal']} "
            f"({', '.join(x['scopes'])}; expires {x['expires_at'] or 'never'}),"
            f" shown this once:\n\n  {x['token']}\n"
        ),
        0,
    )


# What an adapter raises on a stored row it cannot even read back (a head that is not
# "seq:hash", a column of the wrong type): `audit verify` reports it, it does not crash.
_UNREADABLE = (ValueError, TypeError, IndexError, KeyError, AttributeError)


def _read_chain(
    gov: GovernanceStore,
) -> tuple[list[audit.AuditRow], tuple[int, str] | None, audit.ChainFault | None]:
    """The rows and the head as stored, or the first one that cannot be read."""
    try:
        rows = gov.audit_rows()
    except _UNREADABLE:
        rows = []
        while True:  # again one row at a time, to name the one that cannot be read
            last = rows[-1].seq if rows else 0
            try:
                page = gov.audit_rows(after=last, limit=1)
            except _UNREADABLE as exc:
                return (
                    rows,
                    None,
                    audit.ChainFault(
                        last + 1,
                        f"malformed row: the row after row {last} cannot be read "
                        f"({type(exc).__name__}: {str(exc)[:200]})",
                        {},
                    ),
                )
            if not page:
                break
            rows += page
    try:
        head = gov.audit_head()
    except _UNREADABLE as exc:
        last = rows[-1].seq if rows and isinstance(rows[-1].seq, int) else 0
        return (
            rows,
            None,
            audit.ChainFault(
                last, f"the head record is malformed ({type(exc).__name__}: {str(exc)[:200]})", {}
            ),
        )
    return rows, head, None


def _audit(gov: GovernanceStore, args: argparse.Namespace) -> Result:
    if args.action == "list":
        try:
            head = gov.audit_head()
        except _UNREADABLE:
            head = None  # `audit verify` says what is wrong; list what can be read
        after = max(0, (head[0] if head else 0) - max(0, args.limit))
        data = [
            {
                "seq": r.seq,
                "at": r.event.at,
                "actor": r.event.actor,
                "action": r.event.action,
                "target": r.event.target,
                "outcome": r.event.outcome,
                "detail": r.event.detail,
            }
            for r in gov.audit_rows(after=after)
        ]
        return (
            data,
            lambda d: _table(
                [
                    [
                        x["seq"],
                        x["at"][:19],
                        x["actor"],
                        x["action"],
                        x["target"][:40],
                        x["outcome"],
                    ]
                    for x in d
                ],
                ["seq", "at", "actor", "action", "target", "outcome"],
            ),
            0,
        )
    rows, head, fault = _read_chain(gov)
    if fault is None:
        fault = audit.verify(rows, head)
    d: dict[str, Any] = {
        "ok": fault is None,
        "rows": len(rows),
        "head": {"seq": head[0], "hash": head[1]}
        if head and audit.head_fault(head, 0) is None
        else None,
        "fault": None
        if fault is None
        else {"seq": fault.seq, "reason": fault.reason, "row": fault.row},
    }

    def text(x: dict[str, Any]) -> str:
        if x["fault"]:
            f = x["fault"]
            stored = "; ".join(f"{k}={v}" for k, v in (f["row"] or {}).items())
            return f"audit trail BROKEN at row {f['seq']}: {f['reason']}" + (
                f"\n  stored: {stored}" if stored else ""
            )
        h = x["head"]
        return f"audit trail verified: {x['rows']} row(s)" + (
            f"; head row {h['seq']} hash {h['hash']} (record it outside the hub)" if h else ""
        )

    return d, text, 0 if fault is None else 4


def _contracts(args: argparse.Namespace) -> Result:
    path: Path = args.baseline or BASELINE
    now = contracts.current()
    if args.action == "check" and args.baseline is None:  # works outside the repository
        return _verdict("packaged", contracts.packaged_baseline(), now)
    if args.action == "update":
        old = _load(path) if path.exists() else None
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(contracts.dumps(now))
        changed = [str(c) for c in contracts.changes(old, now)] if old else []
        return (
            {"written": str(path), "events": len(now["events"]), "changes": changed},
            lambda d: "\n".join(
                [*d["changes"], f"wrote {d['written']} ({d['events']} event types)"]
            ),
            0,
        )
    if not path.exists():
        raise UsageError(
            f"no contract baseline at {path}: run `isthmus contracts update` and commit it"
        )
    return _verdict(str(path), _load(path), now)


def _verdict(name: str, old: contracts.Schema, now: contracts.Schema) -> Result:
    found = contracts.changes(old, now)
    bad = [str(c) for c in found if c.breaking]
    d = {"baseline": name, "breaking": bad, "additive": [str(c) for c in found if not c.breaking]}

    def text(x: dict[str, Any]) -> str:
        lines = [*x["breaking"], *x["additive"]]
        verdict = (
            f"{len(x['breaking'])} breaking change(s) against {x['baseline']}: bump "
            "the event's schema_version or keep the field"
            if x["breaking"]
            else f"no breaking change against {x['baseline']}"
        )
        return "\n".join([*lines, verdict])

    return d, text, 4 if bad else 0


def _load(path: Path) -> dict[str, Any]:
    try:
        doc: dict[str, Any] = json.loads(path.read_text())
    except ValueError as exc:
        raise UsageError(f"{path} is not JSON: {exc}") from exc
    return doc
