"""The `sftp` destination against Debian's real OpenSSH server, started on loopback by the test.

The test makes an ed25519 host key and user key, writes an sshd_config in a temporary
directory (free loopback port, `Subsystem sftp internal-sftp`, public key login for the
current user from the temporary authorized_keys, `StrictModes no`, `UsePAM no`) and runs
`/usr/sbin/sshd -D -e -f <cfg>`. Without /usr/sbin/sshd (package openssh-server) the tests
skip with the reason, and fail under CI=true (.ci/run installs it). Running as root, sshd
needs its privilege separation directory /run/sshd, which the package's service unit would
create; the fixture creates it (empty, 0755) when missing.

The peer's view: the finished files in the upload folder (never a `.part`), each one's
control record naming the run's first and last idempotency keys.
"""

from __future__ import annotations

import getpass
import json
import os
import signal
import subprocess
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from tests.connectors.contract_destination import (
    DestinationContract,
    Peer,
    assert_no_phi,
    closed_port,
    free_port,
    outgoing,
)
from tests.support import listening, wait_until

from isthmus.config import DestinationSettings
from isthmus.connectors import dest_sftp
from isthmus.connectors.dest_file import control_file, file_name
from isthmus.connectors.dest_sftp import SftpDestination
from isthmus.ports.destination import (
    Destination,
    DestinationRejected,
    DestinationUnavailable,
    Outgoing,
)

SSHD = "/usr/sbin/sshd"


def _keypair(path: Path) -> str:
    """Write an OpenSSH private key at `path`; return the public key line."""
    key = Ed25519PrivateKey.generate()
    path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.OpenSSH,
            serialization.NoEncryption(),
        )
    )
    path.chmod(0o600)
    return (
        key.public_key()
        .public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH)
        .decode()
    )


def _descendants(pid: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(ppid, []).append(int(entry.name))
    out, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            out.append(child)
            todo.append(child)
    return out


class SshServer:
    """OpenSSH's sshd on a free loopback port; stop ends its sessions too (a restart)."""

    def __init__(self, root: Path) -> None:
        if not os.access(SSHD, os.X_OK):
            why = f"{SSHD} is not installed (Debian package openssh-server)"
            if os.environ.get("CI", "").lower() == "true":
                pytest.fail(f"{why}; CI=true requires it (.ci/run installs it)")
            pytest.skip(why)
        if os.geteuid() == 0:
            Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)
        root.mkdir(parents=True, exist_ok=True)
        self.root = root
        self.port = free_port()
        self.inbox = root / "inbox"
        self.inbox.mkdir()
        self.user = getpass.getuser()
        host_pub = _keypair(root / "host_ed25519")
        self.user_key = root / "user_ed25519"
        (root / "authorized_keys").write_text(_keypair(self.user_key) + "\n")
        self.known_hosts = root / "known_hosts"
        self.known_hosts.write_text(f"[127.0.0.1]:{self.port} {host_pub}\n")
        self.config = root / "sshd_config"
        self.config.write_text(
            "\n".join(
                [
                    f"Port {self.port}",
                    "ListenAddress 127.0.0.1",
                    f"HostKey {root / 'host_ed25519'}",
                    f"AuthorizedKeysFile {root / 'authorized_keys'}",
                    f"PidFile {root / 'sshd.pid'}",
                    "StrictModes no",
                    "UsePAM no",
                    "PasswordAuthentication no",
                    "KbdInteractiveAuthentication no",
                    "PubkeyAuthentication yes",
                    "PermitRootLogin prohibit-password",
                    "Subsystem sftp internal-sftp",
                    "LogLevel ERROR",
                    "",
                ]
            )
        )
        self._proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        proc = self._proc = subprocess.Popen(
            [SSHD, "-D", "-e", "-f", str(self.config)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        wait_until(
            lambda: listening("127.0.0.1", self.port) or proc.poll() is not None,
            what="sshd to listen",
        )
        if proc.poll() is not None:
            err = proc.stderr.read().decode() if proc.stderr else ""
            raise RuntimeError(f"sshd did not start: {err[-500:]}")

    def stop(self) -> None:
        proc, self._proc = self._proc, None
        if proc is None:
            return
        # the per-connection sshd processes we started (a restart ends sessions too),
        # deepest first, each reaped by its parent before that one goes: none is left to
        # an init that does not reap
        for pid in reversed(_descendants(proc.pid)):
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                continue
            wait_until(
                lambda pid=pid: not Path(f"/proc/{pid}").exists(),  # type: ignore[misc]
                what="an sshd session to end",
                timeout=10,
                every_s=0.01,
            )
        proc.terminate()
        proc.wait(20)
        if proc.stderr:
            proc.stderr.close()

    def files(self) -> list[Path]:
        return sorted(
            (p for p in self.inbox.iterdir() if p.suffix == ".jsonl"),
            key=lambda p: (p.stat().st_mtime_ns, p.name),
        )

    def seen(self) -> list[str]:
        out: list[str] = []
        for f in self.files():
            control = json.loads(f.read_text().splitlines()[-1])["control"]
            out.append(control["first"])
            if control["last"] != control["first"]:
                out.append(control["last"])
        return out

    def settings(self, **kw: object) -> DestinationSettings:
        values: dict[str, object] = {
            "name": "lockbox",
            "kind": "sftp",
            "host": "127.0.0.1",
            "port": self.port,
            "user": self.user,
            "key_file": self.user_key,
            "known_hosts": self.known_hosts,
            "path": str(self.inbox),
            "timeout_s": 5.0,
            **kw,
        }
        return DestinationSettings(**values)  # type: ignore[arg-type]


@pytest.fixture
def sshd(tmp_path: Path) -> Iterator[SshServer]:
    srv = SshServer(tmp_path / "ssh")
    srv.start()
    yield srv
    srv.stop()


def payment(n: int, amount: str = "12.50", currency: str = "USD") -> bytes:
    return json.dumps(
        {
            "type": "PaymentPosted",
            "account": f"acct-{n % 3}",
            "amount": amount,
            "currency": currency,
            "patient": "Jane Doe",
            "dob": "19600102",
        }
    ).encode()


def item(n: int, **kw: str) -> Outgoing:
    return outgoing(n, payment(n, **kw), destination="lockbox", prefix="S")


class TestSftpDestination(DestinationContract):
    accepted_codes = ("uploaded",)
    dedupes = True  # a retry rewrites the same file

    @pytest.fixture
    def peer(self, tmp_path: Path) -> Iterator[Peer]:
        srv = SshServer(tmp_path / "ssh")
        srv.start()
        yield srv
        srv.stop()

    def open(self, peer: Peer, tmp_path: Path) -> Destination:
        assert isinstance(peer, SshServer)
        return dest_sftp.open_destination(peer.settings(), "")

    def open_down(self, tmp_path: Path) -> Destination:
        srv = SshServer(tmp_path / "down")  # keys and known_hosts, but no server running
        return SftpDestination(
            "lockbox",
            "127.0.0.1",
            closed_port(),
            user=srv.user,
            key_file=srv.user_key,
            known_hosts=srv.known_hosts,
            path=str(srv.inbox),
            timeout_s=2,
        )

    def item(self, n: int) -> Outgoing:
        return item(n)

    def refused(self, peer: Peer, tmp_path: Path) -> tuple[Destination, Outgoing]:
        """The server refuses a file into a folder that is not there (SSH_FX_NO_SUCH_FILE);
        the fresh delivery afterwards goes to the configured, existing folder."""
        assert isinstance(peer, SshServer)
        d = dest_sftp.open_destination(peer.settings(), "")
        assert isinstance(d, SftpDestination)
        good, d._path = d._path, str(peer.root / "no-such-folder")

        class Refusing:
            name, batch = d.name, d.batch

            def send(self, items: list[Outgoing]) -> object:
                try:
                    return d.send(items)
                finally:
                    d._path = good

            def close(self) -> None:
                d.close()

        return Refusing(), item(9)  # type: ignore[return-value]


# -- files with control totals ----------------------------------------------------------------


def test_control_file_counts_and_sums_per_currency_in_decimal() -> None:
    items = [
        item(1, amount="0.10"),
        item(2, amount="0.20"),
        item(3, amount="5", currency="EUR"),
        outgoing(4, b"not json DOE^JANE", content_type="text/plain"),
    ]
    lines = control_file(items).decode().splitlines()
    assert len(lines) == 5
    assert json.loads(lines[0])["amount"] == "0.10"
    assert json.loads(lines[3]) == {"body": "not json DOE^JANE"}
    control = json.loads(lines[-1])["control"]
    assert control == {
        "count": 4,
        "amounts": {"EUR": "5", "USD": "0.30"},
        "first": "S000001",
        "last": "k000004",
    }
    assert Decimal(control["amounts"]["USD"]) == Decimal("0.30")


def test_a_run_is_one_file_named_for_its_keys_and_a_retry_rewrites_it(sshd: SshServer) -> None:
    d = dest_sftp.open_destination(sshd.settings(batch=5), "")
    run = [item(n) for n in range(20, 25)]
    try:
        answer = d.send(run)
        assert answer.code == "uploaded"
        assert answer.detail.startswith(file_name("lockbox", run))
        assert "records=5" in answer.detail
        assert_no_phi(answer.detail)
        d.send(run)  # the same run again: same name, replaced atomically
        with pytest.raises(ValueError, match=r"1\.\.5"):
            d.send([item(n) for n in range(6)])
    finally:
        d.close()
    files = sshd.files()
    assert [f.name for f in files] == [file_name("lockbox", run)]
    assert not list(sshd.inbox.glob("*.part"))
    lines = files[0].read_text().splitlines()
    assert len(lines) == 6
    assert json.loads(lines[-1])["control"] == {
        "count": 5,
        "amounts": {"USD": "62.50"},
        "first": "S000020",
        "last": "S000024",
    }


def test_an_unknown_host_key_is_refused(sshd: SshServer, tmp_path: Path) -> None:
    other = tmp_path / "other_known_hosts"
    other.write_text(f"[127.0.0.1]:{sshd.port} {_keypair(tmp_path / 'imposter')}\n")
    empty = tmp_path / "empty_known_hosts"
    empty.write_text("")
    for known, why in ((other, "does not match"), (empty, "not in known_hosts")):
        d = dest_sftp.open_destination(sshd.settings(known_hosts=known), "")
        try:
            with pytest.raises(DestinationUnavailable, match=why):
                d.send([item(1)])
        finally:
            d.close()
    assert sshd.files() == []


def test_a_key_the_server_does_not_know_cannot_log_in(sshd: SshServer, tmp_path: Path) -> None:
    stranger = tmp_path / "stranger"
    _keypair(stranger)
    d = dest_sftp.open_destination(sshd.settings(key_file=stranger), "")
    try:
        with pytest.raises(DestinationUnavailable, match="authentication refused"):
            d.send([item(1)])
    finally:
        d.close()


def test_settings_without_host_key_checking_are_refused() -> None:
    with pytest.raises(ValueError, match="known_hosts"):
        dest_sftp.open_destination(
            DestinationSettings(name="x", kind="sftp", user="u", key_file=Path("k")), ""
        )


def test_a_refused_file_is_rejected(sshd: SshServer) -> None:
    d = dest_sftp.open_destination(sshd.settings(path=str(sshd.root / "absent")), "")
    try:
        with pytest.raises(DestinationRejected) as caught:
            d.send([item(1)])
        assert caught.value.answer.code == "refused"
        assert_no_phi(str(caught.value))
    finally:
        d.close()
