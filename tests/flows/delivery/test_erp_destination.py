"""The ERP as a destination like the others (issue 18): `isthmus destinations`,
`GET /api/v1/destinations` and the console list it as `erp` with counts from its own
batch outbox (flows/export.py); a batch file it rejected is dead, listed as `erp:<id>`,
resent through the destinations surfaces (roles, audit trail, the `erp_rejected` work
item resubmitted) and delivered by the ERP dispatcher. Real stores (memory, SQLite,
PostgreSQL) and the real hub in the mode the environment names."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from isthmus.app import Hub, erp_dispatcher
from isthmus.cli.main import run
from isthmus.config import ConfigError, load_settings
from isthmus.flows import destinations
from isthmus.flows.export import (
    REJECTED_KIND,
    Dispatcher,
    ErpRejected,
    rejection_event_id,
    seal_batches,
)
from isthmus.flows.retry import RetryPolicy
from isthmus.governance import identity, rbac
from isthmus.ledger.batch_codec import BATCH_FORMAT, QueuedBatch
from isthmus.store.ports import Store
from tests.api.fhir_call import call
from tests.api.test_channels_api import Browser
from tests.connectors.erp.contract import charges

REASON = "account 4999 does not exist in period 2026-11"
CONFIG = """
[destinations.portal]
kind = "webhook"
url = "https://portal.example.org/hooks"
"""


class Rejecting:
    """An ERP that refuses the batch (a business refusal) until it is fixed."""

    def __init__(self) -> None:
        self.seen: list[str] = []
        self.fixed = False

    def deliver(self, queued: QueuedBatch) -> None:
        self.seen.append(queued.batch.batch_id)
        if not self.fixed:
            raise ErpRejected(REASON)


def post(store: Store, prefix: str, n: int = 8) -> None:
    with store.transaction() as tx:
        for e in charges(n, prefix=prefix):
            tx.insert_entry(e)


def erp_of(rows: list[dict[str, object]]) -> dict[str, object]:
    [row] = [r for r in rows if r["name"] == "erp"]
    return row


def test_the_erp_row_counts_its_outbox_and_a_dead_batch_is_resent(
    store: Store, tmp_path: Path
) -> None:
    settings = load_settings(None, data_dir=tmp_path / "d", env={})
    t0 = time.time() - 1000
    post(store, "a")
    [batch] = seal_batches(store, policy_of=lambda _c: "summary", now=t0)
    row = erp_of(destinations.table(settings, store, t0 + 90, erp_dir=tmp_path / "x"))
    assert (row["kind"], row["address"], row["state"]) == ("file", str(tmp_path / "x"), "closed")
    assert (row["pending"], row["sent"], row["dead"], row["oldest_pending_age_s"]) == (
        1,
        0,
        0,
        90.0,
    )
    sink = Rejecting()
    Dispatcher(store, sink, RetryPolicy()).run_once(t0 + 100)
    assert sink.seen == [batch.batch_id]
    row = erp_of(destinations.table(settings, store, t0 + 200))
    assert (row["pending"], row["sent"], row["dead"], row["last_answer"]) == (0, 0, 1, REASON)
    assert row["oldest_pending_age_s"] is None
    [dead] = [o for o in store.outbox_items("dead")]
    ref = f"erp:{dead.id}"
    recent = destinations.recent(store, status="dead")
    assert [(r["id"], r["destination"], r["event_type"], r["last_error"]) for r in recent] == [
        (ref, "erp", f"JournalBatch ({BATCH_FORMAT})", REASON)
    ]
    assert "payload" not in recent[0] and recent[0]["bytes"] == len(dead.payload)
    [item] = store.work_items("open")
    assert (item.kind, item.event_id) == (REJECTED_KIND, rejection_event_id(dead.id))

    done = destinations.resend(
        settings, store, ids=[ref, "erp:999999", 999999], by="eng", now=t0 + 300
    )
    assert (done["resent"], done["skipped"]) == ([ref], ["erp:999999", 999999])
    assert store.work_item(item.id).status == "resubmitted"  # type: ignore[union-attr]
    assert destinations.why_not(store, ref) == (
        409,
        f"ERP batch file {ref} is pending already: it will be sent",
    )
    assert destinations.why_not(store, "erp:999999")[0] == 404
    assert (
        destinations.resend(settings, store, ids=[ref], by="eng", now=t0 + 301)["resent"] == []
    )  # pending: not twice
    sink.fixed = True  # the fix, in the ERP
    assert Dispatcher(store, sink, RetryPolicy()).run_once(t0 + 400) == 1
    row = erp_of(destinations.table(settings, store, t0 + 500))
    assert (row["pending"], row["sent"], row["dead"], row["last_answer"]) == (0, 1, 0, "sent")
    assert store.work_item(item.id).status == "resolved"  # type: ignore[union-attr]
    status, reason = destinations.why_not(store, ref)
    assert status == 409 and "only a dead one" in reason  # sent: never posted twice


def test_erp_address_kind_and_reserved_name(tmp_path: Path) -> None:
    conf = tmp_path / "i.toml"
    conf.write_text('[erp]\nkind = "rest"\nurl = "https://u:pw@erp.example.org:8443/api"\n')
    s = load_settings(conf, data_dir=tmp_path / "d", env={})
    from isthmus.store.memory import MemoryStore  # noqa: PLC0415

    row = erp_of(destinations.table(s, MemoryStore(), time.time()))
    assert (row["kind"], row["address"], row["sent"]) == (
        "rest",
        "https://erp.example.org:8443/api",
        0,
    )
    conf.write_text('[erp]\nkind = "tryton"\nurl = "http://erp:8000"\ndatabase = "books"\n')
    row = erp_of(
        destinations.table(
            load_settings(conf, data_dir=tmp_path / "d", env={}), MemoryStore(), time.time()
        )
    )
    assert (row["kind"], row["address"]) == ("tryton", "http://erp:8000 (books)")
    conf.write_text('[destinations.erp]\nkind = "file"\npath = "/tmp/x"\n')
    with pytest.raises(ConfigError, match=r"destinations\.erp\]: the name erp"):
        load_settings(conf, data_dir=tmp_path / "d", env={})
    for bad in ("erp:", "erp:x", "erp:-1", "0", "7x", "erp:1:2"):
        with pytest.raises(ValueError, match="no delivery id"):
            destinations.parse_id(bad)
    assert (destinations.parse_id("12"), destinations.parse_id("erp:012")) == (12, "erp:12")


Site = tuple[Hub, dict[str, str], Path, Path]


@pytest.fixture
def site(tmp_path: Path) -> Iterator[Site]:
    """A hub (the environment's mode) whose ERP sent one batch and rejected a second
    one."""
    conf = tmp_path / "isthmus.toml"
    conf.write_text(CONFIG)
    data = tmp_path / "data"
    hub = Hub.open(load_settings(conf, data_dir=data))
    try:
        now = time.time()
        tokens = {}
        for name, role in (
            ("root", rbac.ADMIN),
            ("eng", rbac.ENGINEER),
            ("reader", rbac.READ_ONLY),
        ):
            p = identity.principal(name, "user", (role,), now)
            issued = identity.issue(p, (role,), now)
            if name == "root":
                assert hub.governance.initialize(p, issued.token)
            else:
                hub.governance.save_principal(p)
                hub.governance.add_token(issued.token)
            tokens[name] = issued.clear
        post(hub.store, "sent")
        assert hub.export() == (1, 1)  # the file sink: one row, its CSV and JSONL files
        post(hub.store, "refused")
        seal_batches(hub.store, policy_of=lambda _c: "summary", now=time.time())
        erp_dispatcher(hub.settings, hub.store, Rejecting(), hub.policy).run_once(time.time())
        yield hub, tokens, conf, data
    finally:
        hub.close()


def dead_ref(hub: Hub) -> str:
    [dead] = hub.store.outbox_items("dead")
    return f"erp:{dead.id}"


def test_api_lists_the_erp_and_resends_its_dead_batch(site: Site) -> None:
    hub, tokens, _, _ = site
    ref = dead_ref(hub)
    r = call(hub, "GET", "/api/v1/destinations", token=tokens["reader"])
    assert r.status_code == 200
    rows = {d["name"]: d for d in r.json()["destinations"]}
    assert set(rows) == {"erp", "portal"}
    assert (rows["erp"]["kind"], rows["erp"]["address"]) == ("file", str(hub.export_dir))
    assert (
        rows["erp"]["sent"],
        rows["erp"]["dead"],
        rows["erp"]["pending"],
        rows["erp"]["state"],
        rows["erp"]["last_answer"],
    ) == (1, 1, 0, "closed", REASON)
    assert [d["id"] for d in r.json()["recent"]] == [ref]
    assert (
        call(
            hub, "POST", f"/api/v1/deliveries/{ref}/resend", None, token=tokens["reader"]
        ).status_code
        == 403
    )
    for bad, status in (("erp:999999", 404), ("erp:x", 404), ("x", 404)):
        r = call(hub, "POST", f"/api/v1/deliveries/{bad}/resend", None, token=tokens["eng"])
        assert r.status_code == status and r.json()["field"] == "id", bad
    r = call(hub, "POST", f"/api/v1/deliveries/{ref}/resend", None, token=tokens["eng"])
    assert r.status_code == 200 and r.json() == {"resent": [ref]}
    last = hub.governance.audit_rows()[-1].event
    assert (last.action, last.actor, last.target, last.outcome) == (
        "deliveries.resend",
        "eng",
        ref,
        "ok",
    )
    [item] = [w for w in hub.store.work_items() if w.kind == REJECTED_KIND]
    assert item.status == "resubmitted"
    r = call(hub, "POST", f"/api/v1/deliveries/{ref}/resend", None, token=tokens["eng"])
    assert r.status_code == 409 and "pending already" in r.json()["reason"]
    assert hub.governance.audit_rows()[-1].event.outcome == "failed"
    assert hub.export() == (0, 1)  # the ERP's own dispatcher delivers it
    assert hub.store.work_item(item.id).status == "resolved"  # type: ignore[union-attr]
    erp = erp_of(
        call(hub, "GET", "/api/v1/destinations", token=tokens["reader"]).json()["destinations"]
    )
    assert (erp["sent"], erp["dead"], erp["last_answer"]) == (2, 0, "sent")


def test_cli_lists_the_erp_and_resends_by_id_and_in_bulk(
    site: Site, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    hub, tokens, conf, data = site
    ref = dead_ref(hub)
    common = ["--config", str(conf), "--data-dir", str(data)]
    assert run(["destinations", *common, "--json"]) == 0
    erp = erp_of(json.loads(capsys.readouterr().out))
    assert (erp["kind"], erp["sent"], erp["dead"]) == ("file", 1, 1)
    assert run(["destinations", *common]) == 0
    out = capsys.readouterr().out
    assert re.search(r"^erp\s+file\s", out, re.M), out
    assert REASON in out  # the last answer: the ERP's batch error
    assert run(["destinations", "resend", ref, *common]) == 2  # no token: refused
    monkeypatch.setenv("ISTHMUS_TOKEN", tokens["reader"])
    assert run(["destinations", "resend", ref, *common]) == 2  # read-only: refused
    monkeypatch.setenv("ISTHMUS_TOKEN", tokens["eng"])
    capsys.readouterr()
    assert run(["destinations", "resend", "erp:abc", *common]) == 2
    assert "no delivery id" in capsys.readouterr().err
    assert run(["destinations", "resend", "--destination", "nope", *common]) == 2
    assert "erp" in capsys.readouterr().err  # the known names, the ERP's among them
    assert (
        run(
            [
                "destinations",
                "resend",
                "--destination",
                "erp",
                "--status",
                "dead",
                *common,
                "--json",
            ]
        )
        == 0
    )
    assert json.loads(capsys.readouterr().out)["resent"] == [ref]
    assert run(["destinations", "resend", ref, *common, "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == {
        "resent": [],
        "skipped": [ref],
        "destination": None,
        "status": None,
    }
    assert [o.status for o in hub.store.outbox_items() if f"erp:{o.id}" == ref] == ["pending"]
    audit = [
        (e.event.action, e.event.actor, e.event.outcome, json.loads(e.event.detail).get("result"))
        for e in hub.governance.audit_rows()
        if "destinations" in e.event.action
    ]
    assert ("cli destinations resend", "reader", "denied", None) in audit
    ok = [
        d
        for a, who, outcome, d in audit
        if (a, who, outcome) == ("cli destinations resend", "eng", "ok")
    ]
    assert ok and ok[0]["resent"] == [ref]
    assert hub.export() == (0, 1)


def test_console_lists_the_erp_and_resends_its_dead_batch(site: Site) -> None:
    hub, tokens, _, _ = site
    ref = dead_ref(hub)
    reader = Browser(hub)
    reader.sign_in(tokens["reader"])
    page = reader.request("GET", "/console/destinations")
    assert page.status_code == 200 and 'id="destination-erp"' in page.text
    assert f'id="delivery-{ref}"' in page.text and "/resend" not in page.text
    assert (
        reader.request("POST", f"/console/deliveries/{ref}/resend", data={"csrf": "x"}).status_code
        == 403
    )
    eng = Browser(hub)
    eng.sign_in(tokens["eng"])
    text = eng.request("GET", "/console/destinations").text
    assert f'action="/console/deliveries/{ref}/resend"' in text
    csrf = re.search(r'name="csrf" value="([^"]+)"', text)
    assert csrf
    assert (
        eng.request(
            "POST", f"/console/deliveries/{ref}/resend", data={"csrf": "forged"}
        ).status_code
        == 403
    )
    r = eng.request("POST", f"/console/deliveries/{ref}/resend", data={"csrf": csrf.group(1)})
    assert r.status_code == 303
    last = hub.governance.audit_rows()[-1].event
    assert (last.action, last.target, last.outcome) == ("console.deliveries.resend", ref, "ok")
    r = eng.request("POST", f"/console/deliveries/{ref}/resend", data={"csrf": csrf.group(1)})
    assert r.status_code == 409
    assert (
        eng.request(
            "POST", "/console/deliveries/erp:999999/resend", data={"csrf": csrf.group(1)}
        ).status_code
        == 404
    )
    assert hub.export() == (0, 1)
    assert f'id="delivery-{ref}"' not in eng.request("GET", "/console/destinations").text
