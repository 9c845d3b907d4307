"""Alembic's environment for the store: run the revisions on the connection the runner gives.

runner.py opens the connection, begins the one transaction every pending revision runs in
(PostgreSQL and SQLite both take DDL inside a transaction: an upgrade lands whole or not at
all), takes the migration lock and points `search_path` at the hub's schema. Here Alembic
only runs the chain on it; the version table sits beside the store's tables.
"""

from __future__ import annotations

from alembic import context

config = context.config
connection = config.attributes["connection"]
context.configure(
    connection=connection,
    version_table_schema=config.attributes.get("schema"),
    transactional_ddl=True,
)
with context.begin_transaction():
    context.run_migrations()
