"""Revision 0005: a sealed ERP batch is stored once, in `batches.body` (issue 17).

Until now the outbox row of a batch (`batch.v1`) carried a second copy of the body its
batch keeps. From this revision the row holds no copy: its payload is empty
(`store.ports_journal.BATCH_BODY`) and the outbox reads give it the batch's body
(store/sql_outbox.py). Upgrading empties the payload of every row that is such a copy
(byte for byte its batch's body); the rows of older formats (`csv`, `jsonl`, each a file
of its own) keep theirs. The tables do not change. Going back puts the copies back.
"""

from __future__ import annotations

from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

_BODY = "(SELECT b.body FROM batches b WHERE b.batch_id = outbox.batch_id)"


def upgrade() -> None:
    """Empty the payload of outbox rows that copy their batch's body; schema_version 5."""
    empty = "x''" if op.get_bind().dialect.name == "sqlite" else "''::bytea"
    op.execute(f"UPDATE outbox SET payload = {empty} WHERE payload = {_BODY}")
    op.execute("UPDATE meta SET value = '5' WHERE name = 'schema_version'")


def downgrade() -> None:
    """Give every outbox row that stands for its batch's body a copy again; schema_version 4."""
    op.execute(
        f"UPDATE outbox SET payload = {_BODY} WHERE length(payload) = 0 "
        "AND EXISTS (SELECT 1 FROM batches b WHERE b.batch_id = outbox.batch_id)"
    )
    op.execute("UPDATE meta SET value = '4' WHERE name = 'schema_version'")
