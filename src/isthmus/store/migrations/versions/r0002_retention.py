"""Revision 0002: `inbox.purged_at`, when retention blanked a message's body (0: never).

Retention (flows/retention.py, `isthmus purge`) empties `raw` and cuts `events` down to
the event ids and types lineage shows, and sets `purged_at`, so `messages show` can say
that the body was purged and when. The row itself (identity, digest, status) stays.
PostgreSQL 11 and later add a column with a constant default without rewriting the table.
"""

from __future__ import annotations

from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Add `inbox.purged_at` (0 on every row); schema_version 2."""
    kind = "REAL" if op.get_bind().dialect.name == "sqlite" else "DOUBLE PRECISION"
    op.execute(f"ALTER TABLE inbox ADD COLUMN purged_at {kind} NOT NULL DEFAULT 0")
    op.execute("UPDATE meta SET value = '2' WHERE name = 'schema_version'")


def downgrade() -> None:
    """Drop `inbox.purged_at`; schema_version 1."""
    op.execute("ALTER TABLE inbox DROP COLUMN purged_at")
    op.execute("UPDATE meta SET value = '1' WHERE name = 'schema_version'")
