"""Run one analytics export that stops (and waits to be killed) after the files of its
third page and before that page's commit: tests/analytics/test_export.py sends SIGKILL."""

from __future__ import annotations

import sys
import time
from pathlib import Path

from isthmus.analytics import export
from isthmus.app import Hub
from isthmus.config import load_settings


def main(data: str, conf: str, db: str, out: str, marker: str) -> None:
    settings = load_settings(Path(conf), data_dir=Path(data))
    hub = Hub.open(settings)
    pages = 0

    def after_files() -> None:
        nonlocal pages
        pages += 1
        if pages == 3:
            Path(marker).write_text("files written, commit next")
            while True:
                time.sleep(1)

    export.run(
        hub.store,
        warehouse=Path(db),
        parquet=Path(out),
        secret=hub.processor.secret,
        roles=export.roles_from(settings),
        page=60,
        after_files=after_files,
    )


if __name__ == "__main__":
    main(*sys.argv[1:6])
