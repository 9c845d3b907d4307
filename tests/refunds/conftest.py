"""The refund tests reuse the end-to-end `serve_factory` (real `isthmus serve` processes)."""

from tests.e2e.conftest import serve_factory

__all__ = ["serve_factory"]
