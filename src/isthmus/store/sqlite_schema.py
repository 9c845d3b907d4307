"""The embedded store's schema (SQLite). Money is kept as decimal text, never REAL.

Unique constraints carry the idempotency contract: inbox (channel, control_id), charges
(event_id), claims (event_id), journal entries (entry_key), work items (kind, event_id), outbox
(destination, batch_id), refunds (id), applied (key), held events (ref, event_id), deliveries
(destination, idempotency_key).

This is the schema at the head revision (store/migrations): a new database is created
from it and stamped; an existing one changes only through a revision in
store/migrations/versions/ (a test holds the two equal).
"""

from __future__ import annotations

import sqlite3

from isthmus.store.migrations import (
    HEAD,
    VERSION_DDL,
    VERSION_TABLE,
    SchemaNotCurrent,
    sqlite_state,
)

SCHEMA_VERSION = int(HEAD)

SCHEMA = """
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
  purged_at REAL NOT NULL DEFAULT 0,
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
-- deliveries: revision 0003 (issue 18)
CREATE TABLE IF NOT EXISTS deliveries (
  id INTEGER PRIMARY KEY AUTOINCREMENT, destination TEXT NOT NULL, key TEXT NOT NULL,
  idempotency_key TEXT NOT NULL, event_id TEXT NOT NULL, event_type TEXT NOT NULL,
  route TEXT NOT NULL, content_type TEXT NOT NULL, body BLOB NOT NULL,
  status TEXT NOT NULL DEFAULT 'pending', attempts INTEGER NOT NULL DEFAULT 0,
  visible_at REAL NOT NULL DEFAULT 0, created_at REAL NOT NULL,
  sent_at REAL NOT NULL DEFAULT 0, answer_code TEXT NOT NULL DEFAULT '',
  answer_detail TEXT NOT NULL DEFAULT '', last_error TEXT NOT NULL DEFAULT '',
  UNIQUE (destination, idempotency_key)
);
CREATE INDEX IF NOT EXISTS deliveries_pending ON deliveries(destination, id)
  WHERE status = 'pending';
CREATE INDEX IF NOT EXISTS deliveries_key ON deliveries(destination, key, id)
  WHERE status = 'pending';
CREATE INDEX IF NOT EXISTS deliveries_event ON deliveries(event_id);
-- claim life: revision 0004 (issue 20)
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


def prepare(conn: sqlite3.Connection, where: str) -> int:
    """Create a new store at HEAD (one transaction); return the revision of a current one.

    SchemaNotCurrent for an older or newer one: `isthmus migrate` upgrades, not the opener.
    """
    state = sqlite_state(conn.execute)
    if state.fresh:
        try:
            conn.executescript(
                f"BEGIN IMMEDIATE;\n{SCHEMA}\n{VERSION_DDL};\n"
                f"INSERT OR IGNORE INTO {VERSION_TABLE} VALUES ('{HEAD}');\n"
                f"INSERT OR IGNORE INTO meta VALUES ('schema_version', '{SCHEMA_VERSION}');\n"
                "COMMIT;")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
        state = sqlite_state(conn.execute)
    if not state.current:
        raise SchemaNotCurrent(state, where)
    return SCHEMA_VERSION
