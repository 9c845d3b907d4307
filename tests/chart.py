"""The demonstration chart, for the tests whose charges must post.

A hub's own chart is empty (issue 15: a site that forgot a table holds its charges behind
a mapping work item, never posts to demo accounts), so a test about posting says which
chart it posts with: `[mappings] include = "demo"` (isthmus.demo.chart), plus its own rows.
Tests about the safe default itself use no chart.
"""

from __future__ import annotations

from pathlib import Path

DEMO_CHART = '[mappings]\ninclude = "demo"\n'


def demo_config(directory: Path, extra: str = "", name: str = "chart.toml") -> Path:
    """A config file in `directory`: the demo chart, then `extra` (more TOML tables)."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / name
    path.write_text(DEMO_CHART + extra, encoding="utf-8")
    return path
