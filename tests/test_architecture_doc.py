"""ARCHITECTURE.md names only what exists: every module or folder path it shows is in the
tree (under src/isthmus/, tests/ or the repository root), every `isthmus` command parses with
the CLI's own parser, and the layers it draws are the ones import-linter checks."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

from isthmus.cli.main import parser

ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "ARCHITECTURE.md"
PATH = re.compile(
    r"(?<![\w/.])((?:[a-z_0-9]+/)+(?:[a-z_0-9]+\.(?:py|md))?|[a-z_0-9]+\.(?:py|md))(?![\w/])"
)
SIBLINGS = re.compile(r"`((?:[a-z_0-9]+/)+)([a-z_0-9]+\.py)`((?:, `?[a-z_0-9]+\.py`?)+)")


def _exists(name: str) -> bool:
    if name.startswith("../shared/"):
        return True  # the shared material, outside the repository
    if "/" not in name:  # a sibling after a path (its folder: the next test)
        return (
            ROOT.joinpath(name).exists()
            or next((ROOT / "src" / "isthmus").rglob(name), None) is not None
        )
    return any((base / name).exists() for base in (ROOT / "src" / "isthmus", ROOT))


def test_every_path_in_the_architecture_doc_exists() -> None:
    text = DOC.read_text()
    names = set(PATH.findall(text))
    assert len(names) > 40
    missing = sorted(n for n in names if not _exists(n))
    assert not missing, f"ARCHITECTURE.md names what is not in the tree: {missing}"


def test_sibling_modules_listed_after_a_path_exist() -> None:
    # "`connectors/dest_mllp.py`, `dest_webhook.py`, ...": each sibling is in that folder
    for folder, first, rest in SIBLINGS.findall(DOC.read_text()):
        for name in [first, *re.findall(r"[a-z_0-9]+\.py", rest)]:
            assert (ROOT / "src" / "isthmus" / folder / name).exists(), folder + name


def test_the_commands_it_names_exist() -> None:
    commands = re.findall(r"`isthmus ([a-z][a-z-]*)", DOC.read_text())
    assert commands
    subs = next(a for a in parser()._actions if a.dest == "cmd")
    for name in commands:
        assert name in (subs.choices or {}), f"isthmus {name}: no such command"


def test_the_layers_it_draws_are_the_checked_ones() -> None:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]
    text = DOC.read_text()
    layered = {c["name"]: c for c in config["contracts"]}
    for pkg in (
        "model",
        "formats",
        "ledger",
        "flows",
        "store",
        "bus",
        "connectors",
        "ports",
        "runtime",
        "api",
        "console",
        "cli",
    ):
        assert f"{pkg}/" in text, f"ARCHITECTURE.md does not place {pkg}/"
        assert any(f"isthmus.{pkg}" in str(c) for c in layered.values()), (
            f"no import-linter contract covers isthmus.{pkg}"
        )
