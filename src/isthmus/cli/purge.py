"""`isthmus purge [--dry-run]`: blank message bodies past the [retention] limits, now.

The decision and the walk are flows/retention.py's; `serve` runs the same purge daily.
The command is audited (cli purge, with the counts) through the CLI gate like every
command that changes state; `--dry-run` counts what would go and changes nothing.
"""

from __future__ import annotations

import argparse
import time
from typing import Any

from isthmus.app import Hub
from isthmus.cli.commands import Result
from isthmus.flows import retention


def dispatch(hub: Hub, args: argparse.Namespace) -> Result:
    """`isthmus purge`: blank the message bodies past the [retention] limits now (or, with
    `--dry-run`, count them); rows, lineage, journal and audit are kept."""
    conf = hub.settings.retention
    report = retention.purge(hub.store, conf, time.time(), dry_run=args.dry_run)
    d = {**report.as_dict(), "enabled": retention.enabled(conf)}

    def text(x: dict[str, Any]) -> str:
        if not x["enabled"]:
            return "no [retention] limit is set: every message body is kept"
        verb = "would purge" if x["dry_run"] else "purged"
        by = ", ".join(f"{c}: {n}" for c, n in x["by_channel"].items())
        return (
            f"{verb} {x['purged']} message body(ies)"
            + (f" ({by})" if by else "")
            + f", {x['ignored']} of them ignored messages; rows, lineage, journal and "
            "audit kept"
        )

    return d, text, 0
