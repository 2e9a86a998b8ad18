"""The site-wide rate limit, counted in the sandbox's request log."""

from __future__ import annotations

import math
import time
from collections import Counter
from typing import Any

from django_mmc.client import get_client

from . import api_requests


def _align_to_next_second() -> None:
    # Start just after a second boundary so that no request can be sent at
    # the end of one second and logged by the sandbox at the start of the next.
    now = time.time()
    time.sleep(math.ceil(now) - now + 0.01)


def test_rate_limit_spreads_calls_over_windows(sandbox: Any, settings: Any) -> None:
    settings.MMC = {**settings.MMC, "RATE_LIMIT": 5}
    client = get_client()
    client.tokens.get_token()  # the token request does not count against the API limit
    _align_to_next_second()

    for _ in range(12):
        client.list_channel_groups()

    calls = api_requests(sandbox)
    assert len(calls) == 12
    assert all(call["status"] == 200 for call in calls)  # the sandbox never had to say 429
    per_second = Counter(int(call["time"]) for call in calls)
    assert max(per_second.values()) <= 5, per_second
    assert len(per_second) >= 3  # 12 calls at 5 per second need three seconds
    assert client.rate_limiter.waited > 0
    assert client.request_count == 12


def test_without_a_rate_limit_nothing_waits(sandbox: Any, settings: Any) -> None:
    settings.MMC = {**settings.MMC, "RATE_LIMIT": None}
    client = get_client()

    for _ in range(12):
        client.list_channel_groups()

    assert client.rate_limiter.waited == 0
    assert len(api_requests(sandbox)) == 12


def test_rate_limit_is_shared_by_clients_through_the_cache(sandbox: Any, settings: Any) -> None:
    """Two clients (two workers) of one site together stay under the limit."""
    from django_mmc.client import MMCClient
    from django_mmc.conf import MMCSettings

    settings.MMC = {**settings.MMC, "RATE_LIMIT": 5}
    first = MMCClient(MMCSettings(settings.MMC))
    second = MMCClient(MMCSettings(settings.MMC))
    first.tokens.get_token()
    _align_to_next_second()

    for _ in range(4):
        first.list_channel_groups()
        second.list_channel_groups()

    per_second = Counter(int(call["time"]) for call in api_requests(sandbox))
    assert sum(per_second.values()) == 8
    assert max(per_second.values()) <= 5, per_second
    assert first.rate_limiter.waited + second.rate_limiter.waited > 0


def test_a_limit_below_one_per_second_never_blocks_forever(sandbox: Any) -> None:
    """The window holds whole requests: a limit under 1 (which the system
    check reports) must still let one request per second through."""
    import threading

    from django_mmc.client.ratelimit import RateLimiter

    limiter = RateLimiter(0.5, "default")
    done = threading.Event()

    def acquire_twice() -> None:
        limiter.acquire()
        limiter.acquire()
        done.set()

    thread = threading.Thread(target=acquire_twice, daemon=True)
    thread.start()
    thread.join(5)
    assert done.is_set(), "RateLimiter(0.5) never let a request through"
    assert limiter.waited > 0  # the second request waited for the next window
