"""Finance analytics (issue 21): a star schema of the hub's posted facts, fed incrementally.

`schema` names the tables and their version, `facts` turns journal entries and inbox events
into rows (pure), `warehouse` writes them to DuckDB and Parquet (pyarrow, duckdb: the
`analytics` extra, imported lazily), `export` runs one incremental export from the store
port, `executive` reads the executive view back, `feed` keeps the facts the KPIs count
(observe/kpis.py). docs/analytics.md documents the schema.
"""
