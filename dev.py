#!/usr/bin/env python3
"""Developer entry point: `python3 dev.py demo` and `python3 dev.py test`.

Each command builds its own virtual environment from a hash-locked requirements file
(requirements/*.lock, made by pip-compile) and then runs. A stamp file records the hash of
the lock and of pyproject.toml, so a second run with nothing changed skips the install and
costs well under a second. Only Python 3.11+ is needed on the machine.
`test` takes options to run the suite repeatedly and under load (scripts/check.py).
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
ENVS = {"run": "requirements/runtime.lock", "test": "requirements/test.lock"}


def _digest(*paths: Path) -> str:
    h = hashlib.sha256()
    for p in paths:
        h.update(p.read_bytes())
    h.update(sys.version.encode())
    return h.hexdigest()


def ensure_env(name: str) -> Path:
    """Create or refresh .venv/<name> from its lock; a no-op when nothing changed."""
    lock = ROOT / ENVS[name]
    env_dir = ROOT / ".venv" / name
    py = env_dir / "bin" / "python"
    stamp = env_dir / ".isthmus-stamp"
    want = _digest(lock, ROOT / "pyproject.toml")
    if py.exists() and stamp.exists() and stamp.read_text() == want:
        return py
    print(f"[dev] preparing environment .venv/{name} from {ENVS[name]}", flush=True)
    if not py.exists():
        venv.EnvBuilder(with_pip=True, clear=True).create(env_dir)
    pip = [str(py), "-m", "pip", "--disable-pip-version-check", "-q"]
    # --no-deps: the lock is the whole closure already; resolving again lets pip 23 refuse a
    # dependency's extras ("pwdlib[argon2]>=0.2") when an index offers a newer version.
    subprocess.run([*pip, "install", "--no-deps", "--require-hashes", "-r", str(lock)], check=True)
    subprocess.run(
        [*pip, "install", "--no-deps", "--no-build-isolation", "-e", str(ROOT)], check=True
    )
    stamp.write_text(want)
    return py


def main(argv: list[str]) -> int:
    if sys.version_info < (3, 11):  # noqa: UP036 - this script runs on any python3
        print("Isthmus needs Python 3.11 or newer", file=sys.stderr)
        return 2
    if not argv or argv[0] not in {"demo", "serve", "isthmus", "test", "lint"}:
        print(
            "usage: python3 dev.py demo|serve|isthmus ARGS...|lint|test [--repeat N] "
            "[--load[=suite]] [--mode embedded|scale-out] [--no-lint] [PYTEST ARGS]",
            file=sys.stderr,
        )
        return 2
    cmd, rest = argv[0], argv[1:]
    os.chdir(ROOT)
    try:
        if cmd in {"demo", "serve"}:
            py = ensure_env("run")
            return subprocess.call([str(py), "-m", "isthmus.cli.main", cmd, *rest])
        if cmd == "isthmus":
            py = ensure_env("run")
            return subprocess.call([str(py), "-m", "isthmus.cli.main", *rest])
        py = ensure_env("test")
        return subprocess.call([str(py), str(ROOT / "scripts" / "check.py"), cmd, *rest])
    except subprocess.CalledProcessError as exc:
        print(f"[dev] environment setup failed: {exc}", file=sys.stderr)
        return 3
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
