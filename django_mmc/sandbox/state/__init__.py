"""The sandbox platform's state and rules, independent of HTTP.

:class:`Platform` holds every object the platform knows behind one lock,
applies the contract's rules to them and renders them as JSON:API resource
objects. It is composed of one part per resource, each in its own module
with its own state, so a rule is found where its resource lives:

================  ============================================================
``base``          configuration, the lock, logs, pagination, after-lock flush
``access``        token grants, bearer authentication, the rate limit
``idempotency``   stored responses replayed for a repeated key
``directory``     channel groups, channels, templates (seeded by fixtures)
``notifications`` notifications
``dialogues``     dialogues and their one-open-at-a-time rule
``files``         uploaded files
``messages``      dialogue messages, and the recipient's replies
``status``        status steps, planned or set by hand, and their events
================  ============================================================

Rule violations raise :class:`ApiError` (``errors``), which the HTTP layer
turns into an error document; request documents are read by ``documents``.
"""

from __future__ import annotations

from typing import Any

from .access import Access
from .base import EventSink, ProgressSink
from .directory import load_fixtures
from .documents import fingerprint
from .errors import ApiError, OAuthError, error_object
from .idempotency import Idempotency, Response
from .records import Agent, Lifecycle, Page, StoredFile, is_e164
from .status import Status

__all__ = [
    "Agent",
    "ApiError",
    "EventSink",
    "Lifecycle",
    "OAuthError",
    "Page",
    "Platform",
    "ProgressSink",
    "Response",
    "StoredFile",
    "error_object",
    "fingerprint",
    "is_e164",
    "load_fixtures",
]


class Platform(Access, Idempotency, Status):
    """Everything the sandboxed platform knows, behind one lock.

    See :class:`~.base.PlatformBase` for the constructor and the locking
    rules; each base class adds one resource.
    """

    def snapshot(self) -> dict[str, Any]:
        """Plain-dict copies of everything, for tests and ``/_sandbox/state``."""
        with self.lock:
            return {
                "notifications": [
                    self._notification_snapshot(n) for n in self.notifications.values()
                ],
                "dialogues": [self._dialogue_snapshot(d) for d in self.dialogues.values()],
                "messages": [self._message_snapshot(m) for m in self.messages.values()],
                "files": [f.metadata() for f in self.files.values()],
                "token_requests": self.token_requests,
                "token_failures": self.token_failures,
            }
