"""The wheel as a site installs it: drivers of the scale-out mode are an extra, the contract
baseline, py.typed and templates are inside, and the installed package answers
`--version`, `python -m isthmus` and reads its baseline outside the repository."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import urllib.request
import zipfile
from pathlib import Path

import pytest

from isthmus import __version__
from isthmus.governance import contracts
from tests.e2e.helpers import free_port
from tests.support import wait_until

ROOT = Path(__file__).resolve().parent.parent
BLOCK_DRIVERS = "import sys; sys.modules.update(psycopg=None, nats=None); "


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Built from a copy of the sources, so the checkout gets no build/ or egg-info."""
    src = tmp_path_factory.mktemp("src")
    shutil.copy(ROOT / "pyproject.toml", src)
    shutil.copy(ROOT / "README.md", src)
    shutil.copytree(ROOT / "src", src / "src", ignore=shutil.ignore_patterns("__pycache__"))
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "-q",
            "--no-deps",
            "--no-build-isolation",
            "-w",
            str(out),
            str(src),
        ],
        check=True,
        capture_output=True,
        timeout=300,
    )
    (whl,) = out.glob("isthmus-*.whl")
    return whl


def test_wheel_carries_data_and_declares_the_extras(wheel: Path) -> None:
    with zipfile.ZipFile(wheel) as z:
        names = set(z.namelist())
        meta = z.read(f"isthmus-{__version__}.dist-info/METADATA").decode()
    assert {
        "isthmus/py.typed",
        "isthmus/__main__.py",
        "isthmus/governance/events.v1.json",
        "isthmus/console/templates/base.html",
    } <= names
    requires = [
        ln.split(": ", 1)[1] for ln in meta.splitlines() if ln.startswith("Requires-Dist: ")
    ]
    core = [r for r in requires if "extra ==" not in r]
    assert not [r for r in core if r.startswith(("psycopg", "nats"))]  # embedded needs neither
    assert any(r.startswith("psycopg") and 'extra == "scaleout"' in r for r in requires)
    assert any(r.startswith("nats-py") and 'extra == "scaleout"' in r for r in requires)
    assert any("opentelemetry-exporter-otlp" in r and 'extra == "otlp"' in r for r in requires)
    # one driver at a time too, and the Tryton mode without the test extra
    assert any(r.startswith("psycopg") and 'extra == "postgresql"' in r for r in requires)
    assert any(r.startswith("nats-py") and 'extra == "nats"' in r for r in requires)
    assert any(r.startswith("trytond-account") and 'extra == "tryton"' in r for r in requires)
    assert not [
        r
        for r in requires
        if r.startswith(("pytest", "hypothesis")) and "test" not in r.split("extra ==")[-1]
    ]


def test_installed_wheel_works_outside_the_repository(wheel: Path, tmp_path: Path) -> None:
    target = tmp_path / "site"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "-q",
            "--no-deps",
            "--target",
            str(target),
            str(wheel),
        ],
        check=True,
        capture_output=True,
        timeout=300,
    )
    env = {**os.environ, "PYTHONPATH": str(target)}
    version = subprocess.run(
        [sys.executable, "-m", "isthmus", "--version"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert version.stdout == f"isthmus {__version__}\n"
    probe = (
        "import isthmus; from isthmus.governance import contracts as c; "
        "print(isthmus.__file__); print(len(c.packaged_baseline()['events']))"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stdout
    where, events = out.splitlines()
    assert where.startswith(str(target))  # the installed copy, not the checkout
    assert int(events) == len(contracts.packaged_baseline()["events"]) > 0


def test_packaged_baseline_is_the_repository_baseline() -> None:
    repo = json.loads((ROOT / "contracts" / "events.v1.json").read_text())
    assert contracts.packaged_baseline() == repo


def test_embedded_mode_runs_without_the_scale_out_drivers(tmp_path: Path) -> None:
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("ISTHMUS_STORE", "ISTHMUS_BUS", "ISTHMUS_CONFIG")
    }
    script = (
        BLOCK_DRIVERS + "from isthmus.cli.main import run; "
        f"sys.exit(run(['migrate', '--data-dir', {str(tmp_path)!r}]) or "
        f"run(['status', '--data-dir', {str(tmp_path)!r}]))"
    )
    res = subprocess.run(
        [sys.executable, "-c", script],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert res.returncode == 0, res.stderr
    scale = subprocess.run(
        [sys.executable, "-c", script],
        env={**env, "ISTHMUS_STORE": "postgresql"},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert scale.returncode == 2
    assert "pip install 'isthmus[scaleout]'" in scale.stderr


def test_a_fresh_virtualenv_runs_the_wheel_outside_the_repository(
    wheel: Path, tmp_path: Path
) -> None:
    """Issue 19's check as a site does it: an empty virtual environment, the hash-locked
    runtime dependencies, the wheel, then `--version`, `demo` and `contracts check` from a
    folder that is not the checkout."""
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    pip = [
        str(venv / "bin" / "python"),
        "-m",
        "pip",
        "install",
        "-q",
        "--disable-pip-version-check",
    ]
    deps = subprocess.run(
        [*pip, "--require-hashes", "-r", str(ROOT / "requirements" / "runtime.lock")],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    if deps.returncode != 0:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"the runtime lock did not install: {deps.stderr[-2000:]}")
        pytest.skip("no package index reachable for the runtime lock (CI=true fails instead)")
    subprocess.run([*pip, "--no-deps", str(wheel)], check=True, capture_output=True, timeout=300)
    isthmus = str(venv / "bin" / "isthmus")
    site = tmp_path / "site"
    site.mkdir()
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("ISTHMUS_") and k not in ("PYTHONPATH", "VIRTUAL_ENV")
    }

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [isthmus, *args],
            cwd=site,
            env=env,
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
        )

    version = run("--version")
    assert version.stdout == f"isthmus {__version__}\n", version.stderr
    demo = run("demo", "--data-dir", str(site / "hub"), "--json")
    assert demo.returncode == 0, demo.stderr[-2000:]
    report = json.loads(demo.stdout)
    assert report["trial_balance"]["balanced"] is True
    assert report["ack_mismatches"] == 0 and report["ledger_ar_usd"] == report["expected_net_usd"]
    check = run("contracts", "check", "--data-dir", str(site / "hub"))
    assert check.returncode == 0, check.stderr[-2000:]
    # what the image runs (deploy/Containerfile: `migrate`, then `serve`, watched through
    # /health/ready): no container runtime here, so the same commands in this environment
    data = site / "served"
    assert run("migrate", "--data-dir", str(data)).returncode == 0
    assert run("migrate", "--check", "--data-dir", str(data)).returncode == 0
    mllp, http = free_port(), free_port()
    serve = subprocess.Popen(
        [
            isthmus,
            "serve",
            "--data-dir",
            str(data),
            "--mllp-port",
            str(mllp),
            "--http-port",
            str(http),
        ],
        cwd=site,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:

        def ready() -> bool:
            try:
                with urllib.request.urlopen(
                    f"http://127.0.0.1:{http}/health/ready", timeout=2
                ) as r:
                    return bool(r.status == 200)
            except OSError:
                return False

        wait_until(ready, timeout=120, what="the installed hub to be ready")
    finally:
        serve.terminate()
        _, err = serve.communicate(timeout=60)
    assert serve.returncode == 0, err.decode()[-2000:]
