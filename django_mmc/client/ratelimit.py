"""A site-wide request rate limit shared through Django's cache.

Every process counts its requests in the same one-second window key, so many
Celery workers on many machines together stay under ``MMC['RATE_LIMIT']``
requests per second. With a cache that only one process sees (LocMemCache) the
limit is per process. When the cache is unreachable the limiter lets requests
through: the platform's own 429 then takes over.
"""

from __future__ import annotations

import logging
import time

from django.core.cache import caches

logger = logging.getLogger("django_mmc.client")


class RateLimiter:
    def __init__(self, rate: float | None, cache_alias: str, key: str = "django_mmc:rate") -> None:
        self.rate = rate
        self.cache_alias = cache_alias
        self.key = key
        #: Seconds this process has spent waiting for a slot (for metrics and tests).
        self.waited = 0.0

    def acquire(self) -> None:
        """Block until a request may be sent."""
        if not self.rate:
            return
        # Whole requests per one-second window: a limit under 1 would never
        # admit one (the system check reports it; never hang a worker on it).
        limit = max(1.0, float(self.rate))
        while True:
            now = time.time()
            window = int(now)
            try:
                count = self._increment(f"{self.key}:{window}")
            except Exception:  # noqa: BLE001
                logger.warning("django_mmc: rate-limit cache unreachable; not limiting")
                return
            if count <= limit:
                return
            pause = window + 1 - now
            self.waited += pause
            time.sleep(pause)

    def _increment(self, key: str) -> int:
        cache = caches[self.cache_alias]
        try:
            return cache.incr(key)
        except ValueError:  # first request of the window
            if cache.add(key, 1, timeout=5):
                return 1
            return cache.incr(key)
