"""Real Tryton databases for the tests, shared by tests/connectors/erp and tests/flows/supply.

A template database is built once per machine, trytond version and setup code (a marker
file under a file lock: one builder, the others wait and reuse it), and a test session
serves fresh copies of it from one trytond, one copy per test that asks. When trytond
cannot run, the tests that need it skip with the reason; under CI=true they fail instead
(tests/services.py does the same for PostgreSQL and NATS).
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from types import ModuleType
from typing import NoReturn

import pytest

from isthmus.connectors.erp_rpc import TrytonRpc
from isthmus.connectors.erp_tryton_server import TrytonServer, TrytonSite, default_bin_dir
from isthmus.connectors.erp_tryton_setup import copy_database
from tests.e2e.helpers import free_port


def unavailable(why: str) -> NoReturn:
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"Tryton unavailable: {why}; CI=true requires it")
    pytest.skip(f"Tryton unavailable: {why}")


def require_trytond() -> None:
    try:
        import trytond  # noqa: F401, PLC0415 - only where Tryton runs
    except ImportError as exc:
        unavailable(f"trytond is not installed ({exc})")
    if not (default_bin_dir() / "trytond").exists():
        unavailable(f"no trytond binary in {default_bin_dir()}")


def ensure_template(
    label: str, name: str, build: Callable[[TrytonSite, str], object], code: Sequence[ModuleType]
) -> TrytonSite:
    """The site holding template `name`, built by `build` unless a build by the same
    trytond version and setup `code` (the modules that build it) is already there."""
    import trytond  # noqa: PLC0415

    digest = hashlib.sha256(b"".join(Path(str(m.__file__)).read_bytes() for m in code)).hexdigest()[
        :10
    ]
    root = Path(tempfile.gettempdir()) / f"isthmus-{label}-{trytond.__version__}-{digest}"
    root.mkdir(parents=True, exist_ok=True)
    site = TrytonSite(root, default_bin_dir())
    marker = site.data_dir / "template.ready"
    with open(site.data_dir / "template.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not marker.exists():
            (site.data_dir / f"{name}.sqlite").unlink(missing_ok=True)
            t0 = time.monotonic()
            try:
                build(site, name)
            except (RuntimeError, OSError) as exc:
                unavailable(f"building the {label} template failed: {exc}")
            marker.write_text(f"{time.monotonic() - t0:.1f}\n")
    return site


class TrytonPool:
    """A running trytond with fresh copies of a template; `take` hands one out."""

    def __init__(self, site: TrytonSite, server: TrytonServer, names: list[str]) -> None:
        self.site, self.server, self._names = site, server, iter(names)
        self.size = len(names)

    def take(self) -> str:
        name = next(self._names, None)
        if name is None:
            pytest.fail(f"more than {self.size} Tryton databases asked for in one session")
        return name

    def rpc(self, database: str, **kw: object) -> TrytonRpc:
        return TrytonRpc(self.server.url, database, "admin", self.site.password, **kw)  # type: ignore[arg-type]


def serve(site: TrytonSite, names: list[str]) -> Iterator[TrytonPool]:
    """One trytond serving the databases `names` of `site` (a generator for a session
    fixture: the server stops when it ends)."""
    # A port outside the kernel's ephemeral range (tests/e2e/helpers.free_port), so no
    # outgoing connection takes it between choosing it and trytond binding it.
    server = TrytonServer(site, names, port=free_port())
    try:
        server.start()
    except RuntimeError as exc:
        unavailable(str(exc))
    try:
        yield TrytonPool(site, server, names)
    finally:
        server.stop()


def serve_copies(
    folder: Path, template: TrytonSite, template_name: str, names: list[str]
) -> Iterator[TrytonPool]:
    """Copy the template into `folder` once per name and `serve` them."""
    site = TrytonSite(folder, template.bin_dir)
    for name in names:
        copy_database(site, template_name, name, source=template.data_dir)
    yield from serve(site, names)
