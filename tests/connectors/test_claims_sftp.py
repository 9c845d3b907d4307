"""837 out to a real SFTP server (Debian's OpenSSH on loopback, the fixture of the sftp
destination's tests): the clean claims' 837 arrives whole under its ISA13 name, never as a
`.part`; with the server down nothing is recorded as submitted and the same file goes on
the retry."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from tests.connectors.test_dest_sftp import SshServer
from tests.flows.claims.claim_files import institutional

from isthmus.config import ClaimSettings, DestinationSettings
from isthmus.connectors.claim_files import FileSender, SendFailed, SftpSender, sender_for
from isthmus.flows import claim_submission
from isthmus.formats.x12 import check_envelope, parse_837, read
from isthmus.store.memory import MemoryStore

T0 = 1_800_000_000.0


@pytest.fixture
def sshd(tmp_path: Path) -> Iterator[SshServer]:
    srv = SshServer(tmp_path / "ssh")
    srv.start()
    yield srv
    srv.stop()


def sender(srv: SshServer) -> SftpSender:
    got = sender_for(
        DestinationSettings(
            name="clearinghouse",
            kind="sftp",
            host="127.0.0.1",
            port=srv.port,
            user=srv.user,
            key_file=srv.user_key,
            known_hosts=srv.known_hosts,
            path=str(srv.inbox),
            timeout_s=5.0,
        )
    )
    assert isinstance(got, SftpSender)
    return got


def test_837_lands_on_the_sftp_server(sshd: SshServer) -> None:
    store = MemoryStore()
    got = claim_submission.submit_837(
        store,
        institutional(),
        settings=ClaimSettings(),
        sender=sender(sshd),
        now=T0,
        source="billing",
    )
    assert got.clean == ["756048Q", "756049Q"]
    (landed,) = sorted(sshd.inbox.iterdir())
    assert landed.name == "837-000000001.x12"
    assert got.sent == f"sftp://127.0.0.1:{sshd.port}{landed}"
    ic = read(landed.read_bytes())
    assert check_envelope(ic).findings == []
    assert [c.patient_control_number for c in parse_837(ic).claims] == ["756048Q", "756049Q"]
    assert {c.state for c in store.claim_states()} == {"submitted"}


def test_server_down_records_nothing_and_the_retry_sends(sshd: SshServer) -> None:
    store = MemoryStore()
    out = sender(sshd)
    sshd.stop()
    with pytest.raises(SendFailed, match=r"SFTP 127\.0\.0\.1") as exc:
        claim_submission.submit_837(
            store, institutional(), settings=ClaimSettings(), sender=out, now=T0, source="billing"
        )
    assert "CLM" not in str(exc.value) and "DOE" not in str(exc.value)
    assert store.claim_states() == []  # rolled back with the failed send
    sshd.start()
    got = claim_submission.submit_837(
        store, institutional(), settings=ClaimSettings(), sender=out, now=T0 + 60, source="billing"
    )
    assert got.clean == ["756048Q", "756049Q"]
    assert [p.name for p in sshd.inbox.iterdir()] == ["837-000000001.x12"]


def test_a_destination_that_cannot_take_x12() -> None:
    with pytest.raises(ValueError, match="cannot take X12"):
        sender_for(DestinationSettings(name="hook", kind="webhook", url="http://x"))


def test_file_sender_writes_0600_whole_files_once(tmp_path: Path) -> None:
    out = FileSender(tmp_path / "out")
    assert out.send(name="837-000000001.x12", kind="837", body=b"ISA*first") == "837-000000001.x12"
    assert out.send(name="837-000000001.x12", kind="837", body=b"ISA*again") == "837-000000001.x12"
    (f,) = (tmp_path / "out").iterdir()
    assert f.read_bytes() == b"ISA*first" and f.stat().st_mode & 0o777 == 0o600
    with pytest.raises(ValueError, match="plain file name"):
        out.send(name="../x", kind="837", body=b"")
