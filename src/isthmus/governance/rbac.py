"""Roles and the permission table: which roles may take which action. Pure decisions.

An action is an HTTP route and method (`GET /api/v1/workitems`, the route's path template)
or a CLI command (`cli dlq replay`). What is not in the table is refused (deny by default);
`tests/governance/test_rbac_matrix.py` fails when a route or command has no entry.

Roles, after the people of docs/DESIGN.md: `admin` (everything, including identities),
`integration-engineer` (channels, mappings, replays, dead letters), `revenue-cycle`
(exception work queues), `finance-approver` (ledger, ERP export), `auditor` (read
everything, including lineage and the audit trail), `read-only` (dashboards: counters,
balances, queues).

Which of the callers a route admits see patient data in its answer is the PHI table's
decision (`governance.phi_access`): the raw message routes admit its readers only, and the
FHIR reads answer the other roles with the resource redacted.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

ADMIN = "admin"
ENGINEER = "integration-engineer"
REVENUE = "revenue-cycle"
FINANCE = "finance-approver"
AUDITOR = "auditor"
READ_ONLY = "read-only"
ROLES: tuple[str, ...] = (ADMIN, ENGINEER, REVENUE, FINANCE, AUDITOR, READ_ONLY)
EVERYONE = frozenset(ROLES)

# HTTP routes that answer without a token: a load balancer's liveness probe.
PUBLIC: frozenset[str] = frozenset({"GET /health", "GET /health/ready", "GET /health/live"})
# The console's sign-in page and its stylesheet: they open a session, they show no data.
CONSOLE_PUBLIC: frozenset[str] = frozenset(
    {
        "GET /console/login",
        "POST /console/login",
        "POST /console/logout",
        "GET /console/static/console.css",
    }
)

PERMISSIONS: Mapping[str, frozenset[str]] = {
    # HTTP API v1 (read only for now)
    "GET /metrics": EVERYONE,  # Prometheus text; no PHI in it
    "GET /api/v1/status": EVERYONE,
    "GET /openapi.json": EVERYONE,  # the route list: not public (api/auth.py)
    "GET /api/v1/ledger/trial-balance": frozenset({ADMIN, FINANCE, REVENUE, AUDITOR, READ_ONLY}),
    "GET /api/v1/messages": frozenset({ADMIN, ENGINEER, REVENUE, AUDITOR}),
    "GET /api/v1/messages/{ref:path}": frozenset({ADMIN, ENGINEER, REVENUE, AUDITOR}),
    "GET /api/v1/workitems": EVERYONE,
    "GET /api/v1/recon/deposits": frozenset({ADMIN, FINANCE, REVENUE, AUDITOR, READ_ONLY}),
    # the executive view (issue 21) for a token: as GET /console/executive.json
    "GET /api/v1/analytics/executive": frozenset({ADMIN, FINANCE, REVENUE, AUDITOR, READ_ONLY}),
    # FHIR R4 API: integration feeds write, readers read
    "GET /fhir/metadata": EVERYONE,
    "GET /fhir/{type}": frozenset({ADMIN, ENGINEER, REVENUE, FINANCE, AUDITOR, READ_ONLY}),
    "GET /fhir/{type}/{id}": frozenset({ADMIN, ENGINEER, REVENUE, FINANCE, AUDITOR, READ_ONLY}),
    "POST /fhir": frozenset({ADMIN, ENGINEER}),
    "POST /fhir/{type}": frozenset({ADMIN, ENGINEER}),
    "PUT /fhir/{type}/{id}": frozenset({ADMIN, ENGINEER}),
    # Refunds: revenue cycle asks, finance approves (flows/refunds.py also refuses the
    # requester approving their own refund: segregation of duties)
    "POST /api/v1/refunds": frozenset({ADMIN, REVENUE}),
    "GET /api/v1/refunds": frozenset({ADMIN, REVENUE, FINANCE, AUDITOR}),
    "GET /api/v1/refunds/{id}": frozenset({ADMIN, REVENUE, FINANCE, AUDITOR}),
    "POST /api/v1/refunds/{id}/approve": frozenset({ADMIN, FINANCE}),
    "POST /api/v1/refunds/{id}/reject": frozenset({ADMIN, FINANCE}),
    # Workforce feed (HCM / scheduling webhook): integration feeds write
    "POST /api/v1/workforce/events": frozenset({ADMIN, ENGINEER}),
    "POST /api/v1/supply/usage": frozenset({ADMIN, ENGINEER}),
    # Inbound channels (issue 18): everyone sees the counters, engineers pause and resume
    "GET /api/v1/channels": EVERYONE,
    "POST /api/v1/channels/{name}/pause": frozenset({ADMIN, ENGINEER}),
    "POST /api/v1/channels/{name}/resume": frozenset({ADMIN, ENGINEER}),
    "GET /console/channels": EVERYONE,
    "GET /console/claims": frozenset({ADMIN, REVENUE, FINANCE, AUDITOR}),  # issue 20
    "GET /console/claims/{claim}": frozenset({ADMIN, REVENUE, FINANCE, AUDITOR}),
    "POST /console/channels/{name}/pause": frozenset({ADMIN, ENGINEER}),
    "POST /console/channels/{name}/resume": frozenset({ADMIN, ENGINEER}),
    # Outbound destinations (issue 18): everyone sees the outboxes, engineers resend
    "GET /api/v1/destinations": EVERYONE,
    "POST /api/v1/deliveries/{id}/resend": frozenset({ADMIN, ENGINEER}),
    "GET /console/destinations": EVERYONE,
    "POST /console/deliveries/{id:int}/resend": frozenset({ADMIN, ENGINEER}),
    "POST /console/deliveries/erp:{id:int}/resend": frozenset({ADMIN, ENGINEER}),  # ERP
    # Web console (src/isthmus/console), signed in with a token; the raw message is PHI
    "GET /console/": EVERYONE,
    "GET /console/messages": frozenset({ADMIN, ENGINEER, REVENUE, AUDITOR}),
    "GET /console/messages/{ref:path}": frozenset({ADMIN, ENGINEER, REVENUE, AUDITOR}),
    "GET /console/raw/{ref:path}": frozenset({ADMIN, ENGINEER, AUDITOR}),  # phi_access
    "GET /console/queues": EVERYONE,
    "POST /console/workitems/{id:int}/assign": frozenset({ADMIN, ENGINEER, REVENUE}),
    "POST /console/workitems/{id:int}/resolve": frozenset({ADMIN, ENGINEER, REVENUE}),
    "POST /console/workitems/{id:int}/resubmit": frozenset({ADMIN, ENGINEER, REVENUE}),
    "GET /console/dlq": frozenset({ADMIN, ENGINEER, AUDITOR}),
    "POST /console/dlq/replay": frozenset({ADMIN, ENGINEER}),
    "GET /console/recon": frozenset({ADMIN, FINANCE, REVENUE, AUDITOR, READ_ONLY}),
    "GET /console/kpis": EVERYONE,
    # Executive view (issue 21): the analytics warehouse, finance figures, no PHI
    "GET /console/executive": frozenset({ADMIN, FINANCE, REVENUE, AUDITOR, READ_ONLY}),
    "GET /console/executive.json": frozenset({ADMIN, FINANCE, REVENUE, AUDITOR, READ_ONLY}),
    "GET /console/refunds": frozenset({ADMIN, REVENUE, FINANCE, AUDITOR}),
    "POST /console/refunds": frozenset({ADMIN, REVENUE}),
    "POST /console/refunds/{id}/approve": frozenset({ADMIN, FINANCE}),
    "POST /console/refunds/{id}/reject": frozenset({ADMIN, FINANCE}),
    # Supply (issue 8): finance reads and releases budget breaches, as `cli supply approve`
    "GET /console/supply": frozenset({ADMIN, FINANCE, AUDITOR}),
    "POST /console/supply/approve": frozenset({ADMIN, FINANCE}),
    "POST /console/supply/reject": frozenset({ADMIN, FINANCE}),
    # Mappings (issue 15): who may resolve a work item may map what it misses
    "GET /console/mappings": frozenset({ADMIN, ENGINEER, REVENUE, FINANCE, AUDITOR}),
    "POST /console/mappings/{id:int}/resolve": frozenset({ADMIN, ENGINEER, REVENUE}),
    # CLI commands that change state: a token is needed once the hub is initialized
    "cli migrate": frozenset({ADMIN}),
    "cli purge": frozenset({ADMIN}),  # blanks message bodies past [retention] (audited)
    "cli ledger export": frozenset({ADMIN, FINANCE, ENGINEER}),
    "cli dlq replay": frozenset({ADMIN, ENGINEER}),
    "cli replay": frozenset({ADMIN, ENGINEER}),
    "cli messages release": frozenset({ADMIN, ENGINEER}),  # overrides one refusal (audited)
    "cli workitems resolve": frozenset({ADMIN, ENGINEER, REVENUE}),
    "cli workitems resubmit": frozenset({ADMIN, ENGINEER, REVENUE}),
    "cli backup": frozenset({ADMIN}),
    "cli channels pause": frozenset({ADMIN, ENGINEER}),  # every listener of the site
    "cli channels resume": frozenset({ADMIN, ENGINEER}),
    "cli destinations resend": frozenset({ADMIN, ENGINEER}),  # issue 18 (audited)
    "cli ingest": frozenset({ADMIN, ENGINEER}),
    "cli erp setup-tryton": frozenset({ADMIN, ENGINEER}),
    "cli erp drift": frozenset({ADMIN, ENGINEER, FINANCE}),  # opens/closes work items
    "cli refunds request": frozenset({ADMIN, REVENUE}),
    "cli refunds approve": frozenset({ADMIN, FINANCE}),
    "cli refunds reject": frozenset({ADMIN, FINANCE}),
    "cli remits release": frozenset({ADMIN, FINANCE}),  # posts a held 835 (audited)
    # Claims (issue 20): revenue cycle works claims; a write-off over the threshold needs
    # finance (flows/claim_denials.py also refuses the requester as its approver)
    "cli claims submit": frozenset({ADMIN, ENGINEER, REVENUE}),
    "cli claims ack": frozenset({ADMIN, ENGINEER, REVENUE}),
    "cli claims status-requests": frozenset({ADMIN, ENGINEER, REVENUE}),
    "cli claims correct": frozenset({ADMIN, REVENUE}),
    "cli claims appeal": frozenset({ADMIN, REVENUE}),
    "cli claims write-off": frozenset({ADMIN, REVENUE}),
    "cli claims approve-write-off": frozenset({ADMIN, FINANCE}),
    "cli supply approve": frozenset({ADMIN, FINANCE}),  # releases a budget breach
    "cli supply reject": frozenset({ADMIN, FINANCE}),
    "cli supply sync": frozenset({ADMIN, ENGINEER, FINANCE}),  # posts receipts, invoices
    "cli labor payroll-posted": frozenset({ADMIN, FINANCE}),  # reverses accruals
    "cli tokens create": frozenset({ADMIN}),
    "cli tokens list": frozenset({ADMIN}),
    "cli tokens revoke": frozenset({ADMIN}),
}

# CLI commands open to whoever can read the data directory (filesystem permissions): they
# read, or they are the bootstrap (`init`) and developer tools (`contracts`).
LOCAL: frozenset[str] = frozenset(
    {
        "cli serve",
        "cli demo",
        "cli init",
        "cli contracts check",
        "cli contracts update",
        "cli ledger trial-balance",
        "cli ledger journal",
        "cli messages list",
        "cli messages show",
        "cli dlq list",
        "cli workitems list",
        "cli audit list",
        "cli workitems mappings",
        "cli audit verify",
        "cli erp master-data",
        "cli recon erp",
        "cli recon deposits",
        "cli status",
        "cli analytics export",  # reads the hub; writes the analytics warehouse only
        "cli refunds list",
        "cli remits list",
        "cli claims list",
        "cli claims show",
        "cli supply report",
        "cli supply margin",
        "cli labor budget",
        "cli channels",
        "cli channels list",
        "cli destinations",
        "cli destinations list",
        "cli migrate check",  # reads the schema revision, changes nothing
        "cli config check",  # reads a configuration file (and the ERP's master data), no hub
    }
)


@dataclass(frozen=True)
class Decision:
    """Whether an action is allowed and, when not, why."""

    allowed: bool
    reason: str = ""


def http_action(method: str, path_template: str) -> str:
    """The permission action of an HTTP request: method and route template (HEAD counts as
    GET)."""
    return f"{'GET' if method.upper() == 'HEAD' else method.upper()} {path_template}"


def cli_action(cmd: str, action: str | None = None) -> str:
    """The permission action of a CLI command, and of its sub-action when it has one."""
    return f"cli {cmd}" + (f" {action}" if action else "")


def decide(action: str, roles: Iterable[str]) -> Decision:
    """Allow an action when one of the roles may perform it; an action no permission covers
    is denied."""
    allowed = PERMISSIONS.get(action)
    held = sorted(set(roles))
    if allowed is None:
        return Decision(False, f"no permission covers {action!r}")
    if allowed.intersection(held):
        return Decision(True)
    return Decision(
        False,
        f"role(s) {', '.join(held) or 'none'} may not {action}; "
        f"allowed: {', '.join(r for r in ROLES if r in allowed)}",
    )
