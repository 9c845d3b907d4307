"""The hub's one error tree, named by what the caller must do next (DESIGN: house style).

Every error Isthmus raises on purpose is an `IsthmusError`, and sits under exactly one
family below. A family says what to do next (fix the input, retry later, have a person
act, give up, look elsewhere) and carries, as class attributes, what each shell answers
with, so each shell maps errors in one place:

- `http_status` and `problem_type`/`title`: the HTTP answer, `application/problem+json`
  (RFC 9457) outside `/fhir`, an OperationOutcome inside it (api/problems.py);
- `exit_code`: the CLI's exit status (cli/main.py: 2 usage or configuration, 3 not found,
  4 a check or a state refuses it, 1 otherwise);
- `ack_code` and `err_code`: the HL7 v2 ACK (MSA-1, table 0008: AE application error, AR
  application reject) and the ERR-3 error code (HL7 table 0357: 100 segment sequence,
  102 data type, 204 unknown key identifier, 205 duplicate key identifier, 207
  application internal error).

A subclass overrides what differs; an instance may too (a body refused 413 rather than
400). `field` names the input at fault when it is known (a query parameter, a JSON path,
a form field). Messages name the rule broken and the identifiers involved, never a value
read from a message (no PHI, no card data): they reach logs, ACKs and HTTP answers.

Some leaf errors keep a builtin as a second base (ValueError, LookupError, RuntimeError,
OSError) because callers caught that builtin before the tree existed; the tree comes first.

This module imports nothing of ours: every layer, the model included, may import it.
"""

from __future__ import annotations

from typing import Final

PROBLEM_BASE: Final = "https://isthmus.invalid/problems/"


class IsthmusError(Exception):
    """Something the hub refused or could not do; the subclass says what to do next."""

    http_status: int = 500
    exit_code: int = 1
    ack_code: str = "AE"
    err_code: int = 207
    problem_type: str = PROBLEM_BASE + "error"
    title: str = "the request could not be processed"
    field: str = ""


class InvalidInput(IsthmusError):
    """The input breaks a rule (a field missing or malformed): fix it and send it again."""

    http_status = 400
    exit_code = 2
    err_code = 102
    problem_type = PROBLEM_BASE + "invalid-input"
    title = "the input is invalid"


class ParseError(InvalidInput):
    """The bytes cannot be read at all: dead-letter (keep) them and answer negatively."""

    err_code = 100
    problem_type = PROBLEM_BASE + "unreadable"
    title = "the input cannot be read"


class TransientError(IsthmusError):
    """Retry later: a dependency is down or busy. `retry_after` (seconds) overrides the
    backoff when the dependency said how long to wait."""

    http_status = 503
    ack_code = "AR"
    problem_type = PROBLEM_BASE + "unavailable"
    title = "a service the hub needs is unavailable; try again later"
    retry_after: float | None = None

    def __init__(self, message: str = "", retry_after: float | None = None) -> None:
        super().__init__(message)
        if retry_after is not None:
            self.retry_after = retry_after


class PermanentError(IsthmusError):
    """Retrying as is cannot help: dead-letter it, and a person of `queue` must act."""

    http_status = 422
    problem_type = PROBLEM_BASE + "permanent"
    title = "the request cannot succeed as it is"
    queue: str = "integration"

    def __init__(self, message: str = "", queue: str | None = None) -> None:
        super().__init__(message)
        if queue is not None:
            self.queue = queue


class DuplicateError(IsthmusError):
    """It was done already (same key): nothing to do, or use a new key."""

    http_status = 409
    exit_code = 4
    err_code = 205
    problem_type = PROBLEM_BASE + "duplicate"
    title = "this was done already"


class ConflictError(IsthmusError):
    """The request contradicts the current state: look at that state first."""

    http_status = 409
    exit_code = 4
    problem_type = PROBLEM_BASE + "conflict"
    title = "the request conflicts with the current state"


class RefusedError(IsthmusError):
    """A rule forbids it for this caller: someone else (an owner, a role) must act."""

    http_status = 403
    exit_code = 2
    problem_type = PROBLEM_BASE + "refused"
    title = "the request is refused"


class OwnershipRefused(RefusedError):
    """Another system is the system of record for this data: send it there."""

    problem_type = PROBLEM_BASE + "not-owner"
    title = "another system owns this data"


class PolicyRefused(RefusedError):
    """A policy (roles, segregation of duties, a business rule) forbids it."""

    problem_type = PROBLEM_BASE + "policy"
    title = "a policy forbids this request"


class NotFoundError(IsthmusError):
    """What was named does not exist: check the id or name."""

    http_status = 404
    exit_code = 3
    err_code = 204
    problem_type = PROBLEM_BASE + "not-found"
    title = "not found"


class ConfigurationError(IsthmusError):
    """The site's configuration (or installation) is wrong: the operator must fix it."""

    exit_code = 2
    problem_type = PROBLEM_BASE + "configuration"
    title = "the hub is not configured for this"


class StorageUnavailable(TransientError, RuntimeError):
    """The database cannot be opened or written; the caller must retry later or stop.

    Here, not beside one adapter, because every store adapter (SQLite, PostgreSQL) raises it
    and every shell catches it."""

    problem_type = PROBLEM_BASE + "storage-unavailable"
    title = "the store is unavailable; try again later"


FAMILIES: Final[tuple[type[IsthmusError], ...]] = (
    InvalidInput,
    TransientError,
    PermanentError,
    DuplicateError,
    ConflictError,
    RefusedError,
    NotFoundError,
    ConfigurationError,
)


__all__ = [
    "FAMILIES",
    "PROBLEM_BASE",
    "ConfigurationError",
    "ConflictError",
    "DuplicateError",
    "InvalidInput",
    "IsthmusError",
    "NotFoundError",
    "OwnershipRefused",
    "ParseError",
    "PermanentError",
    "PolicyRefused",
    "RefusedError",
    "StorageUnavailable",
    "TransientError",
]
