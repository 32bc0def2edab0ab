"""In-process keyed locks, owned by the app (module globals would outlive an event loop)."""

from __future__ import annotations

import asyncio
from collections.abc import Hashable


class KeyedLocks:
    """One asyncio.Lock per key, e.g. to create a corp tag once when 50 scans need it."""

    def __init__(self) -> None:
        self._locks: dict[Hashable, asyncio.Lock] = {}

    def __call__(self, key: Hashable) -> asyncio.Lock:
        lock = self._locks.get(key)
        if lock is None:
            lock = self._locks[key] = asyncio.Lock()
        return lock
