"""The meaning of `PurgeRule` (store/ports.py), once: SQL for SQLite and PostgreSQL, and a
predicate for the in-memory fake, so the three adapters purge the same messages.

A rule's rows are found by id order (`id > after`, the caller's keyset page) among those
received before the cutoff and not purged yet. A held message is never covered (it waits
for a person's release), nor an accepted one whose events are not published yet.
"""

from __future__ import annotations

from isthmus.store.ports import PurgeRule, StoredMessage

_KEPT = ("ignored", "held")  # the rule for "other" statuses leaves these two


def purge_where(rule: PurgeRule, after: int, mark: str, published: str) -> tuple[str, list[object]]:
    """The condition (without WHERE) and its arguments; `published` is the dialect's test
    for a published row ("published = 1", "published")."""
    conds = [f"id > {mark}", f"received_at < {mark}", "purged_at = 0"]
    args: list[object] = [after, rule.before]
    if rule.ignored:
        conds.append("status = 'ignored'")
    else:
        conds.append(
            f"status NOT IN ('{_KEPT[0]}', '{_KEPT[1]}') AND (status <> 'accepted' OR {published})"
        )
    if rule.channel is not None:
        conds.append(f"channel = {mark}")
        args.append(rule.channel)
    elif rule.others:
        conds.append(f"channel NOT IN ({', '.join([mark] * len(rule.others))})")
        args += list(rule.others)
    return " AND ".join(conds), args


def purge_matches(rule: PurgeRule, after: int, m: StoredMessage) -> bool:
    """The same rule over one stored message (the in-memory store)."""
    status_ok = (
        m.status == "ignored"
        if rule.ignored
        else m.status not in _KEPT and (m.status != "accepted" or m.published)
    )
    channel_ok = (
        m.channel == rule.channel if rule.channel is not None else m.channel not in rule.others
    )
    return (
        m.id > after
        and m.received_at < rule.before
        and not m.purged_at
        and status_ok
        and channel_ok
    )
