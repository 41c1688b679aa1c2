"""Per API key, how many events it may post: a token bucket, so one key (a leaked one, or an app in a loop)
cannot flood the spool, and through the next run's training move everyone's lists."""

from __future__ import annotations

import math
import threading
import time


class TokenBuckets:
    """Each key earns `rate` tokens a second up to `burst`; an event costs one."""

    def __init__(self, rate: float, burst: int, clock=time.monotonic) -> None:
        self.rate, self.burst, self.clock = rate, burst, clock
        self._buckets: dict[str, tuple[float, float]] = {}  # key id -> (tokens, when counted); one per key
        self._lock = threading.Lock()

    def take(self, key_id: str, cost: int) -> int:
        """0 when the key may spend `cost` now (and it is spent), else the whole seconds to wait (Retry-After)."""
        now = self.clock()
        with self._lock:
            tokens, then = self._buckets.get(key_id, (self.burst, now))
            tokens = min(self.burst, tokens + (now - then) * self.rate)
            if tokens >= cost:
                self._buckets[key_id] = (tokens - cost, now)
                return 0
            self._buckets[key_id] = (tokens, now)
            return max(1, math.ceil((cost - tokens) / self.rate))
