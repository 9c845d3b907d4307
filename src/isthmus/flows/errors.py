"""Errors a flow step raises, named by what the worker must do next (DESIGN: house style).

They are the hub's error tree's (`isthmus.errors`), re-exported here where the flows and the
worker have always found them: `TransientError(retry_after)` is retried (after
`retry_after` seconds when given, else the backoff), `PermanentError(queue)` is
dead-lettered at once.
"""

from __future__ import annotations

from isthmus.errors import PermanentError, TransientError

__all__ = ["PermanentError", "TransientError"]
