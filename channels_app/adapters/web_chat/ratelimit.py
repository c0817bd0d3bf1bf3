"""Fixed-window counters on the shared cache (Redis), so every web process counts the same visitor."""

from __future__ import annotations

import time

from django.core.cache import cache


def rate_limit_hit(key: str, *, limit: int, window_seconds: int) -> int | None:
    """Count one more action under `key`; seconds to wait when that is over `limit` in this window, else None."""
    now = time.time()
    window = int(now // window_seconds)
    cache_key = f"webchat:rl:{key}:{window}"
    if cache.add(cache_key, 1, timeout=window_seconds + 1):
        count = 1
    else:
        try:
            count = cache.incr(cache_key)
        except ValueError:
            # Expired between add and incr: this is the first action of a fresh window.
            cache.add(cache_key, 1, timeout=window_seconds + 1)
            count = 1
    if count <= limit:
        return None
    return max(1, int((window + 1) * window_seconds - now + 0.999))
