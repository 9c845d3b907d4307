"""schemathesis against the served OpenAPI document, in-process over ASGI, as an admin.

Every operation gets generated requests (valid and invalid bodies, parameters, ids) and
every answer must be no server error, a documented status code, a documented content
type and a body that matches the documented schema. Bounded: a few examples per
operation, derandomized, so it runs in well under a minute and fails the same way twice.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode, checks
from schemathesis.specs.openapi import checks as oa_checks

from isthmus.api import openapi
from isthmus.api.auth import BearerAuth
from isthmus.api.http import build_app
from isthmus.app import Hub
from isthmus.config import load_settings
from isthmus.governance import identity, rbac
from isthmus.governance.throttle import FailureThrottle

NOW = 1_700_000_000.0
EXAMPLES = 15
CHECKS = [
    checks.not_a_server_error,
    oa_checks.status_code_conformance,
    oa_checks.content_type_conformance,
    oa_checks.response_schema_conformance,
]


@pytest.fixture(scope="module")
def target(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[object, str]]:
    hub = Hub.open(load_settings(None, data_dir=tmp_path_factory.mktemp("schemathesis")))
    try:
        admin = identity.principal("root", "user", (rbac.ADMIN,), NOW)
        issued = identity.issue(admin, (rbac.ADMIN,), time.time())
        assert hub.governance.initialize(admin, issued.token)
        app = build_app(hub)
        # schemathesis also calls without the token ("ignored auth"); those 401s must not
        # trip the failed-authentication throttle and turn the rest of the run into 429s
        for m in app.user_middleware:
            if m.cls is BearerAuth:
                m.kwargs["throttle"] = FailureThrottle(max_failures=1_000_000)
        yield app, issued.clear
    finally:
        hub.close()


def test_every_operation_conforms(target: tuple[object, str]) -> None:
    app, token = target
    auth = {"Authorization": f"Bearer {token}"}
    schema = schemathesis.openapi.from_asgi("/openapi.json", app, headers=auth)
    seen, calls = [], []
    inputs = {
        f"{op.method} {openapi.openapi_path(op.path)}": bool(op.parameters or op.body)
        for op in openapi.OPERATIONS
    }
    for result in schema.get_all_operations():
        operation = result.ok()
        seen.append(operation.label)
        # invalid inputs only where there are inputs to break
        modes = [GenerationMode.POSITIVE] + [GenerationMode.NEGATIVE] * inputs[operation.label]
        for mode in modes:

            @given(case=operation.as_strategy(mode))
            @settings(
                max_examples=EXAMPLES,
                deadline=None,
                derandomize=True,
                database=None,
                suppress_health_check=list(HealthCheck),
            )
            def run(case: schemathesis.Case) -> None:
                r = case.call_and_validate(headers=auth, checks=CHECKS)
                calls.append((case.operation.label, r.status_code))

            run()
    # schemathesis leaves out the document's own route
    assert sorted(seen) == sorted(
        f"{op.method} {openapi.openapi_path(op.path)}"
        for op in openapi.OPERATIONS
        if op.path != "/openapi.json"
    )
    assert len(calls) > 10 * len(seen)
    assert {s for label, s in calls if label.startswith("PUT")} >= {404}
