"""`isthmus init`, `tokens`, `audit` and `contracts`: the governance commands.

`init` creates the first admin once; `tokens create|list|revoke` manages API tokens (admin);
`audit` reads and verifies the trail (cli/audit_trail.py); `contracts check|update` holds
the event model against its baseline. The gate in front of every command is cli/gate.py.
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from isthmus.cli.audit_trail import audit_trail
from isthmus.cli.commands import NotFound, Result, UsageError, _table
from isthmus.cli.gate import Gate
from isthmus.config import Settings
from isthmus.governance import contracts, identity, rbac

COMMANDS = ("init", "tokens", "audit", "contracts")
BASELINE = Path("contracts") / f"events.v{contracts.VERSION}.json"


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


def dispatch(settings: Settings, args: argparse.Namespace, gate: Gate) -> Result:
    """Run `contracts`, `init`, `audit` or `tokens`, as the caller the gate names."""
    if args.cmd == "contracts":
        return _contracts(args)
    if args.cmd == "init":
        return _init(gate, args)
    if args.cmd == "audit":
        return audit_trail(gate.gov, args)
    return _tokens(gate, args)


def _init(gate: Gate, args: argparse.Namespace) -> Result:
    now = time.time()
    admin = identity.principal(args.name, "user", (rbac.ADMIN,), now)  # IdentityError: exit 2
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
    found = gov.principal(args.principal)  # an IdentityError below exits 2
    p = (
        identity.grant(found, roles)
        if found
        else identity.principal(args.principal, "service" if args.service else "user", roles, now)
    )
    issued = identity.issue(
        p, roles, now, created_by=gate.actor, expires_days=args.expires_days or None
    )
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
