"""deploy/ (Containerfile, compose.yaml, systemd units) agrees with the code.

No container runtime is used here (none is on the test machine): instead every command the
files run must parse with the CLI's own parser, every ISTHMUS_* variable they set must
change what `load_settings` builds, the ports they expose must be the settings' defaults,
the image must install from the lock and run unprivileged, and the systemd units pass
`systemd-analyze verify` where systemd is installed.
"""

from __future__ import annotations

import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml  # type: ignore[import-untyped]  # PyYAML ships no stubs

from isthmus.cli.main import parser
from isthmus.config import Settings, load_settings
from isthmus.governance import rbac

ROOT = Path(__file__).resolve().parent.parent
DEPLOY = ROOT / "deploy"
UNITS = DEPLOY / "systemd"
DEFAULTS = Settings(data_dir=Path("/var/lib/isthmus"))


def _parses(argv: list[str]) -> Any:
    try:
        return parser().parse_args(argv)
    except SystemExit as exc:  # argparse's way of saying no
        raise AssertionError(f"`isthmus {shlex.join(argv)}` does not parse") from exc


def _changes_settings(var: str, value: str, tmp: Path) -> bool:
    value = re.sub(r"\$\{[^}]*\}", "x" * 64, value)  # compose interpolation, any value
    env = {"ISTHMUS_DATA_DIR": str(tmp)}
    return load_settings(None, env={**env, var: value}) != load_settings(None, env=env)


def _compose() -> dict[str, Any]:
    doc: dict[str, Any] = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
    return doc


def _hub_services() -> dict[str, dict[str, Any]]:
    return {
        n: s
        for n, s in _compose()["services"].items()
        if str(s.get("image", "")).startswith("isthmus:")
    }


def test_compose_runs_every_role_of_the_cli_with_migrate_first() -> None:
    services = _hub_services()
    roles = {}
    for name, svc in services.items():
        args = _parses(svc["command"])
        if args.cmd == "serve":
            roles[args.role] = name
            assert svc["depends_on"]["migrate"]["condition"] == "service_completed_successfully"
    assert set(roles) == {"listener", "worker", "api"}
    assert _parses(services["migrate"]["command"]).cmd == "migrate"
    infra = _compose()["services"]
    assert "-js" in infra["nats"]["command"]  # JetStream on
    assert infra["postgres"]["image"].startswith("postgres:")
    for svc in infra.values():  # no service starts before what it needs is healthy
        for dep in svc.get("depends_on", {}).values():
            assert dep["condition"] in ("service_healthy", "service_completed_successfully")


def test_compose_sets_only_variables_the_config_reads(tmp_path: Path) -> None:
    env = next(iter(_hub_services().values()))["environment"]
    assert {"ISTHMUS_STORE", "ISTHMUS_BUS", "ISTHMUS_TOKEN_SECRET"} <= set(env)
    for var, value in env.items():
        assert var.startswith("ISTHMUS_"), var
        assert _changes_settings(var, str(value), tmp_path), f"{var} is read by nothing"
    scale = load_settings(
        None, env={k: re.sub(r"\$\{[^}]*\}", "x", str(v)) for k, v in env.items()}
    )
    assert (scale.store, scale.bus) == ("postgresql", "nats")
    assert "@postgres:5432/" in scale.scaleout.pg_dsn
    assert scale.scaleout.nats_servers == "nats://nats:4222"


def test_published_ports_are_the_default_ports() -> None:
    services = _hub_services()

    def container_port(svc: dict[str, Any]) -> int:
        (mapping,) = svc["ports"]
        return int(str(mapping).rsplit(":", 1)[1])

    assert container_port(services["listener"]) == DEFAULTS.mllp_port
    assert container_port(services["api"]) == DEFAULTS.http_port
    assert str(services["api"]["ports"][0]).startswith("127.0.0.1:")  # private by default
    assert f"127.0.0.1:{DEFAULTS.http_port}/health" in " ".join(
        services["api"]["healthcheck"]["test"]
    )


def test_containerfile_is_multi_stage_locked_unprivileged_and_consistent(tmp_path: Path) -> None:
    text = (DEPLOY / "Containerfile").read_text()
    lines = [
        ln
        for ln in text.replace("\\\n", " ").splitlines()
        if ln.strip() and not ln.lstrip().startswith("#")
    ]
    assert sum(ln.startswith("FROM ") for ln in lines) == 2 and " AS build" in text
    assert "--require-hashes -r requirements/runtime.lock" in text
    assert "--no-deps" in text  # the package adds no unpinned dependency
    (user,) = [ln.split()[1] for ln in lines if ln.startswith("USER ")]
    assert user.split(":")[0] not in ("0", "root")
    (expose,) = [ln for ln in lines if ln.startswith("EXPOSE ")]
    assert sorted(int(p) for p in expose.split()[1:]) == sorted(
        [DEFAULTS.mllp_port, DEFAULTS.http_port]
    )
    assert re.search(r'ENTRYPOINT \["isthmus"\]', text)
    (cmd,) = [ln for ln in lines if ln.startswith("CMD ")]
    _parses(yaml.safe_load(cmd.removeprefix("CMD ")))
    assert "GET /health" in rbac.PUBLIC  # the HEALTHCHECK needs no token
    assert f"127.0.0.1:{DEFAULTS.http_port}/health" in text
    env = dict(re.findall(r"(ISTHMUS_[A-Z_]+)=(\S+)", text))
    assert env and all(_changes_settings(k, v, tmp_path) for k, v in env.items())


def _unit(name: str) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for line in (UNITS / name).read_text().splitlines():
        if "=" in line and not line.startswith(("#", "[")):
            key, value = line.split("=", 1)
            out.setdefault(key, []).append(value)
    return out


def test_systemd_units_run_cli_commands_as_the_service_user(tmp_path: Path) -> None:
    units = sorted(p.name for p in UNITS.glob("*.service"))
    assert units == [
        "isthmus-api.service",
        "isthmus-listener.service",
        "isthmus-worker@.service",
        "isthmus.service",
    ]
    roles = set()
    for name in units:
        unit = _unit(name)
        (start,) = unit["ExecStart"]
        argv = shlex.split(start)
        assert argv[0].endswith("/isthmus")
        args = _parses(argv[1:])
        roles.add(args.role)
        assert unit["User"] == ["isthmus"] and unit["UMask"] == ["0077"]
        assert unit["ReadWritePaths"] == [str(DEFAULTS.data_dir)]
        # exit 2 (a refused config) and 4 (an old schema) are not restarted in a loop
        assert unit["RestartPreventExitStatus"] == ["2 4"]
    assert roles == {"all", "listener", "worker", "api"}
    wanted = _unit("isthmus.target")["Wants"][0].split()
    for want in wanted:
        assert (UNITS / re.sub(r"@[^.]+\.", "@.", want)).exists(), want
    for line in (UNITS / "isthmus.env.example").read_text().splitlines():
        if line and not line.startswith("#"):
            var, value = line.split("=", 1)
            assert _changes_settings(var, value, tmp_path), var


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="no systemd here")
def test_systemd_units_verify(tmp_path: Path) -> None:
    exe = Path(sys.executable).parent / "isthmus"  # the units' ExecStart must be executable
    for unit in UNITS.iterdir():
        (tmp_path / unit.name).write_text(
            unit.read_text().replace("/opt/isthmus/venv/bin/isthmus", str(exe))
        )
    names = [
        "isthmus.service",
        "isthmus-listener.service",
        "isthmus-api.service",
        "isthmus-worker@1.service",
        "isthmus.target",
    ]
    res = subprocess.run(
        ["systemd-analyze", "verify", "--man=no", *names],
        cwd=tmp_path,
        env={"SYSTEMD_UNIT_PATH": f"{tmp_path}:", "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert res.returncode == 0, res.stderr
    assert "Unknown" not in res.stderr, res.stderr


def test_deployment_guide_points_at_the_files() -> None:
    guide = (ROOT / "docs" / "deployment.md").read_text()
    for path in [
        DEPLOY / "Containerfile",
        DEPLOY / "compose.yaml",
        DEPLOY / "compose.embedded.yaml",
        *UNITS.iterdir(),
    ]:
        assert str(path.relative_to(ROOT)) in guide, path.name


def test_embedded_compose_runs_one_hub_on_the_default_ports(tmp_path: Path) -> None:
    doc = yaml.safe_load((DEPLOY / "compose.embedded.yaml").read_text())
    (hub,) = doc["services"].values()
    args = _parses(hub["command"])
    assert (args.cmd, args.role) == ("serve", "all")
    assert hub["build"]["dockerfile"] == "deploy/Containerfile"
    for var, value in hub["environment"].items():
        assert _changes_settings(var, str(value), tmp_path), f"{var} is read by nothing"
    embedded = load_settings(
        None, env={k: re.sub(r"\$\{[^}]*\}", "x", str(v)) for k, v in hub["environment"].items()}
    )
    assert (embedded.store, embedded.bus) == ("sqlite", "sqlite")
    ports = [str(p) for p in hub["ports"]]
    assert [int(p.rsplit(":", 1)[1]) for p in ports] == [DEFAULTS.mllp_port, DEFAULTS.http_port]
    assert ports[1].startswith("127.0.0.1:")  # the API is private by default
    assert f"127.0.0.1:{DEFAULTS.http_port}/health" in " ".join(hub["healthcheck"]["test"])
    assert any(str(v).endswith(":/var/lib/isthmus") for v in hub["volumes"])
