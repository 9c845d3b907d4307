"""Failed-authentication throttling: too many 401s for one key and that key is refused for a
while (HTTP 429 with Retry-After, RFC 6585 section 4).

Tokens are 256-bit random, so guessing one is hopeless; the throttle is there to keep a
scanner or a misconfigured feed from filling the audit trail and the logs with denials, and
to make any probing slow and visible. It must never let one caller lock out another, so a
failure is counted against what the caller proved, nothing more (OWASP Authentication
cheat sheet, "account lockout" denial of service):

- `token:<id>` only once the presented secret matched that token's digest (a revoked or
  expired token, say): the public id alone, which anyone can put in front of a bad secret,
  proves nothing and is never a key;
- otherwise `ip:<client address>`, the address as api/clients.py resolved it (a forwarded
  address only from a configured proxy).

A request whose token is valid is never throttled, whatever its address did: the
throttle only turns a would-be 401 into a 429. A key is blocked once it has `max_failures`
failures within `window_s`, until the oldest of them leaves the window.

The state is per process and in memory, on purpose: it is a brake, not a record (the
record is the audit trail, where every refusal and every throttled request is written).
"""

from __future__ import annotations

from collections import OrderedDict, deque
from collections.abc import Iterable
from dataclasses import dataclass, field


def failure_key(client: str, proven_token_id: str | None) -> str:
    """The one key a failed authentication counts against (see the module docstring)."""
    if proven_token_id:
        return f"token:{proven_token_id[:32]}"
    return f"ip:{client or 'unknown'}"


@dataclass
class FailureThrottle:
    """Counts failed authentications per key in a sliding window and blocks a key that has
    too many (see the module docstring)."""

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

    def refuse(self, key: str, now: float) -> float:
        """Count one failure against `key` unless it is already blocked; the seconds to
        wait (a 429) when it is, else 0 (answer the 401)."""
        wait = self.retry_after([key], now)
        if wait <= 0:
            self.failed([key], now)
        return wait


__all__ = ["FailureThrottle", "failure_key"]
