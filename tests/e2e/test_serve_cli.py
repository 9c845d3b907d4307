"""`isthmus serve` and the operator CLI, end to end: start/stop, negative ACKs, work items,
lineage, --json and exit codes. Fast: a handful of hand-written messages per test.
"""

from __future__ import annotations

import json
import socket
import subprocess
import threading
import time
from decimal import Decimal
from pathlib import Path

import pytest

from isthmus.connectors.mllp_client import send_messages_sync
from isthmus.demo.ehr_day import corpus_like
from isthmus.formats.hl7v2 import control_id_of as control_id_of_identity
from isthmus.formats.hl7v2 import identity_of, parse_message
from tests.e2e.conftest import ServeFactory
from tests.e2e.helpers import (
    HOST,
    Serve,
    all_messages,
    has_err,
    isthmus,
    isthmus_json,
    msa_of,
)


def sim(cid: str) -> str:
    """The hub's identity of a message these tests send (MSH-3 SIMEHR, MSH-4 NORTH)."""
    return f"SIMEHR^NORTH:{cid}"


def identity(raw: bytes) -> str:
    return identity_of(parse_message(raw))


PID = (
    "PID|1||{mrn}^^^NORTHMRN^MR||TESTER^PAT^^^^^L||19800101|F|||1 MAIN ST^^ISTHMUS CITY"
    "^WI^53700^USA||555-0100|||||{acct}^^^NORTH^AN"
)
PV1 = (
    "PV1|1|O|OPC^1^A^NORTH|R|||1000000001^VANTERPOOL^ROBIN|||MED|||||||||{visit}^^^NORTH"
    "^VN|||||||||||||||||||||||||20261102080000"
)


def adt(cid: str, mrn: str = "M0000001") -> bytes:
    segs = [
        f"MSH|^~\\&|SIMEHR|NORTH|ISTHMUS|HUB|20261102080000||ADT^A04^ADT_A01|{cid}|P|2.5.1",
        "EVN|A04|20261102080000",
        PID.format(mrn=mrn, acct="A0000001"),
        PV1.format(visit="V0000001"),
    ]
    return ("\r".join(segs) + "\r").encode()


def dft(
    cid: str,
    code: str = "80053",
    amount: str = "125.40",
    mrn: str = "M0000001",
    dept: str = "LAB",
    date: str = "20261102",
) -> bytes:
    segs = [
        f"MSH|^~\\&|SIMEHR|NORTH|ISTHMUS|HUB|20261102090000||DFT^P03^DFT_P03|{cid}|P|2.5.1",
        "EVN|P03|20261102090000",
        PID.format(mrn=mrn, acct="A0000001"),
        PV1.format(visit="V0000001"),
        f"FT1|1|T{cid}||{date}|{date}|CG|{code}^SOME SERVICE^CPT|||1|{amount}&USD|"
        f"{amount}&USD|{dept}^DEPT|||||||1000000001^VANTERPOOL^ROBIN",
    ]
    return ("\r".join(segs) + "\r").encode()


def send(hub: Serve, *payloads: bytes) -> list[bytes]:
    rep = send_messages_sync(HOST, hub.mllp_port, list(payloads), timeout_s=15)
    assert rep.failed == 0, rep.errors
    return [a for a in rep.acks if a is not None]


def one_line_error(res: object, code: int) -> str:
    """The CLI failed with `code`, saying why in one line on stderr, no traceback."""
    rc, out, err = res.returncode, res.stdout, res.stderr  # type: ignore[attr-defined]
    assert rc == code, (rc, out, err)
    assert "Traceback" not in err and "Traceback" not in out, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("isthmus: "), err
    return str(lines[0])


def test_serve_starts_and_stops_cleanly_on_sigterm(serve_factory: ServeFactory) -> None:
    hub = serve_factory()
    assert hub.metrics()["bus_pending"] == 0
    assert msa_of(send(hub, adt("UP-1"))[0]) == ("AA", "UP-1")
    assert hub.stop() == 0
    assert "Traceback" not in hub.stderr_text()
    for port in (hub.mllp_port, hub.http_port):
        with pytest.raises(OSError), socket.create_connection((HOST, port), timeout=1):
            pass
    # What was ACKed before the stop is there after it.
    listed = all_messages(data_dir=hub.data_dir)
    assert [(x["control_id"], x["status"]) for x in listed] == [(sim("UP-1"), "accepted")]


def test_bad_messages_get_ar_or_ae_with_err_and_are_kept(serve_factory: ServeFactory) -> None:
    hub = serve_factory()
    bad_amount = dft("BAD-AMT", amount="12,50")
    bad_date = dft("BAD-DATE", date="20261345")
    garbage = b"PRINTER JOB 42 PAPER OUT ON TRAY 2\r"
    no_id = adt("")
    oru = adt("ORU-1").replace(b"ADT^A04^ADT_A01", b"ORU^R01^ORU_R01")
    acks = send(hub, bad_amount, bad_date, garbage, no_id, oru, adt("GOOD-1"))
    codes = [msa_of(a) for a in acks]
    # an ORU has no finance meaning: acknowledged AA and kept as `ignored`, never refused
    assert codes == [
        ("AE", "BAD-AMT"),
        ("AE", "BAD-DATE"),
        ("AR", ""),
        ("AR", ""),
        ("AA", "ORU-1"),
        ("AA", "GOOD-1"),
    ]
    assert [has_err(a) for a in acks] == [True] * 4 + [False] * 2
    hub.wait_idle()

    rejected = all_messages("--status", "rejected", data_dir=hub.data_dir)
    assert len(rejected) == 4
    by_id = {control_id_of_identity(x["control_id"]): x for x in rejected}
    assert by_id["BAD-AMT"]["ack"] == "AE" and "not a valid amount" in by_id["BAD-AMT"]["error"]
    assert "12,50" not in by_id["BAD-AMT"]["error"]  # the value is never echoed
    assert by_id["BAD-DATE"]["ack"] == "AE" and by_id["BAD-DATE"]["error"]
    [ignored] = all_messages("--status", "ignored", data_dir=hub.data_dir)
    assert control_id_of_identity(ignored["control_id"]) == "ORU-1"
    assert ignored["ack"] == "AA" and "ORU" in ignored["error"]
    hashed = [x for x in rejected if x["control_id"].startswith("sha256:")]
    assert len(hashed) == 2 and all(x["ack"] == "AR" and x["error"] for x in hashed)
    accepted = all_messages("--status", "accepted", data_dir=hub.data_dir)
    assert [x["control_id"] for x in accepted] == [sim("GOOD-1")]
    # Kept for inspection: the rejected message and its reason, and no effect at all.
    shown = isthmus_json("messages", "show", "mllp/BAD-AMT", data_dir=hub.data_dir)
    assert shown["message"]["status"] == "rejected" and shown["message"]["ack"] == "AE"
    assert shown["events"] == [] and shown["journal_entries"] == []
    raw = isthmus_json("messages", "show", "mllp/BAD-AMT", "--raw", data_dir=hub.data_dir)
    assert "12,50&USD" in raw["raw"]
    # Sending a rejected message again gets the same answer, and stores nothing new.
    assert msa_of(send(hub, bad_amount, garbage)[0]) == ("AE", "BAD-AMT")
    assert msa_of(send(hub, garbage)[0]) == ("AR", "")
    hub.wait_idle()
    assert len(all_messages(data_dir=hub.data_dir)) == 6


def test_unmapped_charges_wait_behind_one_item_and_resolving_it_posts_them(
    serve_factory: ServeFactory,
) -> None:
    hub = serve_factory()
    data = hub.data_dir
    acks = send(
        hub,
        adt("REG-1"),
        dft("CHG-1", code="80053", amount="125.40"),
        dft("CHG-2", code="Z9999", amount="468.31"),
        dft("CHG-3", code="Z9999", amount="31.69"),
    )
    assert [msa_of(a)[0] for a in acks] == ["AA"] * 4  # accepted; a business problem
    hub.wait_idle()

    items = isthmus_json("workitems", "list", data_dir=data)
    assert len(items) == 1  # one item for the missing code, holding both charges
    item = items[0]
    assert (item["kind"], item["queue"], item["status"], item["event_id"]) == (
        "unmapped_charge_code",
        "revenue-integrity",
        "open",
        "mapping:charge_codes/Z9999",
    )
    assert (item["held"], item["held_amount"]) == (2, {"USD": "500.00"})
    assert "Z9999" in item["detail"]
    journal = isthmus_json("ledger", "journal", data_dir=data)
    assert [e["correlation_id"] for e in journal] == [f"mllp/{sim('CHG-1')}"]
    shown = isthmus_json("messages", "show", "mllp/CHG-2", data_dir=data)
    assert [w["id"] for w in shown["work_items"]] == [item["id"]]  # what it waits behind

    res = isthmus(
        "workitems",
        "resolve",
        str(item["id"]),
        "--set",
        "revenue_account=4999",
        "--set",
        "service_line=Misc",
        "--json",
        data_dir=data,
    )
    assert res.returncode == 0, res.stderr
    done = json.loads(res.stdout)
    assert (done["status"], done["mapping"]) == (
        "resolved",
        {"revenue_account": "4999", "service_line": "Misc"},
    )
    assert "released 2 held event(s) (500.00 USD)" in done["resolution"]
    hub.wait_idle()  # the running hub's worker applies the released events: no resubmit

    journal = isthmus_json("ledger", "journal", data_dir=data)
    entry = next(e for e in journal if e["correlation_id"] == f"mllp/{sim('CHG-2')}")
    assert entry["entry_key"] == f"mllp/{sim('CHG-2')}/0"
    assert sorted((ln[0], ln[1], ln[2]) for ln in entry["lines"]) == [
        ("1200", "468.31", "0.00"),
        ("4999", "0.00", "468.31"),
    ]
    tb = isthmus_json("ledger", "trial-balance", data_dir=data)
    assert tb["balanced"] is True
    rows = {r["account"]: Decimal(r["balance"]) for r in tb["rows"]}
    assert rows == {
        "1200": Decimal("625.40"),
        "4200": Decimal("-125.40"),
        "4999": Decimal("-500.00"),
    }
    [after] = isthmus_json("workitems", "list", data_dir=data)
    assert (after["id"], after["status"], after["held"]) == (item["id"], "resolved", 0)
    assert isthmus_json("workitems", "list", "--status", "open", data_dir=data) == []
    maps = isthmus_json("workitems", "mappings", data_dir=data)
    assert [(m["table"], m["code"], m["source"]) for m in maps if m["code"] == "Z9999"] == [
        ("charge_codes", "Z9999", "override")
    ]

    # A resubmission afterwards is a replay: effects are idempotent, nothing posts twice.
    assert isthmus("workitems", "resubmit", str(item["id"]), data_dir=data).returncode == 0
    hub.wait_idle()
    assert len(isthmus_json("ledger", "journal", data_dir=data)) == 3
    assert isthmus_json("ledger", "trial-balance", data_dir=data) == tb


def test_messages_show_prints_message_event_journal_chain(serve_factory: ServeFactory) -> None:
    hub = serve_factory()
    send(hub, adt("REG-9", mrn="M0000009"), dft("CHG-9", mrn="M0000009", amount="80.00"))
    hub.wait_idle()
    data = hub.data_dir

    t = isthmus_json("messages", "show", "mllp/CHG-9", data_dir=data)
    assert (t["message"]["correlation_id"], t["message"]["type"], t["message"]["ack"]) == (
        f"mllp/{sim('CHG-9')}",
        "DFT^P03",
        "AA",
    )
    assert [(e["event_id"], e["type"], e["causation_id"]) for e in t["events"]] == [
        (f"mllp/{sim('CHG-9')}/0", "Charge", f"mllp/{sim('CHG-9')}")
    ]
    [j] = t["journal_entries"]
    ev9 = f"mllp/{sim('CHG-9')}/0"
    assert (j["entry_key"], j["causation_id"]) == (ev9, ev9)
    assert {ln["account"] for ln in j["lines"]} == {"1200", "4200"}
    assert "raw" not in t and "TESTER" not in json.dumps(t)  # no PHI unless --raw
    by_id = isthmus_json("messages", "show", str(t["message"]["id"]), data_dir=data)
    assert by_id == t

    res = isthmus("messages", "show", "mllp/CHG-9", data_dir=data)
    assert res.returncode == 0, res.stderr
    lines = res.stdout.splitlines()
    msg = next(i for i, ln in enumerate(lines) if ln.startswith("message "))
    ev = next(i for i, ln in enumerate(lines) if f"-> event mllp/{sim('CHG-9')}/0" in ln)
    je = next(i for i, ln in enumerate(lines) if f"-> journal entry mllp/{sim('CHG-9')}/0" in ln)
    assert msg < ev < je, res.stdout
    assert f"mllp/{sim('CHG-9')}" in lines[msg] and "AA" in lines[msg]


def test_json_outputs_parse(serve_factory: ServeFactory) -> None:
    hub = serve_factory()
    send(hub, adt("J-1"), dft("J-2"), dft("J-3", code="Z9999"))
    hub.wait_idle()
    data = hub.data_dir
    cases = {
        ("ledger", "trial-balance"): dict,
        ("ledger", "journal", "--limit", "5"): list,
        ("messages", "list", "--limit", "5"): dict,
        ("messages", "list", "--status", "rejected"): dict,
        ("workitems", "mappings"): list,
        ("messages", "show", "mllp/J-2"): dict,
        ("workitems", "list"): list,
        ("workitems", "list", "--status", "open"): list,
        ("dlq", "list"): list,
    }
    for argv, kind in cases.items():
        res = isthmus(*argv, "--json", data_dir=data)
        assert res.returncode == 0, (argv, res.stderr)
        assert isinstance(json.loads(res.stdout), kind), argv
    tb = isthmus_json("ledger", "trial-balance", data_dir=data)
    assert set(tb) >= {"balanced", "rows", "totals"}
    assert all(set(r) == {"account", "currency", "debit", "credit", "balance"} for r in tb["rows"])
    page = isthmus_json("messages", "list", data_dir=data)
    assert set(page) == {"messages", "next"} and page["next"] is None
    assert [set(m) for m in page["messages"]] == [
        {"id", "channel", "control_id", "type", "status", "ack", "received_at", "error"}
    ] * 3
    # newest first, and a page of one leads to the next with its cursor
    assert [m["control_id"] for m in page["messages"]] == [sim("J-3"), sim("J-2"), sim("J-1")]
    one = isthmus_json("messages", "list", "--limit", "1", data_dir=data)
    two = isthmus_json("messages", "list", "--limit", "1", "--cursor", one["next"], data_dir=data)
    assert [m["control_id"] for m in one["messages"] + two["messages"]] == [sim("J-3"), sim("J-2")]
    assert isthmus_json("ledger", "journal", "--limit", "1", data_dir=data).__len__() == 1


def test_unknown_ids_exit_3(serve_factory: ServeFactory) -> None:
    hub = serve_factory()
    send(hub, adt("K-1"))
    hub.wait_idle()
    for argv in (
        ("messages", "show", "999999"),
        ("messages", "show", "mllp/NO-SUCH-ID"),
        ("workitems", "resolve", "999999", "--set", "revenue_account=4999"),
        ("workitems", "resubmit", "999999"),
    ):
        for fmt in ((), ("--json",)):
            line = one_line_error(isthmus(*argv, *fmt, data_dir=hub.data_dir), 3)
            assert argv[2] in line, line
    assert hub.running


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("[hub\nport = ", "not valid TOML"),
        ("[posting]\nclosed_period_policy = 'sometimes'\n", "closed_period_policy"),
        ("[mappings.charge_codes]\n80053 = { service_line = 'Lab' }\n", "revenue_account"),
        ("[reliability]\nno_such_setting = 3\n", "unknown key reliability.no_such_setting"),
        ("[hub]\nstore = 'oracle'\n", "store must be"),
        ("[channels.mllp]\nsummarization = 'weekly'\n", "summarization"),
    ],
)
def test_bad_config_exits_2_with_one_line(
    tmp_path: Path, serve_factory: ServeFactory, text: str, says: str
) -> None:
    cfg = tmp_path / "bad.toml"
    cfg.write_text(text)
    data = tmp_path / "data"
    line = one_line_error(isthmus("ledger", "trial-balance", "--config", cfg, data_dir=data), 2)
    assert says in line, line
    # serve refuses to start on it the same way, without binding anything.
    hub = serve_factory("bad-serve", start=False, config=cfg)
    res = isthmus(
        "serve",
        "--config",
        cfg,
        "--mllp-port",
        str(hub.mllp_port),
        "--http-port",
        str(hub.http_port),
        data_dir=data,
        timeout=30,
    )
    assert says in one_line_error(res, 2)


def test_missing_config_file_exits_2(tmp_path: Path) -> None:
    res = isthmus(
        "messages", "list", "--config", tmp_path / "nope.toml", data_dir=tmp_path / "data"
    )
    assert "does not exist" in one_line_error(res, 2)


def test_usage_errors_exit_2(serve_factory: ServeFactory) -> None:
    hub = serve_factory()
    send(hub, dft("U-1", code="Z9999"))
    hub.wait_idle()
    [item] = isthmus_json("workitems", "list", data_dir=hub.data_dir)
    for argv, says in (
        (("workitems", "resolve"), "needs an id"),
        (("workitems", "resolve", str(item["id"]), "--set", "revenue_account"), "FIELD=VALUE"),
        (("workitems", "resolve", str(item["id"]), "--set", "cost_center=X"), "not one of"),
        (("dlq", "replay"), "--all"),
        (("replay",), "--since"),
        (("replay", "--since", "yesterday"), "ISO"),
        (("messages", "show"), "needs an id"),
    ):
        assert says in one_line_error(isthmus(*argv, data_dir=hub.data_dir), 2), argv
    # None of that changed anything.
    assert isthmus_json("workitems", "list", data_dir=hub.data_dir) == [item]


def test_serve_exits_1_when_http_port_is_taken(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind((HOST, 0))
        taken.listen()
        port = taken.getsockname()[1]
        mllp = socket.socket()
        mllp.bind((HOST, 0))
        free = mllp.getsockname()[1]
        mllp.close()
        try:
            res = isthmus(
                "serve",
                "--mllp-port",
                str(free),
                "--http-port",
                str(port),
                data_dir=tmp_path / "data",
                timeout=8,
            )
        except subprocess.TimeoutExpired:
            pytest.fail("serve kept running with no HTTP API on a taken --http-port")
    assert "address already in use" in one_line_error(res, 1).lower()


def test_serve_exits_1_when_mllp_port_is_taken(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind((HOST, 0))
        taken.listen()
        port = taken.getsockname()[1]
        res = isthmus(
            "serve",
            "--mllp-port",
            str(port),
            "--http-port",
            "0",
            data_dir=tmp_path / "data",
            timeout=30,
        )
    assert "address already in use" in one_line_error(res, 1).lower()


def test_sigterm_under_load_exits_0_and_keeps_every_acked_message(
    serve_factory: ServeFactory,
) -> None:
    """A clean stop mid-stream: exit 0 promptly; what was ACKed is stored, the rest resent."""
    raws = corpus_like(3000, seed=3)
    hub = serve_factory()
    codes: list[int] = []

    def stop_soon() -> None:
        time.sleep(0.5)
        t0 = time.monotonic()
        codes.append(hub.stop(timeout=20))
        codes.append(int(time.monotonic() - t0 < 10))

    t = threading.Thread(target=stop_soon)
    t.start()
    try:
        rep = send_messages_sync(HOST, hub.mllp_port, raws, connections=4, window=16, timeout_s=15)
    finally:
        t.join(30)
    assert codes == [0, 1], hub.stderr_text()
    assert 0 < rep.acked < len(raws), "the stop did not land mid-stream"
    acked = [identity(r) for r, a in zip(raws, rep.acks, strict=True) if a is not None]
    assert all(msa_of(a)[0] == "AA" for a in rep.acks if a is not None)
    stored = {x["control_id"] for x in all_messages(data_dir=hub.data_dir)}
    assert set(acked) <= stored  # ACK only after a durable commit

    hub.start()
    rest = [r for r, a in zip(raws, rep.acks, strict=True) if a is None]
    again = send_messages_sync(HOST, hub.mllp_port, rest, connections=4, window=16)
    assert again.failed == 0 and all(msa_of(a)[0] == "AA" for a in again.acks if a)
    m = hub.wait_idle()
    listed = all_messages(data_dir=hub.data_dir)
    assert sorted(x["control_id"] for x in listed) == sorted(identity(r) for r in raws)
    assert m["bus_pending"] == 0
    assert isthmus_json("ledger", "trial-balance", data_dir=hub.data_dir)["balanced"] is True
    journal = isthmus_json("ledger", "journal", "--limit", "1000000", data_dir=hub.data_dir)
    assert {e["correlation_id"] for e in journal} == {f"mllp/{identity(r)}" for r in raws}
