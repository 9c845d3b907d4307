"""Fixtures for the end-to-end tests: a factory of `isthmus serve` subprocesses that never leak.

Every Serve made through `serve_factory` is stopped at teardown: SIGTERM first, SIGKILL if
it does not go, so a failing test cannot leave a hub holding a port or a data directory.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.chart import demo_config
from tests.e2e.helpers import CORPUS, CorpusMessage, Serve, corpus_messages

ServeFactory = Callable[..., Serve]


@pytest.fixture
def serve_factory(tmp_path: Path) -> Iterator[ServeFactory]:
    made: list[Serve] = []

    def make(name: str = "hub", *, start: bool = True, **kwargs: object) -> Serve:
        """A Serve on `name`'s dirs; its config the demo chart unless `config` is given
        (a hub's own chart is empty, and these tests' charges must post)."""
        if "config" not in kwargs:
            kwargs["config"] = demo_config(tmp_path / name)
        s = Serve(data_dir=tmp_path / name / "data", log_dir=tmp_path / name / "logs", **kwargs)  # type: ignore[arg-type]
        made.append(s)
        if start:
            s.start()
        return s

    try:
        yield make
    finally:
        for s in made:
            try:
                with contextlib.suppress(Exception):
                    s.stop(timeout=15)
            finally:
                s.kill()  # whatever happened above, no process may leak


@pytest.fixture(scope="session")
def corpus() -> list[CorpusMessage]:
    """Every message of ../shared/corpora/hl7v2 (both subfolders), split one per message."""
    if not CORPUS.is_dir():
        if os.environ.get("CI") == "true":
            pytest.fail(f"HL7 v2 corpus missing at {CORPUS} (required under CI=true)")
        pytest.skip(f"HL7 v2 corpus not found at {CORPUS}: clone shared/ next to the repo")
    msgs = corpus_messages(CORPUS)
    assert msgs, f"no .hl7 messages under {CORPUS}"
    return msgs
