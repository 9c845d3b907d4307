"""Observability: lineage of every message, counters and summaries for shells to show."""
