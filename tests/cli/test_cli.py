"""CLI shell: the demo end to end, then read/operate commands on its data directory."""

from __future__ import annotations

import json
import os
from decimal import Decimal
from pathlib import Path

import pytest

from isthmus.app import Hub
from isthmus.bus.ports import Publish
from isthmus.cli.main import run
from isthmus.config import load_settings
from tests.chart import demo_config


def _demo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("demo")
    assert run(["demo", "--data-dir", str(d), "--messages", "400", "--json"]) == 0
    return d


@pytest.fixture(scope="module")
def demo_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _demo(tmp_path_factory)


def _json(capsys: pytest.CaptureFixture[str], argv: list[str], code: int = 0) -> object:
    capsys.readouterr()
    assert run(argv) == code
    return json.loads(capsys.readouterr().out)


def test_demo_balances_and_exports(demo_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    tb = _json(capsys, ["ledger", "trial-balance", "--data-dir", str(demo_dir), "--json"])
    assert isinstance(tb, dict) and tb["balanced"] is True
    assert {r["account"] for r in tb["rows"]} >= {"1200", "4100", "4200"}
    files = sorted(p.suffix for p in (demo_dir / "exports" / "erp").iterdir())
    assert files and set(files) == {".csv", ".jsonl"}


def test_messages_show_traces_to_journal_and_batch(
    demo_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    entries = _json(capsys, ["ledger", "journal", "--data-dir", str(demo_dir), "--json"])
    assert isinstance(entries, list) and entries
    corr = entries[0]["correlation_id"]
    t = _json(capsys, ["messages", "show", corr, "--data-dir", str(demo_dir), "--json"])
    assert isinstance(t, dict)
    assert t["message"]["correlation_id"] == corr and t["message"]["ack"] == "AA"
    assert t["events"] and t["journal_entries"]
    je = t["journal_entries"][0]
    assert je["batch_id"] and je["batch_lines"], "exported entries point at their ERP lines"
    assert "raw" not in t  # PHI only on explicit request
    capsys.readouterr()
    assert run(["messages", "show", corr, "--data-dir", str(demo_dir)]) == 0
    out = capsys.readouterr().out
    assert "journal entry" in out and "ERP batch" in out


def test_rejected_messages_are_kept_and_listed(
    demo_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    page = _json(
        capsys, ["messages", "list", "--status", "rejected", "--data-dir", str(demo_dir), "--json"]
    )
    assert isinstance(page, dict) and set(page) == {"messages", "next"}
    rows = page["messages"]
    assert rows and page["next"] is None  # fewer than a page
    assert {r["ack"] for r in rows} <= {"AE", "AR"}
    assert all(r["error"] for r in rows)


def test_resolving_a_mapping_item_posts_every_charge_it_holds_once(
    tmp_path_factory: pytest.TempPathFactory, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    demo = _demo(tmp_path_factory)
    # the demo's chart: a CLI command that applies events says which chart it posts with
    base = ["--data-dir", str(demo), "--config", str(demo_config(tmp_path))]
    items = _json(capsys, ["workitems", "list", "--status", "open", *base, "--json"])
    assert isinstance(items, list)
    (item,) = [w for w in items if w["kind"] == "unmapped_charge_code"]  # one per code
    assert item["queue"] == "revenue-integrity" and item["held"] > 1
    assert Decimal(item["held_amount"]["USD"]) > 0 and item["oldest_held_at"]
    before = _json(capsys, ["ledger", "journal", "--limit", "100000", *base, "--json"])
    assert isinstance(before, list)
    done = _json(
        capsys,
        [
            "workitems",
            "resolve",
            str(item["id"]),
            "--set",
            "revenue_account=4999",
            "--set",
            "service_line=Misc",
            "--apply",
            *base,
            "--json",
        ],
    )
    assert isinstance(done, dict) and done["status"] == "resolved"
    assert f"released {item['held']} held event(s)" in done["resolution"]
    assert (done["outcome"]["held"], done["outcome"]["posted"]) == (0, item["held"])
    assert run(["workitems", "resubmit", str(item["id"]), "--apply", *base]) == 0  # again
    after = _json(capsys, ["ledger", "journal", "--limit", "100000", *base, "--json"])
    assert isinstance(after, list)
    new = [e for e in after if e["entry_key"] not in {b["entry_key"] for b in before}]
    assert len(new) == item["held"] == len(done["outcome"]["entries"])
    assert {e["lines"][1][0] for e in new} == {"4999"}
    tb = _json(capsys, ["ledger", "trial-balance", *base, "--json"])
    assert isinstance(tb, dict) and tb["balanced"]
    maps = _json(capsys, ["workitems", "mappings", *base, "--json"])
    assert isinstance(maps, list)
    code = item["event_id"].rsplit("/", 1)[1]
    assert {
        "table": "charge_codes",
        "code": code,
        "source": "override",
        "value": '{"revenue_account": "4999", "service_line": "Misc"}',
    } in maps
    assert {
        "table": "facility_company",
        "code": "NORTH",
        "value": "C100",
        "source": "config (demo chart)",
    } in maps


def test_replay_changes_nothing(
    tmp_path_factory: pytest.TempPathFactory, capsys: pytest.CaptureFixture[str]
) -> None:
    base = [
        "--data-dir",
        str(_demo(tmp_path_factory)),
        "--config",
        str(demo_config(tmp_path_factory.mktemp("chart"))),
    ]
    tb1 = _json(capsys, ["ledger", "trial-balance", *base, "--json"])
    r = _json(capsys, ["replay", "--since", "2000-01-01", "--apply", *base, "--json"])
    assert isinstance(r, dict) and r["events_replayed"] > 0 and r["applied"] > 0
    assert _json(capsys, ["ledger", "trial-balance", *base, "--json"]) == tb1


@pytest.mark.parametrize(
    ("argv", "code", "fragment"),
    [
        (["messages", "show", "999999"], 3, "no message"),
        (["workitems", "resolve", "424242"], 3, "no work item"),
        (["dlq", "replay"], 2, "needs sequence numbers"),
        (["replay"], 2, "needs --since"),
        (["replay", "--since", "yesterday"], 2, "not an ISO"),
    ],
)
def test_errors_are_one_line_with_exit_code(
    demo_dir: Path, capsys: pytest.CaptureFixture[str], argv: list[str], code: int, fragment: str
) -> None:
    capsys.readouterr()
    assert run([*argv, "--data-dir", str(demo_dir)]) == code
    err = capsys.readouterr().err
    assert fragment in err and "Traceback" not in err and err.count("\n") == 1


def test_bad_config_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cfg = tmp_path / "c.toml"
    cfg.write_text("[hub\n")
    assert run(["ledger", "trial-balance", "--config", str(cfg), "--data-dir", str(tmp_path)]) == 2
    assert "not valid TOML" in capsys.readouterr().err


@pytest.mark.skipif(
    os.environ.get("ISTHMUS_STORE") == "postgresql",
    reason="online backup of the embedded files; scale-out backs up PostgreSQL",
)
def test_backup_restores_the_same_ledger(
    demo_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    target = tmp_path / "bk"
    assert run(["backup", "--to", str(target), "--data-dir", str(demo_dir)]) == 0
    names = {p.name for p in target.iterdir()}  # governance.db once anything was audited
    assert (
        {"store.db", "bus.db", "token.key"}
        <= names
        <= {"store.db", "bus.db", "token.key", "governance.db"}
    )
    original = _json(capsys, ["ledger", "trial-balance", "--data-dir", str(demo_dir), "--json"])
    restored = _json(capsys, ["ledger", "trial-balance", "--data-dir", str(target), "--json"])
    assert restored == original
    capsys.readouterr()
    assert run(["backup", "--to", str(target), "--data-dir", str(demo_dir)]) == 2  # not empty


def test_status_shows_backlogs_and_exits_4_on_trouble(
    demo_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    st = _json(capsys, ["status", "--data-dir", str(demo_dir), "--json"])
    assert isinstance(st, dict)
    assert st["events_waiting"] == 0 and st["dead_letters"] == 0
    assert st["erp_outbox"]["failing"] == 0
    assert st["work_items_open"].get("revenue-integrity", 0) == 1  # one per missing code
    assert st["messages"] > 0 and st["rejected"] > 0


def test_status_exits_4_with_a_dead_letter(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    hub = Hub.open(load_settings(None, data_dir=tmp_path, env=dict(os.environ)))
    try:
        hub.bus.publish([Publish("bad/1", "finance", "k1", b"not an envelope")])
        hub.worker().drain()
    finally:
        hub.close()
    st = _json(capsys, ["status", "--data-dir", str(tmp_path), "--json"], code=4)
    assert isinstance(st, dict) and st["dead_letters"] == 1
