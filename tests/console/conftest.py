"""Fixtures for the console tests: the seeded site, a running `isthmus serve` over it, and
a headless Chromium page (Debian's chromium driven by Playwright; no browser download)."""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.console.site import USERS, Site, build
from tests.e2e.helpers import Serve
from tests.services import CHROMIUM_ARGS, require_chromium


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Site:
    return build(tmp_path_factory.mktemp("console") / "data")


@pytest.fixture(scope="module")
def hub_url(site: Site, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    # The served hub runs in the mode the site was seeded in (the scale-out pass sets it).
    mode = {
        k: v
        for k, v in os.environ.items()
        if k.startswith(("ISTHMUS_STORE", "ISTHMUS_BUS", "ISTHMUS_PG_", "ISTHMUS_NATS_"))
    }
    serve = Serve(
        data_dir=site.data_dir,
        log_dir=tmp_path_factory.mktemp("serve-logs"),
        config=site.config,
        env=mode,
    )
    serve.start()
    try:
        yield f"http://127.0.0.1:{serve.http_port}"
    finally:
        serve.stop()


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    exe = require_chromium()
    from playwright.sync_api import sync_playwright  # noqa: PLC0415 - only with chromium

    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=exe, args=CHROMIUM_ARGS, headless=True)
        try:
            yield b
        finally:
            b.close()


@pytest.fixture
def shots() -> Path | None:
    """Where to write page screenshots (ISTHMUS_CONSOLE_SHOTS), or None: tests do not
    touch docs/ unless asked (scripts/console_screenshots.py asks)."""

    where = os.environ.get("ISTHMUS_CONSOLE_SHOTS")
    return Path(where) if where else None


@pytest.fixture
def signed_in(browser: Any, hub_url: str, site: Site) -> Iterator[Callable[[str], Any]]:
    """A page signed in as a role, one browser context each (closed afterwards)."""
    contexts: list[Any] = []

    def as_role(role: str) -> Any:
        ctx = browser.new_context(viewport={"width": 1280, "height": 800})
        contexts.append(ctx)
        page = ctx.new_page()
        page.set_default_timeout(60_000)  # generous: Playwright waits on the condition
        page.goto(f"{hub_url}/console/")
        assert "/console/login" in page.url  # no session: sent to sign in
        page.fill("#token", site.tokens[role])
        page.click("button:has-text('Sign in')")
        page.wait_for_url(re.compile(r".*/console/$"))
        assert USERS[role] in page.inner_text("header")
        return page

    yield as_role
    for c in contexts:
        c.close()
