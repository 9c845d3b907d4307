"""Named inbound channels over real sockets (issue 18): two MLLP channels in one hub, the
sender filter, the ACK's own MSH-3/MSH-4, pause and resume followed from the store.

The peer is python-hl7's own client (`hl7.client.MLLPClient`), one connection at a time as
an EHR interface sends. The hub runs in the mode of the environment (embedded SQLite, or
PostgreSQL + NATS in the scale-out pass). A pause is given through a second Hub on the
same site (another store connection, as another process would), and the running
listener must follow it.
"""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import hl7.client
import pytest

from isthmus.app import Hub
from isthmus.config import load_settings
from isthmus.flows import channels
from isthmus.flows.hl7_inbound import decode_error
from isthmus.runtime import Running, start
from tests.flows.helpers import adt, pid, pv1
from tests.flows.helpers import hl7 as segments
from tests.support import await_until

HOST = "127.0.0.1"
CONFIG = """
[reliability]
drop_quiet_period_s = 0

[channels.lab]
port = 0
senders = ["LAB^MAIN", "LAB^ANNEX"]
ack_application = "HUBLAB"
ack_facility = "CORE"

[channels.scans]
folder = "{folder}"
"""


def lab_adt(cid: str, mrn: str, app: str = "LAB", facility: str = "MAIN") -> bytes:
    return segments(
        f"MSH|^~\\&|{app}|{facility}|ISTHMUS|HUB|20261102101500||ADT^A04^ADT_A01|{cid}|P|2.5.1",
        "EVN|A04|20261102101500",
        pid(mrn),
        pv1("V" + mrn),
    )


def fields(ack: bytes, segment: str) -> list[str]:
    for line in ack.strip(b"\x0b\x1c\r").decode().split("\r"):
        if line.startswith(segment + "|"):
            return line.split("|")
    raise AssertionError(f"no {segment} in {ack!r}")


@pytest.fixture
def hub(tmp_path: Path) -> Iterator[Hub]:
    conf = tmp_path / "isthmus.toml"
    conf.write_text(CONFIG.format(folder=tmp_path / "scans"))
    h = Hub.open(load_settings(conf, data_dir=tmp_path / "data"))
    try:
        yield h
    finally:
        h.close()


def send(port: int, *messages: bytes) -> list[bytes]:
    with hl7.client.MLLPClient(HOST, port) as client:
        return [client.send_message(m) for m in messages]


def refused(port: int) -> bool:
    try:
        socket.create_connection((HOST, port), timeout=2).close()
    except ConnectionRefusedError:
        return True
    return False


async def running(hub: Hub) -> Running:
    return await start(hub, role="listener", mllp_port=0)


def test_two_mllp_channels_each_with_its_identity_senders_and_ack(hub: Hub) -> None:
    async def go() -> tuple[list[bytes], list[bytes], int, int]:
        run = await running(hub)
        try:
            assert set(run.mllps) == {"mllp", "lab"} and run.mllp is run.mllps["mllp"]
            main, lab = run.mllps["mllp"].port, run.mllps["lab"].port
            assert main != lab
            on_main = await asyncio.to_thread(send, main, adt("SAME-1", "C1"))
            on_lab = await asyncio.to_thread(
                send,
                lab,
                lab_adt("SAME-1", "C2"),
                lab_adt("SAME-2", "C3", facility="ANNEX"),
                adt("FOREIGN-1", "C4"),
            )
            return on_main, on_lab, main, lab
        finally:
            await run.stop()

    on_main, on_lab, _, _ = asyncio.run(go())
    assert fields(on_main[0], "MSA")[1:3] == ["AA", "SAME-1"]
    assert fields(on_main[0], "MSH")[2:4] == ["ISTHMUS", "ISTHMUS"]  # the hub's default
    for ack in on_lab[:2]:
        msh = fields(ack, "MSH")
        assert msh[2:6] == ["HUBLAB", "CORE", "LAB", msh[5]]  # [channels.lab] ack identity
        assert fields(ack, "MSA")[1] == "AA"
    # a sender the channel does not list: AR, ERR at MSH-3 with table 0357 code 207
    foreign = on_lab[2]
    assert fields(foreign, "MSA")[1:3] == ["AR", "FOREIGN-1"]
    err = fields(foreign, "ERR")
    assert err[2].startswith("MSH^1^3") and err[3].startswith("207")
    assert "sender MSH-3 'EHR' MSH-4 'NORTH' is not one this channel accepts" in err[8]
    # each inbox is stamped with its channel: the same MSH-10 is two messages
    s = hub.store
    on_mllp = s.message_by_control_id("mllp", "EHR^NORTH:SAME-1")
    on_lab_ch = s.message_by_control_id("lab", "LAB^MAIN:SAME-1")
    assert on_mllp is not None and on_mllp.status == "accepted"
    assert on_lab_ch is not None and on_lab_ch.status == "accepted" and on_lab_ch.events
    kept = s.message_by_control_id("lab", "EHR^NORTH:FOREIGN-1")
    assert kept is not None and kept.status == "rejected" and kept.events == b""
    assert kept.raw == adt("FOREIGN-1", "C4")  # kept for inspection, whole
    err_stored = decode_error(kept.error)
    assert err_stored is not None and err_stored.code == 207
    rows = {r["name"]: r for r in channels.table(hub.settings, s)}
    assert (rows["lab"]["received"], rows["lab"]["refused"]) == (3, 1)
    assert rows["lab"]["queued"] + rows["lab"]["delivered"] == 2
    assert rows["mllp"]["received"] == 1 and rows["lab"]["last_message_at"]


def test_pause_from_another_process_refuses_new_connections_and_resume_reopens(hub: Hub) -> None:
    other = Hub.open(hub.settings)  # another store connection: what another process holds

    async def go() -> None:
        run = await running(hub)
        try:
            lab = run.mllps["lab"]
            port = lab.port
            with hl7.client.MLLPClient(HOST, port) as open_before:
                channels.set_state(
                    other.settings,
                    other.store,
                    "lab",
                    channels.PAUSED,
                    by="alice",
                    reason="lab upgrade",
                    now=time.time(),
                )
                await await_until(lambda: lab.paused, what="the lab listener paused")
                assert await asyncio.to_thread(refused, port)
                assert not run.mllps["mllp"].paused  # only the channel named
                # the connection opened before the pause finishes its messages: ACKed
                ack = await asyncio.to_thread(open_before.send_message, lab_adt("INFLIGHT-1", "P1"))
                assert fields(ack, "MSA")[1:3] == ["AA", "INFLIGHT-1"]
            channels.set_state(
                other.settings, other.store, "lab", channels.RUNNING, by="alice", now=time.time()
            )
            await await_until(lambda: not lab.paused, what="the lab listener resumed")
            assert lab.port == port  # the same port again
            [ack] = await asyncio.to_thread(send, port, lab_adt("AFTER-1", "P2"))
            assert fields(ack, "MSA")[1:3] == ["AA", "AFTER-1"]
        finally:
            await run.stop()

    try:
        asyncio.run(go())
    finally:
        other.close()
    assert hub.store.message_by_control_id("lab", "LAB^MAIN:INFLIGHT-1") is not None
    assert hub.store.channel_states()["lab"].by == "alice"


def test_a_channel_paused_before_start_does_not_take_connections(hub: Hub) -> None:
    hub.store.set_channel_state("mllp", channels.PAUSED, "bob", "", 1.0)

    async def go() -> None:
        run = await running(hub)
        try:
            assert run.mllps["mllp"].paused and not run.mllps["lab"].paused
            assert await asyncio.to_thread(refused, run.mllps["mllp"].port)
            assert not await asyncio.to_thread(refused, run.mllps["lab"].port)
        finally:
            await run.stop()

    asyncio.run(go())


def test_a_taken_port_stops_start_up_naming_the_channel(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind((HOST, 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        conf = tmp_path / "isthmus.toml"
        conf.write_text(f"[channels.lab]\nport = {port}\n")
        h = Hub.open(load_settings(conf, data_dir=tmp_path / "data"))
        try:
            with pytest.raises(OSError, match=f"MLLP channel 'lab' port 127.0.0.1:{port}"):
                asyncio.run(running(h))
        finally:
            h.close()


def test_a_paused_folder_is_not_read_until_resumed(hub: Hub, tmp_path: Path) -> None:
    scans = tmp_path / "scans"
    drop = hub.settings.data_dir / "drop"

    def taken(folder: Path, n: int) -> bool:
        return len([p for p in (folder / "done").iterdir() if p.suffix == ".hl7"]) >= n

    async def go() -> None:
        run = await running(hub)
        try:
            assert set(run.switches) == {"drop", "scans"}
            hub.store.set_channel_state("scans", channels.PAUSED, "carol", "", 1.0)
            await await_until(lambda: run.switches["scans"].paused, what="scans paused")
            (scans / "inbound" / "a.hl7").write_bytes(adt("FOLDER-1", "F1"))
            # the hub's own drop folder goes on: two of its files taken one after the
            # other are passes enough for the paused folder to have taken its file
            for n, cid in enumerate(("DROP-1", "DROP-2"), 1):
                (drop / "inbound" / f"{cid}.hl7").write_bytes(adt(cid, "D" + cid[-1]))
                await await_until(lambda n=n: taken(drop, n), what=f"{n} drop file(s)")
            assert (scans / "inbound" / "a.hl7").exists() and not taken(scans, 1)
            hub.store.set_channel_state("scans", channels.RUNNING, "carol", "", 2.0)
            await await_until(lambda: taken(scans, 1), what="the scans file taken")
        finally:
            await run.stop()

    asyncio.run(go())
    assert hub.store.message_by_control_id("mllp", "EHR^NORTH:FOLDER-1") is not None
