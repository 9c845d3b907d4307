"""The whole test suite, as `python3 dev.py test` runs it: lint, types, layers, then pytest
twice, once per runtime mode.

1. embedded: SQLite store and bus (the default);
2. scale-out: ISTHMUS_STORE=postgresql, ISTHMUS_BUS=nats against the local PostgreSQL and
   NATS JetStream, on a fresh database. Every test that goes through the hub's composition
   root (CLI, serve, e2e, fault tests) runs again on the scale-out adapters.

Locally the scale-out pass is skipped, with the reason, when a service is absent; under
CI=true that is a failure, and so is a service test that would skip (tests/services.py).
Arguments after `test` go to both pytest runs; each run names its 25 slowest tests.

To find tests that fail at random (issue 22), `--repeat N` runs both passes N times without
stopping at a failure, and `--load` runs them under a CPU hog on every core
(scripts/load.py); `--load=suite` adds a second run of the same suite beside it, on its own
database and temporary directory. Either way the run ends with every test that failed at
least once, its mode and its count. `--mode embedded|scale-out` runs one pass only and
`--no-lint` skips the lint steps (for repeating a few files). ISTHMUS_TEST_DB names the
scale-out pass's database (default isthmus_test), for a run beside somebody else's.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
sys.path.insert(0, str(ROOT / "scripts"))

DURATIONS = "--durations=25"  # name the slow tests in every run (issue 22)
# The scale-out pass's database, dropped and created afresh: one of its own for a run that
# must not disturb another one going on (ISTHMUS_TEST_DB=isthmus_<me> python3 dev.py test).
DATABASE = os.environ.get("ISTHMUS_TEST_DB") or "isthmus_test"
MODES = ("embedded", "scale-out")


def run(
    step: str, argv: list[str], env: dict[str, str] | None = None, log: Path | None = None
) -> int:
    """Run one step; its output goes to the terminal, or to `log` when one is given."""
    print(f"== {step}: {' '.join(argv)}{f' > {log}' if log else ''}", flush=True)
    if log is None:
        return subprocess.call(argv, cwd=ROOT, env=env)
    with log.open("wb") as out:
        return subprocess.call(argv, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)


def lint() -> int:
    steps = [
        ("ruff", [str(BIN / "ruff"), "check", "src", "tests", "bench", "dev.py", "scripts"]),
        (
            "ruff format",
            [str(BIN / "ruff"), "format", "--check", "src", "tests", "bench", "dev.py", "scripts"],
        ),
        ("mypy", [str(BIN / "mypy")]),
        ("import layers", [str(BIN / "lint-imports")]),
    ]
    for name, cmd in steps:
        if run(name, cmd) != 0:
            print(f"== {name} failed", flush=True)
            return 1
    return 0


def scaleout_vars(database: str) -> dict[str, str] | str:
    """The environment of a scale-out pass on a fresh `database`, or why there is none."""
    from scaleout_env import dsn, prepare  # noqa: PLC0415 - needs the test env

    why = prepare(database)
    if why is not None:
        return why
    return {
        **os.environ,
        "ISTHMUS_STORE": "postgresql",
        "ISTHMUS_BUS": "nats",
        "ISTHMUS_PG_DSN": dsn(database),
    }


def suite(rest: list[str]) -> int:
    """`python3 dev.py test`: both passes, the scale-out one only when the first passed."""
    pytest = [sys.executable, "-m", "pytest", DURATIONS, *rest]
    code = run("pytest, embedded mode (SQLite)", pytest)
    if code != 0:
        return code
    ci = os.environ.get("CI", "").lower() == "true"
    env = scaleout_vars(DATABASE)
    if isinstance(env, str):
        print(f"== scale-out pass {'FAILED' if ci else 'skipped'}: {env}", flush=True)
        return 1 if ci else 0
    return run("pytest, scale-out mode (PostgreSQL + NATS JetStream)", pytest, env)


def options(rest: list[str]) -> tuple[argparse.Namespace, list[str]]:
    p = argparse.ArgumentParser(prog="python3 dev.py test", add_help=False, allow_abbrev=False)
    p.add_argument("--repeat", type=int, default=0)
    p.add_argument("--load", choices=("cpu", "suite"))
    p.add_argument("--mode", choices=MODES)
    p.add_argument("--no-lint", action="store_true")
    # a bare --load is --load=cpu, and never takes the pytest argument after it as its value
    return p.parse_known_args(["--load=cpu" if a == "--load" else a for a in rest])


def main(argv: list[str]) -> int:
    mode, rest = argv[0], argv[1:]
    opts, pytest_args = options(rest)
    repeating = opts.repeat > 0 or opts.load is not None or opts.mode is not None
    if (mode == "lint" or not opts.no_lint) and lint() != 0:
        return 1
    if mode == "lint":
        return 0
    if not repeating:
        return suite(pytest_args)
    from repeat import Repeat  # noqa: PLC0415 - only for repeated runs

    modes = (opts.mode,) if opts.mode else MODES
    work = Path(tempfile.mkdtemp(prefix="isthmus-repeat-"))  # kept: the reports and logs
    return Repeat(work, pytest_args, modes, max(1, opts.repeat), opts.load).go()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
