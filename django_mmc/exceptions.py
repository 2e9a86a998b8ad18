"""Exceptions raised by django_mmc.

:class:`MMCAPIError` and its subclasses mirror the error table of the wire
contract. Each says, through :attr:`MMCError.retryable`, whether trying again
can help, so callers never match on status codes. None of them ever carries a
secret or a bearer token in its message or repr.
"""

from __future__ import annotations

from typing import Any

import requests
from django.core.exceptions import ImproperlyConfigured, SuspiciousOperation


class MMCError(Exception):
    """Base class of every django_mmc error."""

    #: Whether the same request may succeed if tried again later.
    retryable: bool = False


class MMCConfigurationError(MMCError, ImproperlyConfigured):
    """The ``MMC`` setting is missing something or the platform rejected the
    site's credentials (``invalid_client``). Fix the configuration; retrying
    will not help."""


class MMCAPIError(MMCError, requests.HTTPError):
    """The platform answered with an error, or could not be reached.

    Carries the HTTP status, and the first JSON:API error's ``code``,
    ``title``, ``detail`` and ``source.pointer`` when the platform sent one.
    """

    def __init__(
        self,
        message: str = "",
        *,
        status_code: int | None = None,
        code: str | None = None,
        title: str | None = None,
        detail: str | None = None,
        pointer: str | None = None,
        meta: dict[str, Any] | None = None,
        errors: list[dict[str, Any]] | None = None,
        method: str | None = None,
        path: str | None = None,
        response: requests.Response | None = None,
    ) -> None:
        self.status_code = status_code
        self.code = code
        self.title = title
        self.detail = detail
        self.pointer = pointer
        self.meta = meta or {}
        self.errors = errors or []
        self.method = method
        self.path = path
        self.message = message or detail or title or ""
        super().__init__(self.message, response=response)

    def __str__(self) -> str:
        parts = []
        if self.method and self.path:
            parts.append(f"{self.method} {self.path}")
        if self.status_code:
            parts.append(f"HTTP {self.status_code}")
        if self.code:
            parts.append(self.code)
        head = " ".join(parts)
        text = self.message
        if self.pointer:
            text = f"{text} (at {self.pointer})"
        return f"{head}: {text}" if head and text else head or text

    def __repr__(self) -> str:
        return f"{type(self).__name__}({str(self)!r})"

    def __reduce__(self):  # keep the details when Celery pickles the error
        return (_rebuild, (type(self), self.message, self._state()))

    def _state(self) -> dict[str, Any]:
        return {
            "status_code": self.status_code,
            "code": self.code,
            "title": self.title,
            "detail": self.detail,
            "pointer": self.pointer,
            "meta": self.meta,
            "errors": self.errors,
            "method": self.method,
            "path": self.path,
        }


def _rebuild(cls: type[MMCAPIError], message: str, state: dict[str, Any]) -> MMCAPIError:
    extra = {k: state.pop(k) for k in list(state) if k not in _BASE_KWARGS}
    error = cls(message, **state)
    for key, value in extra.items():
        setattr(error, key, value)
    return error


_BASE_KWARGS = {
    "status_code", "code", "title", "detail", "pointer", "meta", "errors", "method", "path",
}


class MMCTransientError(MMCAPIError):
    """5xx, a timeout or a connection failure: retry later with backoff.

    ``retry_after`` holds the platform's ``Retry-After`` in seconds when it
    sent one (503 may)."""

    retryable = True

    def __init__(self, *args: Any, retry_after: float | None = None, **kwargs: Any) -> None:
        self.retry_after = retry_after
        super().__init__(*args, **kwargs)

    def _state(self) -> dict[str, Any]:
        return {**super()._state(), "retry_after": self.retry_after}


class MMCRateLimitedError(MMCTransientError):
    """429: wait ``retry_after`` seconds, then retry."""


class MMCAuthError(MMCAPIError):
    """401 even after authenticating again. Not retried."""


class MMCConflictError(MMCAPIError):
    """409: a dialogue ownership conflict.

    For ``DIALOGUE_ACTIVE``, ``dialogue_id`` and ``dialogue_agent_id`` name
    the open dialogue that holds the recipient and the agent that owns it."""

    @property
    def dialogue_id(self) -> str | None:
        value = self.meta.get("dialogueId")
        return None if value is None else str(value)

    @property
    def dialogue_agent_id(self) -> str | None:
        value = self.meta.get("dialogueAgentId")
        return None if value is None else str(value)


class MMCValidationError(MMCAPIError):
    """422: the request can never succeed as it is. ``code`` and ``pointer``
    say what the platform objected to."""


class MMCNotFoundError(MMCAPIError):
    """404: the platform does not know that id."""


class MMCPermanentError(MMCAPIError):
    """Any other refusal (400, 403, 406, 413, 415, ...): a bug or a permission
    problem that retrying cannot fix."""


class WebhookSignatureError(MMCError, SuspiciousOperation):
    """A webhook delivery whose ``X-MMC-Signature`` is missing or does not
    match any of the agent's secrets."""
