"""Fault injection: make the sandbox misbehave the way a real platform can.

Three mechanisms, all thread-safe:

* :meth:`Faults.inject` queues a fault for the next ``count`` matching
  requests (or webhook deliveries), e.g. one ``503`` on the next
  ``POST .../notifications``.
* :meth:`Faults.configure` sets probabilistic rates for chaos runs.
* :meth:`Faults.point_links_at` makes list pages link to another origin.

HTTP faults are decided before the request is processed, so a refused
``POST`` never creates anything.
"""

from __future__ import annotations

import random
import re
import threading
from dataclasses import dataclass, field
from typing import Any

from .. import contract

#: Kinds that answer an API request.
HTTP_KINDS = ("429", "500", "502", "503", "slow", "expire_token")
#: Kinds that act on webhook deliveries.
WEBHOOK_KINDS = ("drop_webhook", "duplicate_webhook")
KINDS = HTTP_KINDS + WEBHOOK_KINDS


def api_scope(organisation_prefix: str = contract.ORGANISATION_PREFIX) -> str:
    """The fixed start of every organisation API path, e.g. ``/organisations/``.

    Injected faults without a path only hit the organisation API, so a fault
    meant for "the next send" is not swallowed by the token request before it.
    """
    return organisation_prefix.partition("{")[0]


@dataclass
class InjectedFault:
    """One queued fault; ``remaining`` of ``None`` means until cleared."""

    kind: str
    remaining: int | None
    path: str | None
    method: str | None
    retry_after: int
    _pattern: re.Pattern[str] | None = field(default=None, repr=False)

    def matches_request(self, method: str, path: str, scope: str) -> bool:
        if self.method is not None and self.method.upper() != method:
            return False
        if self.path is None:
            return scope in path
        return self._matches(path)

    def matches_event(self, event_type: str) -> bool:
        return self.path is None or self._matches(event_type)

    def _matches(self, text: str) -> bool:
        assert self.path is not None
        if self.path in text:
            return True
        return self._pattern is not None and self._pattern.search(text) is not None

    def as_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "remaining": self.remaining,
            "path": self.path,
            "method": self.method,
            "retry_after": self.retry_after,
        }


@dataclass(frozen=True)
class HttpFault:
    """What to do to one request: answer ``status`` or sleep and go on."""

    kind: str
    retry_after: int
    slow_seconds: float


@dataclass(frozen=True)
class WebhookFault:
    """What to do to one webhook delivery."""

    drop: bool = False
    duplicate: bool = False
    delay: float = 0.0


class Faults:
    """The sandbox's fault switchboard (``Sandbox.faults``)."""

    def __init__(self, scope: str | None = None) -> None:
        #: Where faults without a path apply: the organisation API's paths.
        self.scope = api_scope() if scope is None else scope
        self._lock = threading.Lock()
        self._random = random.Random()
        self._reset()

    def _reset(self) -> None:
        self._injected: list[InjectedFault] = []
        self.rate_503 = 0.0
        self.rate_429 = 0.0
        self.rate_500 = 0.0
        self.rate_slow = 0.0
        self.webhook_duplicate_rate = 0.0
        self.webhook_drop_rate = 0.0
        self.webhook_shuffle = False
        self.retry_after = 1
        self.slow_seconds = 5.0
        self.link_origin: str | None = None

    def inject(
        self,
        kind: str,
        count: int | None = 1,
        path: str | None = None,
        method: str | None = None,
        retry_after: int = 1,
    ) -> None:
        """Apply fault ``kind`` to the next ``count`` matching requests.

        ``kind`` is one of ``"429"``, ``"500"``, ``"502"``, ``"503"`` (answer
        that status; 429 and 503 carry ``Retry-After: retry_after``),
        ``"slow"`` (sleep :attr:`slow_seconds`, then answer normally),
        ``"expire_token"`` (the request's token expires: 401
        ``TOKEN_EXPIRED``), ``"drop_webhook"`` (the delivery is never made)
        or ``"duplicate_webhook"`` (it is made twice).

        ``path`` is a substring or regular expression searched in the request
        path with its query; without it only ``/organisations/...`` requests
        match, never the token endpoint. For webhook kinds ``path`` is
        matched against the event type instead. ``method`` limits the fault
        to one HTTP method. ``count=None`` keeps the fault until
        :meth:`clear`.
        """
        if kind not in KINDS:
            raise ValueError(f"Unknown fault kind {kind!r}; choose from {KINDS}")
        if count is not None and count < 1:
            raise ValueError("count must be at least 1 (or None for until cleared)")
        pattern = None
        if path is not None:
            try:
                pattern = re.compile(path)
            except re.error:
                pattern = None  # not a regex: plain substring matching only
        fault = InjectedFault(kind, count, path, method, int(retry_after), pattern)
        with self._lock:
            self._injected.append(fault)

    def configure(
        self,
        rate_503: float = 0.0,
        rate_429: float = 0.0,
        rate_500: float = 0.0,
        rate_slow: float = 0.0,
        webhook_duplicate_rate: float = 0.0,
        webhook_drop_rate: float = 0.0,
        webhook_shuffle: bool = False,
        retry_after: int = 1,
        slow_seconds: float = 5.0,
    ) -> None:
        """Set the whole chaos profile; rates are probabilities per request.

        Request rates apply only to ``/organisations/...`` requests. Anything
        not passed goes back to its default (no chaos). ``webhook_shuffle``
        delays each delivery by a random 0-300 ms so order is not preserved.
        Injected faults are kept.
        """
        for name, rate in (
            ("rate_503", rate_503),
            ("rate_429", rate_429),
            ("rate_500", rate_500),
            ("rate_slow", rate_slow),
            ("webhook_duplicate_rate", webhook_duplicate_rate),
            ("webhook_drop_rate", webhook_drop_rate),
        ):
            if not 0.0 <= rate <= 1.0:
                raise ValueError(f"{name} must be between 0 and 1")
        with self._lock:
            self.rate_503 = rate_503
            self.rate_429 = rate_429
            self.rate_500 = rate_500
            self.rate_slow = rate_slow
            self.webhook_duplicate_rate = webhook_duplicate_rate
            self.webhook_drop_rate = webhook_drop_rate
            self.webhook_shuffle = bool(webhook_shuffle)
            self.retry_after = int(retry_after)
            self.slow_seconds = float(slow_seconds)

    def point_links_at(self, origin: str | None) -> None:
        """Page links of lists point at ``origin`` (``scheme://host:port``)
        instead of the sandbox itself: a platform, or a proxy in front of
        it, that sends the client somewhere else. ``None`` undoes it."""
        with self._lock:
            self.link_origin = origin.rstrip("/") if origin else None

    def clear(self) -> None:
        """Remove every injected fault and every rate."""
        with self._lock:
            self._reset()

    @property
    def injected(self) -> list[dict[str, Any]]:
        """The faults still queued, as plain dicts."""
        with self._lock:
            return [fault.as_dict() for fault in self._injected]

    def _take(self, predicate: Any) -> InjectedFault | None:
        # Called with the lock held: consume one use of the first match.
        for index, fault in enumerate(self._injected):
            if predicate(fault):
                if fault.remaining is not None:
                    fault.remaining -= 1
                    if fault.remaining <= 0:
                        del self._injected[index]
                return fault
        return None

    def for_request(self, method: str, path: str) -> HttpFault | None:
        """The fault to apply to this request, if any (consumes it)."""
        with self._lock:
            if self._injected:
                fault = self._take(
                    lambda f: f.kind in HTTP_KINDS and f.matches_request(method, path, self.scope)
                )
                if fault is not None:
                    return HttpFault(fault.kind, fault.retry_after, self.slow_seconds)
            if self.scope not in path:
                return None
            roll = self._random.random
            for kind, rate in (
                ("503", self.rate_503),
                ("429", self.rate_429),
                ("500", self.rate_500),
                ("slow", self.rate_slow),
            ):
                if rate and roll() < rate:
                    return HttpFault(kind, self.retry_after, self.slow_seconds)
        return None

    def for_webhook(self, event_type: str) -> WebhookFault:
        """What to do to the first delivery of an event of ``event_type``."""
        with self._lock:
            drop = duplicate = False
            if self._injected:
                fault = self._take(
                    lambda f: f.kind in WEBHOOK_KINDS and f.matches_event(event_type)
                )
                if fault is not None:
                    drop = fault.kind == "drop_webhook"
                    duplicate = fault.kind == "duplicate_webhook"
            roll = self._random.random
            if not drop and self.webhook_drop_rate and roll() < self.webhook_drop_rate:
                drop = True
            if (
                not duplicate
                and self.webhook_duplicate_rate
                and roll() < self.webhook_duplicate_rate
            ):
                duplicate = True
            delay = roll() * 0.3 if self.webhook_shuffle else 0.0
        return WebhookFault(drop=drop, duplicate=duplicate, delay=delay)

    def shuffle_delay(self) -> float:
        """A random extra delay for one delivery when shuffling is on."""
        with self._lock:
            return self._random.random() * 0.3 if self.webhook_shuffle else 0.0
