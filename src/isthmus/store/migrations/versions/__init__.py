"""The revisions, one module each (r<rev>_<what>.py), loaded by Alembic from this folder."""
