"""A small hub for the console tests: a few charges through the real inbox and flows.

One charge posted and exported to an ERP batch (journey 1), one with an unmapped charge
code waiting in revenue-integrity (journey 2), one whose events sit in the dead-letter
queue (journey 3), an account with a credit balance to refund (journey 4), one rejected
message, and a token per role. Built in-process on the
embedded adapters; the browser tests then run `isthmus serve` over the same data dir and
the same config: `[mappings] include = "demo"`, since a hub's own chart is empty (issue 15).
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass
from pathlib import Path

from isthmus.app import Hub
from isthmus.config import Settings, load_settings
from isthmus.flows.file_intake import take_file
from isthmus.flows.relay import relay_unpublished
from isthmus.governance import identity, rbac
from tests.e2e.helpers import TOKEN_SECRET
from tests.flows.helpers import adt, bar, charge, dft, ft1

POSTED = "CHG1001"  # mapped code 80053, posted and sealed into an ERP batch
UNMAPPED = "CHG1002"  # code 99999: an unmapped_charge_code work item
DEAD = "CHG1003"  # its events dead-lettered
REJECTED = "BAD1004"
CREDIT_ACCOUNT = "A5004"  # charged 100.00, credited 800.00: a 700.00 credit to refund
CHART = '[mappings]\ninclude = "demo"\n'  # the seed's facility, departments and codes
USERS = {
    rbac.ADMIN: "root",
    rbac.ENGINEER: "eli",
    rbac.REVENUE: "rita",
    rbac.FINANCE: "fiona",
    rbac.AUDITOR: "otto",
    rbac.READ_ONLY: "rod",
}


@dataclass
class Site:
    data_dir: Path
    tokens: dict[str, str]  # role -> clear token of USERS[role]
    config: Path  # the site's config file (the demo chart, at least)

    def settings(self) -> Settings:
        """The settings `isthmus serve --config` reads for this site, in-process."""
        return dataclasses.replace(
            load_settings(self.config, data_dir=self.data_dir), token_secret=TOKEN_SECRET
        )


def _take(hub: Hub, name: str, raw: bytes, now: float) -> None:
    take_file(hub.store, hub.settings, raw, name, now)
    relay_unpublished(hub.store, hub.bus)


def build(data_dir: Path) -> Site:
    """A new data dir holding the seed below and a token per role."""
    return dress(data_dir)


def dress(data_dir: Path, config: Path | None = None) -> Site:
    """Add the seed and the identities to a data dir (new, or one `isthmus demo` made);
    `config` (written with the demo chart beside the data dir when not given) must map the
    seed's charges."""
    if config is None:
        config = data_dir.parent / "site.toml"
        config.write_text(CHART, encoding="utf-8")
    site = Site(data_dir, {}, config)
    hub = Hub.open(site.settings())
    now = time.time()
    try:
        seed(hub, now)
        tokens = _identities(hub, now)
    finally:
        hub.close()
    return dataclasses.replace(site, tokens=tokens)


def seed(hub: Hub, now: float) -> None:
    for mrn in ("5001", "5002", "5003", "5004"):
        _take(hub, f"adt-{mrn}.hl7", adt(f"ADT{mrn}", mrn), now)
    _take(hub, "c1.hl7", charge(POSTED, "5001", "125.00", code="80053"), now)
    _take(hub, "c2.hl7", charge(UNMAPPED, "5002", "310.00", code="99999"), now)
    _take(
        hub,
        "bad.hl7",
        b"MSH|^~\\&|EHR|NORTH|ISTHMUS|HUB|20261102||DFT^P03|"
        + REJECTED.encode()
        + b"|P|2.5.1\rPID|garbage\r",
        now,
    )
    _take(hub, "bar-5004.hl7", bar("BAR5004", "5004"), now)
    _take(
        hub,
        "c4.hl7",
        dft(
            "CRD1005",
            "5004",
            ft1(1, "TC1", amount="100.00"),
            ft1(2, "TC2", amount="800.00", ttype="CD"),
        ),
        now,
    )
    hub.worker().drain()
    hub.export()
    _take(hub, "c3.hl7", charge(DEAD, "5003", "88.50", code="85025"), now)
    for p in range(hub.bus.partitions):
        for d in hub.bus.fetch(p, 100, now + 1):
            hub.bus.dead(d, "ERP mapping service timed out (seeded for the console test)", now)


def _identities(hub: Hub, now: float) -> dict[str, str]:
    gov = hub.governance
    tokens = {}
    for role, name in USERS.items():
        p = identity.principal(name, "user", (role,), now)
        issued = identity.issue(p, (role,), now)
        if role == rbac.ADMIN:
            assert gov.initialize(p, issued.token)
        else:
            gov.save_principal(p)
            gov.add_token(issued.token)
        tokens[role] = issued.clear
    return tokens
