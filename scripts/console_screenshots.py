"""Screenshots of every console page into docs/console/*.png, over a demo hospital day.

Runs `isthmus demo` into a fresh data directory, adds the console tests' seed (an unmapped
charge code, a dead letter, a credit balance and a token per role: tests/console/site.py)
and a refund waiting for approval, starts `isthmus serve` on free ports and visits each
page in Debian's headless Chromium (Playwright, 1280x800).

    .venv/test/bin/python scripts/console_screenshots.py [--out docs/console] [--messages 600]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.console.site import CREDIT_ACCOUNT, USERS, dress  # noqa: E402
from tests.e2e.helpers import Serve, hub_env  # noqa: E402
from tests.services import CHROMIUM, CHROMIUM_ARGS  # noqa: E402

from isthmus.app import Hub  # noqa: E402
from isthmus.flows.refund_request import Actor  # noqa: E402
from isthmus.governance import rbac  # noqa: E402

PAGES = [  # (file name, role, path)
    ("dashboard", rbac.ADMIN, "/console/"),
    ("messages", rbac.AUDITOR, "/console/messages?status=rejected"),
    ("trace", rbac.AUDITOR, None),  # a posted charge, found below
    ("queues", rbac.REVENUE, "/console/queues?queue=revenue-integrity"),
    ("dlq", rbac.ENGINEER, "/console/dlq"),
    ("recon", rbac.FINANCE, "/console/recon"),
    ("kpis", rbac.READ_ONLY, "/console/kpis"),
    ("refunds", rbac.FINANCE, "/console/refunds"),
]


def prepare(data_dir: Path, messages: int) -> tuple[dict[str, str], str]:
    subprocess.run(
        [
            sys.executable,
            "-m",
            "isthmus.cli.main",
            "demo",
            "--messages",
            str(messages),
            "--data-dir",
            str(data_dir),
        ],
        check=True,
        cwd=ROOT,
        env=hub_env(),
        stdout=subprocess.DEVNULL,
    )
    site = dress(data_dir)  # with the demo chart, as `demo` posted: a site.toml beside it
    hub = Hub.open(site.settings())
    try:
        hub.refunds().request(
            account=CREDIT_ACCOUNT,
            amount="600.00",
            currency="USD",
            reason="overpayment returned to guarantor",
            requested_by=Actor(USERS[rbac.REVENUE], frozenset({rbac.REVENUE})),
            idempotency_key="screenshots-1",
        )
        entries = hub.store.entries(limit=100_000)
        batched = hub.store.entry_batches([e.entry_key for e in entries])
        traced = next(
            e.correlation_id for e in entries if e.entry_key in batched and e.channel == "mllp"
        )
    finally:
        hub.close()
    return site.tokens, traced


def shoot(base: str, tokens: dict[str, str], traced: str, out: Path) -> None:
    from playwright.sync_api import sync_playwright  # noqa: PLC0415

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        ctx = browser.new_context(viewport={"width": 1280, "height": 800})
        page = ctx.new_page()
        page.goto(f"{base}/console/login")
        page.screenshot(path=str(out / "login.png"))
        for name, role, path in PAGES:
            ctx.clear_cookies()
            page.goto(f"{base}/console/login")
            page.fill("#token", tokens[role])
            page.click("button:has-text('Sign in')")
            page.wait_for_url(f"{base}/console/")
            page.goto(base + (path or f"/console/messages/{traced}"))
            page.screenshot(path=str(out / f"{name}.png"))
            print(f"{name:10} {role:22} {page.url}")
        browser.close()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=ROOT / "docs" / "console")
    ap.add_argument("--messages", type=int, default=600)
    args = ap.parse_args()

    with tempfile.TemporaryDirectory(prefix="isthmus-shots-") as tmp:
        data = Path(tmp) / "data"
        tokens, traced = prepare(data, args.messages)
        serve = Serve(
            data_dir=data, log_dir=Path(tmp) / "logs", config=Path(tmp) / "site.toml"
        ).start()
        base = f"http://127.0.0.1:{serve.http_port}"
        args.out.mkdir(parents=True, exist_ok=True)
        try:
            shoot(base, tokens, traced, args.out)
        finally:
            serve.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
