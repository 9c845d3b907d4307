"""The dependency rule of DESIGN.md, enforced: import-linter contracts in pyproject.toml.

`lint-imports` must keep every contract; and every contract must keep meaning something:
each top-level part of src/isthmus is bound by one (a new package cannot slip in unruled),
no ignored import lets the connectors and the flows reach each other (the ports are the
only meeting point), and the composition root composes and nothing else (issue 17).
"""

from __future__ import annotations

import ast
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "src" / "isthmus"


def contracts() -> list[dict[str, Any]]:
    conf = tomllib.loads((ROOT / "pyproject.toml").read_text())
    found: list[dict[str, Any]] = conf["tool"]["importlinter"]["contracts"]
    return found


def test_import_layers_hold() -> None:
    exe = shutil.which("lint-imports", path=str(Path(sys.executable).parent))
    assert exe, "import-linter is part of the test environment"
    res = subprocess.run([exe], cwd=ROOT, capture_output=True, text=True, check=False)
    assert res.returncode == 0, res.stdout[-3000:]
    assert "BROKEN" not in res.stdout


def test_every_part_of_the_package_is_bound_by_a_contract() -> None:
    parts = {
        f"isthmus.{p.stem}"
        for p in PACKAGE.iterdir()
        if not p.name.startswith(("_", "."))
        and (p.suffix == ".py" or (p / "__init__.py").is_file())
    }
    bound: set[str] = set()
    for c in contracts():
        bound.update(c.get("source_modules", []))
        for layer in c.get("layers", []):
            bound.update(name.strip() for name in layer.split("|"))
    assert {"isthmus.connectors", "isthmus.ports", "isthmus.runtime"} <= parts
    unbound = sorted(p for p in parts if not any(b == p or b.startswith(p + ".") for b in bound))
    assert unbound == [], f"no import-linter contract names {unbound} as its source"


def test_no_ignored_import_joins_the_connectors_and_the_flows() -> None:
    for c in contracts():
        for line in c.get("ignore_imports", []):
            importer, imported = (side.strip() for side in line.split("->"))
            pair = {importer.split(".")[1], imported.split(".")[1]}
            assert pair != {"connectors", "flows"}, (c["name"], line)
    connectors = [c for c in contracts() if "isthmus.connectors" in c.get("source_modules", [])]
    assert connectors, "a contract rules the connectors"
    assert all("isthmus.flows" in c["forbidden_modules"] for c in connectors)


def imported_modules(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(a.name.split(".")[0] for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names.add(
                node.module.split(".")[0] if not node.module.startswith("isthmus") else node.module
            )
    return names


def test_the_composition_root_only_composes() -> None:
    """app.py chooses adapters and builds the hub: no event loop, signals, sockets or
    backups there (runtime/ runs the hub, maintenance.py keeps its files), no shell."""
    root = PACKAGE / "app.py"
    tree = ast.parse(root.read_text())
    assert not [n for n in ast.walk(tree) if isinstance(n, ast.AsyncFunctionDef)]
    mods = imported_modules(root)
    assert not mods & {"asyncio", "signal", "socket", "sqlite3", "secrets"}, mods
    assert not [
        m
        for m in mods
        if m.startswith(("isthmus.api", "isthmus.console", "isthmus.cli", "isthmus.runtime"))
    ]


def test_the_split_modules_say_why_and_stay_small() -> None:
    modules = [
        PACKAGE / "app.py",
        PACKAGE / "maintenance.py",
        *sorted((PACKAGE / "runtime").glob("*.py")),
        *sorted((PACKAGE / "ports").glob("*.py")),
    ]
    for path in modules:
        text = path.read_text()
        assert ast.get_docstring(ast.parse(text)), f"{path.name} opens with no docstring"
        assert text.count("\n") <= 400, f"{path.relative_to(PACKAGE)} is over 400 lines"
