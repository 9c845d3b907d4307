"""The one error tree (isthmus/errors.py, issue 17 item 2): every error class of the package
is under it, in one family, and carries a coherent HTTP status, exit code, ACK code and
HL7 table 0357 code; the shells map it in one place (api/problems.py, cli/main.py)."""

from __future__ import annotations

import ast
import importlib
import inspect
import json
import pkgutil
from pathlib import Path

import pytest

import isthmus
from isthmus import errors
from isthmus.api import problems
from isthmus.errors import (
    FAMILIES,
    PROBLEM_BASE,
    ConfigurationError,
    ConflictError,
    DuplicateError,
    InvalidInput,
    IsthmusError,
    NotFoundError,
    ParseError,
    PermanentError,
    PolicyRefused,
    RefusedError,
    StorageUnavailable,
    TransientError,
)

SRC = Path(isthmus.__file__).parent
# Alembic's migration script runs only under alembic (it reads alembic.context at import).
NOT_IMPORTABLE = frozenset({"isthmus.store.migrations.env"})
# Signals that never leave the module that catches them: not failures, not in the tree.
SIGNALS = frozenset({"isthmus.flows.refund_window.Unindexed"})
TABLE_0357 = frozenset({0, 100, 101, 102, 103, 200, 201, 202, 203, 204, 205, 206, 207})


def error_classes() -> list[type[BaseException]]:
    """Every exception class defined in the package, found by importing every module."""
    found: dict[str, type[BaseException]] = {}
    for info in pkgutil.walk_packages([str(SRC)], "isthmus."):
        if info.name in NOT_IMPORTABLE:
            continue
        module = importlib.import_module(info.name)
        for name, obj in vars(module).items():
            if (
                inspect.isclass(obj)
                and issubclass(obj, BaseException)
                and obj.__module__ == module.__name__
                and not name.startswith("_")
            ):
                found[f"{obj.__module__}.{obj.__qualname__}"] = obj
    return [found[k] for k in sorted(found) if k not in SIGNALS]


CLASSES = error_classes()


def test_the_walk_finds_the_errors_of_every_layer() -> None:
    names = {f"{c.__module__}.{c.__qualname__}" for c in CLASSES}
    for expected in (
        "isthmus.formats.hl7v2.errors.HL7ParseError",
        "isthmus.ports.erp.ErpRejected",
        "isthmus.flows.refund_errors.NotAllowed",
        "isthmus.config.values.ConfigError",
        "isthmus.api.json_body.BodyRefused",
        "isthmus.errors.StorageUnavailable",
        "isthmus.cli.commands.NotFound",
    ):
        assert expected in names
    assert len(CLASSES) >= 60


@pytest.mark.parametrize("cls", CLASSES, ids=lambda c: f"{c.__module__}.{c.__qualname__}")
def test_every_error_class_is_in_the_tree_and_in_a_family(cls: type[BaseException]) -> None:
    assert issubclass(cls, IsthmusError), f"{cls} hangs off {cls.__bases__}, not IsthmusError"
    # an abstract base of one module's errors (RefundError) may stand above the families
    assert any(issubclass(cls, f) for f in FAMILIES) or any(
        issubclass(sub, f) for sub in cls.__subclasses__() for f in FAMILIES
    ), cls


@pytest.mark.parametrize("cls", CLASSES, ids=lambda c: f"{c.__module__}.{c.__qualname__}")
def test_every_error_carries_what_each_shell_answers(cls: type[BaseException]) -> None:
    assert issubclass(cls, IsthmusError)
    assert 400 <= cls.http_status <= 599
    assert cls.exit_code in (1, 2, 3, 4)
    assert cls.ack_code in ("AE", "AR")
    assert cls.err_code in TABLE_0357
    assert cls.problem_type.startswith(PROBLEM_BASE) and cls.title
    # the family named first wins the answer: a not-found is a 404 with its type
    assert issubclass(cls, NotFoundError) == (cls.http_status == 404), cls.__mro__
    if issubclass(cls, NotFoundError):
        assert cls.problem_type == NotFoundError.problem_type, cls.__mro__


@pytest.mark.parametrize(
    ("family", "status", "exit_code", "ack", "err"),
    [
        (InvalidInput, 400, 2, "AE", 102),
        (ParseError, 400, 2, "AE", 100),
        (TransientError, 503, 1, "AR", 207),
        (PermanentError, 422, 1, "AE", 207),
        (DuplicateError, 409, 4, "AE", 205),
        (ConflictError, 409, 4, "AE", 207),
        (RefusedError, 403, 2, "AE", 207),
        (NotFoundError, 404, 3, "AE", 204),
        (ConfigurationError, 500, 2, "AE", 207),
    ],
)
def test_each_family_maps_to_http_exit_and_ack(
    family: type[IsthmusError], status: int, exit_code: int, ack: str, err: int
) -> None:
    assert (family.http_status, family.exit_code, family.ack_code, family.err_code) == (
        status,
        exit_code,
        ack,
        err,
    )


def test_transient_carries_its_delay_and_permanent_its_queue() -> None:
    assert TransientError("busy").retry_after is None
    assert TransientError("busy", retry_after=2.5).retry_after == 2.5
    assert PermanentError("no").queue == "integration"
    assert PermanentError("no", queue="finance-gl").queue == "finance-gl"
    from isthmus.analytics.executive import Busy  # noqa: PLC0415
    from isthmus.ports.erp import ErpRejected, ErpUnavailable  # noqa: PLC0415

    assert Busy("held").retry_after == 5.0
    rejected = ErpRejected("period 2026-01 is closed")
    assert isinstance(rejected, PermanentError) and rejected.queue == "finance-gl"
    assert rejected.reason == "period 2026-01 is closed"
    assert isinstance(ErpUnavailable("down", retry_after=30), TransientError)


def test_the_old_import_paths_and_builtin_bases_still_hold() -> None:
    from isthmus.flows import errors as flow_errors  # noqa: PLC0415
    from isthmus.observe.message_list import BadFilter  # noqa: PLC0415
    from isthmus.store import sqlite_connection  # noqa: PLC0415

    assert flow_errors.TransientError is TransientError
    assert flow_errors.PermanentError is PermanentError
    assert sqlite_connection.StorageUnavailable is StorageUnavailable
    assert issubclass(StorageUnavailable, RuntimeError)  # callers caught RuntimeError
    with pytest.raises(ValueError, match="since"):  # callers catch ValueError
        raise BadFilter("since is not an ISO time", "since")


def test_no_postgres_module_imports_the_sqlite_one() -> None:
    for path in (SRC / "store").rglob("postgres*.py"):
        mods = {
            n.module for n in ast.walk(ast.parse(path.read_text())) if isinstance(n, ast.ImportFrom)
        }
        assert "isthmus.store.sqlite_connection" not in mods, path


def test_the_tree_imports_nothing_of_ours() -> None:
    mods = {
        n.module or ""
        for n in ast.walk(ast.parse(Path(errors.__file__).read_text()))
        if isinstance(n, ast.ImportFrom)
    } | {
        a.name
        for n in ast.walk(ast.parse(Path(errors.__file__).read_text()))
        if isinstance(n, ast.Import)
        for a in n.names
    }
    assert not [m for m in mods if m.startswith("isthmus")]


def test_an_error_answers_problem_json_outside_fhir() -> None:
    from isthmus.flows.refund_errors import InsufficientCredit  # noqa: PLC0415

    r = problems.from_error(
        "/api/v1/refunds", InsufficientCredit("the amount exceeds the refundable credit", "amount")
    )
    assert r.status_code == 409 and r.media_type == "application/problem+json"
    doc = json.loads(bytes(r.body))
    assert doc["type"] == PROBLEM_BASE + "conflict" and doc["status"] == 409
    assert doc["title"] and doc["detail"] == "the amount exceeds the refundable credit"
    assert doc["instance"] == "/api/v1/refunds"
    assert doc["errors"] == [{"detail": doc["detail"], "field": "amount"}]
    assert (doc["error"], doc["reason"], doc["field"]) == (
        "insufficient_credit",
        doc["detail"],
        "amount",
    )  # the v1 members beside


def test_the_same_error_is_an_operation_outcome_under_fhir() -> None:
    r = problems.from_error("/fhir/Account/a1", PolicyRefused("the role may not write"))
    assert r.status_code == 403 and r.media_type == "application/fhir+json"
    doc = json.loads(bytes(r.body))
    assert doc["resourceType"] == "OperationOutcome"
    assert [(i["code"], i["diagnostics"]) for i in doc["issue"]] == [
        ("forbidden", "the role may not write")
    ]


def test_a_transient_error_says_when_to_come_back() -> None:
    r = problems.from_error("/api/v1/status", StorageUnavailable("locked", retry_after=1.2))
    assert (r.status_code, r.headers["retry-after"]) == (503, "2")
    assert (
        "retry-after"
        not in problems.from_error("/api/v1/status", StorageUnavailable("locked")).headers
    )


@pytest.mark.parametrize(
    ("exc", "code"),
    [
        (ConflictError("the claim is closed"), 4),
        (NotFoundError("no claim X1"), 3),
        (ConfigurationError("[hub] store is unknown"), 2),
        (StorageUnavailable("locked"), 1),
        (PolicyRefused("the role may not"), 2),
    ],
)
def test_the_cli_maps_every_error_by_its_exit_code(
    exc: IsthmusError,
    code: int,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
) -> None:
    from isthmus.cli import main  # noqa: PLC0415

    def refuse(*_: object, **__: object) -> None:
        raise exc

    monkeypatch.setattr(main, "load_settings", refuse)
    assert main.run(["status", "--data-dir", str(tmp_path)]) == code
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("isthmus: ") and str(exc) in err[0]


@pytest.mark.parametrize(
    ("header", "expected"), [("7", 7.0), ("", None), ("Wed, 21 Oct 2026 07:28:00 GMT", None)]
)
def test_an_erp_that_says_when_to_come_back_is_heard(header: str, expected: float | None) -> None:
    import httpx  # noqa: PLC0415

    from isthmus.connectors.erp_rest import RestErp  # noqa: PLC0415
    from isthmus.ports.erp import ErpUnavailable  # noqa: PLC0415

    def busy(_: httpx.Request) -> httpx.Response:
        return httpx.Response(429, headers={"Retry-After": header} if header else {})

    erp = RestErp(
        "http://erp.invalid/t1", "token", timeout_s=1, transport=httpx.MockTransport(busy)
    )
    try:
        with pytest.raises(ErpUnavailable, match="429") as err:
            erp.master_data()
    finally:
        erp.close()
    assert err.value.retry_after == expected
