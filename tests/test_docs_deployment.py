"""docs/deployment.md (and README.md's TOML) name only what exists: every `isthmus` command,
action and option it shows parses with the CLI's own parser, every ISTHMUS_* variable is
read by the code, and every TOML example passes the configuration's key check (the
guide's full example loads)."""

from __future__ import annotations

import argparse
import re
import tomllib
from pathlib import Path

import pytest

from isthmus.cli.main import parser
from isthmus.config import known_keys, load_settings
from isthmus.config_keys import unknown

ROOT = Path(__file__).resolve().parent.parent
GUIDE = ROOT / "docs" / "deployment.md"
COMMAND = re.compile(r"(?<![\w/.:-])isthmus ((?:[a-z][a-z-]*)(?: [^`\n]*)?)")
VARIABLE = re.compile(r"(?<![\"\w])(ISTHMUS_[A-Z0-9_]*[A-Z])(?![\w\"])")


def _subparsers(ap: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    (sub,) = [a for a in ap._actions if isinstance(a, argparse._SubParsersAction)]
    return dict(sub.choices)


def _toml_blocks(path: Path) -> list[str]:
    return re.findall(r"```toml\n(.*?)```", path.read_text(), re.S)


def test_every_command_action_and_option_in_the_guide_exists() -> None:
    subs = _subparsers(parser())
    found = COMMAND.findall(GUIDE.read_text())
    assert len(found) > 20
    for line in found:
        name, *rest = line.split()
        assert name in subs, f"isthmus {line}: no command {name}"
        p = subs[name]
        actions = [a for a in p._actions if a.dest == "action" and a.choices]
        words = [w for w in rest if not w.startswith(("-", "<", "/", "$", "'", '"', "\\"))]
        named = words[0].split("|") if words else []  # `workitems list|resolve|resubmit`
        if actions and named and all(re.fullmatch(r"[a-z][a-z-]*", w) for w in named):
            for action in named:
                assert action in list(actions[0].choices or ()), (
                    f"isthmus {line}: no action {action}"
                )
        for flag in re.findall(r"(?<!\S)(--[a-z][a-z-]*)", " ".join(rest)):
            assert flag in p._option_string_actions, f"isthmus {line}: no option {flag}"


def test_every_variable_in_the_guide_is_read_by_the_code() -> None:
    code = "\n".join(p.read_text() for p in (ROOT / "src" / "isthmus").rglob("*.py"))
    named = set(VARIABLE.findall(GUIDE.read_text()))
    assert {"ISTHMUS_PG_DSN", "ISTHMUS_LOG_FORMAT", "ISTHMUS_TOKEN"} <= named
    missing = sorted(v for v in named if f'"{v}"' not in code)
    assert not missing, f"named in docs/deployment.md, read nowhere: {missing}"


@pytest.mark.parametrize("doc", [GUIDE, ROOT / "README.md"], ids=lambda p: p.name)
def test_every_documented_setting_is_a_known_key(doc: Path) -> None:
    blocks = _toml_blocks(doc)
    assert blocks
    for block in blocks:
        assert unknown(tomllib.loads(block), known_keys()) == [], block[:200]


def test_the_guides_full_example_loads(tmp_path: Path) -> None:
    example = next(b for b in _toml_blocks(GUIDE) if "[hub]" in b and "[reliability]" in b)
    cfg = tmp_path / "isthmus.toml"
    cfg.write_text(example)
    s = load_settings(cfg, env={})
    assert (s.store, s.bus, s.reliability.partitions) == ("postgresql", "nats", 8)
    assert s.tls_client_ca is not None and s.trusted_proxies
