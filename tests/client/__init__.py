"""Tests of django_mmc's REST client against the real MMC sandbox.

Shared helpers live here, the client tests' fixtures in ``conftest.py``.
The ``sandbox`` fixture and ``services`` (which clears the Redis cache and
the process's client) come from ``tests/conftest.py``.
"""

from __future__ import annotations

import socket
import threading
import time
import uuid
from collections.abc import Iterable, Iterator
from typing import Any

from django_mmc.sandbox.defaults import OAUTH_PATH
from tests.helpers import ORDER_SHIPPED_TEMPLATE_ID, SUPPORT_AGENT_ID, SUPPORT_GROUP_ID

#: The token endpoint's path as the sandbox logs it (a fault ``path`` too).
TOKEN_PATH = OAUTH_PATH + "/token"

#: A valid E.164 number the sandbox delivers to normally.
NUMBER = "+353861234567"


#: The Redis database of :func:`use_private_cache` (the suite's cache is 13, its broker 14).
PRIVATE_CACHE_DB = 11


def use_private_cache(settings: Any) -> Iterator[dict[str, Any]]:
    """Point the default cache at a Redis cache of this test alone.

    The suite's cache (Redis db 13) is flushed before every test, by every
    test run on this machine: a run started alongside this one would wipe
    the shared token, its lock or a rate-limit window in the middle of a
    test that counts token requests. A key prefix of its own in another
    database keeps each test's cache empty at the start and untouched.
    Use it as a generator fixture: ``yield from use_private_cache(settings)``.
    """
    import redis

    config = {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": f"{settings.REDIS_URL}/{PRIVATE_CACHE_DB}",
        "KEY_PREFIX": f"django_mmc-client-tests-{uuid.uuid4().hex}",
    }
    settings.CACHES = {**settings.CACHES, "default": config}
    yield config
    server = redis.Redis.from_url(config["LOCATION"])
    try:
        for key in server.scan_iter(match=f"{config['KEY_PREFIX']}:*"):
            server.delete(key)
    finally:
        server.close()


class CutOffServer:
    """A loopback HTTP server that answers every request with a JSON:API
    ``200`` whose body is cut off: it promises more bytes than it sends,
    then closes the connection (a platform or proxy dropping mid-answer)."""

    def __init__(self) -> None:
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._sock.bind(("127.0.0.1", 0))
        self._sock.listen(8)
        self._sock.settimeout(0.1)
        self.port = int(self._sock.getsockname()[1])
        self.requests = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> CutOffServer:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        self._thread.join(5)
        self._sock.close()

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._sock.accept()
            except OSError:
                continue
            with conn:
                conn.settimeout(2)
                data = b""
                try:
                    while b"\r\n\r\n" not in data:
                        chunk = conn.recv(65536)
                        if not chunk:
                            break
                        data += chunk
                    self.requests += 1
                    conn.sendall(
                        b"HTTP/1.1 200 OK\r\nContent-Type: application/vnd.api+json\r\n"
                        b"Content-Length: 500\r\nConnection: close\r\n\r\n{\"data\": ["
                    )
                except OSError:
                    pass


def api_requests(
    sandbox: Any, method: str | None = None, contains: str | None = None
) -> list[dict[str, Any]]:
    """The sandbox's log of organisation API requests (token requests left out)."""
    return [
        entry
        for entry in sandbox.requests_log
        if "/organisations/" in entry["path"]
        and (method is None or entry["method"] == method)
        and (contains is None or contains in entry["path"])
    ]


def token_log(sandbox: Any) -> list[dict[str, Any]]:
    """Every request to the token endpoint, granted or refused."""
    return [entry for entry in sandbox.requests_log if entry["path"].startswith(TOKEN_PATH)]


def wait_for_log(sandbox: Any, predicate: Any, timeout: float = 5.0) -> list[dict[str, Any]]:
    """Wait until the sandbox's request log satisfies ``predicate``.

    A request the client gave up on (a timeout) is still being served: it
    must be logged before the test ends, or it lands in the next test's log.
    """
    deadline = time.monotonic() + timeout
    while True:
        log = sandbox.requests_log
        if predicate(log):
            return log
        if time.monotonic() > deadline:
            raise AssertionError(f"the sandbox's log never got there: {log}")
        time.sleep(0.02)


def current_token(client: Any) -> str:
    """The access token the client's TokenManager holds right now."""
    token = client.tokens._local
    assert token is not None, "the client has not fetched a token yet"
    return token.access_token


def secrets_of(client: Any, *extra: str) -> list[str]:
    """The CLIENT_SECRET, every webhook secret and the client's token, if any."""
    values = [*client.settings.secret_values(), *extra]
    if client.tokens._local is not None:
        values.append(client.tokens._local.access_token)
    return [v for v in values if v]


def assert_no_secrets(objects: Iterable[Any], secrets: Iterable[str]) -> None:
    """Neither ``repr()`` nor ``str()`` of any object shows a secret."""
    secrets = [s for s in secrets if s]
    assert secrets, "nothing to look for: the test would pass vacuously"
    for obj in objects:
        for text in (repr(obj), str(obj)):
            for secret in secrets:
                assert secret not in text, f"a secret leaks through {type(obj).__name__}: {text}"


def notify(client: Any, key: str, **overrides: Any) -> Any:
    kwargs: dict[str, Any] = {
        "recipient": NUMBER,
        "template_id": ORDER_SHIPPED_TEMPLATE_ID,
        "channel_group_id": SUPPORT_GROUP_ID,
        "channel_type": "WHATSAPP",
        "context": {"first_name": "Ann", "tracking_url": "https://t.example/1"},
        "idempotency_key": key,
    }
    kwargs.update(overrides)
    return client.create_notification(**kwargs)


def open_dialogue(client: Any, agent: str = SUPPORT_AGENT_ID, number: str = NUMBER,
                  key: str = "d-1") -> Any:
    return client.create_dialogue(
        agent, recipient=number, channel_group_id=SUPPORT_GROUP_ID, channel_type="WHATSAPP",
        idempotency_key=key,
    )
