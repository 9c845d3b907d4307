"""Governance: RBAC, audit trail, PHI minimization, event contracts (issue 6)."""
