"""The console's Claims pages (issue 20): the claims in each state with their ages, and
one claim's timeline, as `isthmus claims list|show` shows them (flows/claim_life.py).

Read-only: the ways forward (correct, appeal, write off) are the CLI's and go through
flows/claim_denials.py; the work items behind them are on the work queues page.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from starlette.responses import Response

from isthmus.flows.claim_life import STATES

if TYPE_CHECKING:
    from isthmus.console.app import Console, Ctx

PATH = "/claims"
ONE = "/claims/{claim}"


def page(console: Console, ctx: Ctx) -> Response:
    """The Claims page: how many claims are in each state and the oldest age per state, and
    the claims of the state asked for (`?state=`)."""
    want = ctx.request.query_params.get("state", "")
    now = console.clock()
    claims = console.hub.store.claim_states(limit=100_000)
    counts = {s: 0 for s in STATES}
    oldest = dict.fromkeys(STATES, 0.0)
    for c in claims:
        counts[c.state] = counts.get(c.state, 0) + 1
        oldest[c.state] = max(oldest.get(c.state, 0.0), (now - c.updated_at) / 86400)
    rows = [
        {
            "claim": c.claim_key,
            "state": c.state,
            "payer": c.payer_id,
            "charge": f"{c.total_charge} {c.currency}",
            "paid": str(c.paid),
            "age": round((now - c.updated_at) / 86400, 1),
            "denial": c.denial_category,
            "appeal_due": c.appeal_due,
        }
        for c in claims
        if not want or c.state == want
    ]
    summary = [
        {"state": s, "count": counts[s], "oldest": round(oldest[s], 1)} for s in STATES if counts[s]
    ]
    return console.render(
        ctx,
        "claims.html",
        title="Claims",
        rows=rows[:1000],
        summary=summary,
        state=want,
        timeline=None,
        claim=None,
    )


def timeline(console: Console, ctx: Ctx) -> Response:
    """One claim's timeline, its events in order; 404 when no claim has that key."""
    key = ctx.request.path_params["claim"]
    with console.hub.store.transaction() as tx:
        claim = tx.get_claim_state(key)
    if claim is None:
        return console.render(
            ctx,
            "error.html",
            404,
            title="No such claim",
            message=f"no claim {key!r}",
            field="claim",
            back=console.prefix + PATH,
        )
    events = console.hub.store.claim_events(key)
    return console.render(
        ctx,
        "claims.html",
        title=f"Claim {key}",
        rows=[],
        summary=[],
        state="",
        claim=claim,
        timeline=events,
    )
