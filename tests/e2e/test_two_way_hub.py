"""Issue 18 done-when: a two-way hub end to end. One `isthmus serve` (subprocess; embedded,
or PostgreSQL + NATS when ISTHMUS_STORE / ISTHMUS_BUS say so) takes hospital traffic over
two MLLP channels (`mllp` from NORTH, `south` from SOUTH on its own port, each with its own
senders) and the FHIR API: Monday to Saturday of the generated hospital week
(isthmus.demo.hospital_week: 68 ADT, BAR, DFT, ORU and SIU messages, credits and a charge
on an ended account among them), a day of charges, payments and adjustments for four more
patients, and a FHIR Patient, Account and ChargeItems. It routes the status events to four
real peers:

- `pas` (mllp): python-hl7's asyncio MLLP server answering AA, with an `allow` list; gets
  PaymentPosted and AdjustmentPosted (built-in DFT^P03) and AccountBalanceChanged (BAR^P05);
- `portal` (webhook): an HTTP server checking the HMAC-SHA256 signature; ChargePosted;
- `backbone` (nats): a private `nats-server -js`, read by a durable JetStream pull
  consumer; every status event;
- `lockbox` (sftp): Debian's OpenSSH server on loopback; the `south` channel's charges, in
  files with control totals.

Each peer must get exactly what the routes say (types, counts, unique idempotency keys,
per-key order, MSH-10 = the delivery's control id), the three without `allow` no PHI of
the feed (tests/flows/test_phi.py's scanner, plus account and visit numbers), the `pas`
one exactly its allowed fields, and the ledger must balance. Then the fault part: the MLLP
receiver and the NATS server stop while more traffic comes in, come back, and everything
arrives, in order per key (duplicates only as at-least-once, same idempotency key).
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import os
import threading
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import hl7
import httpx
import nats
import pytest
from nats.js.api import ConsumerConfig

from isthmus.app import open_store
from isthmus.config import load_settings
from isthmus.connectors.dest_nats import stream_for
from isthmus.connectors.mllp_client import send_messages_sync
from isthmus.demo.hospital_week import START, hospital_week
from isthmus.flows.routes import control_id
from isthmus.model.status import PHI_FIELDS
from isthmus.store.ports import DeliveryQuery, DeliveryRecord
from tests.connectors.test_dest_mllp import Hl7Receiver
from tests.connectors.test_dest_nats import NatsServer
from tests.connectors.test_dest_sftp import SshServer
from tests.e2e.conftest import ServeFactory
from tests.e2e.helpers import HOST, TOKEN_SECRET, free_port, isthmus
from tests.e2e.week_model import Expected, chart_toml
from tests.flows.helpers import ft1, msh, pid, pv1
from tests.flows.helpers import hl7 as segments
from tests.flows.test_phi import leaks, phi_of
from tests.support import WaitTimeout, wait_until

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]
SCALE_OUT = ("ISTHMUS_STORE", "ISTHMUS_BUS", "ISTHMUS_PG_DSN", "ISTHMUS_NATS_URL")
SECRET = b"portal-hmac-key-two-way"
STATUS = ("ChargePosted", "PaymentPosted", "AdjustmentPosted", "AccountBalanceChanged")
PAS_ALLOW = (
    "mrn",
    "assigning_authority",
    "account_number",
    "amount",
    "currency",
    "transaction_id",
    "ft1_type",
    "charge_code",
    "balance",
)


# --- the peers ------------------------------------------------------------------------


class Pas(Hl7Receiver):
    """The MLLP receiver, keeping every message it got (and answering AA)."""

    def __init__(self) -> None:
        super().__init__()
        self.messages: list[hl7.Message] = []

    async def _client(self, reader: Any, writer: Any) -> None:
        self._writers.add(writer)
        try:
            while not writer.is_closing():
                msg = await reader.readmessage()
                self.messages.append(msg)
                writer.writemessage(msg.create_ack())
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError, hl7.exceptions.ParseException):
            pass
        finally:
            self._writers.discard(writer)
            writer.close()

    def control_ids(self) -> list[str]:
        return [str(m.segment("MSH")[10]) for m in list(self.messages)]


@dataclass
class Portal:
    """The webhook receiver: (idempotency key, body) of each signed POST; bad signatures."""

    arrivals: list[tuple[str, bytes]] = field(default_factory=list)
    bad: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    url: str = ""

    def got(self) -> list[tuple[str, bytes]]:
        with self.lock:
            return list(self.arrivals)


@pytest.fixture
def portal() -> Iterator[Portal]:
    rec = Portal()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            want = "sha256=" + hmac.new(SECRET, body, hashlib.sha256).hexdigest()
            ok = hmac.compare_digest(want, self.headers.get("X-Isthmus-Signature", ""))
            with rec.lock:
                if ok:
                    rec.arrivals.append((self.headers["Idempotency-Key"], body))
                else:
                    rec.bad.append(self.headers.get("Idempotency-Key", ""))
            self.send_response(200 if ok else 401)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer((HOST, 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    rec.url = f"http://{HOST}:{server.server_address[1]}/hooks/isthmus"
    yield rec
    server.shutdown()
    server.server_close()


@dataclass
class Consumer:
    """A durable JetStream pull consumer on the backbone subject: what other systems read."""

    url: str
    subject: str
    got: list[tuple[str, str, bytes]] = field(default_factory=list)  # msg id, key, body

    async def _drain(self) -> None:
        nc = await nats.connect(self.url, connect_timeout=2, allow_reconnect=False)
        try:
            js = nc.jetstream(timeout=5)
            sub = await js.pull_subscribe(
                self.subject,
                durable="two-way-reader",
                stream=stream_for(self.subject),
                config=ConsumerConfig(ack_wait=30),
            )
            while True:
                try:
                    batch = await sub.fetch(100, timeout=1)
                except TimeoutError:  # nats.errors.TimeoutError, or asyncio's own when the
                    return  # deadline ran out between the no-wait probe and the long pull
                for m in batch:
                    h = m.headers or {}
                    self.got.append(
                        (
                            unquote(h.get("Nats-Msg-Id", "")),
                            unquote(h.get("Isthmus-Key", "")),
                            m.data,
                        )
                    )
                    await m.ack()
        finally:
            await nc.close()

    def drain(self) -> list[tuple[str, str, bytes]]:
        asyncio.run(self._drain())
        return list(self.got)


# --- the feed -------------------------------------------------------------------------


@dataclass(frozen=True)
class Patient:
    mrn: str
    family: str
    given: str
    birth: str
    facility: str

    @property
    def account(self) -> str:
        return "AC" + self.mrn[2:]

    @property
    def visit(self) -> str:
        return "VN" + self.mrn[2:]

    def phi(self) -> set[str]:
        return {self.account, self.visit}

    def msg(self, cid: str, mtype: str, *rest: str) -> bytes:
        trigger = mtype.split("^")[1]
        return segments(
            msh(cid, mtype, self.facility),
            f"EVN|{trigger}|20261102101500",
            pid(self.mrn, self.family, self.given, self.birth, self.account),
            pv1(self.visit, self.facility),
            *rest,
        )

    @property
    def tag(self) -> str:  # control ids name the patient by position, not by MRN
        return str((NORTH + SOUTH).index(self))

    def admit(self, cid: str) -> bytes:
        return self.msg(cid, "ADT^A04^ADT_A01")

    def line(self, cid: str, ttype: str, amount: str, code: str = "80053") -> bytes:
        return self.msg(
            cid, "DFT^P03^DFT_P03", ft1(1, "TX" + cid.replace("-", ""), code, amount, ttype=ttype)
        )


NORTH = [
    Patient("MR7301", "ABERNATHY", "OCTAVIA", "19610214", "NORTH"),
    Patient("MR7302", "VILLANUEVA", "THADDEUS", "19750822", "NORTH"),
]
SOUTH = [
    Patient("MR8401", "KOWALCZYK", "BRIGIDA", "19830109", "SOUTH"),
    Patient("MR8402", "FITZGERALD", "LEOPOLDO", "19920617", "SOUTH"),
]
WEEK_DAYS = 6  # Sunday's merges and moves are the hospital week test's business
FHIR_MRN, FHIR_ACCOUNT = "MR9501", "AC9501"
FHIR_ACCOUNT_ID = "fa-7"  # a server-assigned logical id: charges post to the identifier
FHIR_PHI = {FHIR_MRN, FHIR_ACCOUNT, "WOJCIECHOWSKA", "PERPETUA", "1958-07-21", "19580721"}


def day_lines(p: Patient, tag: str, rounds: int) -> list[tuple[bytes, str]]:
    """`rounds` of CG, CG, PY, AJ lines for one patient: (message, FT1 type)."""
    out = []
    for r in range(rounds):
        for n, (ttype, amount, code) in enumerate(
            (
                ("CG", f"{120 + r}.00", "80053"),
                ("CG", f"{35 + r}.50", "85025"),
                ("PY", f"{60 + r}.00", "PAYMENT"),
                ("AJ", "-5.25", "ADJUST"),
            )
        ):
            cid = f"{tag}-P{p.tag}-{r}{n}"
            out.append((p.line(cid, ttype, amount, code), ttype))
    return out


def week_days() -> tuple[list[tuple[bytes, str]], list[tuple[bytes, str]], list[tuple[str, str]]]:
    """The hospital week's Monday to Saturday (isthmus.demo.hospital_week: ADT, BAR, DFT,
    ORU and SIU from SIMEHR), NORTH's messages for the `mllp` channel and SOUTH's for
    `south`, with the FT1 lines they post: (FT1 type, channel). Which lines post is the
    week's own model's word (tests/e2e/week_model.py): a line on an ended account is held
    behind a work item and says nothing."""
    north: list[tuple[bytes, str]] = []
    south: list[tuple[bytes, str]] = []
    lines: list[tuple[str, str]] = []
    model, held = Expected(), ("charge_to_closed_account", "open")
    for m in hospital_week():
        if m.day >= WEEK_DAYS:
            continue
        is_south = m.raw.split(b"|")[3] == b"SOUTH"
        (south if is_south else north).append((m.raw, ""))
        before = model.work_items[held]
        model.apply(m.fact, START + timedelta(days=m.day))
        if not m.fact.resent and model.work_items[held] == before:
            lines += [(line.ttype, "south" if is_south else "mllp") for line in m.fact.lines]
    return north, south, lines


def fhir_resources() -> list[tuple[str, dict[str, Any]]]:
    ident = {
        "system": "urn:oid:1.2.36.146.595.217.0.1",
        "value": FHIR_MRN,
        "type": {
            "coding": [{"system": "http://terminology.hl7.org/CodeSystem/v2-0203", "code": "MR"}]
        },
    }
    out: list[tuple[str, dict[str, Any]]] = [
        (
            "Patient",
            {
                "resourceType": "Patient",
                "id": "fp1",
                "identifier": [ident],
                "name": [{"family": "WOJCIECHOWSKA", "given": ["PERPETUA"]}],
                "birthDate": "1958-07-21",
                "gender": "female",
            },
        ),
        (
            "Account",
            {
                "resourceType": "Account",
                "id": FHIR_ACCOUNT_ID,
                "status": "active",
                "identifier": [{"value": FHIR_ACCOUNT}],
                "subject": [{"reference": "Patient/fp1"}],
                "owner": {"reference": "Organization/NORTH"},
            },
        ),
    ]
    for n, amount in enumerate((210.0, 48.25, 99.99)):
        out.append(
            (
                "ChargeItem",
                {
                    "resourceType": "ChargeItem",
                    "id": f"fci{n}",
                    "status": "billable",
                    "code": {
                        "coding": [{"system": "http://www.ama-assn.org/go/cpt", "code": "80053"}]
                    },
                    "subject": {"reference": "Patient/fp1"},
                    "occurrenceDateTime": "2026-11-02T10:00:00Z",
                    "quantity": {"value": 1},
                    "priceOverride": {"value": amount, "currency": "USD"},
                    "performingOrganization": {"reference": "Organization/NORTH"},
                    "costCenter": {"reference": "Organization/LAB"},
                    "account": [{"reference": f"Account/{FHIR_ACCOUNT_ID}"}],
                },
            )
        )
    return out


# --- checks ---------------------------------------------------------------------------

FT1_EVENT = {
    "CG": "ChargePosted",
    "CD": "ChargePosted",
    "PY": "PaymentPosted",
    "AJ": "AdjustmentPosted",
}


def routed(lines: list[tuple[str, str]]) -> dict[str, Counter[str]]:
    """What the routes send where, per event type, for posted lines (FT1 type, channel):
    each line is its own status event and an AccountBalanceChanged."""
    out: dict[str, Counter[str]] = {d: Counter() for d in ("pas", "portal", "backbone", "lockbox")}
    for ttype, channel in lines:
        for kind in (FT1_EVENT[ttype], "AccountBalanceChanged"):
            out["backbone"][kind] += 1
            if kind != "ChargePosted":
                out["pas"][kind] += 1
            else:
                out["portal"][kind] += 1
                if channel == "south":
                    out["lockbox"][kind] += 1
    return out


def in_order_per_key(arrivals: list[str], rows: list[DeliveryRecord]) -> None:
    """Each key's deliveries first arrived in the order the hub queued them (id order)."""
    first: dict[str, int] = {}
    for i, idem in enumerate(arrivals):
        first.setdefault(idem, i)
    by_key: dict[str, list[str]] = {}
    for r in rows:
        by_key.setdefault(r.key, []).append(r.idempotency_key)
    for key, queued in by_key.items():
        assert sorted(queued, key=first.__getitem__) == queued, key


def no_phi(texts: list[str], phi: set[str], where: str) -> None:
    for text in texts:
        found = leaks(text, phi)
        assert not found, f"{where}: PHI {sorted(found)} in {text[:200]!r}"


def test_a_day_in_over_two_channels_and_fhir_out_to_four_real_peers(
    serve_factory: ServeFactory, portal: Portal, tmp_path: Path
) -> None:
    nats_srv = NatsServer(tmp_path / "js")  # skip (fail under CI) without nats-server
    sshd = SshServer(tmp_path / "ssh")  # the same for sshd
    nats_srv.subject = "hospital.status"
    nats_srv.start()
    sshd.start()
    pas = Pas()
    pas.start()
    secret_file = tmp_path / "portal.key"
    secret_file.write_bytes(SECRET)
    south_port = free_port()
    quick = "timeout_s = 3\nbackoff_base_s = 0.2\nbackoff_max_s = 1\nbreaker_cooldown_s = 1\n"
    extra = f"""
[channels.mllp]
senders = ["EHR^NORTH", "SIMEHR^NORTH"]
[channels.south]
port = {south_port}
senders = ["EHR^SOUTH", "SIMEHR^SOUTH"]
ack_application = "ISTHMUS-S"

[destinations.pas]
kind = "mllp"
host = "127.0.0.1"
port = {pas.port}
receiving_application = "PAS"
receiving_facility = "NORTH"
allow = {json.dumps(list(PAS_ALLOW))}
{quick}
[destinations.portal]
kind = "webhook"
url = "{portal.url}"
secret_file = "{secret_file}"
{quick}
[destinations.backbone]
kind = "nats"
servers = "{nats_srv.url}"
subject = "{nats_srv.subject}"
{quick}
[destinations.lockbox]
kind = "sftp"
host = "127.0.0.1"
port = {sshd.port}
user = "{sshd.user}"
key_file = "{sshd.user_key}"
known_hosts = "{sshd.known_hosts}"
path = "{sshd.inbox}"
batch = 4
{quick}
[[routes]]
name = "postings-to-pas"
events = ["PaymentPosted", "AdjustmentPosted", "AccountBalanceChanged"]
destinations = ["pas"]
[[routes]]
name = "charges-to-portal"
events = ["ChargePosted"]
destinations = ["portal"]
[[routes]]
name = "status-to-backbone"
events = {json.dumps(list(STATUS))}
destinations = ["backbone"]
[[routes]]
name = "south-charges-to-lockbox"
events = ["ChargePosted"]
channels = ["south"]
destinations = ["lockbox"]
"""
    # the demo chart (this file's own lines) with the hospital week's chart over it
    config = tmp_path / "hub" / "isthmus.toml"
    config.parent.mkdir()
    config.write_text('[mappings]\ninclude = "demo"\n' + chart_toml() + extra)
    env = {k: os.environ[k] for k in SCALE_OUT if os.environ.get(k)}
    consumer = Consumer(nats_srv.url, nats_srv.subject)
    try:
        hub = serve_factory(config=config, env=env)
        run_the_day(hub, env, config, pas, portal, consumer, nats_srv, sshd, south_port)
    finally:
        if pas._loop is not None:
            pas.stop()
        nats_srv.stop()
        sshd.stop()


def run_the_day(
    hub: Any,
    env: dict[str, str],
    config: Path,
    pas: Pas,
    portal: Portal,
    consumer: Consumer,
    nats_srv: NatsServer,
    sshd: SshServer,
    south_port: int,
) -> None:
    # --- the day's traffic: two MLLP channels and FHIR
    week_north, week_south, week_lines = week_days()
    north = week_north + [(p.admit(f"NA-P{p.tag}"), "") for p in NORTH]
    north += [m for p in NORTH for m in day_lines(p, "N", 2)]
    south = week_south + [(p.admit(f"SA-P{p.tag}"), "") for p in SOUTH]
    south += [m for p in SOUTH for m in day_lines(p, "S", 2)]
    for port, msgs in ((hub.mllp_port, north), (south_port, south)):
        report = send_messages_sync(HOST, port, [m for m, _ in msgs], connections=1, window=1)
        assert report.acked == len(msgs)
    init = isthmus("init", "--json", data_dir=hub.data_dir, env=env)
    assert init.returncode == 0, init.stderr
    token = json.loads(init.stdout)["token"]
    for kind, resource in fhir_resources():
        r = httpx.post(
            f"http://{HOST}:{hub.http_port}/fhir/{kind}",
            json=resource,
            headers={"Authorization": f"Bearer {token}", "Content-Type": "application/fhir+json"},
            timeout=15,
        )
        assert r.status_code == 201, r.text
    lines = [(t, "mllp") for _, t in north if t] + [(t, "south") for _, t in south if t]
    lines += week_lines + [("CG", "fhir")] * 3  # the three ChargeItems
    expected = routed(lines)

    settings = load_settings(
        config, data_dir=hub.data_dir, env={**env, "ISTHMUS_TOKEN_SECRET": TOKEN_SECRET}
    )
    store = open_store(settings)
    try:

        def rows(dest: str) -> list[DeliveryRecord]:
            return store.deliveries(DeliveryQuery(destination=dest, limit=100_000))

        def all_sent(want: dict[str, Counter[str]]) -> bool:
            got = {d: (len(rs := rows(d)), sum(r.status == "sent" for r in rs)) for d in want}
            return got == {d: (c.total(), c.total()) for d, c in want.items()}

        def settled(want: dict[str, Counter[str]]) -> None:
            try:
                wait_until(lambda: all_sent(want), timeout=90, what="every delivery sent")
            except WaitTimeout:  # fail with what differs: queued per type, and not sent
                got = {d: Counter(r.event_type for r in rows(d)) for d in want}
                assert got == want
                assert {d: [r.status for r in rows(d) if r.status != "sent"] for d in want} == {
                    d: [] for d in want
                }
                raise

        settled(expected)
        check_peers(store, rows, pas, portal, consumer, sshd, expected, exact=True)
        ledger = json.loads(
            isthmus("ledger", "trial-balance", "--json", data_dir=hub.data_dir, env=env).stdout
        )
        assert ledger["balanced"] is True

        # --- the fault part: the MLLP receiver and the NATS server down under traffic
        pas.stop()
        nats_srv.stop()
        more_north = [m for p in NORTH for m in day_lines(p, "NF", 1)]
        more_south = [m for p in SOUTH for m in day_lines(p, "SF", 1)]
        for port, msgs in ((hub.mllp_port, more_north), (south_port, more_south)):
            report = send_messages_sync(HOST, port, [m for m, _ in msgs], connections=1, window=1)
            assert report.acked == len(msgs)
        lines += [(t, "mllp") for _, t in more_north] + [(t, "south") for _, t in more_south]
        expected = routed(lines)

        def retrying() -> bool:
            down = [
                r
                for d in ("pas", "backbone")
                for r in rows(d)
                if r.status == "pending" and r.attempts >= 2
            ]
            return {r.destination for r in down} == {"pas", "backbone"}

        wait_until(retrying, timeout=60, what="pas and backbone retried while down")
        wait_until(
            lambda: all_sent({d: expected[d] for d in ("portal", "lockbox")}),
            what="portal and lockbox served while pas and backbone are down",
        )
        pas.start()
        nats_srv.start()
        settled(expected)
        check_peers(store, rows, pas, portal, consumer, sshd, expected, exact=False)
        ledger = json.loads(
            isthmus("ledger", "trial-balance", "--json", data_dir=hub.data_dir, env=env).stdout
        )
        assert ledger["balanced"] is True
    finally:
        store.close()


def check_peers(
    store: Any,
    rows: Any,
    pas: Pas,
    portal: Portal,
    consumer: Consumer,
    sshd: SshServer,
    expected: dict[str, Counter[str]],
    *,
    exact: bool,
) -> None:
    """Each peer got what the routes say; `exact`: each delivery once (no fault yet)."""
    people = NORTH + SOUTH
    week = [m for m in hospital_week() if m.day < WEEK_DAYS]
    phi = phi_of([p.admit("X") for p in people] + [m.raw for m in week]) | FHIR_PHI
    phi |= {v for m in week if (who := m.fact.person) for v in (who.account, who.visit)}
    # what pas may get: (MRN, account number) -> assigning authority
    allowed = (
        {(p.mrn, p.account): "HOSPMRN" for p in people}
        | {(w.mrn, w.account): w.authority for m in week if (w := m.fact.person)}
        | {(FHIR_MRN, FHIR_ACCOUNT): ""}
    )
    phi |= {v for p in people for v in p.phi()}
    assert {"MR7301", "ABERNATHY", "19610214", "AC7301", "VN7301"} <= phi

    def delivered(dest: str, got: list[str]) -> list[DeliveryRecord]:
        rs: list[DeliveryRecord] = rows(dest)
        assert Counter(r.event_type for r in rs) == expected[dest], dest
        keys = [r.idempotency_key for r in rs]
        assert len(set(keys)) == len(keys), dest  # idempotency keys unique
        assert set(got) == set(keys), dest  # every one, nothing else
        if exact:
            assert len(got) == len(keys), dest
        in_order_per_key(got, rs)
        return rs

    # pas: DFT^P03 for payments and adjustments, BAR^P05 for balances; MSH-10 = control id
    msgs = list(pas.messages)
    by_control = {control_id(r.idempotency_key): r for r in rows("pas")}
    got = []
    for m in msgs:
        r = by_control[str(m.segment("MSH")[10])]
        got.append(r.idempotency_key)
        mtype = str(m.segment("MSH")[9])
        want = "BAR^P05^BAR_P05" if r.event_type == "AccountBalanceChanged" else "DFT^P03^DFT_P03"
        assert mtype == want
        assert r.event_type in ("PaymentPosted", "AdjustmentPosted", "AccountBalanceChanged")
        # allowed (mrn, assigning_authority, account_number, amount, ...) leave for pas
        pid_ = m.segment("PID")
        mrn, authority, account = str(pid_[3][0][0]), str(pid_[3][0][3]), str(pid_[18])
        assert authority and (mrn, account) in allowed, (mrn, account)
        if mrn != FHIR_MRN:
            assert allowed[(mrn, account)] == authority
        # not allowed: visit_number (no PV1-19), and names and birth dates never are fields
        assert not any(str(seg[0]) == "PV1" and str(seg[19]) for seg in m)
        assert not leaks(str(m), phi - {v for pair in allowed for v in pair})
        if r.event_type == "AccountBalanceChanged":
            assert Decimal(str(m.segment("PV1")[46]))  # the balance (allowed)
        else:
            ft1_ = m.segment("FT1")
            assert str(ft1_[6]) == {"PaymentPosted": "PY", "AdjustmentPosted": "AJ"}[r.event_type]
            assert str(ft1_[11][0][1]) == "USD" and Decimal(str(ft1_[11][0][0]))
    delivered("pas", got)

    # portal: ChargePosted only, signed, no PHI, no PHI fields
    assert not portal.bad
    arrivals = portal.got()
    delivered("portal", [k for k, _ in arrivals])
    for k, body in arrivals:
        doc = json.loads(body)
        assert doc["type"] == "ChargePosted" and doc["idempotency_key"] == k
        assert not PHI_FIELDS & doc.keys()
    no_phi([b.decode() for _, b in arrivals], phi, "webhook")

    # backbone: every status event, read by a JetStream consumer
    seen = consumer.drain()
    rs = delivered("backbone", [k for k, _, _ in seen])
    assert Counter(r.event_type for r in rs).keys() == set(STATUS)
    key_of = {r.idempotency_key: r.key for r in rs}
    credits = 0
    for k, key, body in seen:
        doc = json.loads(body)
        assert doc["type"] in STATUS and key == key_of[k]
        assert not PHI_FIELDS & doc.keys()
        if doc["type"] == "ChargePosted":  # a credit (CD, or a negative CG) says so
            credits += doc["transaction_type"] == "CD"
            assert doc["ft1_type"] == doc["transaction_type"] and Decimal(doc["amount"]) > 0
    assert credits >= 2  # the week's Saturday credit and reversed charge
    no_phi([b.decode() + key for _, key, b in seen], phi, "nats")

    # lockbox: the south channel's charges in files with control totals
    files = [f for f in sshd.files() if f.name.endswith(".jsonl")]
    assert not list(sshd.inbox.glob("*.part"))
    records = []
    for f in files:
        *jsonl, last = f.read_text().splitlines()
        control = json.loads(last)["control"]
        docs = [json.loads(x) for x in jsonl]
        assert control["count"] == len(docs)
        total = sum((Decimal(d["amount"]) for d in docs), Decimal(0))
        assert {c: Decimal(v) for c, v in control["amounts"].items()} == {"USD": total}
        records += docs
    no_phi([f.read_text() for f in files], phi, "sftp")
    rs = delivered("lockbox", [d["idempotency_key"] for d in records])
    assert {d["type"] for d in records} == {"ChargePosted"}
    assert {d["facility"] for d in records} == {"SOUTH"}
    assert {r.event_type for r in rs} == {"ChargePosted"}
