"""docs/analytics.md and README.md's Analytics section name only what exists: the command
and its options parse, the routes are the console's and the API's (described in the
OpenAPI document, in the RBAC table), every table and view of the schema is documented
and every documented table exists, and the version matches."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

from isthmus.analytics.schema import DIMENSIONS, FACTS, SCHEMA_VERSION, VIEWS
from isthmus.api import openapi
from isthmus.cli.main import parser
from isthmus.governance import rbac

ROOT = Path(__file__).resolve().parents[2]
DOC = (ROOT / "docs" / "analytics.md").read_text()
README = (ROOT / "README.md").read_text()


def test_the_commands_parse() -> None:
    lines = re.findall(r"(?m)^isthmus (analytics [^\n`]*)", DOC)
    lines += re.findall(r"`isthmus (analytics [^`]*)`", README)
    assert len(lines) >= 2
    for line in lines:
        values = {"DIR": "d", "FILE": "f.toml", "PARQUET_DIR": "p"}
        argv = [values.get(w, w) for w in shlex.split(line.replace("[", "").replace("]", ""))]
        args = parser().parse_args(argv)
        assert (args.cmd, args.action) == ("analytics", "export")


def test_the_routes_exist() -> None:
    from isthmus.console import app  # noqa: PLC0415

    source = Path(app.__file__).read_text()
    for route in set(re.findall(r"/console(/executive[.a-z]*)", DOC + README)):
        assert f'self.page("{route}"' in source, route
    api = set(re.findall(r"`(?:GET )?(/api/v1/analytics/[a-z/]+)", DOC + README))
    assert api == {"/api/v1/analytics/executive"}
    described = {op.path for op in openapi.OPERATIONS}
    for route in api:
        assert route in described and f"GET {route}" in rbac.PERMISSIONS, route


def test_every_table_is_documented_and_only_those() -> None:
    names = {t.name for t in FACTS if t.name != "payer_hint"} | {t.name for t in DIMENSIONS}
    names |= set(VIEWS)
    documented = set(re.findall(r"`((?:fact|dim)_[a-z_]+)`", DOC)) | set(
        re.findall(r"^\| ((?:fact|dim)_[a-z_]+) \|", DOC, re.M)
    )
    documented |= {"claim_state"} if "`claim_state`" in DOC else set()
    assert documented == names
    assert f"version {SCHEMA_VERSION}" in DOC
