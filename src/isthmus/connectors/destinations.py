"""Opening a destination adapter by its kind (issue 18): the one place that knows which
module serves `[destinations.<name>] kind = ...`.

Each kind's module exposes `open_destination(s, nats_servers) -> Destination` and is
imported only when a destination of that kind is configured, so a site without SFTP never
needs paramiko, and one without NATS never needs nats-py.
"""

from __future__ import annotations

import importlib

from isthmus.config.destinations import DESTINATION_KINDS, DestinationSettings
from isthmus.config.values import ConfigError
from isthmus.ports.destination import Destination

MODULES = {kind: f"isthmus.connectors.dest_{kind}" for kind in DESTINATION_KINDS}


def open_destination(s: DestinationSettings, nats_servers: str) -> Destination:
    """Open the adapter of a configured destination through its kind's module; a
    `ConfigError` when the kind is unknown or its optional driver is not installed."""
    module = MODULES.get(s.kind)
    if module is None:
        raise ConfigError(f"destinations.{s.name}.kind: unknown kind {s.kind!r}")
    try:
        opener = importlib.import_module(module).open_destination
    except ImportError as exc:  # an optional driver (paramiko, nats-py) is missing
        raise ConfigError(
            f"destinations.{s.name}: kind {s.kind!r} needs {exc.name or exc}, "
            "which is not installed"
        ) from exc
    try:
        found: Destination = opener(s, nats_servers)
    except ValueError as exc:
        raise ConfigError(str(exc)) from exc
    return found
