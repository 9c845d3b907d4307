"""Supply usage files into the inbox (issue 8): pure decisions, like `flows.settlement_intake`.

A departmental inventory application's usage CSV (`formats.supply.usage`), from the drop
folder or `isthmus ingest`, is one inbox record on channel `supply`, control id
`sha256:<content hash>`: the same file again is a duplicate. A file with any finding is
kept, rejected with every finding, and contributes no event. Each row becomes a
`SupplyConsumed` whose event id is derived from the application's usage id and whose
business key is `usage|<usage id>` (`flows.identity`), so the same usage in a later file is
applied once (the supply flow is idempotent on it too).
"""

from __future__ import annotations

import hashlib
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Final

from isthmus.flows.intake import encoded, envelopes
from isthmus.formats.settlement.table import Finding
from isthmus.formats.supply.usage import parse_usage
from isthmus.model import KeyedEvent
from isthmus.store.ports import Inbound

CHANNEL: Final = "supply"
USAGE: Final = "supply-usage"
_NS: Final = uuid.UUID("5b0d3c5e-3f0e-4f57-9a51-8d5c2a1e0b11")


@dataclass(frozen=True)
class UsageIntake:
    """One usage CSV read: its inbox record, findings and the number of events."""

    inbound: Inbound
    findings: tuple[Finding, ...]
    events: int


def usage_intake(raw: bytes, *, peer: str, now: float, tenant: str) -> UsageIntake:
    """Read, check and map one usage CSV into its inbox record and events."""
    digest = hashlib.sha256(raw).hexdigest()
    cid = f"sha256:{digest}"
    parsed = parse_usage(raw)
    if parsed.findings:
        f = parsed.findings[0]
        more = (
            f" (and {len(parsed.findings) - 1} more finding(s))" if len(parsed.findings) > 1 else ""
        )
        return UsageIntake(
            Inbound(
                CHANNEL,
                cid,
                raw,
                now,
                peer,
                "supply usage CSV",
                "rejected",
                "AR",
                f"CSV|{f.column}|{f.row}|0|0|{f}{more}",
                b"",
                digest,
            ),
            parsed.findings,
            0,
        )
    at = datetime.fromtimestamp(now, UTC)
    keyed = [
        KeyedEvent(
            str(uuid.uuid5(_NS, f"usage/{ev.usage_id}")),
            f"supply/{ev.item}|{ev.location}",
            ev,
            f"usage|{ev.usage_id}",
        )
        for ev in parsed.events
    ]
    envs = envelopes(
        keyed, channel=CHANNEL, control_id=cid, occurred=at, recorded=at, tenant=tenant
    )
    return UsageIntake(
        Inbound(
            CHANNEL,
            cid,
            raw,
            now,
            peer,
            "supply usage CSV",
            "accepted",
            "AA",
            "",
            encoded(envs),
            digest,
        ),
        (),
        len(envs),
    )
