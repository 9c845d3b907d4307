"""999, 277CA/277 and 271 files through the hub's one intake (the drop folder, the worker):
they update the claims and accounts they name exactly as `isthmus claims ack` and the
direct flow calls do, a resend (same file, or the same content in a new envelope) changes
nothing, a malformed one is kept rejected with where it is wrong; a 999 or a TA1 is never
answered (acknowledgements are not acknowledged), a 277 or 271 is. On a real hub:
SQLite + SQLite bus, or PostgreSQL + NATS when ISTHMUS_STORE/ISTHMUS_BUS say so."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from isthmus.app import Hub
from isthmus.config import ClaimSettings, load_settings
from isthmus.connectors.claim_files import FileSender
from isthmus.connectors.folder import DropFolder
from isthmus.flows import claim_acks, claim_submission
from isthmus.flows.claim_eligibility import eligibility_of, request_eligibility
from isthmus.flows.file_intake import FileIntake, take_file
from isthmus.flows.relay import relay_unpublished
from isthmus.formats.x12 import build_999, parse_837, read
from isthmus.formats.x12.remittance import Party
from tests.chart import demo_config
from tests.flows.claims.claim_files import institutional
from tests.flows.claims.test_claim_eligibility import answer, bar
from tests.flows.claims.test_claim_life_e2e import ca_277, status_277
from tests.formats.x12.x12_corpus import corpus_files

T0 = 1_800_000_000.0
SETTINGS = ClaimSettings(sender_id="NORTHHOSP", receiver_id="CLEARING", usage="T")
PROVIDER = Party(name="NORTH HOSPITAL", id_qualifier="XX", id="1234567893", npi="1234567893")


def open_hub(root: Path) -> Hub:
    return Hub.open(load_settings(demo_config(root), data_dir=root / "hub"))


@pytest.fixture
def hub(tmp_path: Path) -> Iterator[Hub]:
    h = open_hub(tmp_path / "a")
    yield h
    h.close()


class Recording(FileIntake):
    """The hub's file intake, keeping the report row of each file it takes."""

    def __init__(self, hub: Hub) -> None:
        super().__init__(hub.store, hub.bus, hub.settings)
        self.rows: list[dict[str, Any]] = []

    def take(self, path: Path, name: str, now: float) -> list[dict[str, Any]]:
        got = super().take(path, name, now)
        self.rows += got
        return got


class Drop:
    """The hub's drop folder, passed twice per file (no quiet period), then the worker."""

    def __init__(self, hub: Hub, root: Path) -> None:
        self.hub, self.intake = hub, Recording(hub)
        self.folder = DropFolder(root, self.intake, hub.settings, quiet_s=0.0)

    def __call__(self, name: str, body: bytes | str) -> dict[str, Any]:
        data = body.encode() if isinstance(body, str) else body
        (self.folder.inbound / name).write_bytes(data)
        self.intake.rows = []
        [report] = self.folder.run_once(T0) + self.folder.run_once(T0)
        self.hub.worker().drain()
        [row] = self.intake.rows
        return {**row, "moved_to": report["moved_to"]}


def submit(hub: Hub, out: Path) -> bytes:
    """The two institutional claims sent as one 837; its bytes as they left."""
    got = claim_submission.submit_837(
        hub.store,
        institutional(),
        settings=SETTINGS,
        sender=FileSender(out),
        now=T0,
        source="billing/1",
    )
    assert got.clean == ["756048Q", "756049Q"]
    return (out / got.sent).read_bytes()


def ack_999(sent: bytes) -> bytes:
    ic = read(sent)
    return build_999(ic, parse_837(ic).findings, control_number=501)


def timeline(hub: Hub) -> list[tuple[str, str, str, str, str]]:
    """Every claim's events (kind, from, to, detail) without ids, times or causes."""
    return [
        (e.claim_key, e.kind, e.from_state, e.to_state, e.detail)
        for c in sorted(hub.store.claim_states(), key=lambda c: c.claim_key)
        for e in hub.store.claim_events(c.claim_key)
    ]


def outbound(hub: Hub) -> list[str]:
    """The acknowledgements the intake wrote back (`<data_dir>/outbound/x12`)."""
    out = hub.settings.data_dir / "outbound" / "x12"
    return sorted(p.name for p in out.iterdir()) if out.exists() else []


def states(hub: Hub) -> dict[str, str]:
    return {c.claim_key: c.state for c in hub.store.claim_states()}


def test_999_and_277_through_the_drop_folder_as_claims_ack_does(tmp_path: Path) -> None:
    direct = open_hub(tmp_path / "direct")
    try:  # what `isthmus claims ack` and the direct flow calls do
        sent = submit(direct, tmp_path / "out-direct")
        claim_acks.apply_999(direct.store, ack_999(sent), now=T0, source="999")
        claim_acks.apply_277(
            direct.store, ca_277(["756048Q", "756049Q"], "A2:20:PR"), now=T0, source="277CA"
        )
        claim_acks.apply_277(
            direct.store, status_277(["756048Q", "756049Q"], "P3:317"), now=T0, source="277"
        )
        expected = timeline(direct)
    finally:
        direct.close()

    hub = open_hub(tmp_path / "intake")
    try:
        drop = Drop(hub, tmp_path / "drop")
        sent = submit(hub, tmp_path / "out")
        got = drop("ack.999", ack_999(sent))
        # a 999 is not acknowledged (005010X231A1): nothing is written back
        assert (got["status"], got["ack"], got["events"]) == ("accepted", "none", 1)
        assert got["ack_file"] == "" and not outbound(hub)
        assert states(hub) == {"756048Q": "accepted", "756049Q": "accepted"}
        drop("ca.277", ca_277(["756048Q", "756049Q"], "A2:20:PR"))
        drop("status.277", status_277(["756048Q", "756049Q"], "P3:317"))
        assert states(hub) == {"756048Q": "pending", "756049Q": "pending"}
        assert {(c.status_category, c.status_code) for c in hub.store.claim_states()} == {
            ("P3", "317")
        }
        assert timeline(hub) == expected  # the same transitions, facts and details
        cause = hub.store.claim_events("756048Q")[3]
        assert cause.kind == "ack_accepted" and cause.causation_id.startswith("x12/CLEARING:")

        # the same file again, and the same 999 in a new envelope: nothing changes
        again = drop("ack-again.999", ack_999(sent))
        assert again["duplicate"] is True
        text = ack_999(sent).decode().replace("000000501", "000000777")
        renewed = drop("ack-renewed.999", text)
        assert (renewed["status"], renewed["duplicate"]) == ("accepted", False)
        drop(
            "status-again.277",
            status_277(["756048Q", "756049Q"], "P3:317").replace("000000123", "000000124"),
        )
        assert timeline(hub) == expected
        assert hub.store.work_items(status="open") == []
    finally:
        hub.close()


def test_a_rejecting_999_by_cli_ingest_opens_its_work_items(hub: Hub, tmp_path: Path) -> None:
    sent = submit(hub, tmp_path / "out")
    rejected = ack_999(sent).decode().replace("IK5*A", "IK5*R*5").replace("AK9*A", "AK9*R")
    f = tmp_path / "reject.999"
    f.write_text(rejected)
    [row] = take_file(hub.store, hub.settings, f, f.name, T0)
    assert row["status"] == "accepted" and row["events"] == 1
    relay_unpublished(hub.store, hub.bus)
    hub.worker().drain()
    assert states(hub) == {"756048Q": "rejected", "756049Q": "rejected"}
    items = {(w.queue, w.kind, w.key) for w in hub.store.work_items(status="open")}
    assert items == {
        ("claim-rejections", "claim_rejected", "756048Q"),
        ("claim-rejections", "claim_rejected", "756049Q"),
    }


def test_a_malformed_response_is_answered_where_it_is_wrong_and_kept(
    hub: Hub, tmp_path: Path
) -> None:
    drop = Drop(hub, tmp_path / "drop")
    sent = submit(hub, tmp_path / "out")
    good = ack_999(sent).decode()
    se = next(s for s in good.split("~") if s.startswith("SE*"))
    bad_count = good.replace(se, "SE*99*" + se.split("*")[2])
    got = drop("count.999", bad_count)
    # kept rejected with where it is wrong; a 999 is never answered, not even a bad one
    assert (got["status"], got["ack"], got["events"]) == ("rejected", "none", 0)
    assert "/failed/" in got["moved_to"] and "SE" in got["error"]
    bad_ta1 = good.replace("*00501*", "*00999*", 1)  # ISA12 version not supported
    got = drop("version.999", bad_ta1)
    assert (got["status"], got["ack"], got["ack_file"]) == ("rejected", "none", "")
    assert not outbound(hub)
    kept = {m.control_id: m.status for m in hub.store.messages(limit=100)}
    assert sorted(kept.values()) == ["rejected", "rejected"]
    assert states(hub) == {"756048Q": "submitted", "756049Q": "submitted"}
    broken_277 = ca_277(["756048Q"], "A3:21").replace("SE*", "SE*1", 1)
    got = drop("broken.277", broken_277)
    assert got["status"] == "rejected" and got["events"] == 0
    assert states(hub) == {"756048Q": "submitted", "756049Q": "submitted"}


def test_a_received_ta1_or_999_is_not_answered_a_277_is(hub: Hub, tmp_path: Path) -> None:
    drop = Drop(hub, tmp_path / "drop")
    sent = submit(hub, tmp_path / "out")
    isa, icn = sent.decode().split("~")[0], read(sent).control_number
    ta1 = f"{isa}~TA1*{icn}*270116*0800*A*000~IEA*0*{icn}~"  # the clearinghouse's TA1
    got = drop("answer.ta1", ta1)
    assert (got["status"], got["ack"], got["ack_file"]) == ("accepted", "none", "")
    got = drop("ack.999", ack_999(sent))
    assert (got["ack"], got["ack_file"]) == ("none", "")
    assert not outbound(hub)
    got = drop("ca.277", ca_277(["756048Q"], "A2:20:PR"))
    assert got["ack"] == "999-A" and outbound(hub) == ["000000123.999"]
    assert states(hub) == {"756048Q": "accepted", "756049Q": "accepted"}


def test_271_through_the_drop_folder_keeps_eligibility(hub: Hub, tmp_path: Path) -> None:
    drop = Drop(hub, tmp_path / "drop")
    for mrn, acct in (("700010", "ACC10"), ("700011", "ACC11")):
        drop(f"bar-{mrn}.hl7", bar(mrn, acct, "IN1|1|GOLD|99999|TRICARE"))
    asked = request_eligibility(
        hub.store,
        ["ACC10", "ACC11"],
        settings=SETTINGS,
        sender=FileSender(tmp_path / "out"),
        provider=PROVIDER,
        now=T0,
        member_ids={"ACC10": "M1"},
        scheduled={"ACC11"},
    )
    by_account = {a: t for t, a in asked.traces.items()}
    body = answer(by_account["ACC10"], by_account["ACC11"])
    got = drop("answer.271", body)
    assert (got["status"], got["events"]) == ("accepted", 2)
    kept = eligibility_of(hub.store, "ACC10")
    assert (
        kept["status"],
        kept["plan"],
        kept["copay"],
        kept["deductible_remaining"],
        kept["out_of_pocket_remaining"],
    ) == ("active", "GOLD PLAN", "25.00", "300.00", "1800.00")
    assert eligibility_of(hub.store, "ACC11")["status"] == "inactive"
    items = [(w.queue, w.kind, w.key) for w in hub.store.work_items(status="open")]
    assert items == [("registration", "eligibility_inactive", "ACC11")]
    assert "DOE" not in hub.store.work_items(status="open")[0].detail
    first = eligibility_of(hub.store, "ACC10")
    drop("answer-again.271", body.replace("000000123", "000000124"))  # new envelope
    assert eligibility_of(hub.store, "ACC10") == first
    assert len(hub.store.work_items(status="open")) == 1


def test_every_corpus_270_271_276_277_goes_through_the_intake(hub: Hub) -> None:
    """The corpus responses name nothing this hub sent: taken, answered, applied as
    ``unknown``; a 271 with no trace of ours and the requests (270, 276) carry no events."""
    files = corpus_files("27[0167]_*/*")
    assert len(files) == 13
    rows = [row for p in files for row in take_file(hub.store, hub.settings, p, p.name, T0)]
    status = {r["file"]: (r["status"], r["ack"]) for r in rows}
    # the corpus' own broken file: SE02 4323 for ST02 4321, refused where it is wrong
    assert status.pop("subscriber-health-benefit-check-error.271") == ("rejected", "999-R")
    assert set(status.values()) == {("accepted", "999-A")}, rows
    [bad] = [r for r in rows if r["status"] == "rejected"]
    assert bad["events"] == 0 and "SE02" in bad["error"]
    by_kind = {r["file"]: (r["kind"], r["events"]) for r in rows}
    assert by_kind["claim-level-status.277"] == ("277", 3)  # three claims, one event each
    assert by_kind["subscriber-health-benefit-check.271"] == ("271", 1)
    assert all(n == 0 for k, n in by_kind.values() if k in ("270", "276"))
    relay_unpublished(hub.store, hub.bus)
    worker = hub.worker()
    worker.drain()
    assert worker.stats.dead == 0 and worker.stats.retried == 0
    # two corpus files repeat a fact of another (same business key, same content)
    # (and the receiver- and provider-level statuses, E0, name no batch of ours: unknown)
    assert by_kind["information-receiver-level-status.277"] == ("277", 1)
    assert by_kind["provider-level-status.277"] == ("277", 2)  # a claim and a provider
    assert worker.stats.outcomes == {"unknown": 7, "duplicate": 2}
    assert sum(worker.stats.outcomes.values()) == sum(n for _, n in by_kind.values())
    assert hub.store.claim_states() == [] and hub.store.work_items(status="open") == []


def test_claims_ack_finds_a_set_sent_before_sets_were_indexed(hub: Hub, tmp_path: Path) -> None:
    sent = submit(hub, tmp_path / "out")
    ack = ack_999(sent)
    with hub.store.transaction() as tx:  # as a claim submitted before the index existed
        tx.save_state(claim_submission.sent_set_state("1", "0001"), b"")
    got = claim_acks.apply_999(hub.store, ack, now=T0, source="999")
    assert (got.claims, got.unknown) == ({"756048Q": "accepted", "756049Q": "accepted"}, 0)
    assert claim_acks.apply_999(hub.store, ack, now=T0, source="999").claims == {
        "756048Q": "accepted",
        "756049Q": "accepted",
    }  # applied again: a fact, no move
    assert [e.kind for e in hub.store.claim_events("756048Q")][-2:] == ["ack_accepted", "ack"]
