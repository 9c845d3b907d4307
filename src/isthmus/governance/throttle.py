"""Failed-authentication throttling: too many 401s from one client or for one token id and
that client or token is refused for a while (HTTP 429 with Retry-After, RFC 6585 section 4).

Tokens are 256-bit random, so guessing one is hopeless; the throttle is there to keep a
scanner or a misconfigured feed from filling the audit trail and the logs with denials, and
to make any probing slow and visible. Keys: `ip:<client address>` and `token:<token id>`
(the public id embedded in an Isthmus token, or the first 8 characters of anything else;
never the secret part). A key is blocked once it has `max_failures` failures within
`window_s`, until the oldest of them leaves the window.

The state is per process and in memory, on purpose: it is a brake, not a record (the
record is the audit trail, where every refusal and every throttled request is written).
"""

from __future__ import annotations

from collections import OrderedDict, deque
from collections.abc import Iterable
from dataclasses import dataclass, field

from isthmus.governance.identity import PREFIX


def token_key(clear: str | None) -> str | None:
    """`token:<id>` of a presented bearer token, without its secret part."""
    if not clear:
        return None
    if clear.startswith(PREFIX) and clear.count("_") >= 2:
        return "token:" + clear.split("_", 2)[1][:16]
    return "token:" + clear[:8]


@dataclass
class FailureThrottle:
    max_failures: int = 10
    window_s: float = 60.0
    max_keys: int = 10_000  # memory bound: the least recently failing keys are forgotten
    _fails: OrderedDict[str, deque[float]] = field(default_factory=OrderedDict)

    def retry_after(self, keys: Iterable[str], now: float) -> float:
        """Seconds until every key may try again; 0 when none is blocked."""
        wait = 0.0
        for k in keys:
            times = self._fails.get(k)
            if not times:
                continue
            while times and times[0] <= now - self.window_s:
                times.popleft()
            if len(times) >= self.max_failures:
                wait = max(wait, times[0] + self.window_s - now)
        return wait

    def failed(self, keys: Iterable[str], now: float) -> None:
        for k in keys:
            times = self._fails.pop(k, None) or deque(maxlen=self.max_failures)
            times.append(now)
            self._fails[k] = times
        while len(self._fails) > self.max_keys:
            self._fails.popitem(last=False)


__all__ = ["FailureThrottle", "token_key"]
