"""What every part of the sandbox platform shares.

:class:`PlatformBase` holds the configuration, the one lock, the logs and
the two callbacks. Each per-resource part (``notifications.py``,
``dialogues.py``, ...) subclasses it and adds its own state through two
cooperative hooks, so the composed ``Platform`` never lists another part's
fields:

``_setup()``
    once, at construction (fixtures, id sequences that survive a reset);
``_reset()``
    at construction and on every :meth:`reset`, with the lock held.

Each override calls ``super()`` first.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from ...dialect import DEFAULT_DIALECT, Dialect
from .records import Agent, Lifecycle, Page

EventSink = Callable[[str, dict[str, Any]], None]
ProgressSink = Callable[[str, str], None]
#: Webhook events to send once the lock is released: ``(agent id, event)``.
Events = list[tuple[str, dict[str, Any]]]


def linked(resource_type: str, resource_id: str | None) -> dict[str, Any]:
    """A to-one relationship member as resources render it (``None``: empty)."""
    if resource_id is None:
        return {"data": None}
    return {"data": {"type": resource_type, "id": resource_id}}


class PlatformBase:
    """Configuration, the lock, logs and the after-the-lock callbacks.

    Operations are atomic: each holds :attr:`lock` while it reads and writes
    state, and nothing slow (I/O, sleeping, webhook work) happens under it.
    Events and status steps an operation produces are handed to ``on_event``
    and ``on_progress`` by :meth:`_flush`, after the lock is released.

    :attr:`wire` is the dialect the platform speaks (paths, resource type
    names, event names, status words); the default reading unless given.
    State keeps our words; documents are rendered in the dialect's.
    """

    def __init__(
        self,
        *,
        fixtures: Mapping[str, Any],
        client_id: str,
        client_secret: str,
        organisation_id: str,
        agents: Mapping[str, Agent],
        notification_agent: str,
        token_lifetime: float,
        auto_read: bool,
        rate_limit: float | None,
        on_event: EventSink,
        on_progress: ProgressSink,
        wire: Dialect = DEFAULT_DIALECT,
    ) -> None:
        self.lock = threading.Lock()
        self.wire = wire
        self.lifecycle = Lifecycle()
        self.client_id = client_id
        self.client_secret = client_secret
        self.organisation_id = organisation_id
        self.agents = dict(agents)
        self.notification_agent = notification_agent
        self.token_lifetime = token_lifetime
        self.auto_read = auto_read
        self.rate_limit = rate_limit
        #: Set by the server once bound; file URLs in events start with it.
        self.base_url = ""
        self._fixtures = fixtures
        self._on_event = on_event
        self._on_progress = on_progress
        self._setup()
        self.reset()

    def _setup(self) -> None:
        """Once per platform: state that survives :meth:`reset`."""

    def _reset(self) -> None:
        """State that :meth:`reset` forgets; called with the lock held."""
        self.requests_log: list[dict[str, Any]] = []
        self.webhook_log: list[dict[str, Any]] = []
        self.events: list[dict[str, Any]] = []

    def reset(self) -> None:
        """Forget every token, object, stored response and counter."""
        with self.lock:
            self._reset()

    def _flush(
        self, events: Sequence[tuple[str, dict[str, Any]]], progress: Sequence[tuple[str, str]]
    ) -> None:
        """Hand events and status steps on; called after the lock is released."""
        for agent_id, event in events:
            self._on_event(agent_id, event)
        for kind, object_id in progress:
            self._on_progress(kind, object_id)

    def log_request(self, method: str, path: str, status: int, key: str | None) -> None:
        """Record one answered API or token request."""
        entry = {
            "method": method,
            "path": path,
            "status": status,
            "idempotency_key": key,
            "time": time.time(),
        }
        with self.lock:
            self.requests_log.append(entry)

    @staticmethod
    def _paginate(resources: Sequence[dict[str, Any]], page: Page) -> dict[str, Any]:
        """One page of ``resources`` as a list document with links and counts."""
        count = len(resources)
        pages = max(1, math.ceil(count / page.size))
        start = (page.number - 1) * page.size if page.offset is None else page.offset
        data = list(resources[start : start + page.size])
        links = {
            "self": page.link(page.number),
            "first": page.link(1),
            "last": page.link(pages),
            "prev": page.link(page.number - 1) if 1 < page.number <= pages + 1 else None,
            "next": page.link(page.number + 1) if page.number < pages else None,
        }
        return {
            "data": data,
            "links": links,
            "meta": {"pagination": {"page": page.number, "pages": pages, "count": count}},
        }
