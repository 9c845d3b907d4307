"""The destination contract for the `file` and `webhook` adapters, opened through the factory
(connectors/destinations.py), and the factory opening each kind this suite's modules serve.

Skipped while connectors/destinations.py is not there (it is built beside these adapters).
The webhook's peer is a starlette receiver on loopback that records the Idempotency-Key
header and answers 422 (echoing the body) to a body holding REFUSE; the file's peer is a
folder, whose files' control records name the keys.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from tests.connectors.contract_destination import (
    DestinationContract,
    Peer,
    UvicornPeer,
    closed_port,
    outgoing,
)

from isthmus.config import DestinationSettings
from isthmus.ports.destination import Answer, Destination, Outgoing

destinations = pytest.importorskip("isthmus.connectors.destinations")

BODY = '{{"type": "RefundApproved", "amount": "{n}.00", "currency": "USD", "patient": "Jane Doe"}}'


def item(n: int) -> Outgoing:
    return outgoing(n, BODY.format(n=n).encode(), destination="portal", prefix="W")


class WebhookReceiver(UvicornPeer):
    def __init__(self) -> None:
        self.keys: list[str] = []
        super().__init__(Starlette(routes=[Route("/hook", self.hook, methods=["POST"])]))

    async def hook(self, request: Request) -> Response:
        body = await request.body()
        if b"REFUSE" in body:
            return JSONResponse({"error": f"cannot take {body.decode()}"}, status_code=422)
        self.keys.append(request.headers.get("idempotency-key", ""))
        return Response(status_code=204)

    def seen(self) -> list[str]:
        return list(self.keys)


class TestWebhookDestination(DestinationContract):
    accepted_codes = ("204",)

    @pytest.fixture
    def peer(self, tmp_path: Path) -> Iterator[Peer]:
        srv = WebhookReceiver()
        srv.start()
        yield srv
        srv.stop()

    def open(self, peer: Peer, tmp_path: Path) -> Destination:
        assert isinstance(peer, WebhookReceiver)
        found: Destination = destinations.open_destination(
            DestinationSettings(name="portal", kind="webhook", url=f"{peer.url}/hook", timeout_s=5),
            "",
        )
        return found

    def open_down(self, tmp_path: Path) -> Destination:
        found: Destination = destinations.open_destination(
            DestinationSettings(
                name="portal",
                kind="webhook",
                url=f"http://127.0.0.1:{closed_port()}/hook",
                timeout_s=2,
            ),
            "",
        )
        return found

    def item(self, n: int) -> Outgoing:
        return item(n)

    def refused(self, peer: Peer, tmp_path: Path) -> tuple[Destination, Outgoing]:
        bad = outgoing(9, b'{"patient": "Jane Doe", "note": "REFUSE"}', prefix="W")
        return self.open(peer, tmp_path), bad


class Folder:
    """The file destination's peer: a folder; it has no process to stop."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def start(self) -> None:
        return None

    def stop(self) -> None:
        return None

    def seen(self) -> list[str]:
        if not self.path.exists():
            return []
        files = sorted(self.path.glob("*.jsonl"), key=lambda p: (p.stat().st_mtime_ns, p.name))
        return [json.loads(f.read_text().splitlines()[-1])["control"]["first"] for f in files]


class _Redirected:
    """The file destination writing into another folder for its first send only."""

    def __init__(self, d: Destination, folder: Path) -> None:
        self.d, self.name, self.batch = d, d.name, d.batch
        self._folder: Path | None = folder

    def send(self, items: Sequence[Outgoing]) -> Answer:
        if self._folder is None:
            return self.d.send(items)
        good, self.d.folder = self.d.folder, self._folder  # type: ignore[attr-defined]
        self._folder = None
        try:
            return self.d.send(items)
        finally:
            self.d.folder = good  # type: ignore[attr-defined]

    def close(self) -> None:
        self.d.close()


class TestFileDestination(DestinationContract):
    accepted_codes = ("written",)
    dedupes = True  # a retry rewrites the same file

    @pytest.fixture
    def peer(self, tmp_path: Path) -> Iterator[Peer]:
        yield Folder(tmp_path / "out")

    def open(self, peer: Peer, tmp_path: Path) -> Destination:
        assert isinstance(peer, Folder)
        found: Destination = destinations.open_destination(
            DestinationSettings(name="lockbox", kind="file", path=str(peer.path)), ""
        )
        return found

    def item(self, n: int) -> Outgoing:
        return item(n)

    def refused(self, peer: Peer, tmp_path: Path) -> tuple[Destination, Outgoing]:
        """A folder under a regular file (ENOTDIR): refused even for root."""
        (tmp_path / "plain").write_text("")
        return _Redirected(self.open(peer, tmp_path), tmp_path / "plain" / "out"), item(9)

    def test_peer_down_is_unavailable(self, tmp_path: Path) -> None:
        pytest.skip(
            "a local folder has no peer to take down (dest_file's own tests cover "
            "its unavailable cases)"
        )

    def test_reconnects_after_the_peer_restarts(self, dest: Destination, peer: Peer) -> None:
        pytest.skip("a local folder has no peer to restart")


@pytest.mark.parametrize(
    ("kind", "cls", "extra"),
    [
        ("mllp", "MllpDestination", {"port": 2575}),
        ("fhir", "FhirDestination", {"url": "http://127.0.0.1:1/fhir"}),
        ("nats", "NatsDestination", {"subject": "isthmus.out.x"}),
        (
            "sftp",
            "SftpDestination",
            {"user": "u", "key_file": Path("k"), "known_hosts": Path("kh")},
        ),
    ],
)
def test_factory_opens_each_kind_lazily(kind: str, cls: str, extra: dict[str, object]) -> None:
    settings = DestinationSettings(name="x", kind=kind, **extra)  # type: ignore[arg-type]
    d = destinations.open_destination(settings, "nats://127.0.0.1:1")
    try:
        assert type(d).__name__ == cls and d.name == "x" and d.batch >= 1
    finally:
        d.close()
