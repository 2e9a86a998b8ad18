"""OAuth client credentials: expiry, 401s, short-lived tokens, failures of the
token endpoint and of the cache that shares the token."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest
from django.core.cache import caches

from django_mmc.client import MMCClient, get_client
from django_mmc.client.auth import Token, refresh_margin
from django_mmc.exceptions import (
    MMCAuthError,
    MMCConfigurationError,
    MMCRateLimitedError,
    MMCTransientError,
)
from django_mmc.sandbox import Sandbox
from tests.helpers import free_port

from . import (
    TOKEN_PATH,
    api_requests,
    assert_no_secrets,
    current_token,
    notify,
    secrets_of,
    token_log,
    wait_for_log,
)


def _unauthorized(sandbox: Any) -> list[dict[str, Any]]:
    return [r for r in api_requests(sandbox) if r["status"] == 401]


# -- a token that expires mid-run ---------------------------------------------


def test_expired_token_reauthenticates_once_and_succeeds(sandbox: Any, client: MMCClient) -> None:
    client.list_channel_groups()
    old = current_token(client)
    assert sandbox.token_requests == 1

    sandbox.expire_tokens()
    groups = client.list_channel_groups()

    assert len(groups) == 2
    assert sandbox.token_requests == 2  # exactly one new grant
    assert len(_unauthorized(sandbox)) == 1
    assert [r["status"] for r in api_requests(sandbox)] == [200, 401, 200]
    new = current_token(client)
    assert new != old
    cached = caches["default"].get(client.tokens.cache_key)
    assert isinstance(cached, Token) and cached.access_token == new


def test_expired_token_on_a_create_sends_it_once(sandbox: Any, client: MMCClient) -> None:
    client.list_channel_groups()
    sandbox.faults.inject("expire_token", path="/notifications", method="POST")

    created = notify(client, "after-401")

    assert len(sandbox.notifications()) == 1
    assert sandbox.notifications()[0]["id"] == created.id
    assert sandbox.token_requests == 2
    assert [r["status"] for r in api_requests(sandbox, "POST")] == [401, 201]


def test_a_second_401_in_a_row_raises_auth_error(sandbox: Any, client: MMCClient) -> None:
    client.list_channel_groups()
    sandbox.faults.inject("expire_token", count=2, path="/channel-groups")

    with pytest.raises(MMCAuthError) as caught:
        client.list_channel_groups()

    error = caught.value
    assert error.status_code == 401
    assert error.code == "TOKEN_EXPIRED"
    assert error.retryable is False
    assert sandbox.token_requests == 2  # re-authenticated once, not twice
    assert len(_unauthorized(sandbox)) == 2
    assert_no_secrets([error], secrets_of(client))


def test_invalidate_drops_only_the_token_that_was_sent(sandbox: Any, client: MMCClient) -> None:
    token = client.tokens.get_token()
    cache = caches["default"]

    client.tokens.invalidate("some-other-token")

    cached = cache.get(client.tokens.cache_key)
    assert isinstance(cached, Token) and cached.access_token == token
    assert client.tokens._local is not None and client.tokens._local.access_token == token
    assert client.tokens.get_token() == token
    assert sandbox.token_requests == 1

    client.tokens.invalidate(token)

    assert cache.get(client.tokens.cache_key) is None
    assert client.tokens._local is None


def test_a_late_401_keeps_the_newer_token_another_worker_stored(
    sandbox: Any, settings: Any
) -> None:
    """Worker A's old token is refused after worker B already renewed it:
    A must not throw B's fresh token away."""
    from django_mmc.conf import MMCSettings

    worker_a = MMCClient(MMCSettings(settings.MMC))
    worker_b = MMCClient(MMCSettings(settings.MMC))
    old = worker_a.tokens.get_token()
    assert worker_b.tokens.get_token() == old  # shared through the cache
    sandbox.expire_tokens()

    worker_b.list_channel_groups()  # 401, renews
    new = current_token(worker_b)
    assert new != old
    worker_a.list_channel_groups()  # 401 with the old token, then uses B's

    assert current_token(worker_a) == new
    assert sandbox.token_requests == 2
    cached = caches["default"].get(worker_a.tokens.cache_key)
    assert cached.access_token == new


# -- short-lived tokens ------------------------------------------------------------


def test_refresh_margin_is_clamped_to_a_quarter_of_the_lifetime() -> None:
    assert refresh_margin(60, 3600) == 60
    assert refresh_margin(60, 2) == 0.5
    assert refresh_margin(60, 59) == 14.75
    assert refresh_margin(0, 2) == 0
    # Direction: the token is renewed *before* it expires, never after.
    token = Token(access_token="t", expires_at=1000.0, lifetime=100.0)
    assert token.usable(25, now=974.9)
    assert not token.usable(25, now=975.0)
    assert not token.usable(0, now=1000.0)


@pytest.fixture
def short_lived(settings: Any) -> Iterator[Sandbox]:
    server = Sandbox(token_lifetime=2, progress_interval=None).start()
    settings.MMC = server.mmc_settings(RATE_LIMIT=None, TIMEOUT=(2, 3), TOKEN_REFRESH_MARGIN=60)
    yield server
    server.stop()


def test_short_lived_token_is_used_then_renewed_before_it_expires(short_lived: Sandbox) -> None:
    client = get_client()
    client.list_channel_groups()
    client.list_templates()
    client.list_channel_groups()

    # A 60 s margin against a 2 s token would renew on every call; clamped, one token serves.
    assert short_lived.token_requests == 1
    first = current_token(client)

    time.sleep(2.1)  # the token is now past its renewal point (and expired)
    client.list_channel_groups()

    assert short_lived.token_requests == 2
    assert current_token(client) != first
    statuses = [r["status"] for r in api_requests(short_lived)]
    assert statuses == [200, 200, 200, 200]  # renewed before use: never a 401


# -- failures of the token endpoint ------------------------------------------------


def test_invalid_client_is_a_configuration_error_not_retried(
    sandbox: Any, settings: Any
) -> None:
    settings.MMC = {**settings.MMC, "CLIENT_SECRET": "not-the-secret"}
    client = get_client()

    with pytest.raises(MMCConfigurationError) as caught:
        client.list_channel_groups()

    error = caught.value
    assert "invalid_client" in str(error)
    assert "CLIENT_SECRET" in str(error)
    assert error.retryable is False
    assert len(token_log(sandbox)) == 1  # exactly one token request
    assert sandbox.token_failures == 1
    assert api_requests(sandbox) == []
    assert caches["default"].get(client.tokens.lock_key) is None
    assert_no_secrets([error, client, client.tokens], ["not-the-secret", "sandbox-secret"])


@pytest.mark.parametrize("status", ["500", "503"])
def test_token_endpoint_5xx_is_transient_and_releases_the_lock(
    sandbox: Any, client: MMCClient, status: str
) -> None:
    sandbox.faults.inject(status, path=TOKEN_PATH)

    with pytest.raises(MMCTransientError) as caught:
        client.list_channel_groups()

    assert caught.value.retryable is True
    assert caught.value.status_code == int(status)
    assert caches["default"].get(client.tokens.lock_key) is None
    assert api_requests(sandbox) == []

    started = time.monotonic()
    assert len(client.list_channel_groups()) == 2  # the next call can fetch at once
    assert time.monotonic() - started < 5  # not after waiting out the lock (15 s)
    assert sandbox.token_requests == 1
    assert len(token_log(sandbox)) == 2


@pytest.mark.parametrize(
    ("status", "cls"), [("429", MMCRateLimitedError), ("503", MMCTransientError)]
)
def test_token_endpoint_retry_after_is_kept(
    sandbox: Any, client: MMCClient, status: str, cls: type[MMCTransientError]
) -> None:
    """A token endpoint that says when to come back is listened to, like the API."""
    sandbox.faults.inject(status, path=TOKEN_PATH, retry_after=4)

    with pytest.raises(MMCTransientError) as caught:
        client.list_channel_groups()

    assert type(caught.value) is cls
    assert caught.value.retry_after == 4.0
    assert caught.value.retryable is True
    assert caches["default"].get(client.tokens.lock_key) is None


def test_invalid_scope_is_a_configuration_error(sandbox: Any, settings: Any) -> None:
    settings.MMC = {**settings.MMC, "SCOPE": "https://example.com/wrong/.default"}

    with pytest.raises(MMCConfigurationError, match="SCOPE"):
        get_client().list_channel_groups()

    assert len(token_log(sandbox)) == 1
    assert sandbox.token_requests == 0


def test_token_endpoint_timeout_is_transient_and_releases_the_lock(
    sandbox: Any, settings: Any
) -> None:
    settings.MMC = {**settings.MMC, "TIMEOUT": (2, 0.3)}
    sandbox.faults.slow_seconds = 1.0
    sandbox.faults.inject("slow", path=TOKEN_PATH)
    client = get_client()

    with pytest.raises(MMCTransientError) as caught:
        client.list_channel_groups()

    assert "timed out" in str(caught.value)
    assert caches["default"].get(client.tokens.lock_key) is None
    assert len(client.list_channel_groups()) == 2
    # The grant the client gave up on is still made (late): wait for it.
    wait_for_log(sandbox, lambda log: len([e for e in log if TOKEN_PATH in e["path"]]) == 2)
    assert sandbox.token_requests == 2


# -- the cache that shares the token is down --------------------------------------------


@pytest.fixture
def cache_down(sandbox: Any, settings: Any) -> Any:
    settings.CACHES = {
        **settings.CACHES,
        "down": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": f"redis://127.0.0.1:{free_port()}/0",
        },
    }
    settings.MMC = {**settings.MMC, "CACHE_ALIAS": "down", "RATE_LIMIT": 5}
    with pytest.raises(Exception):  # noqa: B017 - any error: the cache really is down
        caches["down"].get("probe")
    return sandbox


def test_cache_down_fetches_the_token_directly(cache_down: Any) -> None:
    client = get_client()

    assert len(client.list_channel_groups()) == 2
    assert len(client.list_templates()) == 5

    assert cache_down.token_requests == 1  # kept in the process once fetched
    assert client.tokens.fetch_count == 1
    assert [r["status"] for r in api_requests(cache_down)] == [200, 200]


def test_cache_down_401_still_renews(cache_down: Any) -> None:
    client = get_client()
    client.list_channel_groups()
    cache_down.expire_tokens()

    assert len(client.list_channel_groups()) == 2
    assert cache_down.token_requests == 2
