"""The `mllp` destination: HL7 v2 messages out over MLLP, one at a time, each waiting for its ACK.

Why: status events go back to the systems that own the accounts (DFT^P03 payment and
adjustment postings, BAR^P05 account updates to patient accounting), and those systems
speak HL7 v2 over MLLP (issue 18). The route's template renders the complete ER7 message
(segments separated by CR, MSH-10 included); this adapter frames it, sends it and reads the
acknowledgment.

Standards:
- Framing: HL7 v2.x Implementation Guide, Appendix C "Minimal Lower Layer Protocol"
  (release 2): `<VT> message <FS><CR>`, one ACK block per message, in order, through
  :mod:`isthmus.connectors.mllp_framing`.
- Acknowledgment: HL7 v2.5.1 chapter 2, 2.9 "Message processing rules" and MSA (2.15.8):
  MSA-1 (HL7 table 0008) AA/CA accept; AE/AR/CE/CR refuse. MSA-2 must echo our MSH-10, or
  the block is not our answer (a stray or late ACK): the connection is dropped and the
  delivery retried, never marked delivered on someone else's ACK.
- ERR (2.15.5): ERR-3 "HL7 Error Code" (table 0357) and ERR-4 severity are codes and go into
  the answer; ERR-2 is the location; the v2.3 ERR-1 (CM_ELD) gives location and code.
  MSA-3 and ERR-8 are free text a receiver may fill with the data it choked on, so they are
  never copied (no PHI in an answer).
- TLS (and mutual TLS) when `tls_ca` / `tls_cert` are configured, in the style of the
  inbound listener.

The connection is held across sends and re-opened after any failure. Before each send an
idle connection is probed: a peer that closed it meanwhile (a restart) is noticed there and
a fresh connection is made, so a restart costs no failed delivery. `batch` is 1.

Cost: on the usual path (the whole ACK in one read, MSA-1 AA echoing MSH-10) a send is one
`select`, one `sendall` and one `recv`, plus slicing out MSH-10 and MSA (bench/
bench_outbound_mllp.py, docs/benchmarks.md).
"""

from __future__ import annotations

import contextlib
import select
import socket
import ssl
import time
from collections.abc import Sequence

from isthmus.config.destinations import DestinationSettings
from isthmus.connectors.mllp_framing import CR, EB, SB, MllpFramer, frame
from isthmus.ports.destination import (
    Answer,
    DestinationRejected,
    DestinationUnavailable,
    Outgoing,
)

__all__ = ["MllpDestination", "ack_answer", "control_id", "open_destination"]

_ACCEPT = {"AA", "CA"}
_REFUSE = {"AE", "AR", "CE", "CR"}
_MAX_ACK_BYTES = 1_048_576


def control_id(body: bytes) -> str:
    """MSH-10 of an ER7 message (MSH-1 is the field separator, so MSH-n is field n-1)."""
    if not body.startswith(b"MSH") or len(body) < 8:
        raise DestinationRejected(Answer("invalid", "body is not an ER7 message (no MSH)"))
    sep = body[3:4]
    fields = body.split(b"\r", 1)[0].split(b"\n", 1)[0].split(sep)
    if len(fields) < 10 or not fields[9].strip():
        raise DestinationRejected(Answer("invalid", "MSH-10 (message control id) is empty"))
    return fields[9].strip().decode("ascii", "replace")


def _segments(ack: bytes) -> tuple[bytes, list[list[bytes]]]:
    text = ack.replace(b"\r\n", b"\r").replace(b"\n", b"\r")
    sep = text[3:4] if text.startswith(b"MSH") and len(text) > 3 else b"|"
    return sep, [s.split(sep) for s in text.split(b"\r") if s.strip()]


def _code(value: bytes, comp: bytes, width: int) -> str:
    """The first `width` components of a coded element (code, then the table's name for it),
    ASCII, each cut at 60 characters."""
    parts = [p.decode("ascii", "replace").strip()[:60] for p in value.split(comp)[:width]]
    return "^".join(parts).strip("^")


def _accepted(ack: bytes, expected_id: str) -> Answer | None:
    """The common case without splitting every segment: an MSA-1 AA/CA echoing our id."""
    at = ack.find(b"\rMSA")
    if at < 0 or not ack.startswith(b"MSH"):
        return None
    end = ack.find(b"\r", at + 1)
    fields = ack[at + 1 : end if end > 0 else len(ack)].split(ack[3:4])
    if len(fields) < 3 or fields[0] != b"MSA" or fields[1] not in (b"AA", b"CA"):
        return None
    if fields[2].strip().decode("ascii", "replace") != expected_id:
        return None  # the full reading names the stray answer
    return Answer("AA", f"MSA-1={fields[1].decode()} MSA-2={expected_id}")


def ack_answer(ack: bytes, expected_id: str) -> Answer:
    """The ACK as an Answer (AA/CA), or raise: DestinationRejected (AE/AR/CE/CR) or
    DestinationUnavailable (not an ACK to `expected_id`)."""
    accepted = _accepted(ack, expected_id)
    if accepted is not None:
        return accepted
    _sep, segs = _segments(ack)
    comp = b"^"
    for seg in segs:
        if seg[0] == b"MSH" and len(seg) > 1 and seg[1][:1]:
            comp = seg[1][:1]
    msa = next((s for s in segs if s[0] == b"MSA"), None)
    if msa is None or len(msa) < 2:
        raise DestinationUnavailable("MLLP peer answered without an MSA segment")
    code = msa[1].decode("ascii", "replace").strip().upper()
    acked = msa[2].decode("ascii", "replace").strip() if len(msa) > 2 else ""
    if acked != expected_id:
        raise DestinationUnavailable(
            f"MLLP ACK for another message (MSA-2 {acked[:40]!r}); stray answer, connection dropped"
        )
    if code in _ACCEPT:
        return Answer("AA", f"MSA-1={code} MSA-2={acked}")
    if code not in _REFUSE:
        raise DestinationUnavailable(f"MLLP ACK with unknown MSA-1 {code[:8]!r}")
    errors = []
    for seg in segs:
        if seg[0] != b"ERR":
            continue
        if len(seg) > 3 and seg[3]:  # v2.5: ERR-3 code (table 0357), ERR-4 severity, ERR-2
            where = _code(seg[2], comp, 4) if len(seg) > 2 else ""
            sev = seg[4].decode("ascii", "replace").strip() if len(seg) > 4 else ""
            errors.append(
                " ".join(
                    x
                    for x in (
                        f"ERR-3={_code(seg[3], comp, 2)}",
                        f"ERR-4={sev}" if sev else "",
                        f"at {where}" if where else "",
                    )
                    if x
                )
            )
        elif len(seg) > 1 and seg[1]:  # v2.3 ERR-1 (CM_ELD): segment^seq^field^code
            parts = seg[1].split(comp)
            where = "^".join(p.decode("ascii", "replace") for p in parts[:3])
            code_part = parts[3].split(b"&")[0].decode("ascii", "replace") if len(parts) > 3 else ""
            errors.append(f"ERR-1={code_part or '?'} at {where}")
    detail = f"MSA-1={code} MSA-2={acked}" + (f"; {'; '.join(errors)}" if errors else "")
    raise DestinationRejected(Answer(code, detail))


def _client_context(s: DestinationSettings) -> ssl.SSLContext | None:
    if s.tls_ca is None and s.tls_cert is None:
        return None
    ctx = ssl.create_default_context(cafile=str(s.tls_ca) if s.tls_ca else None)
    if s.tls_cert is not None:
        ctx.load_cert_chain(str(s.tls_cert), str(s.tls_key) if s.tls_key else None)
    return ctx


class MllpDestination:
    """One MLLP peer; a held connection; one message in flight."""

    batch = 1

    def __init__(
        self,
        name: str,
        host: str,
        port: int,
        *,
        timeout_s: float = 10.0,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        self.name = name
        self._host, self._port = host, port
        self._timeout = timeout_s
        self._ssl = ssl_context
        self._sock: socket.socket | None = None
        self._framer = MllpFramer(_MAX_ACK_BYTES)

    # -- connection -------------------------------------------------------------------------

    def _connect(self) -> socket.socket:
        try:
            raw = socket.create_connection((self._host, self._port), timeout=self._timeout)
        except OSError as exc:
            raise DestinationUnavailable(
                f"MLLP peer {self._host}:{self._port} unreachable: {_why(exc)}"
            ) from exc
        raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if self._ssl is None:
            return raw
        try:
            return self._ssl.wrap_socket(raw, server_hostname=self._host)
        except (OSError, ssl.SSLError) as exc:
            raw.close()
            raise DestinationUnavailable(
                f"MLLP peer {self._host}:{self._port} TLS handshake failed: {_why(exc)}"
            ) from exc

    def _alive(self, sock: socket.socket) -> bool:
        """An idle held connection the peer has not closed and has sent nothing on. Over
        TLS 1.3 the server's session tickets arrive after the handshake: a non-blocking
        read consumes them (SSLWantReadError: no application data) and keeps the line."""
        try:
            readable, _, _ = select.select([sock], [], [], 0)
        except (OSError, ValueError):
            return False
        if not readable and not (isinstance(sock, ssl.SSLSocket) and sock.pending()):
            return True
        try:
            sock.settimeout(0)
            sock.recv(65536)  # b"" is the peer's close; bytes are nobody's answer
        except (ssl.SSLWantReadError, BlockingIOError):
            return True
        except OSError:
            return False
        finally:
            with contextlib.suppress(OSError):
                sock.settimeout(self._timeout)
        return False

    def _drop(self) -> None:
        if self._sock is not None:
            with contextlib.suppress(OSError):
                self._sock.close()
        self._sock = None
        self._framer = MllpFramer(_MAX_ACK_BYTES)

    # -- the port ---------------------------------------------------------------------------

    def send(self, items: Sequence[Outgoing]) -> Answer:
        if len(items) != 1:
            raise ValueError(f"the mllp destination sends one message at a time, got {len(items)}")
        body = items[0].body
        expected = control_id(body)
        try:
            block = frame(body)
        except ValueError as exc:
            raise DestinationRejected(Answer("invalid", "body holds an MLLP block byte")) from exc
        if self._sock is not None and not self._alive(self._sock):
            self._drop()
        if self._sock is None:
            self._sock = self._connect()
        try:
            return ack_answer(self._exchange(self._sock, block), expected)
        except DestinationRejected:
            raise
        except DestinationUnavailable:
            self._drop()
            raise

    def _exchange(self, sock: socket.socket, block: bytes) -> bytes:
        """Write the block and read until one good frame: the answer. The socket keeps the
        timeout it was opened with; only an answer split over several reads (rare) narrows
        it to what is left of `timeout_s`, so the usual send costs no extra system calls."""
        deadline = 0.0
        try:
            sock.sendall(block)
            while True:
                data = sock.recv(65536)
                if (
                    data[:1] == SB
                    and data[-2:] == EB + CR
                    and data.count(EB) == 1
                    and data.count(SB) == 1
                    and not self._framer.buffered
                ):
                    if deadline:
                        sock.settimeout(self._timeout)
                    return data[1:-2]  # the usual case: the whole ACK block in one read
                if not data:
                    raise DestinationUnavailable(
                        f"MLLP peer {self._host}:{self._port} closed before its ACK"
                    )
                for f in self._framer.feed_data(data):
                    if f.ok:
                        if deadline:
                            sock.settimeout(self._timeout)
                        return f.payload
                now = time.monotonic()
                deadline = deadline or now + self._timeout
                if now >= deadline:
                    raise TimeoutError
                sock.settimeout(deadline - now)
        except TimeoutError as exc:
            raise DestinationUnavailable(
                f"MLLP peer {self._host}:{self._port}: no ACK within {self._timeout:g} s"
            ) from exc
        except OSError as exc:
            raise DestinationUnavailable(
                f"MLLP peer {self._host}:{self._port}: {_why(exc)}"
            ) from exc

    def close(self) -> None:
        self._drop()


def _why(exc: BaseException) -> str:
    """An OS or TLS error as a reason: its class and errno/strerror, nothing from the data."""
    if isinstance(exc, ssl.SSLError):
        return f"{type(exc).__name__} {exc.reason or ''}".strip()
    if isinstance(exc, OSError) and exc.strerror:
        return f"{type(exc).__name__} [{exc.errno}] {exc.strerror}"
    return type(exc).__name__


def open_destination(s: DestinationSettings, nats_servers: str = "") -> MllpDestination:
    """The adapter for `[destinations.<name>] kind = "mllp"` (`host`, `port`, TLS keys)."""
    del nats_servers
    if not s.port:
        raise ValueError(f'[destinations.{s.name}] kind = "mllp" needs a port')
    return MllpDestination(
        s.name, s.host, s.port, timeout_s=s.timeout_s, ssl_context=_client_context(s)
    )
