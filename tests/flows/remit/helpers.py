"""Hand-made 835s (005010X221A1) for the remittance tests, and a rig that ingests them.

Each claim is written out so a test states exactly the money it is about; the builder
computes what must agree (BPR02 = sum of CLP04 - sum of PLB04, SE01) so the 835s balance
unless a test wants otherwise.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from decimal import Decimal

from isthmus.flows.interchanges import X12Intake, x12_intake
from isthmus.flows.relay import relay_unpublished
from tests.flows.helpers import Rig

PATIENT_FAMILY, PATIENT_GIVEN = "ZEBULON", "QUIXANDRA"  # NM1*QC: PHI that must stay out
PAYEE_NPI = "1999999984"


@dataclass
class Clp:
    pcn: str
    paid: str
    charge: str = ""  # default: CLP04 + every CAS, so the claim balances (X221A1 1.10.2.1)
    status: str = "1"
    responsibility: str = ""
    icn: str = "94060555410000"
    cas: Sequence[tuple[str, str, str]] = ()
    line_cas: Sequence[tuple[str, str, str]] = ()
    remarks: Sequence[str] = ()

    @property
    def charge_amount(self) -> str:
        if self.charge:
            return self.charge
        cas = sum((Decimal(a) for _, _, a in (*self.cas, *self.line_cas)), Decimal(0))
        return f"{Decimal(self.paid) + cas:.2f}"

    def segments(self) -> list[str]:
        segs = [
            f"CLP*{self.pcn}*{self.status}*{self.charge_amount}*{self.paid}*"
            f"{self.responsibility}*12*{self.icn}"
        ]
        segs += [f"CAS*{g}*{r}*{a}" for g, r, a in self.cas]
        segs.append(f"NM1*QC*1*{PATIENT_FAMILY}*{PATIENT_GIVEN}****MI*W99887766")
        line_charge = Decimal(self.charge_amount) - sum(
            (Decimal(a) for _, _, a in self.cas), Decimal(0)
        )
        line_paid = Decimal(self.paid)
        segs.append(f"SVC*HC:99213*{line_charge}*{line_paid}")
        segs.append("DTM*472*20261102")
        segs += [f"CAS*{g}*{r}*{a}" for g, r, a in self.line_cas]
        segs += [f"LQ*HE*{r}" for r in self.remarks]
        return segs


@dataclass
class Remit:
    claims: Sequence[Clp]
    icn: int = 1
    sender: str = "PAYERX"
    trace: str = "EFT0001"
    plb: Sequence[tuple[str, str]] = ()  # (reason, amount)
    st: str = "0001"
    bpr: str | None = None
    extra: list[str] = field(default_factory=list)

    def build(self) -> bytes:
        paid = sum((Decimal(c.paid) for c in self.claims), Decimal(0))
        plb_total = sum((Decimal(a) for _, a in self.plb), Decimal(0))
        bpr = self.bpr or f"{paid - plb_total:.2f}"
        body = [
            f"ST*835*{self.st}*005010X221A1",
            f"BPR*I*{bpr}*C*ACH*CCP*01*999999992*DA*123456*1512345678**01*999988880*DA*"
            "98765*20261105",
            f"TRN*1*{self.trace}*1512345678",
            "DTM*405*20261104",
            "N1*PR*ACME HEALTH PLAN*XV*PAYER01",
            f"N1*PE*NORTH HOSPITAL*XX*{PAYEE_NPI}",
            "REF*TJ*123456789",
            "LX*1",
        ]
        for c in self.claims:
            body += c.segments()
        body += [f"PLB*{PAYEE_NPI}*20261231*{r}:REF{i}*{a}" for i, (r, a) in enumerate(self.plb)]
        body += self.extra
        body.append(f"SE*{len(body) + 1}*{self.st}")
        isa = (
            f"ISA*00*          *00*          *ZZ*{self.sender:<15}*ZZ*{'NORTHHOSP':<15}*"
            f"261105*1200*^*00501*{self.icn:09d}*0*T*:"
        )
        segs = [
            isa,
            f"GS*HP*{self.sender}*NORTHHOSP*20261105*1200*{self.icn}*X*005010X221A1",
            *body,
            f"GE*1*{self.icn}",
            f"IEA*1*{self.icn:09d}",
        ]
        return ("~\n".join(segs) + "~\n").encode()


def ingest_x12(rig: Rig, raw: bytes, now: float = 1_800_000_000.0) -> X12Intake:
    """What `isthmus ingest` does with one interchange, on the flow-test rig."""
    intake = x12_intake(raw, peer="test", now=now, tenant="default")
    [res] = rig.store.accept([intake.inbound])
    if res.conflict:
        intake = x12_intake(raw, peer="test", now=now, tenant="default", distinct=True)
        rig.store.accept([intake.inbound])
    relay_unpublished(rig.store, rig.bus)
    return intake
