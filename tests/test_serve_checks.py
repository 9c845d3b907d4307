"""`isthmus serve` refuses unsafe starts with the fix (issue 16): a data directory others
can reach, and a network address without TLS and an admin unless `--insecure` (which is
logged and audited). Refusals come before any port is bound, so no port is needed here."""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path

import pytest

from isthmus.app import open_governance
from isthmus.cli.main import parser, run
from isthmus.config import ConfigError, Settings, load_settings
from isthmus.governance import identity, rbac
from isthmus.serve_checks import check_serve, exposure, is_loopback


def settings(data: Path, **hub: str) -> Settings:
    s = load_settings(None, data_dir=data, env=dict(os.environ))
    return (
        s
        if not hub
        else load_settings(
            _toml(data.parent / f"{data.name}.toml", hub), data_dir=data, env=dict(os.environ)
        )
    )


def _toml(path: Path, hub: dict[str, str]) -> Path:
    path.write_text("[hub]\n" + "".join(f'{k} = "{v}"\n' for k, v in hub.items()))
    return path


@pytest.mark.parametrize("perm", [0o755, 0o750, 0o701, 0o770])
def test_serve_refuses_a_data_directory_others_can_reach(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], perm: int
) -> None:
    data = tmp_path / "data"
    data.mkdir()
    os.chmod(data, perm)
    assert run(["serve", "--data-dir", str(data), "--mllp-port", "0", "--http-port", "0"]) == 2
    err = capsys.readouterr().err
    assert f"chmod 700 {data}" in err and f"mode {perm:04o}" in err
    assert err.count("\n") == 1
    assert list(data.iterdir()) == []  # nothing opened in it


def test_a_missing_data_directory_is_made_owner_only(tmp_path: Path) -> None:
    old = os.umask(0)
    try:
        data = tmp_path / "new" / "data"
        check_serve(
            settings(data),
            "all",
            insecure=False,
            governance=lambda: pytest.fail("loopback: no governance needed"),
            actor="local:test",
        )
    finally:
        os.umask(old)
    assert (data.stat().st_mode & 0o777) == 0o700


@pytest.mark.parametrize("host", ["127.0.0.1", "127.0.0.2", "::1", "localhost"])
def test_loopback_addresses(host: str) -> None:
    assert is_loopback(host)


@pytest.mark.parametrize(
    "host", ["0.0.0.0", "", "::", "10.1.2.3", "192.168.0.10", "no-such-host.invalid"]
)
def test_network_addresses(host: str) -> None:
    assert not is_loopback(host)


def test_serve_on_every_interface_without_tls_or_init_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = tmp_path / "data"
    cfg = _toml(tmp_path / "isthmus.toml", {"host": "0.0.0.0"})
    assert (
        run(
            [
                "serve",
                "--data-dir",
                str(data),
                "--config",
                str(cfg),
                "--mllp-port",
                "0",
                "--http-port",
                "0",
            ]
        )
        == 2
    )
    err = capsys.readouterr().err
    assert "refusing to serve on 0.0.0.0" in err and "--insecure" in err
    assert "TLS" in err and "isthmus init" in err


def test_tls_and_an_admin_make_a_network_address_acceptable(tmp_path: Path) -> None:
    data = tmp_path / "data"
    s = settings(data, host="0.0.0.0", tls_cert="/etc/c.pem", tls_key="/etc/k.pem")
    assert exposure(s, "all", lambda: False) == ["an admin (run `isthmus init`)"]
    assert exposure(s, "all", lambda: True) == []
    bare = settings(data, host="0.0.0.0")
    assert exposure(bare, "all", lambda: True) == ["TLS ([hub] tls_cert and tls_key)"]
    assert exposure(bare, "worker", lambda: False) == []  # binds no port
    assert exposure(settings(data), "all", lambda: False) == []  # 127.0.0.1, the default


def test_insecure_serves_anyway_with_a_warning_and_an_audit_row(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    data = tmp_path / "data"
    s = settings(data, host="0.0.0.0")
    gov = open_governance(s)
    with pytest.raises(ConfigError, match="--insecure"):
        check_serve(s, "listener", insecure=False, governance=lambda: gov, actor="local:ops")
    caplog.set_level(logging.WARNING, logger="isthmus.serve")
    check_serve(s, "listener", insecure=True, governance=lambda: gov, actor="local:ops")
    assert "--insecure" in caplog.text and "without TLS" in caplog.text
    (row,) = [r for r in gov.audit_rows() if r.event.action == "cli serve"]
    assert (row.event.actor, row.event.target) == ("local:ops", "0.0.0.0")
    assert '"insecure":true' in row.event.detail.replace(" ", "")
    assert parser().parse_args(["serve", "--insecure"]).insecure is True


def test_an_initialized_hub_with_tls_needs_no_flag(tmp_path: Path) -> None:
    data = tmp_path / "data"
    s = settings(data, host="0.0.0.0", tls_cert="/etc/c.pem", tls_key="/etc/k.pem")
    gov = open_governance(s)
    now = time.time()
    admin = identity.principal("ops", "user", (rbac.ADMIN,), now)
    assert gov.initialize(admin, identity.issue(admin, (rbac.ADMIN,), now).token)
    check_serve(s, "all", insecure=False, governance=lambda: gov, actor="local:ops")
    assert [r for r in gov.audit_rows() if r.event.action == "cli serve"] == []
