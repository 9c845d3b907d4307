"""Builders for the flow tests: small HL7 v2.5.1 messages and a store + bus + worker rig.

The messages are hand-made so each test states exactly the fact it is about (one MRN, one
FT1 amount, one date); the simulated hospital day (`isthmus.demo.ehr_day`) covers volume.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

from isthmus.app import SystemClock
from isthmus.bus.memory import MemoryBus
from isthmus.demo.chart import demo_mappings
from isthmus.flows.accounts import account_token
from isthmus.flows.hl7_inbound import classify
from isthmus.flows.processor import Processor
from isthmus.flows.relay import relay_unpublished
from isthmus.flows.retry import RetryPolicy
from isthmus.flows.worker import Worker
from isthmus.ledger.balance import account_balances, trial_balance
from isthmus.ledger.periods import FiscalCalendar
from isthmus.store.ports import Inbound
from isthmus.store.sqlite import SqliteStore

CHANNEL = "mllp"
SECRET = "flows-test-secret"
AUTH = "HOSPMRN"
AR = "1200"
DAY = "20261102"


def msh(cid: str, mtype: str, facility: str = "NORTH") -> str:
    return f"MSH|^~\\&|EHR|{facility}|ISTHMUS|HUB|{DAY}101500||{mtype}|{cid}|P|2.5.1"


def ident(cid: str, facility: str = "NORTH", app: str = "EHR") -> str:
    """The inbox identity of a message built by `msh`: `<MSH-3>^<MSH-4>:<MSH-10>`."""
    return f"{app}^{facility}:{cid}"


def corr(cid: str, facility: str = "NORTH") -> str:
    """The correlation id of a message built by `msh` (its events are `<corr>/<n>`)."""
    return f"{CHANNEL}/{ident(cid, facility)}"


def pid(
    mrn: str,
    family: str = "DOE",
    given: str = "JANE",
    birth: str = "19800101",
    account: str = "",
    auth: str = AUTH,
) -> str:
    return (
        f"PID|1||{mrn}^^^{auth}^MR||{family}^{given}^^^^^L||{birth}|F||||||||||"
        f"{account or 'A' + mrn}^^^NORTH^AN"
    )


def pv1(visit: str, facility: str = "NORTH", pclass: str = "O") -> str:
    return f"PV1|1|{pclass}|OPC^1^A^{facility}|R||||||MED|||||||||{visit}^^^{facility}^VN"


def ft1(
    seq: int,
    txn: str,
    code: str = "80053",
    amount: str = "100.00",
    *,
    dept: str = "LAB",
    when: str = DAY,
    ttype: str = "CG",
) -> str:
    return (
        f"FT1|{seq}|{txn}||{when}|{when}|{ttype}|{code}^TEST^CPT|||1|{amount}&USD|"
        f"{amount}&USD|{dept}^DEPT"
    )


def hl7(*segments: str) -> bytes:
    return ("\r".join(segments) + "\r").encode()


def adt(cid: str, mrn: str, trigger: str = "A04", **names: str) -> bytes:
    return hl7(
        msh(cid, f"ADT^{trigger}^ADT_A01"),
        f"EVN|{trigger}|{DAY}101500",
        pid(mrn, **names),
        pv1("V" + mrn),
    )


def bar(cid: str, mrn: str) -> bytes:
    return hl7(msh(cid, "BAR^P01^BAR_P01"), f"EVN|P01|{DAY}101500", pid(mrn), pv1("V" + mrn))


def dft(cid: str, mrn: str, *lines: str) -> bytes:
    return hl7(
        msh(cid, "DFT^P03^DFT_P03"), f"EVN|P03|{DAY}101500", pid(mrn), pv1("V" + mrn), *lines
    )


def charge(cid: str, mrn: str, amount: str = "100.00", **kw: str) -> bytes:
    return dft(cid, mrn, ft1(1, "T" + cid, amount=amount, **kw))


def merge(cid: str, survivor: str, merged: str) -> bytes:
    return hl7(
        msh(cid, "ADT^A40^ADT_A39"),
        f"EVN|A40|{DAY}101500",
        pid(survivor),
        f"MRG|{merged}^^^{AUTH}^MR",
    )


def key(mrn: str) -> str:
    return f"{AUTH}|{mrn}"


def token(mrn: str) -> str:
    return account_token(SECRET, key(mrn))


def make_processor(calendar: FiscalCalendar | None = None) -> Processor:
    return Processor(
        secret=SECRET,
        mappings=demo_mappings(),
        ar_account=AR,
        calendar=calendar or FiscalCalendar(),
    )


@dataclass
class Rig:
    """A store, a bus and a worker wired the way `isthmus.app.Hub` wires them."""

    store: SqliteStore
    bus: MemoryBus
    worker: Worker

    def ingest(self, raws: Sequence[bytes], now: float = 1_800_000_000.0) -> list[Inbound]:
        inbound = [
            classify(r, channel=CHANNEL, peer="test", now=now, tenant="default", currency="USD")[0]
            for r in raws
        ]
        self.store.accept(inbound)
        relay_unpublished(self.store, self.bus)
        return inbound

    def drain(self) -> int:
        return self.worker.drain()

    def drain_at(self, now: float) -> int:
        """Process every partition until nothing is visible at `now` (retry clocks)."""
        total = 0
        while n := sum(self.worker.run_once(p, now) for p in range(self.bus.partitions)):
            total += n
        return total

    def ar(self) -> dict[tuple[str, str], Decimal]:
        return account_balances(self.store.journal_lines(), account=AR)

    def balanced(self) -> bool:
        return trial_balance(self.store.journal_lines()).balanced

    def entry_keys(self) -> list[str]:
        return [e.entry_key for e in self.store.entries()]


def make_rig(
    tmp: Path,
    *,
    partitions: int = 2,
    processor: object | None = None,
    policy: RetryPolicy | None = None,
    calendar: FiscalCalendar | None = None,
) -> Rig:
    store = SqliteStore(tmp / "store.db", synchronous="NORMAL")
    bus = MemoryBus(partitions=partitions)
    proc = processor or make_processor(calendar)
    worker = Worker(
        bus,
        store,
        proc,
        policy or RetryPolicy(),  # type: ignore[arg-type]
        partitions=range(partitions),
        clock=SystemClock(),
    )
    return Rig(store, bus, worker)
