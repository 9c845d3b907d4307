"""Revision 0001: the store's schema as it was before versioned migrations (frozen).

This is what every release before migrations created (`meta.schema_version` 1), copied
verbatim from sqlite_schema.py and postgres_schema.py as they were then; the fixtures in
tests/store/fixtures/rev1_*.sql were dumped from stores those releases made. Such a store
is stamped 0001 by `isthmus migrate` rather than rebuilt (every statement here is
IF NOT EXISTS all the same). Never edit: a change is a new revision.
"""

from __future__ import annotations

from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

SQLITE = """
CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS inbox (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  channel TEXT NOT NULL,
  control_id TEXT NOT NULL,
  received_at REAL NOT NULL,
  peer TEXT NOT NULL,
  message_type TEXT NOT NULL,
  status TEXT NOT NULL,
  ack_code TEXT NOT NULL,
  error TEXT NOT NULL,
  raw BLOB NOT NULL,
  events BLOB NOT NULL,
  published INTEGER NOT NULL DEFAULT 0,
  digest TEXT NOT NULL DEFAULT '',
  UNIQUE (channel, control_id)
);
CREATE INDEX IF NOT EXISTS inbox_unpublished ON inbox(published) WHERE published = 0;
CREATE INDEX IF NOT EXISTS inbox_received ON inbox(received_at);
CREATE INDEX IF NOT EXISTS inbox_status_id ON inbox(status, id);
CREATE INDEX IF NOT EXISTS inbox_channel_id ON inbox(channel, id);
CREATE INDEX IF NOT EXISTS inbox_type_id ON inbox(message_type, id);
CREATE INDEX IF NOT EXISTS inbox_control ON inbox(control_id);
CREATE INDEX IF NOT EXISTS inbox_control_tail
  ON inbox(substr(control_id, instr(control_id, ':') + 1));
CREATE TABLE IF NOT EXISTS patients (
  key TEXT PRIMARY KEY, mrn TEXT NOT NULL, authority TEXT NOT NULL, token TEXT NOT NULL,
  family_name TEXT NOT NULL, given_name TEXT NOT NULL, birth_date TEXT NOT NULL,
  sex TEXT NOT NULL, merged_into TEXT NOT NULL DEFAULT ''
);
CREATE TABLE IF NOT EXISTS encounters (
  visit_number TEXT PRIMARY KEY, patient_key TEXT NOT NULL, facility TEXT NOT NULL,
  patient_class TEXT NOT NULL, status TEXT NOT NULL, updated_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS billing_accounts (
  account_number TEXT PRIMARY KEY, patient_key TEXT NOT NULL, facility TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS charges (
  event_id TEXT PRIMARY KEY, patient_key TEXT NOT NULL, account_token TEXT NOT NULL,
  transaction_id TEXT NOT NULL, transaction_type TEXT NOT NULL, charge_code TEXT NOT NULL,
  amount TEXT NOT NULL, currency TEXT NOT NULL, service_date TEXT NOT NULL,
  entry_key TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS charges_patient ON charges(patient_key);
CREATE TABLE IF NOT EXISTS claims (
  event_id TEXT PRIMARY KEY, patient_control_number TEXT NOT NULL, payer_id TEXT NOT NULL,
  payer_claim_id TEXT NOT NULL, total_charge TEXT NOT NULL, currency TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS claims_pcn ON claims(patient_control_number);
CREATE INDEX IF NOT EXISTS claims_payer_claim ON claims(payer_claim_id);
CREATE TABLE IF NOT EXISTS journal_entries (
  entry_key TEXT PRIMARY KEY, posted_on TEXT NOT NULL, period TEXT NOT NULL,
  channel TEXT NOT NULL, memo TEXT NOT NULL, correlation_id TEXT NOT NULL,
  causation_id TEXT NOT NULL, reverses TEXT, moved_from TEXT, batch_id TEXT
);
CREATE INDEX IF NOT EXISTS entries_correlation ON journal_entries(correlation_id);
CREATE INDEX IF NOT EXISTS entries_unbatched ON journal_entries(channel) WHERE batch_id IS NULL;
CREATE TABLE IF NOT EXISTS journal_lines (
  entry_key TEXT NOT NULL, line_no INTEGER NOT NULL, account TEXT NOT NULL,
  debit TEXT NOT NULL, credit TEXT NOT NULL, currency TEXT NOT NULL,
  company TEXT NOT NULL, cost_center TEXT NOT NULL, service_line TEXT NOT NULL,
  account_token TEXT NOT NULL,
  PRIMARY KEY (entry_key, line_no)
);
CREATE INDEX IF NOT EXISTS lines_token ON journal_lines(account, account_token);
CREATE TABLE IF NOT EXISTS batches (
  batch_id TEXT PRIMARY KEY, channel TEXT NOT NULL, policy TEXT NOT NULL,
  line_count INTEGER NOT NULL, created_at REAL NOT NULL, body BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS outbox (
  id INTEGER PRIMARY KEY AUTOINCREMENT, destination TEXT NOT NULL, batch_id TEXT NOT NULL,
  fmt TEXT NOT NULL, payload BLOB NOT NULL, status TEXT NOT NULL DEFAULT 'pending',
  attempts INTEGER NOT NULL DEFAULT 0, visible_at REAL NOT NULL DEFAULT 0,
  last_error TEXT NOT NULL DEFAULT '', created_at REAL NOT NULL, sent_at REAL,
  UNIQUE (destination, batch_id, fmt)
);
CREATE TABLE IF NOT EXISTS work_items (
  id INTEGER PRIMARY KEY AUTOINCREMENT, kind TEXT NOT NULL, queue TEXT NOT NULL,
  status TEXT NOT NULL, key TEXT NOT NULL, event_id TEXT NOT NULL,
  correlation_id TEXT NOT NULL, detail TEXT NOT NULL, created_at REAL NOT NULL,
  updated_at REAL NOT NULL, resolution TEXT NOT NULL DEFAULT '', envelope BLOB NOT NULL,
  UNIQUE (kind, event_id)
);
CREATE INDEX IF NOT EXISTS work_items_status ON work_items(status);
CREATE INDEX IF NOT EXISTS work_items_event ON work_items(event_id);
CREATE INDEX IF NOT EXISTS work_items_correlation ON work_items(correlation_id);
CREATE TABLE IF NOT EXISTS held_events (
  ref TEXT NOT NULL, event_id TEXT NOT NULL, key TEXT NOT NULL, envelope BLOB NOT NULL,
  amount TEXT NOT NULL, currency TEXT NOT NULL, held_at REAL NOT NULL,
  released_at REAL NOT NULL DEFAULT 0, entry_key TEXT NOT NULL DEFAULT '',
  PRIMARY KEY (ref, event_id)
);
CREATE INDEX IF NOT EXISTS held_events_event ON held_events(event_id);
CREATE TABLE IF NOT EXISTS mapping_overrides (
  table_name TEXT NOT NULL, code TEXT NOT NULL, value TEXT NOT NULL,
  PRIMARY KEY (table_name, code)
);
CREATE TABLE IF NOT EXISTS deposits (
  event_id TEXT PRIMARY KEY, side TEXT NOT NULL, reference TEXT NOT NULL,
  amount TEXT NOT NULL, currency TEXT NOT NULL, on_date TEXT NOT NULL, party TEXT NOT NULL,
  correlation_id TEXT NOT NULL, matched_with TEXT NOT NULL DEFAULT '',
  entry_key TEXT NOT NULL DEFAULT ''
);
CREATE INDEX IF NOT EXISTS deposits_open ON deposits(reference) WHERE matched_with = '';
CREATE TABLE IF NOT EXISTS refunds (
  id TEXT PRIMARY KEY, idempotency_key TEXT NOT NULL, account_number TEXT NOT NULL,
  account_token TEXT NOT NULL, company TEXT NOT NULL, amount TEXT NOT NULL,
  currency TEXT NOT NULL, reason TEXT NOT NULL, status TEXT NOT NULL,
  requested_by TEXT NOT NULL, requested_at REAL NOT NULL, decided_by TEXT NOT NULL DEFAULT '',
  decided_at REAL NOT NULL DEFAULT 0, note TEXT NOT NULL DEFAULT '',
  entry_key TEXT NOT NULL DEFAULT ''
);
CREATE INDEX IF NOT EXISTS refunds_pending ON refunds(account_token) WHERE status = 'pending';
CREATE INDEX IF NOT EXISTS refunds_status ON refunds(status);
CREATE TABLE IF NOT EXISTS flow_state (name TEXT PRIMARY KEY, body BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS applied (key TEXT PRIMARY KEY, body BLOB NOT NULL);
"""

POSTGRESQL = """
CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS inbox (
  id BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
  channel TEXT NOT NULL,
  control_id TEXT NOT NULL,
  received_at DOUBLE PRECISION NOT NULL,
  peer TEXT NOT NULL,
  message_type TEXT NOT NULL,
  status TEXT NOT NULL,
  ack_code TEXT NOT NULL,
  error TEXT NOT NULL,
  raw BYTEA NOT NULL,
  events BYTEA NOT NULL,
  published BOOLEAN NOT NULL DEFAULT FALSE,
  digest TEXT NOT NULL DEFAULT '',
  UNIQUE (channel, control_id)
);
CREATE INDEX IF NOT EXISTS inbox_unpublished ON inbox(id) WHERE NOT published;
CREATE INDEX IF NOT EXISTS inbox_received ON inbox(received_at);
CREATE INDEX IF NOT EXISTS inbox_status_id ON inbox(status, id);
CREATE INDEX IF NOT EXISTS inbox_channel_id ON inbox(channel, id);
CREATE INDEX IF NOT EXISTS inbox_type_id ON inbox(message_type COLLATE "C", id);
CREATE INDEX IF NOT EXISTS inbox_control ON inbox(control_id COLLATE "C");
CREATE INDEX IF NOT EXISTS inbox_control_tail
  ON inbox((substr(control_id, strpos(control_id, ':') + 1)));
CREATE TABLE IF NOT EXISTS patients (
  key TEXT PRIMARY KEY, mrn TEXT NOT NULL, authority TEXT NOT NULL, token TEXT NOT NULL,
  family_name TEXT NOT NULL, given_name TEXT NOT NULL, birth_date TEXT NOT NULL,
  sex TEXT NOT NULL, merged_into TEXT NOT NULL DEFAULT ''
);
CREATE TABLE IF NOT EXISTS encounters (
  visit_number TEXT PRIMARY KEY, patient_key TEXT NOT NULL, facility TEXT NOT NULL,
  patient_class TEXT NOT NULL, status TEXT NOT NULL, updated_at TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS encounters_patient ON encounters(patient_key);
CREATE TABLE IF NOT EXISTS billing_accounts (
  account_number TEXT PRIMARY KEY, patient_key TEXT NOT NULL, facility TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS billing_accounts_patient ON billing_accounts(patient_key);
CREATE TABLE IF NOT EXISTS charges (
  event_id TEXT PRIMARY KEY, patient_key TEXT NOT NULL, account_token TEXT NOT NULL,
  transaction_id TEXT NOT NULL, transaction_type TEXT NOT NULL, charge_code TEXT NOT NULL,
  amount NUMERIC NOT NULL, currency TEXT NOT NULL, service_date DATE NOT NULL,
  entry_key TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS charges_patient ON charges(patient_key);
CREATE TABLE IF NOT EXISTS claims (
  seq BIGINT GENERATED BY DEFAULT AS IDENTITY,
  event_id TEXT PRIMARY KEY, patient_control_number TEXT NOT NULL, payer_id TEXT NOT NULL,
  payer_claim_id TEXT NOT NULL, total_charge NUMERIC NOT NULL, currency TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS claims_pcn ON claims(patient_control_number, seq);
CREATE INDEX IF NOT EXISTS claims_payer_claim ON claims(payer_claim_id, seq);
CREATE TABLE IF NOT EXISTS journal_entries (
  entry_key TEXT PRIMARY KEY,
  seq BIGINT GENERATED ALWAYS AS IDENTITY UNIQUE,
  posted_on DATE NOT NULL, period TEXT NOT NULL,
  channel TEXT NOT NULL, memo TEXT NOT NULL, correlation_id TEXT NOT NULL,
  causation_id TEXT NOT NULL, reverses TEXT, moved_from TEXT, batch_id TEXT
);
CREATE INDEX IF NOT EXISTS entries_correlation ON journal_entries(correlation_id, seq);
CREATE INDEX IF NOT EXISTS entries_unbatched ON journal_entries(channel, seq)
  WHERE batch_id IS NULL;
CREATE TABLE IF NOT EXISTS journal_lines (
  entry_key TEXT NOT NULL, line_no INTEGER NOT NULL, account TEXT NOT NULL,
  debit NUMERIC NOT NULL, credit NUMERIC NOT NULL, currency TEXT NOT NULL,
  company TEXT NOT NULL, cost_center TEXT NOT NULL, service_line TEXT NOT NULL,
  account_token TEXT NOT NULL,
  PRIMARY KEY (entry_key, line_no)
);
CREATE INDEX IF NOT EXISTS lines_token ON journal_lines(account, account_token);
CREATE TABLE IF NOT EXISTS batches (
  batch_id TEXT PRIMARY KEY,
  seq BIGINT GENERATED ALWAYS AS IDENTITY UNIQUE,
  channel TEXT NOT NULL, policy TEXT NOT NULL,
  line_count INTEGER NOT NULL, created_at DOUBLE PRECISION NOT NULL, body BYTEA NOT NULL
);
CREATE TABLE IF NOT EXISTS outbox (
  id BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
  destination TEXT NOT NULL, batch_id TEXT NOT NULL,
  fmt TEXT NOT NULL, payload BYTEA NOT NULL, status TEXT NOT NULL DEFAULT 'pending',
  attempts INTEGER NOT NULL DEFAULT 0, visible_at DOUBLE PRECISION NOT NULL DEFAULT 0,
  last_error TEXT NOT NULL DEFAULT '', created_at DOUBLE PRECISION NOT NULL,
  sent_at DOUBLE PRECISION,
  UNIQUE (destination, batch_id, fmt)
);
CREATE INDEX IF NOT EXISTS outbox_pending ON outbox(destination, id)
  WHERE status = 'pending';
CREATE TABLE IF NOT EXISTS work_items (
  id BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
  kind TEXT NOT NULL, queue TEXT NOT NULL,
  status TEXT NOT NULL, key TEXT NOT NULL, event_id TEXT NOT NULL,
  correlation_id TEXT NOT NULL, detail TEXT NOT NULL, created_at DOUBLE PRECISION NOT NULL,
  updated_at DOUBLE PRECISION NOT NULL, resolution TEXT NOT NULL DEFAULT '',
  envelope BYTEA NOT NULL,
  UNIQUE (kind, event_id)
);
CREATE INDEX IF NOT EXISTS work_items_status ON work_items(status);
CREATE INDEX IF NOT EXISTS work_items_event ON work_items(event_id);
CREATE INDEX IF NOT EXISTS work_items_correlation ON work_items(correlation_id);
CREATE TABLE IF NOT EXISTS held_events (
  ref TEXT NOT NULL, event_id TEXT NOT NULL, key TEXT NOT NULL, envelope BYTEA NOT NULL,
  amount NUMERIC NOT NULL, currency TEXT NOT NULL, held_at DOUBLE PRECISION NOT NULL,
  released_at DOUBLE PRECISION NOT NULL DEFAULT 0, entry_key TEXT NOT NULL DEFAULT '',
  PRIMARY KEY (ref, event_id)
);
CREATE INDEX IF NOT EXISTS held_events_event ON held_events(event_id);
CREATE TABLE IF NOT EXISTS mapping_overrides (
  table_name TEXT NOT NULL, code TEXT NOT NULL, value TEXT NOT NULL,
  PRIMARY KEY (table_name, code)
);
CREATE TABLE IF NOT EXISTS deposits (
  seq BIGINT GENERATED BY DEFAULT AS IDENTITY UNIQUE,
  event_id TEXT PRIMARY KEY, side TEXT NOT NULL, reference TEXT NOT NULL,
  amount NUMERIC NOT NULL, currency TEXT NOT NULL, on_date DATE NOT NULL, party TEXT NOT NULL,
  correlation_id TEXT NOT NULL, matched_with TEXT NOT NULL DEFAULT '',
  entry_key TEXT NOT NULL DEFAULT ''
);
CREATE INDEX IF NOT EXISTS deposits_open ON deposits(reference, seq) WHERE matched_with = '';
CREATE TABLE IF NOT EXISTS refunds (
  seq BIGINT GENERATED BY DEFAULT AS IDENTITY UNIQUE,
  id TEXT PRIMARY KEY, idempotency_key TEXT NOT NULL, account_number TEXT NOT NULL,
  account_token TEXT NOT NULL, company TEXT NOT NULL, amount NUMERIC NOT NULL,
  currency TEXT NOT NULL, reason TEXT NOT NULL, status TEXT NOT NULL,
  requested_by TEXT NOT NULL, requested_at DOUBLE PRECISION NOT NULL,
  decided_by TEXT NOT NULL DEFAULT '', decided_at DOUBLE PRECISION NOT NULL DEFAULT 0,
  note TEXT NOT NULL DEFAULT '', entry_key TEXT NOT NULL DEFAULT ''
);
CREATE INDEX IF NOT EXISTS refunds_pending ON refunds(account_token) WHERE status = 'pending';
CREATE INDEX IF NOT EXISTS refunds_status ON refunds(status);
CREATE TABLE IF NOT EXISTS flow_state (name TEXT PRIMARY KEY, body BYTEA NOT NULL);
CREATE TABLE IF NOT EXISTS applied (key TEXT PRIMARY KEY, body BYTEA NOT NULL);
"""


def statements(script: str) -> list[str]:
    """One statement at a time (sqlite3 runs one per call); none of these holds a `;`."""
    return [s.strip() for s in script.split(";") if s.strip()]


def upgrade() -> None:
    """Create the baseline schema in the dialect of the connection, schema_version 1."""
    sqlite = op.get_bind().dialect.name == "sqlite"
    for stmt in statements(SQLITE if sqlite else POSTGRESQL):
        op.execute(stmt)
    op.execute(
        "INSERT INTO meta (name, value) VALUES ('schema_version', '1') "
        "ON CONFLICT (name) DO NOTHING"
    )


def downgrade() -> None:
    """Refused: there is no revision before this one."""
    raise NotImplementedError("revision 0001 is the first: restore a backup instead")
