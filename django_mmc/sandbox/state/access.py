"""Who may call the platform: access tokens and the rate limit."""

from __future__ import annotations

import math
import secrets
import time
from typing import Any

from ... import contract
from .base import PlatformBase
from .errors import BEARER_CHALLENGE, ApiError, OAuthError, token_expired
from .records import Token


class Access(PlatformBase):
    """Client-credentials grants, bearer tokens that really expire, 429s."""

    def _setup(self) -> None:
        super()._setup()
        #: Every token ever granted, kept across resets: tests scan logs for them.
        self.issued_tokens: list[str] = []

    def _reset(self) -> None:
        super()._reset()
        self.tokens: dict[str, Token] = {}
        self.token_requests = 0
        self.token_failures = 0
        self.buckets: dict[str, list[float]] = {}

    def grant_token(
        self,
        *,
        grant_type: str | None,
        client_id: str | None,
        client_secret: str | None,
        scope: str | None,
        basic: bool,
    ) -> dict[str, Any]:
        """A fresh access token for valid client credentials (RFC 6749 4.4)."""
        try:
            if not grant_type:
                raise OAuthError(400, "invalid_request", "grant_type is required.")
            if grant_type != "client_credentials":
                raise OAuthError(
                    400, "unsupported_grant_type", f"Grant type {grant_type!r} is not supported."
                )
            if not client_id or not client_secret:
                raise OAuthError(401, "invalid_client", "Client credentials are required.", basic)
            if not (
                secrets.compare_digest(client_id.encode(), self.client_id.encode())
                and secrets.compare_digest(client_secret.encode(), self.client_secret.encode())
            ):
                raise OAuthError(401, "invalid_client", "Client authentication failed.", basic)
            if scope != contract.DEFAULT_SCOPE:
                raise OAuthError(
                    400, "invalid_scope", f"The scope must be {contract.DEFAULT_SCOPE!r}."
                )
        except OAuthError:
            with self.lock:
                self.token_failures += 1
            raise
        token = secrets.token_urlsafe(32)
        self.issued_tokens.append(token)
        lifetime = self.token_lifetime
        with self.lock:
            self.tokens[token] = Token(client_id, time.monotonic() + lifetime)
            self.token_requests += 1
        expires_in: float = int(lifetime) if float(lifetime).is_integer() else lifetime
        return {"access_token": token, "token_type": "Bearer", "expires_in": expires_in}

    def authenticate(self, authorization: str | None) -> tuple[str, str]:
        """``(client_id, token)`` of a request's bearer token, or 401."""
        token = None
        if authorization:
            scheme, _, value = authorization.partition(" ")
            if scheme.lower() == "bearer" and value.strip():
                token = value.strip()
        if token is None:
            raise ApiError(
                401,
                contract.ERROR_UNAUTHORIZED,
                "A bearer token is required.",
                headers=BEARER_CHALLENGE,
            )
        with self.lock:
            record = self.tokens.get(token)
        if record is None:
            raise ApiError(
                401,
                contract.ERROR_UNAUTHORIZED,
                "The access token is not valid.",
                headers=BEARER_CHALLENGE,
            )
        if record.expires_at <= time.monotonic():
            raise token_expired()
        return record.client_id, token

    def expire_token(self, token: str | None) -> None:
        """``token`` becomes expired (nothing happens for an unknown one)."""
        with self.lock:
            if token in self.tokens:
                self.tokens[token].expires_at = 0.0

    def expire_tokens(self) -> None:
        """Every token granted so far becomes expired."""
        with self.lock:
            for record in self.tokens.values():
                record.expires_at = 0.0

    def check_rate(self, client_id: str) -> None:
        """429 once ``client_id`` goes over ``rate_limit`` requests per second.

        A token bucket holding one second's worth of requests: bursts up to the
        limit pass, a steady rate above it is refused.
        """
        limit = self.rate_limit
        if not limit:
            return
        now = time.monotonic()
        with self.lock:
            bucket = self.buckets.get(client_id)
            if bucket is None:
                bucket = self.buckets[client_id] = [float(limit), now]
            tokens = min(float(limit), bucket[0] + (now - bucket[1]) * limit)
            bucket[1] = now
            if tokens >= 1.0:
                bucket[0] = tokens - 1.0
                return
            bucket[0] = tokens
        retry_after = max(1, math.ceil((1.0 - tokens) / limit))
        raise ApiError(
            429,
            contract.ERROR_RATE_LIMITED,
            f"More than {limit:g} requests per second.",
            headers={"Retry-After": str(retry_after)},
        )
