"""An initialized hub in a temporary data directory and its first admin token: what the
API tests that call routes with a bearer token start from."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from isthmus.app import Hub
from isthmus.config import load_settings
from isthmus.governance import identity, rbac


@contextmanager
def admin_hub(data: Path) -> Iterator[tuple[Hub, str]]:
    """(the hub, the admin token in clear), the hub closed on leaving."""
    hub = Hub.open(load_settings(None, data_dir=data))
    try:
        now = time.time()
        admin = identity.principal("root", "user", (rbac.ADMIN,), now)
        issued = identity.issue(admin, (rbac.ADMIN,), now)
        assert hub.governance.initialize(admin, issued.token)
        yield hub, issued.clear
    finally:
        hub.close()
