"""Gate for tests that need a real service (PostgreSQL, NATS JetStream).

Locally a missing service skips the test with the reason; under CI (CI=true) it fails the
run, so a green CI always means the real component was exercised.
"""

from __future__ import annotations

import os
import socket

import pytest


def require(name: str, host: str, port: int) -> None:
    try:
        with socket.create_connection((host, port), timeout=2):
            return
    except OSError as exc:
        why = f"{name} is not reachable at {host}:{port} ({exc.strerror or exc})"
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"{why}; CI=true requires it (.ci/run starts it)")
    pytest.skip(why)


POSTGRES = ("127.0.0.1", int(os.environ.get("ISTHMUS_TEST_PG_PORT", "5432")))
NATS = ("127.0.0.1", int(os.environ.get("ISTHMUS_TEST_NATS_PORT", "4222")))


CHROMIUM = "/usr/bin/chromium"  # Debian's package; Playwright drives it, never downloads one
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]


def require_chromium() -> str:
    """The Chromium executable for Playwright; skip (fail under CI=true) without it."""
    if os.access(CHROMIUM, os.X_OK):
        return CHROMIUM
    why = f"{CHROMIUM} is not installed (Debian package chromium)"
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"{why}; CI=true requires it (.ci/run installs it)")
    pytest.skip(why)
