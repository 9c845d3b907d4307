"""Strict request bodies (issue 16, item 8): size and JSON depth limits answered 413/400
naming the limit, duplicate keys and NaN refused, never a 500 (api/json_body.py)."""

from __future__ import annotations

import asyncio
import dataclasses
import json
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from isthmus.api import json_body
from isthmus.api.http import build_app
from isthmus.app import Hub
from isthmus.config import ConfigError, LimitSettings, load_settings
from isthmus.governance import identity, rbac

NOW = 1_700_000_000.0
LIMITS = LimitSettings(max_body_bytes=4096, max_json_depth=8)


@dataclasses.dataclass
class Site:
    hub: Hub
    token: str


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    settings = load_settings(None, data_dir=tmp_path_factory.mktemp("limits"))
    hub = Hub.open(dataclasses.replace(settings, limits=LIMITS))
    try:
        admin = identity.principal("root", "user", (rbac.ADMIN,), NOW)
        issued = identity.issue(admin, (rbac.ADMIN,), NOW)
        assert hub.governance.initialize(admin, issued.token)
        yield Site(hub, issued.clear)
    finally:
        hub.close()


def _post(
    site: Site, path: str, content: bytes | AsyncIterator[bytes], media: str = "application/json"
) -> httpx.Response:
    async def go() -> httpx.Response:
        transport = httpx.ASGITransport(app=build_app(site.hub), client=("127.0.0.1", 50000))
        async with httpx.AsyncClient(transport=transport, base_url="http://hub") as c:
            return await c.post(
                path,
                content=content,
                headers={"Authorization": f"Bearer {site.token}", "Content-Type": media},
            )

    return asyncio.run(go())


def _nested(depth: int) -> bytes:
    return b'{"account": "A1", "x": ' + b"[" * depth + b"]" * depth + b"}"


REFUND_POSTS = ["/api/v1/refunds", "/api/v1/refunds/RF-1/approve", "/api/v1/refunds/RF-1/reject"]
JSON_POSTS = [*REFUND_POSTS, "/api/v1/workforce/events"]


@pytest.mark.parametrize("path", JSON_POSTS)
@pytest.mark.parametrize("depth", [9, 2000])  # 2000: RecursionError, a 500, before
def test_deep_json_is_400_naming_the_limit(site: Site, path: str, depth: int) -> None:
    r = _post(site, path, _nested(depth))
    assert r.status_code == 400, r.text
    body = r.json()
    assert (body["error"], body["field"], body["limit"], body["max"]) == (
        "json_too_deep",
        "body",
        "max_json_depth",
        8,
    )
    assert "[limits] max_json_depth" in body["reason"]


def test_json_within_the_depth_limit_reaches_the_refund_checks(site: Site) -> None:
    r = _post(site, "/api/v1/refunds", _nested(7))
    assert r.status_code == 400 and r.json()["field"] != "body", "the body was read"


@pytest.mark.parametrize("path", [*REFUND_POSTS, "/api/v1/supply/usage"])
def test_a_body_over_the_size_limit_is_413(site: Site, path: str) -> None:
    big = b'{"reason": "' + b"x" * 5000 + b'"}'
    r = _post(site, path, big, "text/csv" if "supply" in path else "application/json")
    assert r.status_code == 413, r.text
    body = r.json()
    assert (body["error"], body["limit"], body["max"]) == ("body_too_large", "max_body_bytes", 4096)


def test_a_streamed_body_is_cut_at_the_limit(site: Site) -> None:
    """No Content-Length (chunked): refused once the bytes pass the limit."""
    sent: list[int] = []

    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(100):
            sent.append(1)
            yield b" " * 1024

    r = _post(site, "/api/v1/refunds", chunks())
    assert r.status_code == 413 and r.json()["limit"] == "max_body_bytes"


@pytest.mark.parametrize("path", ["/api/v1/workforce/events"])
def test_the_workforce_webhook_refuses_duplicate_keys(site: Site, path: str) -> None:
    r = _post(site, path, b'{"events": [], "events": []}')
    assert r.status_code == 400, r.text
    assert r.json()["error"] == "duplicate_key"


def test_duplicate_keys_are_refused_naming_the_key(site: Site) -> None:
    raw = (
        b'{"account": "A1", "amount": "1.00", "currency": "USD", "reason": "r", '
        b'"idempotency_key": "k", "amount": "900.00"}'
    )
    r = _post(site, "/api/v1/refunds", raw)
    assert r.status_code == 400
    assert (r.json()["error"], r.json()["key"]) == ("duplicate_key", "amount")
    nested = b'{"note": "ok", "x": {"a": 1, "a": 2}}'
    r = _post(site, "/api/v1/refunds/RF-1/approve", nested)
    assert r.status_code == 400 and r.json()["key"] == "a"


@pytest.mark.parametrize("constant", [b"NaN", b"Infinity", b"-Infinity"])
def test_nan_and_infinity_are_not_json(site: Site, constant: bytes) -> None:
    raw = b'{"account": "A1", "amount": ' + constant + b', "currency": "USD"}'
    r = _post(site, "/api/v1/refunds", raw)
    assert r.status_code == 400 and r.json()["error"] == "invalid_json"


@pytest.mark.parametrize(
    "amount", ['"1_0.00"', '"\uff11\uff10.00"', '"1e3"', "1e3", '"NaN"', '"Infinity"']
)
def test_refund_amounts_are_ascii_decimals(site: Site, amount: str) -> None:
    raw = (
        '{"account": "A1", "amount": ' + amount + ', "currency": "USD", "reason": "r", '
        '"idempotency_key": "k"}'
    ).encode()
    r = _post(site, "/api/v1/refunds", raw)
    assert r.status_code == 400, r.text
    assert r.json()["field"] == "amount" and "decimal" in r.json()["reason"]


@pytest.mark.parametrize(
    ("raw", "depth"),
    [
        (b"1", 0),
        (b"[]", 1),
        (b'[{"a": [1]}]', 3),
        (b'["[[[[", "\\"[[["]', 1),
        (b'{"k\\\\": "]]]"}', 1),
    ],
)
def test_depth_counts_brackets_outside_strings(raw: bytes, depth: int) -> None:
    assert json_body.depth_of(raw) == depth
    json.loads(raw)


def test_loads_reads_decimals_not_floats() -> None:
    data: Any = json_body.loads(b'{"a": 0.1}', LimitSettings())
    assert str(data["a"]) == "0.1" and not isinstance(data["a"], float)


@pytest.mark.parametrize(
    ("table", "why"),
    [
        ("max_json_depth = 1", "limits.max_json_depth"),
        ('max_body_bytes = "1MB"', "limits.max_body_bytes"),
        ("max_depth = 3", "unknown key limits.max_depth"),
    ],
)
def test_limit_settings_are_checked(tmp_path: Path, table: str, why: str) -> None:
    cfg = tmp_path / "isthmus.toml"
    cfg.write_text(f"[limits]\n{table}\n")
    with pytest.raises(ConfigError, match=why.replace("[", r"\[").replace("]", r"\]")):
        load_settings(cfg, data_dir=tmp_path)
