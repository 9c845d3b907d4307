"""`isthmus audit list|verify`: read the audit trail, and walk its hash chain.

`verify` names the first row edited, deleted or inserted (exit 4), and a row the store
adapter cannot even read back is a fault it reports, not a crash.
"""

from __future__ import annotations

import argparse
from typing import Any

from isthmus.cli.commands import Result, _table
from isthmus.governance import audit
from isthmus.governance.ports import GovernanceStore

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


def audit_trail(gov: GovernanceStore, args: argparse.Namespace) -> Result:
    """`audit list` (the last `--limit` events) or `audit verify` (the chain, exit 4 broken)."""
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
