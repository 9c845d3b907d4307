"""The whole test suite, as `python3 dev.py test` runs it: lint, types, layers, then pytest.

Runs inside the locked test environment. Under CI=true, tests that need PostgreSQL or NATS
fail instead of skipping when the service is absent (see tests/conftest.py).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent


def run(step: str, argv: list[str]) -> int:
    print(f"== {step}: {' '.join(argv)}", flush=True)
    return subprocess.call(argv, cwd=ROOT)


def main(argv: list[str]) -> int:
    mode, rest = argv[0], argv[1:]
    steps = [
        ("ruff", [str(BIN / "ruff"), "check", "src", "tests", "bench", "dev.py", "scripts"]),
        ("mypy", [str(BIN / "mypy")]),
        ("import layers", [str(BIN / "lint-imports")]),
    ]
    for name, cmd in steps:
        if run(name, cmd) != 0:
            print(f"== {name} failed", flush=True)
            return 1
    if mode == "lint":
        return 0
    return run("pytest", [sys.executable, "-m", "pytest", *rest])


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
