"""The ids of the latest events, in memory fixed when the process starts: 16 bytes an id, not a Python set's 120.

An id is kept as its 64-bit hash (SipHash, salted per process: the ids still
in the spool are hashed again by each new process). The latest `size` hashes
live in a ring; lookups go to a sorted copy of the ring (binary search) and
to a small set of the ids added since that copy was made, which is merged
into the copy every `merge_every` ids. So an id is remembered for at least
`size` ids after it, and for at most `merge_every` more. Two different ids
share a hash with odds of about size / 2**64 a lookup (10**-14 at 100,000):
far below any other way an event is lost.
"""

from __future__ import annotations

import numpy as np


class RecentIds:
    def __init__(self, size: int, merge_every: int = 4096) -> None:
        self.size = max(size, 1)  # a window of at least the latest id
        self.merge_every = max(1, min(merge_every, self.size))
        self._ring = np.zeros(self.size, dtype=np.int64)
        self._sorted = np.zeros(self.size, dtype=np.int64)
        self._in_sorted = 0   # how many of _sorted's entries are live
        self._added = 0       # ids added in all (the ring's next slot is this modulo size)
        self._since: set[int] = set()

    def __contains__(self, event_id: str) -> bool:
        key = hash(event_id)
        if key in self._since:
            return True
        live = self._sorted[:self._in_sorted]
        at = int(np.searchsorted(live, key))
        return at < len(live) and int(live[at]) == key

    def add(self, event_id: str) -> None:
        """Remember `event_id` (once: an id already remembered is not added again)."""
        if event_id in self:
            return
        key = hash(event_id)
        self._ring[self._added % self.size] = key
        self._added += 1
        self._since.add(key)
        if len(self._since) >= self.merge_every:
            live = min(self._added, self.size)
            self._sorted[:live] = self._ring[:live]
            self._sorted[:live].sort()
            self._in_sorted = live
            self._since.clear()

    def __len__(self) -> int:
        return min(self._added, self.size)
