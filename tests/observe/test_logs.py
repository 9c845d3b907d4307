"""Structured logs: one JSON object a line, with the ids the inbox and worker bind, and no
PHI of the messages they handle (the hospital day's names, birth dates and MRNs)."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from isthmus.config import ConfigError, LogSettings, load_settings
from isthmus.demo.ehr_day import hospital_day
from isthmus.flows.retry import RetryPolicy
from isthmus.observe import logs
from tests.flows.helpers import charge, make_rig
from tests.flows.test_phi import leaks, phi_of


@pytest.fixture
def json_lines() -> Iterator[io.StringIO]:
    """A JSON handler on the isthmus loggers at DEBUG, its output in a buffer."""
    buf = io.StringIO()
    handler = logging.StreamHandler(buf)
    handler.setFormatter(logs.JsonFormatter())
    target = logging.getLogger("isthmus")
    level = target.level
    target.addHandler(handler)
    target.setLevel(logging.DEBUG)
    try:
        yield buf
    finally:
        target.removeHandler(handler)
        target.setLevel(level)


def parsed(buf: io.StringIO) -> list[dict[str, str]]:
    return [json.loads(line) for line in buf.getvalue().splitlines()]


def test_a_record_is_one_json_line_with_the_bound_ids(json_lines: io.StringIO) -> None:
    log = logging.getLogger("isthmus.test")
    with logs.bound(correlation="mllp/MSG1", control="MSG1", event="mllp/MSG1/0"):
        log.warning("applied %d of %s", 2, "two\nlines")
    log.warning("unbound")
    first, second = parsed(json_lines)
    assert first["message"] == "applied 2 of two\nlines"
    assert (first["level"], first["logger"]) == ("WARNING", "isthmus.test")
    assert (first["correlation_id"], first["control_id"], first["event_id"]) == (
        "mllp/MSG1",
        "MSG1",
        "mllp/MSG1/0",
    )
    assert first["ts"].endswith("Z")
    assert "correlation_id" not in second  # nothing bound any more


def test_nested_bindings_restore_the_outer_ids() -> None:
    with logs.bound(correlation="a/1"):
        with logs.bound(event="a/1/0"):
            assert logs.current_ids() == {"correlation_id": "a/1", "event_id": "a/1/0"}
        assert logs.current_ids() == {"correlation_id": "a/1"}
    assert logs.current_ids() == {}


def test_a_segment_quoted_in_a_message_or_traceback_is_scrubbed(json_lines: io.StringIO) -> None:
    log = logging.getLogger("isthmus.test")
    try:
        raise ValueError("bad PID|1||M000123^^^H^MR||ZEBRAFISH^QUILLON||19800101|F")
    except ValueError:
        log.exception("failed on NM1*QC*1*ZEBRAFISH*QUILLON****MI*W1234567~ and more")
    (rec,) = parsed(json_lines)
    for phi in ("ZEBRAFISH", "QUILLON", "M000123", "19800101", "W1234567"):
        assert phi not in json.dumps(rec)
    assert rec["message"] == "failed on NM1*<redacted>~ and more"  # to the terminator
    assert "ValueError: bad PID|<redacted>" in rec["exc"]


@given(st.text(alphabet=st.characters(blacklist_characters="\r\n'\"|~*"), min_size=1))
def test_scrub_removes_any_pid_field_value(value: str) -> None:
    text = f"error near PID|1||{value}^^^H^MR||{value}||{value}"
    out = logs.scrub(text)
    assert out == "error near PID|<redacted>"


def test_scrub_leaves_ids_and_sizes_alone() -> None:
    text = "dead-lettering mllp/MSG00042/0 after 8 attempts: 1234 bytes"
    assert logs.scrub(text) == text


def test_worker_logs_carry_correlation_ids_and_no_phi(
    tmp_path: Path, json_lines: io.StringIO
) -> None:
    rig = make_rig(tmp_path, policy=RetryPolicy(max_attempts=1))
    day = [m.raw for m in hospital_day(messages=200, seed=5)]
    phi = phi_of(day)
    assert len(phi) > 50
    rig.ingest([*day, charge("BAD1", "900001", amount="12.00")])
    rig.drain()
    records = parsed(json_lines)
    applied = [r for r in records if r["logger"] == "isthmus.flows.worker"]
    assert len(applied) >= 100
    assert all(
        r["correlation_id"].startswith("mllp/")
        and r["event_id"].startswith(r["correlation_id"] + "/")
        and r["control_id"]
        for r in applied
    )
    assert {v for line in json_lines.getvalue().splitlines() for v in leaks(line, phi)} == set()


def test_log_settings_from_file_and_environment(tmp_path: Path) -> None:
    cfg = tmp_path / "hub.toml"
    cfg.write_text('[logging]\nformat = "json"\nlevel = "debug"\n')
    s = load_settings(cfg, data_dir=tmp_path, env={})
    assert s.logging == LogSettings(format="json", level="debug")
    s = load_settings(None, data_dir=tmp_path, env={"ISTHMUS_LOG_FORMAT": "json"})
    assert s.logging.format == "json"
    cfg.write_text('[logging]\nformat = "xml"\n')
    with pytest.raises(ConfigError, match=r"logging\.format"):
        load_settings(cfg, data_dir=tmp_path, env={})


def test_configure_formats_plain_stream_handlers_and_keeps_others() -> None:
    root = logging.getLogger()
    buf = io.StringIO()
    plain = logging.StreamHandler(buf)
    other = logging.NullHandler()
    root.addHandler(plain)
    root.addHandler(other)
    try:
        logs.configure(LogSettings(format="json"))
        assert isinstance(plain.formatter, logs.JsonFormatter)
        assert other in root.handlers
    finally:
        root.removeHandler(plain)
        root.removeHandler(other)
