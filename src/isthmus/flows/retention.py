"""Retention: which stored message bodies are past their limit, and the purge that blanks them.

Raw messages are patient data (names, birth dates, MRNs in PID; whole FHIR resources); a
site keeps them only as long as its policy says ([retention], config.RetentionSettings):
`raw_days` for every message, `ignored_days` for the ones the hub accepted and did not use
(ADT it has no use for, counted and kept only for inspection), each overridable per channel
in `[retention.channels.<name>]`. 0 keeps forever. HIPAA sets no maximum for these; the
site's records schedule does (45 CFR 164.316(b)(2) asks six years for the policies, not
for the messages).

Purging blanks the body and stamps the row `purged_at`; what stays is what an auditor
walks: the message row (channel, identity, digest, status, ACK, times), its events and so
its lineage to journal entries and ERP batch lines, and the audit trail, which records
each purge (counts per channel, never content). Never purged: a held message (it waits
for a person's release) and an accepted one whose events are not on the bus yet. The
`fhir` channel holds the resources the FHIR API serves, so only its own rule applies to it.

`rules` is the decision (pure); `purge` walks the store with it, in pages of one
transaction each, so a first purge of years of messages never holds a long lock.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from isthmus.config import RetentionSettings
from isthmus.store.ports import PurgeRule, Store

DAY_S = 86_400.0
FHIR_CHANNEL = "fhir"  # its bodies are the FHIR API's resources: only its own rule applies
PAGE = 500


@dataclass(frozen=True)
class Limits:
    """Days a channel's raw and ignored message bodies are kept."""

    raw_days: int
    ignored_days: int  # 0: as raw_days


def limits_of(settings: RetentionSettings, channel: str | None) -> Limits:
    """The limits in force for `channel` (None: a channel without a rule of its own)."""
    rule = settings.channels.get(channel) if channel is not None else None
    raw = rule.raw_days if rule is not None and rule.raw_days is not None else settings.raw_days
    ignored = (
        rule.ignored_days
        if rule is not None and rule.ignored_days is not None
        else settings.ignored_days
    )
    return Limits(raw, ignored)


def rules(settings: RetentionSettings, now: float) -> list[PurgeRule]:
    """The purge rules in force at `now`: per channel with a rule, then every other channel."""
    named = sorted(settings.channels)
    out: list[PurgeRule] = []
    for channel in named:
        out += _rules(limits_of(settings, channel), now, channel, ())
    others = tuple(sorted({*named, FHIR_CHANNEL}))
    out += _rules(limits_of(settings, None), now, None, others)
    return out


def _rules(
    limits: Limits, now: float, channel: str | None, others: tuple[str, ...]
) -> list[PurgeRule]:
    out = []
    if limits.raw_days:
        out.append(PurgeRule(now - limits.raw_days * DAY_S, False, channel, others))
    ignored = limits.ignored_days or limits.raw_days
    if ignored:
        out.append(PurgeRule(now - ignored * DAY_S, True, channel, others))
    return out


def enabled(settings: RetentionSettings) -> bool:
    """True when some limit is set (the daily job has something to do)."""
    return bool(
        settings.raw_days
        or settings.ignored_days
        or any(r.raw_days or r.ignored_days for r in settings.channels.values())
    )


@dataclass
class PurgeReport:
    """What a purge did (or, dry, would do): counts only, no content."""

    dry_run: bool
    purged: int = 0
    by_channel: Counter[str] = field(default_factory=Counter)
    ignored: int = 0  # of `purged`, ignored messages
    oldest_id: int = 0
    newest_id: int = 0

    def as_dict(self) -> dict[str, Any]:
        return {
            "dry_run": self.dry_run,
            "purged": self.purged,
            "by_channel": dict(sorted(self.by_channel.items())),
            "ignored": self.ignored,
            "ids": [self.oldest_id, self.newest_id] if self.purged else [],
        }


def purge(
    store: Store, settings: RetentionSettings, now: float, *, dry_run: bool = False
) -> PurgeReport:
    """Blank every body past its limit (see the module docstring); `dry_run` only counts."""
    report = PurgeReport(dry_run)
    for rule in rules(settings, now):
        after = 0
        while page := store.purge_candidates(rule, after=after, limit=PAGE):
            after = page[-1].id
            done = len(page) if dry_run else store.purge_bodies([m.id for m in page], now)
            if not done:
                continue
            report.purged += done
            report.ignored += done if rule.ignored else 0
            report.by_channel.update(m.channel for m in page)
            ids = [m.id for m in page]
            report.oldest_id = min(ids) if not report.oldest_id else min(report.oldest_id, *ids)
            report.newest_id = max(report.newest_id, *ids)
    return report
