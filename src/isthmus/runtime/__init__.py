"""The hub at run time: the parts of a role started, the background loops scheduled, the
process served until a signal stops it (issue 17: the root composes, the runtime runs).

- `runtime.serve`: `start` (the parts of a role) and `serve_forever` (signals, stop).
- `runtime.running`: `Running`, what one process runs, and `ROLES`.
- `runtime.listeners`: the inbound channels of the listener role.
- `runtime.loops`: the worker role's background loops, each behind a lease.
"""

from __future__ import annotations

from isthmus.runtime.running import ROLES, Running
from isthmus.runtime.serve import HttpShell, serve_forever, start

__all__ = ["ROLES", "HttpShell", "Running", "serve_forever", "start"]
