"""OAuth 2.0 client-credentials tokens, shared by every process of the site.

The platform issues no refresh tokens: a token is fetched again shortly before
it expires, and after a 401. The token lives in Django's cache so every web
process and Celery worker uses the same one, and an atomic ``cache.add`` lock
makes sure that when many need a new token at once only one fetches it. If the
cache is unreachable each process fetches for itself: slower, never stuck.

The grant itself is requests-oauthlib's (``BackendApplicationClient`` with
``OAuth2Session.fetch_token``); this module only decides when to call it.

Neither the token nor the client secret is ever a plain local variable on
the way to the platform: they travel as :class:`SecretText`, whose ``repr``
is stars, and the functions that hold them are marked
``sensitive_variables``. Django's error page and its error e-mails print the
local variables of every frame; they show stars there.
"""

from __future__ import annotations

import hashlib
import logging
import os
import threading
import time
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import requests
from django.core.cache import caches
from django.views.decorators.debug import sensitive_variables
from oauthlib.oauth2 import BackendApplicationClient, OAuth2Error
from requests_oauthlib import OAuth2Session

from ..exceptions import (
    MMCAPIError,
    MMCAuthError,
    MMCConfigurationError,
    MMCRateLimitedError,
    MMCTransientError,
)

logger = logging.getLogger("django_mmc.client")

#: Seconds a process waits for another one's token fetch before fetching itself.
LOCK_WAIT = 15.0
#: How often a waiting process looks for the token another one is fetching.
LOCK_POLL = 0.02


class _DropTokenDebugRecords(logging.Filter):
    """requests-oauthlib logs token responses and request headers (with the
    bearer token) at DEBUG. Those records never pass, whatever the site's
    logging configuration says."""

    def filter(self, record: logging.LogRecord) -> bool:
        return record.levelno > logging.DEBUG


_TOKEN_LOGGERS = (
    "requests_oauthlib",
    "requests_oauthlib.oauth2_session",
    "oauthlib",
    "oauthlib.oauth2.rfc6749.parameters",
    "oauthlib.oauth2.rfc6749.clients.base",
)


def silence_token_loggers() -> None:
    """Attach the filter to every logger that may print a token. Filters on
    a logger apply only to records created on it, hence the explicit list."""
    for name in _TOKEN_LOGGERS:
        target = logging.getLogger(name)
        if not any(isinstance(f, _DropTokenDebugRecords) for f in target.filters):
            target.addFilter(_DropTokenDebugRecords())


silence_token_loggers()


class SecretText(str):
    """A string that never shows itself: its ``repr`` is stars, so a
    traceback's variables (Django's technical 500 page, an error e-mail, a
    debugger), or a dict or header mapping holding it, never print it. To
    everything that uses it (comparing, encoding, sending) it is the same
    string."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "'********************'"


def authorization_header(access_token: str) -> SecretText:
    """The ``Authorization`` header value for ``access_token``."""
    return SecretText(f"Bearer {access_token}")


@dataclass(frozen=True)
class Token:
    access_token: str = field(repr=False)
    expires_at: float
    lifetime: float

    def usable(self, margin: float, now: float | None = None) -> bool:
        now = time.time() if now is None else now
        return now < self.expires_at - margin


def refresh_margin(configured: float, lifetime: float) -> float:
    """Seconds before expiry at which a token is renewed.

    The configured margin is clamped to a quarter of the token's lifetime, so
    a short-lived token (say 30 s against a 60 s margin) is still used for
    most of its life instead of never."""
    return max(0.0, min(float(configured), lifetime / 4.0))


class TokenManager:
    """Fetches, caches and shares the site's access token."""

    @sensitive_variables("client_secret")
    def __init__(
        self,
        *,
        token_url: str,
        client_id: str,
        client_secret: str,
        scope: str,
        timeout: tuple[float, float],
        margin: float,
        cache_alias: str,
    ) -> None:
        self.token_url = token_url
        self.client_id = client_id
        self._client_secret = SecretText(client_secret)
        self.scope = scope
        self.timeout = timeout
        self.margin = margin
        self.cache_alias = cache_alias
        fingerprint = hashlib.sha256(f"{token_url}|{client_id}".encode()).hexdigest()[:16]
        self.cache_key = f"django_mmc:token:{fingerprint}"
        self.lock_key = f"{self.cache_key}:lock"
        _allow_plain_http_to_loopback(token_url)
        self._local: Token | None = None
        self._local_lock = threading.Lock()
        #: Tokens this process fetched from the token endpoint (for tests and metrics).
        self.fetch_count = 0

    def __repr__(self) -> str:
        return f"<TokenManager client_id={self.client_id!r} url={self.token_url!r}>"

    # -- public ---------------------------------------------------------

    @sensitive_variables("token")
    def get_token(self) -> SecretText:
        """A token that is valid for at least the refresh margin."""
        token = self._local
        if token and token.usable(self._margin(token)):
            return SecretText(token.access_token)
        with self._local_lock:  # threads of one process wait for one another
            token = self._local
            if token and token.usable(self._margin(token)):
                return SecretText(token.access_token)
            token = self._shared_or_fetch(stale=token)
            self._local = token
            return SecretText(token.access_token)

    @sensitive_variables("access_token", "cached")
    def invalidate(self, access_token: str) -> None:
        """Forget ``access_token`` after the platform refused it.

        Only that token is dropped: if another worker already put a newer
        token in the cache, it stays."""
        with self._local_lock:
            if self._local and self._local.access_token == access_token:
                self._local = None
        try:
            cache = caches[self.cache_alias]
            cached = cache.get(self.cache_key)
            if isinstance(cached, Token) and cached.access_token == access_token:
                cache.delete(self.cache_key)
        except Exception:  # noqa: BLE001 - a cache outage must not break sending
            logger.warning("django_mmc: token cache unreachable while invalidating a token")

    # -- internals ------------------------------------------------------

    def _margin(self, token: Token) -> float:
        return refresh_margin(self.margin, token.lifetime)

    @sensitive_variables("stale", "cached")
    def _read_shared(self, stale: Token | None) -> Token | None:
        cached = caches[self.cache_alias].get(self.cache_key)
        if (
            isinstance(cached, Token)
            and cached.usable(self._margin(cached))
            and (stale is None or cached.access_token != stale.access_token)
        ):
            return cached
        return None

    @sensitive_variables("stale", "found", "token")
    def _shared_or_fetch(self, stale: Token | None) -> Token:
        try:
            cache = caches[self.cache_alias]
            found = self._read_shared(stale)
            if found:
                return found
            deadline = time.monotonic() + LOCK_WAIT
            while time.monotonic() < deadline:
                lock_ttl = int(sum(self.timeout)) + 5
                if cache.add(self.lock_key, "1", timeout=lock_ttl):
                    try:
                        found = self._read_shared(stale)  # someone may have just finished
                        if found:
                            return found
                        token = self._fetch()
                        self._store(token)
                        return token
                    finally:
                        cache.delete(self.lock_key)
                time.sleep(LOCK_POLL)
                found = self._read_shared(stale)
                if found:
                    return found
        except (MMCConfigurationError, MMCAuthError, MMCTransientError):
            raise
        except Exception:  # noqa: BLE001 - cache down: fetch without sharing
            logger.warning("django_mmc: token cache unreachable, fetching a token directly")
        return self._fetch()

    @sensitive_variables("token")
    def _store(self, token: Token) -> None:
        ttl = max(1, int(token.expires_at - time.time()))
        caches[self.cache_alias].set(self.cache_key, token, timeout=ttl)

    @sensitive_variables()
    def _fetch(self) -> Token:
        """Run the client-credentials grant once.

        The token response is never a local here (it goes straight into a
        :class:`Token`), and every failure is raised afresh from this frame,
        without the frames of requests-oauthlib below it, whose variables
        hold the client secret and the request body that carries it."""
        session = OAuth2Session(client=BackendApplicationClient(client_id=self.client_id))
        session.register_compliance_hook("access_token_response", _raise_for_server_errors)
        started = time.time()
        try:
            token = token_from_response(session.fetch_token(
                token_url=self.token_url,
                client_id=self.client_id,
                client_secret=self._client_secret,
                include_client_id=True,
                scope=[self.scope] if self.scope else None,
                timeout=self.timeout,
            ), started)
        except OAuth2Error as err:
            if err.error in ("invalid_client", "unauthorized_client", "invalid_scope"):
                raise MMCConfigurationError(
                    f"The platform refused the site's credentials ({err.error}): check "
                    "MMC['CLIENT_ID'], MMC['CLIENT_SECRET'] and MMC['SCOPE']."
                ) from None
            raise MMCAuthError(
                f"The token endpoint refused the request ({err.error}).", code=err.error
            ) from None
        except MMCAPIError as err:  # from _raise_for_server_errors, deep inside the grant
            raise err.with_traceback(None) from None
        except requests.Timeout:
            raise MMCTransientError("The token endpoint timed out.") from None
        except requests.ConnectionError:
            raise MMCTransientError("The token endpoint could not be reached.") from None
        except (requests.exceptions.ChunkedEncodingError,
                requests.exceptions.ContentDecodingError):
            raise MMCTransientError("The token endpoint's answer was cut off.") from None
        except requests.RequestException as err:
            raise MMCTransientError(
                f"The token request failed ({type(err).__name__}).") from None
        except (ValueError, TypeError, KeyError):
            raise MMCTransientError("The token endpoint sent an unreadable answer.") from None
        finally:
            session.close()
        self.fetch_count += 1
        logger.info("django_mmc: fetched an access token valid for %ss", int(token.lifetime))
        return token


#: Seconds a token is assumed to live when the response does not say: short,
#: so a token that lives less is replaced early rather than refused.
ASSUMED_TOKEN_LIFETIME = 300.0


@sensitive_variables("response")
def token_from_response(response: dict, started: float) -> Token:
    """The :class:`Token` of a token response fetched at ``started``.

    Fields other than ``access_token`` and ``expires_in`` (``not_before``,
    ``expires_on``, ``ext_expires_in``, ``resource``...) are ignored. A
    missing or unreadable ``expires_in`` is taken as
    :data:`ASSUMED_TOKEN_LIFETIME`, with a warning."""
    raw = response.get("expires_in")
    try:
        lifetime = float(raw)
    except (TypeError, ValueError):
        lifetime = 0.0
    if not 0 < lifetime < float("inf"):
        logger.warning("django_mmc: the token response has no usable expires_in; the token "
                       "is taken to live %ss", int(ASSUMED_TOKEN_LIFETIME))
        lifetime = ASSUMED_TOKEN_LIFETIME
    return Token(access_token=str(response["access_token"]), expires_at=started + lifetime,
                 lifetime=lifetime)


def _allow_plain_http_to_loopback(token_url: str) -> None:
    """oauthlib refuses plain http. A token endpoint on this machine (the
    sandbox) is the one exception we allow; anything else stays https-only."""
    parts = urlsplit(token_url)
    if parts.scheme == "http" and parts.hostname in ("127.0.0.1", "localhost", "::1"):
        os.environ.setdefault("OAUTHLIB_INSECURE_TRANSPORT", "1")


def _raise_for_server_errors(response: requests.Response) -> requests.Response:
    """Compliance hook: a 5xx or 429 from the token endpoint is transient, not
    an OAuth error (its body is often not JSON at all)."""
    if response.status_code >= 500 or response.status_code == 429:
        from . import parse_retry_after  # the package imports this module

        cls = MMCRateLimitedError if response.status_code == 429 else MMCTransientError
        raise cls(
            "The token endpoint is unavailable.", status_code=response.status_code,
            retry_after=parse_retry_after(response.headers.get("Retry-After")),
        )
    return response
