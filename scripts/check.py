"""The whole test suite, as `python3 dev.py test` runs it: lint, types, layers, then pytest
twice, once per runtime mode.

1. embedded: SQLite store and bus (the default);
2. scale-out: ISTHMUS_STORE=postgresql, ISTHMUS_BUS=nats against the local PostgreSQL and
   NATS JetStream, on a fresh database. Every test that goes through the hub's composition
   root (CLI, serve, e2e, fault tests) runs again on the scale-out adapters.

Locally the scale-out pass is skipped, with the reason, when a service is absent; under
CI=true that is a failure, and so is a service test that would skip (tests/services.py).
Arguments after `test` go to both pytest runs.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
sys.path.insert(0, str(ROOT / "scripts"))


def run(step: str, argv: list[str], env: dict[str, str] | None = None) -> int:
    print(f"== {step}: {' '.join(argv)}", flush=True)
    return subprocess.call(argv, cwd=ROOT, env=env)


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
    pytest = [sys.executable, "-m", "pytest", *rest]
    code = run("pytest, embedded mode (SQLite)", pytest)
    if code != 0:
        return code
    from scaleout_env import PG_TEST, prepare  # noqa: PLC0415 - needs the test env

    ci = os.environ.get("CI", "").lower() == "true"
    why = prepare()
    if why is not None:
        print(f"== scale-out pass {'FAILED' if ci else 'skipped'}: {why}", flush=True)
        return 1 if ci else 0
    env = {**os.environ, "ISTHMUS_STORE": "postgresql", "ISTHMUS_BUS": "nats",
           "ISTHMUS_PG_DSN": PG_TEST}
    return run("pytest, scale-out mode (PostgreSQL + NATS JetStream)", pytest, env)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
