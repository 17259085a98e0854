"""Per-caller rate limiting with ``limits``: in memory, or in Redis when shared by processes."""

from __future__ import annotations

import math
import time

from limits import RateLimitItemPerSecond
from limits.aio.storage import MemoryStorage, RedisStorage, Storage
from limits.aio.strategies import MovingWindowRateLimiter


class LimitsRateLimiter:
    """``rate`` requests per second on average with bursts up to ``burst``.

    A moving window of ``burst`` requests over ``burst / rate`` seconds gives both:
    an idle caller may send ``burst`` at once, a busy one averages ``rate``.
    """

    def __init__(self, rate: int, burst: int, redis_url: str | None = None) -> None:
        window = max(1, math.ceil(burst / rate))
        self._item = RateLimitItemPerSecond(burst, window)
        storage: Storage = (
            RedisStorage(redis_url.replace("redis://", "async+redis://", 1)) if redis_url else MemoryStorage()
        )
        self._limiter = MovingWindowRateLimiter(storage)

    async def hit(self, key: str) -> int | None:
        """None when allowed; else seconds until the caller may try again."""
        if await self._limiter.hit(self._item, key):
            return None
        stats = await self._limiter.get_window_stats(self._item, key)
        return max(1, math.ceil(stats.reset_time - time.time()))
