"""Revision 0004: `claim_states` and `claim_events`, the claim's whole life (issue 20).

One row per claim (patient control number) with where it stands, the payer's claim
control number, the control numbers of the 837 it left in, the last 277 status, its denial
category and appeal deadline; and its timeline, every transition an event with lineage
(flows/claim_life.py). New tables only: nothing existing is rewritten.
"""

from __future__ import annotations

from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

SQLITE = """
CREATE TABLE IF NOT EXISTS claim_states (
  claim_key TEXT PRIMARY KEY, state TEXT NOT NULL, payer_id TEXT NOT NULL,
  total_charge TEXT NOT NULL, currency TEXT NOT NULL, created_at REAL NOT NULL,
  updated_at REAL NOT NULL, payer_claim_id TEXT NOT NULL DEFAULT '',
  account_number TEXT NOT NULL DEFAULT '', paid TEXT NOT NULL DEFAULT '0',
  frequency TEXT NOT NULL DEFAULT '1', controls TEXT NOT NULL DEFAULT '',
  status_category TEXT NOT NULL DEFAULT '', status_code TEXT NOT NULL DEFAULT '',
  denial_category TEXT NOT NULL DEFAULT '', appeal_due TEXT NOT NULL DEFAULT '',
  submitted_at REAL NOT NULL DEFAULT 0, body BLOB NOT NULL DEFAULT x''
);
CREATE INDEX IF NOT EXISTS claim_states_payer_id ON claim_states(payer_claim_id)
  WHERE payer_claim_id <> '';
CREATE INDEX IF NOT EXISTS claim_states_state ON claim_states(state, updated_at);
CREATE TABLE IF NOT EXISTS claim_events (
  event_id TEXT PRIMARY KEY, claim_key TEXT NOT NULL, seq INTEGER NOT NULL,
  kind TEXT NOT NULL, from_state TEXT NOT NULL, to_state TEXT NOT NULL, at REAL NOT NULL,
  causation_id TEXT NOT NULL DEFAULT '', correlation_id TEXT NOT NULL DEFAULT '',
  actor TEXT NOT NULL DEFAULT 'hub', detail TEXT NOT NULL DEFAULT ''
);
CREATE INDEX IF NOT EXISTS claim_events_claim ON claim_events(claim_key, seq);
"""

POSTGRESQL = """
CREATE TABLE IF NOT EXISTS claim_states (
  claim_key TEXT PRIMARY KEY, state TEXT NOT NULL, payer_id TEXT NOT NULL,
  total_charge NUMERIC NOT NULL, currency TEXT NOT NULL, created_at DOUBLE PRECISION NOT NULL,
  updated_at DOUBLE PRECISION NOT NULL, payer_claim_id TEXT NOT NULL DEFAULT '',
  account_number TEXT NOT NULL DEFAULT '', paid NUMERIC NOT NULL DEFAULT 0,
  frequency TEXT NOT NULL DEFAULT '1', controls TEXT NOT NULL DEFAULT '',
  status_category TEXT NOT NULL DEFAULT '', status_code TEXT NOT NULL DEFAULT '',
  denial_category TEXT NOT NULL DEFAULT '', appeal_due TEXT NOT NULL DEFAULT '',
  submitted_at DOUBLE PRECISION NOT NULL DEFAULT 0, body BYTEA NOT NULL DEFAULT ''::bytea
);
CREATE INDEX IF NOT EXISTS claim_states_payer_id ON claim_states(payer_claim_id)
  WHERE payer_claim_id <> '';
CREATE INDEX IF NOT EXISTS claim_states_state ON claim_states(state, updated_at);
CREATE TABLE IF NOT EXISTS claim_events (
  event_id TEXT PRIMARY KEY, claim_key TEXT NOT NULL, seq BIGINT NOT NULL,
  kind TEXT NOT NULL, from_state TEXT NOT NULL, to_state TEXT NOT NULL,
  at DOUBLE PRECISION NOT NULL,
  causation_id TEXT NOT NULL DEFAULT '', correlation_id TEXT NOT NULL DEFAULT '',
  actor TEXT NOT NULL DEFAULT 'hub', detail TEXT NOT NULL DEFAULT ''
);
CREATE INDEX IF NOT EXISTS claim_events_claim ON claim_events(claim_key, seq);
"""


def upgrade() -> None:
    """Create `claim_states` and `claim_events`; schema_version 4."""
    ddl = SQLITE if op.get_bind().dialect.name == "sqlite" else POSTGRESQL
    for statement in ddl.split(";"):
        if statement.strip():
            op.execute(statement)
    op.execute("UPDATE meta SET value = '4' WHERE name = 'schema_version'")


def downgrade() -> None:
    """Drop `claim_events` and `claim_states`; schema_version 3."""
    op.execute("DROP TABLE IF EXISTS claim_events")
    op.execute("DROP TABLE IF EXISTS claim_states")
    op.execute("UPDATE meta SET value = '3' WHERE name = 'schema_version'")
