"""Workforce events into the inbox: the webhook body and timecard files (pure decisions).

Like `flows.settlement_intake`: bytes in, the inbox record and its events out; the shell
stores them (`Store.accept`, idempotent on channel and control id). Channel `workforce`.

* Webhook (`POST /api/v1/workforce/events`): control id `webhook:<content hash>`; a body
  that is not a workforce event is refused (HTTP 400 naming the field) and kept, rejected.
* Timecard file (drop folder, `isthmus ingest`): control id `timecard:<content hash>`; a
  file with any finding is kept, rejected, and posts nothing.

What is kept has every card number masked (`formats.cards`: a card number in a read
column or field refuses the file or body). Either way the events' ids come from the feed's
own keys (`formats.workforce.events`), so a shift sent twice, by the same path or by both,
accrues once.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Final

from isthmus.flows.intake import encoded, envelopes
from isthmus.formats.cards import mask_bytes
from isthmus.formats.settlement.table import Finding
from isthmus.formats.workforce import WebhookError, decode_webhook, keyed, parse_timecards
from isthmus.model import KeyedEvent
from isthmus.store.ports import Inbound

CHANNEL: Final = "workforce"
TIMECARD: Final = "timecard"


@dataclass(frozen=True)
class WorkforceIntake:
    """One workforce webhook body or timecard file read: its inbox record and events, or the
    error (with its field or column, and the CSV findings) that rejected it."""

    inbound: Inbound
    events: tuple[KeyedEvent, ...]
    error: str = ""
    field: str = ""
    findings: tuple[Finding, ...] = ()


def _envelopes(keyed_events: list[KeyedEvent], *, cid: str, at: datetime, tenant: str) -> bytes:
    return encoded(
        envelopes(
            keyed_events, channel=CHANNEL, control_id=cid, occurred=at, recorded=at, tenant=tenant
        )
    )


def webhook_intake(body: bytes, *, peer: str, now: float, tenant: str) -> WorkforceIntake:
    """One webhook call; never raises. A refused body keeps its error and field."""
    digest = hashlib.sha256(body).hexdigest()
    cid = f"webhook:{digest}"
    at = datetime.fromtimestamp(now, UTC)
    try:
        events = decode_webhook(body)
    except WebhookError as exc:
        return WorkforceIntake(
            Inbound(
                CHANNEL,
                cid,
                mask_bytes(body),
                now,
                peer,
                "workforce event",
                "rejected",
                "AR",
                f"JSON|{exc.field}|0|0|0|{exc}",
                b"",
                digest,
            ),
            (),
            str(exc),
            exc.field,
        )
    mtype = "+".join(dict.fromkeys(type(k.event).__name__ for k in events))
    return WorkforceIntake(
        Inbound(
            CHANNEL,
            cid,
            body,
            now,
            peer,
            mtype,
            "accepted",
            "AA",
            "",
            _envelopes(events, cid=cid, at=at, tenant=tenant),
            digest,
        ),
        tuple(events),
    )


def timecard_intake(raw: bytes, *, peer: str, now: float, tenant: str) -> WorkforceIntake:
    """One timecard file, all its shifts or none; never raises."""
    digest = hashlib.sha256(raw).hexdigest()
    cid = f"timecard:{digest}"
    tf = parse_timecards(raw)
    if tf.findings:
        f = tf.findings[0]
        more = f" (and {len(tf.findings) - 1} more finding(s))" if len(tf.findings) > 1 else ""
        return WorkforceIntake(
            Inbound(
                CHANNEL,
                cid,
                mask_bytes(raw),
                now,
                peer,
                "timecard",
                "rejected",
                "AR",
                f"CSV|{f.column}|{f.row}|0|0|{f}{more}",
                b"",
                digest,
            ),
            (),
            str(f),
            f.column,
            tf.findings,
        )
    events = [keyed(s) for s in tf.shifts]
    at = datetime.fromtimestamp(now, UTC)
    return WorkforceIntake(
        Inbound(
            CHANNEL,
            cid,
            mask_bytes(raw),
            now,
            peer,
            "timecard",
            "accepted",
            "AA",
            "",
            _envelopes(events, cid=cid, at=at, tenant=tenant),
            digest,
        ),
        tuple(events),
    )
