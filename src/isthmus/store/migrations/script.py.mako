"""Revision ${up_revision}: ${message}

(Say why. Raw SQL for each dialect through op.execute; frozen once released.)
"""

from __future__ import annotations

from alembic import op

revision = ${repr(up_revision)}
down_revision = ${repr(down_revision)}
branch_labels = None
depends_on = None


def upgrade() -> None:
    sqlite = op.get_bind().dialect.name == "sqlite"
    op.execute("..." if sqlite else "...")


def downgrade() -> None:
    raise NotImplementedError
