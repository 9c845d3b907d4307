"""The ledger stays pure: no I/O modules, no configuration, nothing of ours but the model
and the error tree (isthmus/errors.py, which imports nothing of ours)."""

from __future__ import annotations

import ast
from pathlib import Path

import isthmus.ledger

LEDGER = Path(isthmus.ledger.__file__).parent
ALLOWED = {
    "__future__",
    "collections",
    "csv",
    "dataclasses",
    "datetime",
    "decimal",
    "hashlib",
    "io",
    "json",
    "re",
    "types",
    "typing",
    "msgspec",
    "isthmus.model",
    "isthmus.ledger",
    "isthmus.errors",
}


def imported(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            names.add(node.module or "")
    return names


def allowed(name: str) -> bool:
    return any(name == ok or name.startswith(ok + ".") for ok in ALLOWED)


def test_ledger_imports_only_pure_modules() -> None:
    modules = sorted(LEDGER.glob("*.py"))
    assert len(modules) >= 7
    bad = {p.name: sorted(n for n in imported(p) if not allowed(n)) for p in modules}
    assert {k: v for k, v in bad.items() if v} == {}


def test_each_module_says_why_it_exists_and_stays_small() -> None:
    for path in LEDGER.glob("*.py"):
        tree = ast.parse(path.read_text())
        assert ast.get_docstring(tree), path.name
        assert len(path.read_text().splitlines()) < 400, path.name
