"""The `sftp` channel transport against Debian's real OpenSSH server, started on loopback.

The sender's view is the server's folder (`<root>/payer/inbound`, `done/`, `failed/`), which
the test writes and reads directly as the sender would over its own session. The hub is
the one of the environment: embedded SQLite, or PostgreSQL + NATS in the scale-out pass
(ISTHMUS_STORE / ISTHMUS_BUS / ISTHMUS_PG_DSN). The intake is the drop folder's
(`flows.file_intake.FileIntake`), so identity and deduplication are its business keys.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from tests.connectors.test_dest_sftp import SshServer
from tests.flows.helpers import adt
from tests.support import await_until

from isthmus.app import Hub
from isthmus.config import ConfigError, load_settings
from isthmus.connectors.sftp_pickup import PickupUnavailable, SftpPickup, final_name
from isthmus.flows import channels
from isthmus.flows.file_intake import FileIntake
from isthmus.runtime import start
from isthmus.runtime.listeners import SFTP_LEASE

REMIT = Path("/work/shared/corpora/x12/linuxforhealth/835_005010X221A1/managed-care.835")
BATCH = (
    b"FHS|^~\\&|EHR|NORTH\rBHS|^~\\&|EHR|NORTH\r"
    + adt("SFTP-1", "S1")
    + adt("SFTP-2", "S2")
    + b"BTS|2\rFTS|1\r"
)


@pytest.fixture
def sshd(tmp_path: Path) -> Iterator[SshServer]:
    srv = SshServer(tmp_path / "ssh")
    srv.start()
    (srv.root / "payer" / "inbound").mkdir(parents=True)
    yield srv
    srv.stop()


def config(tmp_path: Path, srv: SshServer, **extra: str) -> Path:
    lines = [
        "[reliability]",
        "drop_quiet_period_s = 0",
        "",
        "[channels.payer]",
        'transport = "sftp"',
        'host = "127.0.0.1"',
        f"port = {srv.port}",
        f'user = "{srv.user}"',
        f'key_file = "{srv.user_key}"',
        f'known_hosts = "{srv.known_hosts}"',
        f'path = "{srv.root / "payer"}"',
        *(f"{k} = {v}" for k, v in extra.items()),
    ]
    conf = tmp_path / "isthmus.toml"
    conf.write_text("\n".join(lines) + "\n")
    return conf


@pytest.fixture
def hub(tmp_path: Path, sshd: SshServer) -> Iterator[Hub]:
    h = Hub.open(load_settings(config(tmp_path, sshd, poll_s="0.05"), data_dir=tmp_path / "data"))
    try:
        yield h
    finally:
        h.close()


def pickup(hub: Hub, srv: SshServer, **kw: object) -> SftpPickup:
    values: dict[str, object] = {
        "user": srv.user,
        "key_file": srv.user_key,
        "known_hosts": srv.known_hosts,
        "path": str(srv.root / "payer"),
        "local": hub.settings.data_dir / "sftp" / "payer",
        "intake": FileIntake(hub.store, hub.bus, hub.settings),
        "settings": hub.settings,
        "quiet_s": 0.0,
        "timeout_s": 5.0,
        **kw,
    }
    return SftpPickup("payer", "127.0.0.1", srv.port, **values)  # type: ignore[arg-type]


def remote(srv: SshServer, sub: str) -> list[str]:
    """The names in one of the server's folders (done/ and failed/ appear at first login)."""
    folder = srv.root / "payer" / sub
    return sorted(p.name for p in folder.iterdir()) if folder.is_dir() else []


def stored(hub: Hub) -> list[tuple[str, str]]:
    return sorted((m.channel, m.control_id) for m in hub.store.messages(limit=100))


def test_an_835_and_an_hl7_batch_are_taken_once_and_moved_to_done(
    hub: Hub, sshd: SshServer
) -> None:
    inbound = sshd.root / "payer" / "inbound"
    (inbound / "remit.835").write_bytes(REMIT.read_bytes())
    (inbound / "adt.hl7").write_bytes(BATCH)
    p = pickup(hub, sshd)
    try:
        assert p.run_once() == []  # first sight: not yet known to be stable
        assert remote(sshd, "inbound") == ["adt.hl7", "remit.835"]
        reports = p.run_once()
        assert sorted((r["file"], r["refused"]) for r in reports) == [
            ("adt.hl7", 0),
            ("remit.835", 0),
        ]
        assert remote(sshd, "inbound") == []
        assert remote(sshd, "done") == ["adt.hl7", "remit.835"]
        assert remote(sshd, "failed") == []
        got = stored(hub)
        assert [c for c, _ in got].count("x12") == 1
        assert ("mllp", "EHR^NORTH:SFTP-1") in got and ("mllp", "EHR^NORTH:SFTP-2") in got
        assert not hub.store.unpublished(10)  # relayed to the bus by the intake
        # the same bytes again under new names: taken, moved, nothing new stored
        (inbound / "remit-again.835").write_bytes(REMIT.read_bytes())
        (inbound / "adt-again.hl7").write_bytes(BATCH)
        p.run_once()
        assert len(p.run_once()) == 2
        assert stored(hub) == got
        assert remote(sshd, "done") == ["adt-again.hl7", "adt.hl7", "remit-again.835", "remit.835"]
    finally:
        p.close()


def test_a_growing_file_waits_until_stable_and_in_flight_names_are_never_taken(
    hub: Hub, sshd: SshServer
) -> None:
    inbound = sshd.root / "payer" / "inbound"
    clock = [100.0]
    p = pickup(hub, sshd, quiet_s=5.0, clock=lambda: clock[0])
    body = REMIT.read_bytes()
    try:
        (inbound / "remit.835").write_bytes(body[:200])
        (inbound / "upload.hl7.part").write_bytes(BATCH)
        (inbound / ".hidden.hl7").write_bytes(BATCH)
        assert p.run_once() == []
        clock[0] += 10
        with (inbound / "remit.835").open("ab") as f:  # still growing
            f.write(body[200:])
        assert p.run_once() == []  # changed since the last pass
        clock[0] += 3
        assert p.run_once() == []  # unchanged, but not yet quiet for 5 s
        (inbound / "upload.hl7.part").rename(inbound / "upload.hl7")  # the sender's word
        clock[0] += 3
        reports = p.run_once()
        assert sorted(r["file"] for r in reports) == ["remit.835", "upload.hl7"]
        assert remote(sshd, "inbound") == [".hidden.hl7"]  # never taken
        assert [c for c, _ in stored(hub)].count("x12") == 1
    finally:
        p.close()


def test_a_crash_between_intake_and_move_downloads_again_and_changes_nothing(
    hub: Hub, sshd: SshServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    inbound = sshd.root / "payer" / "inbound"
    (inbound / "remit.835").write_bytes(REMIT.read_bytes())
    first = pickup(hub, sshd)

    def crash(*_: object) -> None:
        raise SystemExit("killed before the remote move")

    with monkeypatch.context() as m:
        m.setattr(SftpPickup, "_finish", crash)
        first.run_once()
        with pytest.raises(SystemExit):
            first.run_once()
    first.close()
    assert remote(sshd, "inbound") == ["remit.835"]  # still there: not moved
    after_crash = stored(hub)
    assert [c for c, _ in after_crash].count("x12") == 1  # the intake had committed
    again = pickup(hub, sshd)  # the next process
    try:
        again.run_once()
        [report] = again.run_once()
        assert report["refused"] == 0
        assert stored(hub) == after_crash  # the intake's business keys: nothing new
        assert remote(sshd, "inbound") == [] and remote(sshd, "done") == ["remit.835"]
    finally:
        again.close()


def test_a_refused_file_ends_in_remote_failed_with_the_reason(hub: Hub, sshd: SshServer) -> None:
    (sshd.root / "payer" / "inbound" / "junk.txt").write_bytes(b"not a healthcare file")
    p = pickup(hub, sshd)
    try:
        p.run_once()
        [report] = p.run_once()
        assert report["refused"] == 1
    finally:
        p.close()
    assert remote(sshd, "failed") == ["junk.txt", "junk.txt.error.txt"]
    reason = (sshd.root / "payer" / "failed" / "junk.txt.error.txt").read_text()
    assert "neither X12" in reason and "healthcare" not in reason
    assert remote(sshd, "inbound") == [] and remote(sshd, "done") == []


def test_an_unknown_host_key_is_refused(hub: Hub, sshd: SshServer, tmp_path: Path) -> None:
    empty = tmp_path / "empty_known_hosts"
    empty.write_text("")
    p = pickup(hub, sshd, known_hosts=empty)
    with pytest.raises(PickupUnavailable, match="not in known_hosts"):
        p.run_once()


def test_a_paused_channel_is_not_polled_until_resumed(hub: Hub, sshd: SshServer) -> None:
    inbound = sshd.root / "payer" / "inbound"

    async def go() -> None:
        hub.store.set_channel_state("payer", channels.PAUSED, "carol", "payer outage", 1.0)
        run = await start(hub, role="listener", mllp_port=0)
        try:
            assert set(run.pickups) == {"payer"} and run.switches["payer"].paused
            (inbound / "remit.835").write_bytes(REMIT.read_bytes())
            p = run.pickups["payer"]
            await await_until(lambda: p.skipped >= 5, what="paused passes skipped")
            assert p.passes == 0 and remote(sshd, "inbound") == ["remit.835"]
            hub.store.set_channel_state("payer", channels.RUNNING, "carol", "", 2.0)
            await await_until(
                lambda: remote(sshd, "done") == ["remit.835"],
                what="the file taken after resume",
                timeout=20,
            )
        finally:
            await run.stop()

    asyncio.run(go())
    assert [c for c, _ in stored(hub)].count("x12") == 1
    [row] = [r for r in channels.table(hub.settings, hub.store) if r["name"] == "payer"]
    assert row["transport"] == "sftp" and row["pausable"]
    assert row["address"].startswith(f"sftp://{sshd.user}@127.0.0.1:{sshd.port}/")


def test_one_process_of_the_site_polls_the_one_holding_the_lease(hub: Hub, sshd: SshServer) -> None:
    inbound = sshd.root / "payer" / "inbound"
    lease = SFTP_LEASE + "payer"

    async def go() -> None:
        assert hub.bus.claim(lease, "another-listener", 600.0, time.time())
        run = await start(hub, role="listener", mllp_port=0)
        try:
            (inbound / "remit.835").write_bytes(REMIT.read_bytes())
            p = run.pickups["payer"]
            await await_until(lambda: p.waiting >= 5, what="passes left to the holder")
            assert p.passes == 0 and remote(sshd, "inbound") == ["remit.835"]
            hub.bus.release(lease, "another-listener")  # the other process stopped
            await await_until(
                lambda: remote(sshd, "done") == ["remit.835"],
                what="the file taken by the new holder",
                timeout=20,
            )
        finally:
            await run.stop()

    asyncio.run(go())
    assert [c for c, _ in stored(hub)].count("x12") == 1


def test_final_names_of_in_flight_uploads() -> None:
    assert [
        final_name(n) for n in ("x.835.part", ".x.835", "x.835.tmp", "x.835~", ".x.835.filepart")
    ] == ["x.835"] * 5


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ({"user": None}, r"channels\.payer\.user is required when transport is sftp"),
        ({"known_hosts": None}, r"channels\.payer\.known_hosts is required"),
        ({"poll_s": "0"}, r"channels\.payer\.poll_s must be seconds above 0"),
        ({"port": "0"}, r"channels\.payer\.port must be the SFTP server's port"),
        ({"folder": '"/x"'}, r"channels\.payer\.folder is for folder channels"),
        ({"senders": '["A^B"]'}, r"channels\.payer\.senders is for MLLP channels"),
    ],
)
def test_config_errors_name_the_dotted_key(
    tmp_path: Path, extra: dict[str, str | None], message: str
) -> None:
    lines = [
        "[channels.payer]",
        'transport = "sftp"',
        'host = "sftp.payer.example"',
        'user = "hub"',
        'key_file = "/etc/isthmus/id"',
        'known_hosts = "/etc/isthmus/known_hosts"',
        'path = "/out"',
    ]
    lines = [ln for ln in lines if ln.split(" = ")[0] not in extra]
    lines += [f"{k} = {v}" for k, v in extra.items() if v is not None]
    conf = tmp_path / "c.toml"
    conf.write_text("\n".join(lines) + "\n")
    with pytest.raises(ConfigError, match=message):
        load_settings(conf, data_dir=tmp_path, env={})


def test_sftp_keys_are_refused_on_other_transports(tmp_path: Path) -> None:
    conf = tmp_path / "c.toml"
    conf.write_text('[channels.scans]\nfolder = "/x"\nknown_hosts = "/k"\n')
    with pytest.raises(ConfigError, match=r"channels\.scans\.known_hosts is for sftp"):
        load_settings(conf, data_dir=tmp_path, env={})
    ok = tmp_path / "ok.toml"
    ok.write_text(
        '[channels.payer]\ntransport = "sftp"\nhost = "h"\nuser = "u"\n'
        'key_file = "/k"\nknown_hosts = "/kh"\npath = "/out"\npoll_s = 60\n'
    )
    ch = load_settings(ok, data_dir=tmp_path, env={}).channels["payer"]
    assert (ch.transport, ch.port, ch.poll_s, ch.known_hosts) == ("sftp", None, 60.0, Path("/kh"))
