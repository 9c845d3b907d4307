"""Channels end to end (issue 18): `isthmus serve` in a subprocess with two MLLP channels,
python-hl7's MLLPClient as the sender, and `isthmus channels pause|resume` run as another
process: the running listener follows the store and refuses, then takes, connections.

Runs in the mode of the environment (the scale-out pass gives serve and the CLI the same
PostgreSQL schema and NATS stream, through the data directory)."""

from __future__ import annotations

import json
import os
import socket
from pathlib import Path

import hl7.client
import httpx

from tests.e2e.helpers import HOST, Serve, free_port, isthmus
from tests.support import wait_until


def _mode() -> dict[str, str]:
    return {
        k: v
        for k, v in os.environ.items()
        if k.startswith(("ISTHMUS_STORE", "ISTHMUS_BUS", "ISTHMUS_PG_", "ISTHMUS_NATS_"))
    }


def _lab(cid: str) -> bytes:
    return (
        f"MSH|^~\\&|LIS|CORE|ISTHMUS|HUB|20261102101500||ADT^A04^ADT_A01|{cid}|P|2.5.1\r"
        "EVN|A04|20261102101500\rPID|1||L1^^^HOSPMRN^MR||DOE^JANE||19800101|F\r"
        "PV1|1|O|LAB^1^A^NORTH\r"
    ).encode()


def _refused(port: int) -> bool:
    try:
        socket.create_connection((HOST, port), timeout=2).close()
    except ConnectionRefusedError:
        return True
    return False


def _msa(ack: bytes) -> list[str]:
    line = next(x for x in ack.strip(b"\x0b\x1c\r").decode().split("\r") if x.startswith("MSA|"))
    return line.split("|")[1:3]


def test_pause_given_by_another_process_closes_the_port_and_resume_reopens(tmp_path: Path) -> None:
    lab = free_port()
    conf = tmp_path / "isthmus.toml"
    conf.write_text(
        f'[channels.lab]\nport = {lab}\nsenders = ["LIS^CORE"]\nack_application = "HUBLAB"\n'
    )
    data, mode = tmp_path / "data", _mode()
    serve = Serve(data_dir=data, log_dir=tmp_path / "logs", config=conf, env=mode).start()

    def cli(*args: str) -> tuple[int, str, str]:
        r = isthmus("channels", *args, "--config", conf, data_dir=data, env=mode)
        return r.returncode, r.stdout, r.stderr

    try:
        with hl7.client.MLLPClient(HOST, lab) as client:
            ack = client.send_message(_lab("E2E-1"))
        assert _msa(ack) == ["AA", "E2E-1"] and b"|HUBLAB|" in ack
        code, out, _ = cli("pause", "lab", "--reason", "LIS upgrade")
        assert code == 0 and "channel lab paused" in out
        wait_until(lambda: _refused(lab), what="the lab port closed by serve")
        assert not _refused(serve.mllp_port)  # the channel mllp goes on
        code, out, _ = cli("--json")
        assert code == 0
        rows = {r["name"]: r for r in json.loads(out)}
        assert (rows["lab"]["state"], rows["lab"]["received"]) == ("paused", 1)
        api = httpx.get(f"http://{HOST}:{serve.http_port}/api/v1/channels", timeout=5)
        shown = {r["name"]: r for r in api.json()["channels"]}
        assert shown["lab"]["address"] == f"127.0.0.1:{lab}"
        assert shown["lab"]["state"] == "paused" and shown["lab"]["reason"] == "LIS upgrade"
        code, _, err = cli("pause", "labx")
        assert code == 2 and "drop, fhir, lab, mllp" in err
        assert cli("resume", "lab")[0] == 0
        wait_until(lambda: not _refused(lab), what="the lab port open again")
        with hl7.client.MLLPClient(HOST, lab) as client:
            assert _msa(client.send_message(_lab("E2E-2"))) == ["AA", "E2E-2"]
    finally:
        assert serve.stop() == 0, serve.stderr_text()
