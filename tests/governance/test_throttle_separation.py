"""Console sign-ins and API tokens are throttled apart (issue 16, items 3 and 6): a flood of
bad console sign-ins from an address does not turn that address's API requests into 429,
and a flood of bad API tokens does not lock the console's sign-in form; within each, a
valid token always passes (governance/throttle.py, api/auth.py, console/app.py)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from isthmus.app import Hub
from isthmus.config import load_settings
from isthmus.governance import identity, rbac
from isthmus.governance.throttle import FailureThrottle
from tests.chart import demo_config
from tests.console.test_console_http import Browser

NOW = 1_700_000_000.0
TRIES = FailureThrottle.max_failures
BAD = "isth_0123456789ab_" + "B" * 43  # the shape of a token, matching none


@pytest.fixture
def hub(tmp_path: Path) -> Iterator[tuple[Hub, str]]:
    h = Hub.open(load_settings(demo_config(tmp_path), data_dir=tmp_path / "hub"))
    try:
        admin = identity.principal("root", "user", (rbac.ADMIN,), NOW)
        issued = identity.issue(admin, (rbac.ADMIN,), NOW)
        assert h.governance.initialize(admin, issued.token)
        yield h, issued.clear
    finally:
        h.close()


def _api(b: Browser, token: str) -> int:
    return b.request(
        "GET", "/api/v1/status", headers={"Authorization": f"Bearer {token}"}
    ).status_code


def test_bad_console_sign_ins_do_not_throttle_the_api(hub: tuple[Hub, str]) -> None:
    h, admin = hub
    b = Browser(h)  # one app, one client address (127.0.0.1) for both
    codes = [b.sign_in(BAD).status_code for _ in range(TRIES + 1)]
    assert codes == [401] * TRIES + [429]  # the console's sign-in form is throttled...
    assert _api(b, BAD) == 401  # ... the API's own count starts at nothing
    assert _api(b, admin) == 200
    assert b.sign_in(admin).status_code == 303  # and a valid sign-in always passes


def test_bad_api_tokens_do_not_throttle_console_sign_ins(hub: tuple[Hub, str]) -> None:
    h, admin = hub
    b = Browser(h)
    codes = [_api(b, BAD) for _ in range(TRIES + 1)]
    assert codes == [401] * TRIES + [429]
    assert _api(b, admin) == 200  # a valid token passes the throttled address
    assert b.sign_in(BAD).status_code == 401  # the sign-in form's count is its own
    assert b.sign_in(admin).status_code == 303
    actions = [r.event.action for r in h.governance.audit_rows()]
    assert "http.throttled" in actions and "console.throttled" not in actions
