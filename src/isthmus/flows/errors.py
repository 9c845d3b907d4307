"""Errors a flow step raises, named by what the worker must do next (DESIGN: house style)."""

from __future__ import annotations


class TransientError(Exception):
    """Retry later: a dependency is down or busy. `retry_after` overrides the backoff."""

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class PermanentError(Exception):
    """Retrying cannot help: dead-letter the message with this reason."""
