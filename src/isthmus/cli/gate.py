"""The gate in front of every `isthmus` command: who runs it, may they, and the audit trail.

Once the hub is initialized, a command that changes state (governance.rbac PERMISSIONS,
`cli ...` entries) needs `--token` or ISTHMUS_TOKEN with a role allowed to run it; without
one it stops with exit 2 and one line saying why. Read commands stay open to whoever can
read the data directory. Before `isthmus init` every command is open (a fresh data
directory is only reachable through the filesystem). State-changing commands, and
`messages show --raw` (PHI), are written to the audit trail either way, with their outcome:
a refusal of the error tree (isthmus/errors.py) is recorded as failed, then raised on.
"""

from __future__ import annotations

import argparse
import getpass
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from isthmus.app import Hub, open_governance
from isthmus.cli.commands import Result, UsageError
from isthmus.config import Settings
from isthmus.errors import IsthmusError, PolicyRefused
from isthmus.governance import audit, identity, rbac
from isthmus.governance.ports import GovernanceStore


class Unauthorized(PolicyRefused, UsageError):
    """No token, a bad one, or a role that may not run the command; exit 2."""

    http_status, exit_code = 403, 2


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
        except IsthmusError as exc:  # every refusal of the tree, as the one handler maps it
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
